/**
 * The external-mount map CRIU needs for mounts whose source lies outside the container: bind
 * mounts, cgroup v1 hierarchies, masked files and device nodes. On dump each is named (key =
 * the in-container mount point, value = its name); on restore each name gets a host path.
 * Mirrors runc (criu_linux.go): bind destinations are resolved for symlinks inside the rootfs
 * (runc PR #2902), masked files are named "/dev/null", devices map to themselves. Unlike runc,
 * a masked directory (runc's empty read-only tmpfs) is external too, restored as a bind of an
 * empty read-only tmpfs of the host's (rootfs/masked-directory.ts), where CRIU would run tar and
 * gzip to restore each. The container's other tmpfs mounts (/dev, /dev/shm, /sys/fs/cgroup) are
 * made external after the dump (criu/tmpfs-images.ts) and restored as new tmpfs mounts filled by
 * the runtime (rootfs/tmpfs-copy.ts).
 */
import { readdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import type { ExtMountMap } from '../criu/rpc/messages.js';
import type { Spec } from './oci/index.js';
import type { MountInfo } from '../rootfs/mountinfo.js';
import type { CgroupHierarchy } from './cgroups.js';
import { RuntimeError } from './errors.js';
import { isBindMount, resolveInRoot } from '../rootfs/in-root.js';
import type { CopiedTmpfs } from '../criu/tmpfs-images.js';

export type ExternalMountKind = 'bind' | 'cgroup' | 'masked' | 'masked-directory' | 'device' | 'tmpfs';

/** The name every masked directory is recorded under. */
export const MASKED_DIRECTORY_NAME = 'masked-directory';

/** One external mount as recorded beside the images, so a restore can map it again. */
export interface ExternalMount {
  readonly kind: ExternalMountKind;
  /** The in-container mount point (CRIU's key on dump). */
  readonly mountPoint: string;
  /** The name CRIU records for it (the value on dump, the key on restore). */
  readonly name: string;
  /** A tmpfs the runtime fills on restore: how to mount it, and its files beside the images. */
  readonly tmpfs?: RecordedTmpfs;
}

export interface RecordedTmpfs {
  readonly source: string;
  readonly options: string;
  readonly flags: number;
  /** The directory of its files, relative to the images. */
  readonly content: string;
}

/** The external mounts a dump's tmpfs became (criu/tmpfs-images.ts), to record beside the others. */
export function copiedTmpfsMounts(copied: readonly CopiedTmpfs[]): ExternalMount[] {
  return copied.map(({ key, mountPoint, source, options, flags, content }) => ({
    kind: 'tmpfs',
    mountPoint,
    name: key,
    tmpfs: { source, options, flags, content },
  }));
}

export class MissingMountMappingError extends RuntimeError {
  readonly code = 'MISSING_MOUNT_MAPPING' as const;
  constructor(
    readonly mountPoint: string,
    bundleConfig: string,
  ) {
    super(`the checkpoint has a bind mount at ${mountPoint}, and ${bundleConfig} has no bind mount there`, {
      hint: 'restore with the bundle the container was checkpointed with, or add the bind mount to its config.json',
    });
  }
}

/** The spec's devices and the ones runc always creates. */
function devicePaths(spec: Spec): string[] {
  return [...(spec.linux?.devices ?? []).map((d) => d.path), ...defaultDevices];
}

/** The device nodes runc always creates (libcontainer/specconv AllowedDevices), beside the spec's. */
const defaultDevices = ['/dev/null', '/dev/zero', '/dev/full', '/dev/random', '/dev/urandom', '/dev/tty'];

export interface DumpMountContext {
  readonly spec: Spec;
  readonly rootfs: string;
  /** The container's own mount table (/proc/<init>/mountinfo). */
  readonly containerMounts: readonly MountInfo[];
  /** How to look at a path inside the running container (/proc/<init>/root). */
  readonly containerRoot: string;
}

export async function externalMountsForDump(context: DumpMountContext): Promise<ExternalMount[]> {
  const mounts: ExternalMount[] = [];
  const seen = new Set<string>();
  const add = (mount: ExternalMount) => {
    if (seen.has(mount.mountPoint)) return;
    seen.add(mount.mountPoint);
    mounts.push(mount);
  };
  for (const mount of context.spec.mounts ?? []) {
    if (!isBindMount(mount)) continue;
    const destination = await resolveInRoot(context.rootfs, mount.destination);
    add({ kind: 'bind', mountPoint: destination, name: destination });
  }
  // Without a cgroup namespace, each v1 hierarchy is a bind of the container's host cgroup.
  for (const mount of context.containerMounts) {
    if (mount.fsType === 'cgroup') add({ kind: 'cgroup', mountPoint: mount.mountPoint, name: mount.mountPoint });
  }
  for (const masked of context.spec.linux?.maskedPaths ?? []) {
    const info = await stat(path.join(context.containerRoot, masked)).catch(() => undefined);
    if (info && !info.isDirectory()) add({ kind: 'masked', mountPoint: masked, name: '/dev/null' });
    else if (info && (await isEmptyReadOnlyTmpfs(context, masked))) add({ kind: 'masked-directory', mountPoint: masked, name: MASKED_DIRECTORY_NAME });
  }
  for (const device of devicePaths(context.spec)) {
    add({ kind: 'device', mountPoint: device, name: device });
  }
  return mounts;
}

/** runc's mask of a directory, as it still is: the top mount there an empty tmpfs, read-only. */
async function isEmptyReadOnlyTmpfs(context: DumpMountContext, mountPoint: string): Promise<boolean> {
  const top = context.containerMounts.filter((m) => m.mountPoint === mountPoint).at(-1);
  if (top?.fsType !== 'tmpfs' || !top.superOptions.includes('ro')) return false;
  const entries = await readdir(path.join(context.containerRoot, mountPoint)).catch(() => undefined);
  return entries !== undefined && entries.length === 0;
}

export function dumpMountMap(mounts: readonly ExternalMount[]): ExtMountMap[] {
  return mounts.map((m) => ({ key: m.mountPoint, val: m.name }));
}

export interface RestoreMountContext {
  readonly spec: Spec;
  readonly bundle: string;
  readonly bundleConfig: string;
  readonly rootfs: string;
  readonly hierarchies: readonly CgroupHierarchy[];
  /** The restored container's cgroup path. */
  readonly cgroupPath: string;
  /** The host's empty read-only tmpfs for masked directories, made ready when a checkpoint has one. */
  readonly maskedDirectory: () => Promise<string>;
  /** A new tmpfs filled as recorded, for this restore alone; returns where it is mounted. */
  readonly copiedTmpfs: (tmpfs: RecordedTmpfs) => Promise<string>;
}

/** The host path for each recorded name; a bind mount the bundle no longer has is an error. */
export async function restoreMountMap(recorded: readonly ExternalMount[], context: RestoreMountContext): Promise<ExtMountMap[]> {
  const bindSources = new Map<string, string>();
  for (const mount of context.spec.mounts ?? []) {
    if (!isBindMount(mount) || mount.source === undefined) continue;
    const destination = await resolveInRoot(context.rootfs, mount.destination);
    // The first bind at a destination, as the dump side names it.
    if (bindSources.has(destination)) continue;
    // CRIU mounts the source itself and does not follow a symlink there (Debian's /lib is one).
    const source = path.resolve(context.bundle, mount.source);
    bindSources.set(destination, await realpath(source).catch(() => source));
  }
  const map = new Map<string, string>();
  for (const mount of recorded) {
    switch (mount.kind) {
      case 'bind': {
        const source = bindSources.get(mount.mountPoint);
        if (source === undefined) throw new MissingMountMappingError(mount.mountPoint, context.bundleConfig);
        map.set(mount.name, source);
        break;
      }
      case 'cgroup': {
        const base = path.basename(mount.mountPoint);
        const hierarchy = context.hierarchies.find((h) => path.basename(h.mountPoint) === base);
        if (hierarchy) map.set(mount.name, path.join(hierarchy.mountPoint, context.cgroupPath));
        break;
      }
      case 'masked-directory':
        map.set(mount.name, await context.maskedDirectory());
        break;
      case 'tmpfs':
        // The metadata's schema requires the description (checkpoint-metadata.ts).
        if (mount.tmpfs) map.set(mount.name, await context.copiedTmpfs(mount.tmpfs));
        break;
      case 'masked':
        // runc masks a file with the host's /dev/null, and only the spec's masked paths.
        if (mount.name !== '/dev/null' || !(context.spec.linux?.maskedPaths ?? []).includes(mount.mountPoint))
          throw new UntrustedMountError(mount, `a masked file is /dev/null at one of the spec's masked paths`);
        map.set(mount.name, mount.name);
        break;
      case 'device':
        // A device is the host's node of the same path, one the spec or runc's defaults give.
        if (mount.name !== mount.mountPoint || !devicePaths(context.spec).includes(mount.mountPoint))
          throw new UntrustedMountError(mount, "a device is one of the spec's devices or runc's defaults, from the host's node of that path");
        map.set(mount.name, mount.name);
        break;
    }
  }
  return [...map].map(([key, val]) => ({ key, val }));
}

export class UntrustedMountError extends RuntimeError {
  readonly code = 'UNTRUSTED_CHECKPOINT_MOUNT' as const;
  constructor(mount: ExternalMount, rule: string) {
    super(
      `the checkpoint's metadata maps the ${mount.kind} mount at ${mount.mountPoint} to the host's ${mount.name}, which the container's spec does not give it (${rule})`,
      { hint: 'restore the images with the bundle they were dumped from, or check where these images came from' },
    );
  }
}
