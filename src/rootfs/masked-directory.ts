/**
 * What a restore binds over a masked directory: an empty, read-only tmpfs of the host's, shared by
 * every container. runc masks a directory of linux.maskedPaths (/proc/acpi, /sys/firmware) with a
 * read-only tmpfs of its own; CRIU would dump each as a tmpfs and restore it by running tar and
 * gzip over an empty archive (about 25 ms apiece here, on every restore and reset). Recorded as an
 * external mount instead, it is bound from this one. It is read-only at the superblock, so no bind
 * of it can be written to, whatever the bind's own flags, and it is mode 0555 so that a restore
 * inside a user namespace can reach it.
 */
import { mkdir } from 'node:fs/promises';
import { MS_RDONLY } from '../system/libc.js';
import type { MountService } from './mount-service.js';

export const MASKED_DIRECTORY_SOURCE = '/run/runtime-masked';

/** Mounts the source unless one as it mounts it is already there; returns its path. */
export async function prepareMaskedDirectorySource(mounts: MountService, dir = MASKED_DIRECTORY_SOURCE): Promise<string> {
  const top = (await mounts.mounts()).filter((m) => m.mountPoint === dir).at(-1);
  const locking = ['nosuid', 'nodev', 'noexec'];
  if (top?.fsType === 'tmpfs' && top.superOptions.includes('ro') && !top.mountOptions.some((o) => locking.includes(o))) return dir;
  await mkdir(dir, { recursive: true, mode: 0o555 });
  // Read-only and nothing more, as runc's masks are ("ro,relatime"): CRIU bind-remounts each
  // restored mask with the flags it had, and in a user namespace a flag the source has (nosuid,
  // nodev, noexec) is locked and cannot be dropped. Nothing can be created on it anyway.
  await mounts.mount('runtime-masked', dir, 'tmpfs', MS_RDONLY, 'size=4k,mode=0555');
  return dir;
}
