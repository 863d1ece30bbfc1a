/**
 * dir: the bundle's root.path as it is. CRIU wants the root to be a mount point, so when it is
 * not one it is bind-mounted onto itself (what runc does for a rootfs that is not a mount point
 * before pivot_root: libcontainer/rootfs_linux.go prepareRoot).
 */
import path from 'node:path';
import { realpath } from 'node:fs/promises';
import { LayerNotFoundError } from '../errors.js';
import { isDirectory } from './layout.js';
import { PlannedMountDriver } from './base.js';
import type { MountPlan } from './types.js';

export class DirDriver extends PlannedMountDriver {
  readonly name = 'dir' as const;

  /** `rootPath` is the bundle's root.path, made absolute; there is no layer id. */
  async plan(rootPath: string, _layerId?: string): Promise<MountPlan> {
    const absolute = path.resolve(rootPath);
    if (!(await isDirectory(absolute))) {
      throw new LayerNotFoundError('dir', path.basename(absolute), absolute, {
        hint: "root.path in the bundle's config.json must name an existing directory (relative to the bundle)",
      });
    }
    // mountinfo shows canonical paths; a rootfs behind a symlink is bound at its real place.
    const root = await realpath(absolute);
    return { driver: 'dir', type: 'bind', source: root, target: root, options: ['rbind'], steps: [], rootfs: root };
  }

  async checkKernel(): Promise<void> {}
}
