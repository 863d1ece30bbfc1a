/**
 * Containers with a user namespace of their own (linux.uidMappings/gidMappings). CRIU restores
 * such a tree from inside the namespace: the restored tasks, as the container's root (an
 * unprivileged uid on the host), open their own images and their userfaultfd. What the host must
 * allow them, and nothing more:
 *
 *   containerRoot            the host uid and gid the container's root (id 0) is mapped to
 *   shareWithContainerRoot   an image directory made searchable by that gid (group --x): the
 *                            images are 0644, the directory 0700 otherwise
 *   requireLazyPagesAllowed  --lazy-pages into a user namespace needs a host that lets an
 *                            unprivileged process open a userfaultfd; checked before anything stops
 */
import { constants } from 'node:fs';
import { chmod, chown, open, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { RuntimeError } from './errors.js';
import { specHasNamespace, type IdMapping, type Spec } from './oci/index.js';
import type { ProcessService } from '../system/processes.js';

/** The host ids of the container's root, when the spec creates a user namespace with mappings. */
export function containerRoot(spec: Spec): { readonly uid: number; readonly gid: number } | undefined {
  const namespace = specHasNamespace(spec, 'user');
  // A namespace joined by path carries no mappings in the spec: nothing is known to prepare for.
  if (!namespace || namespace.path) return undefined;
  const uid = hostIdOfRoot(spec.linux?.uidMappings);
  const gid = hostIdOfRoot(spec.linux?.gidMappings);
  return uid === undefined || gid === undefined ? undefined : { uid, gid };
}

/**
 * The host id of a container's uid or gid, through the spec's mappings when it creates a user
 * namespace (an id no range maps becomes the overflow id, 65534, as the kernel shows it).
 */
export function hostIds(spec: Spec): (kind: 'uid' | 'gid', id: number) => number {
  if (!containerRoot(spec)) return (_kind, id) => id;
  return (kind, id) => {
    const mappings = (kind === 'uid' ? spec.linux?.uidMappings : spec.linux?.gidMappings) ?? [];
    const range = mappings.find((m) => id >= m.containerID && id < m.containerID + m.size);
    return range ? range.hostID + (id - range.containerID) : 65534;
  };
}

function hostIdOfRoot(mappings: readonly IdMapping[] | undefined): number | undefined {
  const range = mappings?.find((m) => m.containerID === 0 && m.size > 0);
  return range?.hostID;
}

/**
 * Lets the container's root reach the images in `dir` (CRIU: "Unable to open tty-info.img:
 * Permission denied" otherwise). Only the directory changes, and only as much as needed: it
 * keeps its owner (root), its group becomes the container's root group with search permission
 * only, so it can open the images by name but neither list nor write the directory. Nothing
 * changes for a container without a user namespace, or when the directory already allows it (a
 * snapshot's images are prepared when the snapshot is taken, and reset only reads them).
 */
export async function shareWithContainerRoot(dir: string, spec: Spec): Promise<void> {
  const root = containerRoot(spec);
  if (!root) return;
  const info = await stat(dir);
  if (info.gid === root.gid && (info.mode & 0o030) === 0o010) return;
  await chown(dir, info.uid, root.gid);
  await chmod(dir, (info.mode & 0o7707) | 0o010);
}

export class UserfaultfdRestrictedError extends RuntimeError {
  readonly code = 'USERFAULTFD_RESTRICTED' as const;
  constructor(readonly id: string) {
    super(
      `--lazy-pages cannot restore ${id} in its user namespace: this host lets only processes with CAP_SYS_PTRACE open a userfaultfd (vm.unprivileged_userfaultfd is 0), and CRIU opens it in the restored tasks, as the container's root`,
      { hint: 'restore without --lazy-pages, or allow unprivileged userfaultfd on the host with `sysctl -w vm.unprivileged_userfaultfd=1`' },
    );
  }
}

/**
 * CRIU opens each task's userfaultfd in the task itself, inside the container's user namespace,
 * where it never has CAP_SYS_PTRACE over the host: the kernel then allows it only when
 * vm.unprivileged_userfaultfd is 1 (CRIU fails with "Unable to open an userfaultfd descriptor:
 * Operation not permitted"). Checked before an instance is stopped, so a refused reset leaves
 * the container running.
 */
export async function requireLazyPagesAllowed(processes: ProcessService, spec: Spec, id: string, lazyPages: boolean | undefined): Promise<void> {
  if (lazyPages && !(await userfaultfdAllowed(processes, spec))) throw new UserfaultfdRestrictedError(id);
}

/** Whether CRIU may open the userfaultfds a lazy restore of this container needs (see above). */
export async function userfaultfdAllowed(processes: ProcessService, spec: Spec): Promise<boolean> {
  return !containerRoot(spec) || (await processes.sysctl('vm.unprivileged_userfaultfd')) !== '0';
}

/**
 * The files of an image directory made root's alone once CRIU has written them (it writes 0644,
 * and they hold the container's memory): 0600, or in a user namespace 0640 with the container
 * root's group, which a restore there opens them as. Symbolic links are left as they are.
 */
export async function restrictImageFiles(dir: string, spec: Spec): Promise<void> {
  const root = containerRoot(spec);
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (!entry.isFile()) continue;
    // Through the opened file, never following a link put in its place since the listing.
    const file = await open(path.join(dir, entry.name), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    try {
      if (!(await file.stat()).isFile()) continue;
      if (root) await file.chown(-1, root.gid);
      await file.chmod(root ? 0o640 : 0o600);
    } finally {
      await file.close();
    }
  }
}
