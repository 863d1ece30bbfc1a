/**
 * Snapshot layers: a container's rootfs as read-only layers under a fresh writable one. A
 * snapshot captures the writable state as a new read-only layer (a copy of an overlay's upper
 * directory, or of a whole plain-directory rootfs); a reset mounts an overlay of the snapshot's
 * layers with an empty upper directory on the container's rootfs path, so nothing is copied.
 */
import { chmod, chown, mkdir, readdir, rm, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { MountService } from './mount-service.js';
import { RuntimeError } from '../system/errors.js';
import { MountError } from './errors.js';
import { trackChild } from '../system/spawned.js';
import { canonicalPath } from '../system/files.js';

/** execa is loaded only when a command is run: it is slow to load, and most runs need none. */
const loadExeca = async () => (await import('execa')).execa;

/** A runtime-managed overlay: read-only layers (top first), its writable pair, and its mount point. */
export interface LayeredRootfs {
  readonly lowers: readonly string[];
  readonly upper: string;
  readonly work: string;
  readonly target: string;
}

export class LayerCopyError extends RuntimeError {
  readonly code = 'LAYER_COPY_FAILED' as const;
  constructor(
    readonly source: string,
    readonly destination: string,
    detail: string,
  ) {
    super(`copying the rootfs layer ${source} to ${destination} failed: ${detail}`, {
      hint: 'check the free space of the checkpoint root (`df -h`)',
    });
  }
}

/**
 * Copies a directory tree exactly: owners, modes, times, xattrs (overlay's opaque markers),
 * device nodes (overlay whiteouts), hard links and sparse files.
 */
export async function copyLayer(source: string, destination: string): Promise<void> {
  await mkdir(destination, { recursive: true });
  // cp ends with its caller (setpriv's parent-death signal, kept across its exec of cp): a
  // checkpoint killed while it copies leaves no cp writing on into the snapshot being removed.
  const cp = ['cp', '-a', '--sparse=always', '--no-target-directory', source, destination];
  const [command, ...args] = existsSync('/usr/bin/setpriv') ? ['setpriv', '--pdeathsig', 'KILL', '--', ...cp] : cp;
  const result = await trackChild((await loadExeca())(command!, args, { reject: false }));
  if (result.failed) throw new LayerCopyError(source, destination, String(result.stderr).trim() || result.shortMessage || 'cp failed');
}

/** The overlay options for layers; the kernel's limit is one page of mount data. */
export function overlayOptions(rootfs: LayeredRootfs): string {
  return `lowerdir=${rootfs.lowers.join(':')},upperdir=${rootfs.upper},workdir=${rootfs.work}`;
}

/**
 * Mounts the overlay with a fresh (emptied) upper and work directory. A rootfs with a single
 * layer and nothing to write on it would still need an upper: overlay needs one to be writable.
 */
export async function mountLayers(mounts: MountService, rootfs: LayeredRootfs): Promise<void> {
  await emptyDirectory(rootfs.upper);
  await emptyDirectory(rootfs.work);
  await takeRootAttributes(rootfs.upper, rootfs.lowers[0]);
  await mkdir(rootfs.target, { recursive: true });
  await mounts.mount('overlay', rootfs.target, 'overlay', 0, overlayOptions(rootfs));
}

/**
 * Unmounts everything mounted below dir, deepest first (a restore root, a copy's rootfs, a
 * restore's tmpfs copies), found by dir's real path, as the mount table names mount points.
 */
export async function unmountBelow(mounts: MountService, dir: string): Promise<void> {
  const real = canonicalPath(dir);
  for (const target of (await mounts.mounts())
    .map((m) => m.mountPoint)
    .filter((p) => p.startsWith(`${real}/`))
    .sort()
    .reverse()) {
    await unmountAll(mounts, target);
  }
}

/** Unmounts every mount stacked on target (a reset may find several), innermost first. */
export async function unmountAll(mounts: MountService, target: string): Promise<number> {
  let count = 0;
  while (await mounts.isMountPoint(target)) {
    await mounts.unmount(target, { detach: true });
    count++;
    if (count > 32) throw new MountError(`${target} is still mounted after 32 unmounts`);
  }
  return count;
}

/**
 * The overlay's root directory is its upper directory's: a fresh upper takes the top layer's
 * owner and mode, or a reset would give "/" to the host's root. In a user namespace that owner
 * is unmapped (nobody), and the container's root could no longer create anything in "/". (The
 * work directory is only used with the mounter's credentials: it stays root's.)
 */
async function takeRootAttributes(upper: string, top: string | undefined): Promise<void> {
  if (top === undefined) return;
  const [info, own] = await Promise.all([stat(top), stat(upper)]);
  if (info.uid !== own.uid || info.gid !== own.gid) await chown(upper, info.uid, info.gid);
  await chmod(upper, info.mode & 0o7777);
}

async function emptyDirectory(directory: string): Promise<void> {
  await mkdir(directory, { recursive: true });
  const entries = await readdir(directory);
  await Promise.all(entries.map((entry) => rm(path.join(directory, entry), { recursive: true, force: true })));
}

/** Bytes used by a directory tree (allocated blocks, as du counts them). */
export async function diskUsage(directory: string): Promise<number> {
  const result = await trackChild((await loadExeca())('du', ['-s', '-B1', directory], { reject: false }));
  if (result.failed) return 0;
  return Number(String(result.stdout).split(/\s/)[0]);
}
