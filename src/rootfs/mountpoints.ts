/**
 * Before a restore, every mount's destination must exist in the rootfs: CRIU mounts onto them
 * and does not create them. Mirrors runc's prepareCriuRestoreMounts: cgroup mounts and
 * destinations on a tmpfs the container mounts itself (CRIU restores those whole) are skipped.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { existsInRoot, isBindMount, makeInRoot, resolveInRoot, type MountEntry } from './in-root.js';

/** Creates what is missing; returns the in-container paths it created. */
export async function ensureMountpoints(mounts: readonly MountEntry[], rootfs: string, bundle: string): Promise<string[]> {
  const tmpfsDestinations = mounts.filter((m) => m.type === 'tmpfs').map((m) => m.destination);
  const created: string[] = [];
  for (const mount of mounts) {
    if (mount.type === 'cgroup' || mount.type === 'cgroup2') continue;
    if (tmpfsDestinations.some((t) => mount.destination !== t && mount.destination.startsWith(`${t}/`))) continue;
    // Links resolved inside the rootfs first (one to a path that does not exist yet too), then
    // each component looked up and made by the kernel inside the rootfs: a link a container
    // sharing the rootfs puts in the way meanwhile is followed inside it, never onto the host.
    const destination = await resolveInRoot(rootfs, mount.destination);
    if (existsInRoot(rootfs, destination)) continue;
    const sourceIsFile =
      isBindMount(mount) && mount.source !== undefined && (await stat(path.resolve(bundle, mount.source)).catch(() => undefined))?.isFile();
    if (makeInRoot(rootfs, destination, sourceIsFile ? 'file' : 'directory')) created.push(destination);
  }
  return created;
}
