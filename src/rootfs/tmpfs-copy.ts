/**
 * A new tmpfs filled with a copy of a directory: how a restore recreates a container's tmpfs
 * mounts (/dev, /dev/shm, /sys/fs/cgroup) that the checkpoint keeps as plain files
 * (criu/tmpfs-images.ts), where CRIU would run tar and gzip for each on every restore.
 *
 * The copy keeps what tar keeps: the tree's directories, regular files (contents, not holes),
 * symlinks, hard links, device nodes and fifos, each with its owner, mode and times; sockets are
 * skipped, as tar skips them (CRIU binds a listening socket's file again itself). Owners are
 * translated by `hostId`: a container with a user namespace had its archive made inside it.
 *
 * The tmpfs is mounted with the superblock options recorded at the dump and the mount's own
 * nosuid/nodev/noexec and atime flags, never read-only: CRIU binds it into the container and
 * remounts the bind with the mount's flags, read-only included. In a user namespace the flags a
 * bind arrives with are locked and can only be added to, the atime flags not changed at all, so
 * they must be the container's own from the start.
 */
import {
  chmodSync,
  chownSync,
  copyFileSync,
  lchownSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  readdirSync,
  readlinkSync,
  symlinkSync,
  constants,
} from 'node:fs';
import { chmod, chown, mkdir, mkdtemp } from 'node:fs/promises';
import path from 'node:path';
import { MS_NOATIME, MS_NODEV, MS_NODIRATIME, MS_NOEXEC, MS_NOSUID, MS_RELATIME, MS_STRICTATIME, mknod } from '../system/libc.js';
import type { MountService } from './mount-service.js';

/** The mount flags a restore's tmpfs takes from the recorded ones (never MS_RDONLY: see above). */
const KEPT_FLAGS = MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME | MS_STRICTATIME;

/**
 * Where a restore mounts its tmpfs copies until CRIU has bound them: a directory of the host's
 * that anyone may search (never list), as a restore in a user namespace opens them as the
 * container's root, which cannot reach into a state root kept private (mkdtemp's 0700 and the like).
 */
export const TMPFS_STAGING = '/run/runtime-tmpfs';

/**
 * A new directory for one restore's tmpfs copies, below TMPFS_STAGING: root's alone, or
 * searchable by `group` (a user namespace's root, that CRIU restores as) and no one else. The
 * copies hold the container's files and devices with the container's modes: no other user of
 * the host may reach them, or plant anything in them, meanwhile.
 */
export async function tmpfsStagingDirectory(prefix: string, group?: number, root = TMPFS_STAGING): Promise<string> {
  await mkdir(root, { recursive: true, mode: 0o711 });
  const dir = await mkdtemp(path.join(root, `${prefix}-`));
  if (group !== undefined) {
    await chown(dir, process.geteuid?.() ?? 0, group);
    await chmod(dir, 0o710);
  }
  return dir;
}

export type HostId = (kind: 'uid' | 'gid', id: number) => number;

export const sameIds: HostId = (_kind, id) => id;

export interface CopiedTmpfsMount {
  /** The mount's source as mountinfo shows it ("tmpfs", "shm"). */
  readonly source: string;
  /** The superblock's options (size=65536k,mode=755). */
  readonly options: string;
  /** The mount's flags as recorded. */
  readonly flags: number;
  /** The directory holding the files to copy in. */
  readonly content: string;
}

/** Mounts a new tmpfs on `target` (created if missing) and copies `tmpfs.content` into it. */
export async function mountCopiedTmpfs(mounts: MountService, tmpfs: CopiedTmpfsMount, target: string, hostId: HostId = sameIds): Promise<void> {
  await mkdir(target, { mode: 0o700 });
  await mounts.mount(tmpfs.source, target, 'tmpfs', tmpfs.flags & KEPT_FLAGS, tmpfs.options);
  try {
    copyTree(tmpfs.content, target, hostId);
  } catch (error) {
    await mounts.unmount(target, { detach: true });
    throw error;
  }
}

/**
 * Copies the tree at `from` into the existing directory `to` (its root's owner, mode and times
 * too). Synchronous: a restore waits on it, and these trees are a few dozen small entries, each a
 * call of microseconds (as async calls, each a trip through the thread pool).
 */
export function copyTree(from: string, to: string, hostId: HostId = sameIds): void {
  copyEntry(from, to, hostId, new Map<string, string>(), true);
}

function copyEntry(from: string, to: string, hostId: HostId, linked: Map<string, string>, isRoot = false): void {
  const info = lstatSync(from, { bigint: true });
  const uid = hostId('uid', Number(info.uid));
  const gid = hostId('gid', Number(info.gid));
  const mode = Number(info.mode & 0o7777n);
  const times = () => lutimesSync(to, new Date(Number(info.atimeNs / 1_000_000n)), new Date(Number(info.mtimeNs / 1_000_000n)));
  if (info.isDirectory()) {
    if (!isRoot) mkdirSync(to, { mode: 0o700 });
    for (const name of readdirSync(from)) copyEntry(path.join(from, name), path.join(to, name), hostId, linked);
    // A directory's mode and times last: entries created in it would change its times, and a
    // read-only mode would stop them being created.
    chownSync(to, uid, gid);
    chmodSync(to, mode);
    times();
    return;
  }
  if (info.isSocket()) return;
  const identity = `${info.dev}:${info.ino}`;
  const first = info.nlink > 1n ? linked.get(identity) : undefined;
  if (first !== undefined) {
    linkSync(first, to);
    return;
  }
  if (info.isSymbolicLink()) {
    symlinkSync(readlinkSync(from), to);
    lchownSync(to, uid, gid);
    times();
    return;
  }
  // Never through anything at `to`: the copy creates each entry (COPYFILE_EXCL), and owners and
  // modes are set on what it created (a symlink's own owner with lchown).
  if (info.isFile()) copyFileSync(from, to, constants.COPYFILE_EXCL);
  else if (info.isCharacterDevice() || info.isBlockDevice() || info.isFIFO()) mknod(to, Number(info.mode), info.rdev);
  else return;
  if (info.nlink > 1n) linked.set(identity, to);
  chownSync(to, uid, gid);
  chmodSync(to, mode);
  times();
}
