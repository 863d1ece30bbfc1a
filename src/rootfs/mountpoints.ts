/**
 * Before a restore, every mount's destination must exist in the rootfs: CRIU mounts onto them
 * and does not create them. Mirrors runc's prepareCriuRestoreMounts: cgroup mounts and
 * destinations on a tmpfs the container mounts itself (CRIU restores those whole) are skipped.
 */
import { mkdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { isBindMount, resolveInRoot, type MountEntry } from './in-root.js';

/** Creates what is missing; returns the in-container paths it created. */
export async function ensureMountpoints(mounts: readonly MountEntry[], rootfs: string, bundle: string): Promise<string[]> {
  const tmpfsDestinations = mounts.filter((m) => m.type === 'tmpfs').map((m) => m.destination);
  const created: string[] = [];
  for (const mount of mounts) {
    if (mount.type === 'cgroup' || mount.type === 'cgroup2') continue;
    if (tmpfsDestinations.some((t) => mount.destination !== t && mount.destination.startsWith(`${t}/`))) continue;
    const destination = await resolveInRoot(rootfs, mount.destination);
    const hostPath = path.join(rootfs, destination);
    if (await stat(hostPath).catch(() => undefined)) continue;
    const sourceIsFile =
      isBindMount(mount) && mount.source !== undefined && (await stat(path.resolve(bundle, mount.source)).catch(() => undefined))?.isFile();
    if (sourceIsFile) {
      await mkdir(path.dirname(hostPath), { recursive: true });
      await writeFile(hostPath, '', { flag: 'a' });
    } else {
      await mkdir(hostPath, { recursive: true, mode: 0o755 });
    }
    created.push(destination);
  }
  return created;
}
