/**
 * Restoring one instance of a container through CRIU, with the calling process as the restored
 * init's parent (rst_sibling). The caller says where the rootfs is, which cgroup to restore
 * into, and whether the tree starts running or stays stopped (a standby for a later reset).
 */
import { mkdir, rmdir } from 'node:fs/promises';
import { cgroupHierarchies, attachToCgroup, createCgroup, criuCgroupRoots } from '../cgroups.js';
import type { RuntimeContext } from '../context.js';
import { readCheckpoint } from '../checkpoint-metadata.js';
import { restoreMountMap } from '../external-mounts.js';
import { ensureMountpoints } from '../../rootfs/mountpoints.js';
import { restoreOpts, type RestoreCriuOptions } from '../../criu/options.js';
import type { InheritFd } from '../../criu/rpc/messages.js';
import { LazyPagesDaemon } from '../../criu/lazy-pages.js';
import type { ContainerRecord } from '../state/record.js';
import { specHasNamespace, type Spec } from '../oci/index.js';
import type { Supervisor } from './supervisor.js';
import { describeError } from '../errors.js';

export interface InstanceRestore {
  readonly record: ContainerRecord;
  /** The container's effective spec (mounts, namespaces). */
  readonly spec: Spec;
  readonly imagePath: string;
  readonly criu: RestoreCriuOptions;
  /** The host directory holding the instance's root filesystem. */
  readonly rootfs: string;
  readonly cgroupPath: string;
  /** An empty directory to bind the rootfs on for CRIU (it needs a mount point). */
  readonly criuRoot: string;
  readonly leaveStopped?: boolean;
}

export async function restoreInstance(context: RuntimeContext, supervisor: Supervisor, request: InstanceRestore): Promise<number> {
  const { criu, mounts, logger } = context;
  const { record, spec } = request;
  const { metadata, descriptors } = await readCheckpoint(request.imagePath);
  const hierarchies = cgroupHierarchies(await mounts.mounts());
  const created = await ensureMountpoints(spec.mounts ?? [], request.rootfs, record.bundle);
  if (created.length > 0) logger.debug('recreated mountpoints in the rootfs', { id: record.id, created });
  const extMounts = await restoreMountMap(metadata.externalMounts, {
    spec,
    bundle: record.bundle,
    bundleConfig: `${context.store.paths(record.id).effectiveBundle}/config.json`,
    rootfs: request.rootfs,
    hierarchies,
    cgroupPath: request.cgroupPath,
  });
  // runc's convention: every stdio fd that was a pipe is reconnected to the new pipe at that fd.
  const inheritFds: InheritFd[] = descriptors
    .map((target, fd) => ({ key: target, fd }))
    .filter((entry) => entry.fd < 3 && entry.key.startsWith('pipe:'));

  const workPath = request.criu.workPath;
  const lazy = request.criu.lazyPages && workPath
    ? await LazyPagesDaemon.start(await criu.binary(), request.imagePath, workPath)
    : undefined;
  if (lazy) supervisor.onClose(() => lazy.stop());

  // CRIU needs the root to be a mount point whose parent is not overmounted.
  await mkdir(request.criuRoot, { recursive: true });
  await mounts.bind(request.rootfs, request.criuRoot);
  try {
    return await criu.restore({
      opts: restoreOpts(request.criu, {
        root: request.criuRoot,
        extMounts,
        inheritFds,
        cgroupRoots: [],
        ...(request.leaveStopped ? { leaveStopped: true } : {}),
      }),
      imagePath: request.imagePath,
      inheritFiles: joinedNamespaces(spec),
      ...(workPath ? { workPath } : {}),
      stdio: supervisor.childStdio,
      prepare: async (criuPid) => {
        await createCgroup(hierarchies, request.cgroupPath);
        await attachToCgroup(hierarchies, request.cgroupPath, criuPid);
        return criuCgroupRoots(hierarchies, request.cgroupPath);
      },
    });
  } catch (error) {
    await lazy?.stop();
    throw error;
  } finally {
    await mounts.unmount(request.criuRoot, { detach: true }).catch((error: unknown) => {
      logger.warn('could not unmount the restore root', { path: request.criuRoot, error: describeError(error) });
    });
    await rmdir(request.criuRoot).catch(() => undefined);
  }
}

/** Namespaces the container joins by path are handed to CRIU under the keys the dump named them. */
function joinedNamespaces(spec: Spec): { key: string; path: string }[] {
  const files: { key: string; path: string }[] = [];
  const network = specHasNamespace(spec, 'network')?.path;
  const pid = specHasNamespace(spec, 'pid')?.path;
  if (network) files.push({ key: 'extRootNetNS', path: network });
  if (pid) files.push({ key: 'extRootPidNS', path: pid });
  return files;
}
