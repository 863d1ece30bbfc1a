/**
 * Paths inside a container's root filesystem, resolved the way the container sees them (SecureJoin
 * semantics, as runc uses): symlinks are followed inside the root, never out of it.
 */
import { lstat, readlink } from 'node:fs/promises';
import path from 'node:path';
import { SymlinkLoopError } from './errors.js';

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
