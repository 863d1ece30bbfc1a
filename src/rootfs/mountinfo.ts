/**
 * /proc/<pid>/mountinfo, parsed (proc(5)). Used to tell whether a path is a mount point, to find
 * the cgroup v1 hierarchies, and to see the mounts of a container's mount namespace.
 */
import { readFileSync } from 'node:fs';
import { MountError } from './errors.js';

export interface MountInfo {
  readonly id: number;
  readonly parentId: number;
  /** "major:minor" of the filesystem's device. */
  readonly device: string;
  /** The path inside the filesystem that is mounted here ("/" unless it is a bind of a subtree). */
  readonly root: string;
  readonly mountPoint: string;
  readonly mountOptions: readonly string[];
  readonly optionalFields: readonly string[];
  readonly fsType: string;
  readonly source: string;
  readonly superOptions: readonly string[];
}

/** mountinfo escapes space, tab, newline and backslash as \ooo octal. */
function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

export function parseMountInfo(text: string): MountInfo[] {
  const mounts: MountInfo[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const fields = line.split(' ');
    const separator = fields.indexOf('-', 6);
    if (separator < 0 || fields.length < separator + 3) throw new MountError(`malformed mountinfo line: ${line}`);
    mounts.push({
      id: Number(fields[0]),
      parentId: Number(fields[1]),
      device: fields[2]!,
      root: unescape(fields[3]!),
      mountPoint: unescape(fields[4]!),
      mountOptions: fields[5]!.split(','),
      optionalFields: fields.slice(6, separator),
      fsType: fields[separator + 1]!,
      source: unescape(fields[separator + 2]!),
      superOptions: (fields[separator + 3] ?? '').split(',').filter((o) => o !== ''),
    });
  }
  return mounts;
}

export async function readMountInfo(pid: number | 'self' = 'self'): Promise<MountInfo[]> {
  // Synchronously: a few kilobytes of the kernel's, read on every restore and reset.
  return parseMountInfo(readFileSync(`/proc/${pid}/mountinfo`, 'utf8'));
}
