/**
 * Paths inside a container's root filesystem, resolved the way the container sees them (SecureJoin
 * semantics, as runc uses): symlinks are followed inside the root, never out of it.
 */
import { closeSync, existsSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { lstat, readlink } from 'node:fs/promises';
import path from 'node:path';
import { SymlinkLoopError } from './errors.js';
import { O_CREAT, O_DIRECTORY, O_EXCL, O_PATH, O_WRONLY, mkdirAt, openInRoot } from '../system/libc.js';
import { SystemCallError } from '../system/errors.js';

/** A mount as the OCI spec writes one; only the fields the rootfs code reads. */
export interface MountEntry {
  readonly destination: string;
  readonly type?: string;
  readonly source?: string;
  readonly options?: readonly string[];
}

/** A bind mount, by type or by option, as runc tells one. */
export function isBindMount(mount: MountEntry): boolean {
  return mount.type === 'bind' || (mount.options ?? []).some((o) => o === 'bind' || o === 'rbind');
}

/**
 * Resolves path inside root as if root were "/": symlinks are followed and absolute targets taken
 * relative to root, ".." never climbs above it. Returns the in-root path ("/a/b"). Components that
 * do not exist are kept as written (SecureJoin semantics).
 */
export async function resolveInRoot(root: string, unsafePath: string): Promise<string> {
  let pending = unsafePath.split('/').filter((p) => p !== '' && p !== '.');
  const resolved: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift()!;
    if (part === '..') {
      resolved.pop();
      continue;
    }
    const candidate = [...resolved, part];
    const hostPath = path.join(root, ...candidate);
    let isLink = false;
    try {
      isLink = (await lstat(hostPath)).isSymbolicLink();
    } catch {
      isLink = false;
    }
    if (!isLink) {
      resolved.push(part);
      continue;
    }
    if (++links > 255) throw new SymlinkLoopError(unsafePath, root);
    const target = await readlink(hostPath);
    const targetParts = target.split('/').filter((p) => p !== '' && p !== '.');
    if (target.startsWith('/')) resolved.length = 0;
    pending = [...targetParts, ...pending];
  }
  return `/${resolved.join('/')}`;
}

const ENOENT = 2;
const ENOSYS = 38;
const EEXIST = 17;

/**
 * Makes inRootPath inside root (a directory, or an empty file as the last component), as the
 * container would see the path: each component is looked up by the kernel in one openat2 call
 * that keeps to root (RESOLVE_IN_ROOT), and each missing one made with mkdirat in the directory
 * that lookup opened. A process of a container sharing the rootfs that swaps a component for a
 * symbolic link meanwhile can only redirect it inside root: nothing is ever made on the host
 * outside it. Returns whether anything was made (false when the path existed).
 */
export function makeInRoot(root: string, inRootPath: string, kind: 'directory' | 'file'): boolean {
  try {
    return makeInRootAt(root, inRootPath, kind);
  } catch (error) {
    if (!(error instanceof SystemCallError && error.errno === ENOSYS)) throw error;
    // A kernel before 5.6 has no openat2: made by path, as before (a resolved in-root path).
    const hostPath = path.join(root, inRootPath);
    if (existsSync(hostPath)) return false;
    mkdirSync(kind === 'file' ? path.dirname(hostPath) : hostPath, { recursive: true, mode: 0o755 });
    if (kind === 'file') writeFileSync(hostPath, '', { flag: 'a' });
    return true;
  }
}

function makeInRootAt(root: string, inRootPath: string, kind: 'directory' | 'file'): boolean {
  const parts = inRootPath.split('/').filter((p) => p !== '' && p !== '.');
  const rootFd = openSync(root, O_PATH | O_DIRECTORY);
  let made = false;
  try {
    let parentFd = rootFd;
    for (const [index, part] of parts.entries()) {
      const sofar = parts.slice(0, index + 1).join('/');
      const last = index === parts.length - 1;
      let fd = tryOpenInRoot(rootFd, sofar, last && kind === 'file' ? O_PATH : O_PATH | O_DIRECTORY);
      if (fd === undefined) {
        made = true;
        if (last && kind === 'file') {
          fd = ignoring(EEXIST, () => openInRoot(rootFd, sofar, O_CREAT | O_EXCL | O_WRONLY, 0o644)) ?? openInRoot(rootFd, sofar, O_PATH);
        } else {
          ignoring(EEXIST, () => mkdirAt(parentFd, part, 0o755));
          fd = openInRoot(rootFd, sofar, O_PATH | O_DIRECTORY);
        }
      }
      if (parentFd !== rootFd) closeSync(parentFd);
      parentFd = fd;
    }
    if (parentFd !== rootFd) closeSync(parentFd);
  } finally {
    closeSync(rootFd);
  }
  return made;
}

/** Whether inRootPath exists inside root (as the container would resolve it). */
export function existsInRoot(root: string, inRootPath: string): boolean {
  const rootFd = openSync(root, O_PATH | O_DIRECTORY);
  try {
    const fd = ignoring(
      ENOSYS,
      () => tryOpenInRoot(rootFd, inRootPath.replace(/^\/+/, '') || '.', O_PATH),
      () => (existsSync(path.join(root, inRootPath)) ? -1 : undefined),
    );
    if (fd === undefined) return false;
    if (fd >= 0) closeSync(fd);
    return true;
  } finally {
    closeSync(rootFd);
  }
}

function tryOpenInRoot(rootFd: number, inRootPath: string, flags: number): number | undefined {
  return ignoring(ENOENT, () => openInRoot(rootFd, inRootPath, flags));
}

function ignoring<T>(errno: number, fn: () => T, otherwise: () => T | undefined = () => undefined): T | undefined {
  try {
    return fn();
  } catch (error) {
    if (error instanceof SystemCallError && error.errno === errno) return otherwise();
    throw error;
  }
}
