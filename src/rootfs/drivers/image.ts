/**
 * image: a container made from an image by this runtime (rootfs/image/store.ts). The layer id is
 * the container's id; its image.json in the store names the image's unpacked layers (top
 * first) and its own upper and work directories, and the overlay is mounted on bundle/rootfs.
 * With the absolute paths too long for one page of mount data (images of many layers), the same
 * mount is made from the store's root with relative paths, as Docker's overlay2 does.
 */
import path from 'node:path';
import { LayerNotFoundError, MountDataTooLongError } from '../errors.js';
import { checkOverlaySupport } from '../kernel-support.js';
import { ImageStore } from '../image/store.js';
import { PlannedMountDriver } from './base.js';
import { validateLayerId } from './layout.js';
import { dataLength } from './overlay2.js';
import type { MountPlan } from './types.js';

const pageSize = 4096;

export class ImageDriver extends PlannedMountDriver {
  readonly name = 'image' as const;

  async plan(storageRoot: string, containerId: string): Promise<MountPlan> {
    validateLayerId(containerId);
    const store = new ImageStore(path.resolve(storageRoot));
    const container = await store.container(containerId);
    if (!container) {
      throw new LayerNotFoundError('image', containerId, path.join(store.containerDir(containerId), 'image.json'), {
        hint: 'the container was not made from an image by this runtime, or its image root (--image-root) differs',
      });
    }
    const options = [`lowerdir=${container.lowers.join(':')}`, `upperdir=${container.upper}`, `workdir=${container.work}`];
    const base = { driver: 'image' as const, type: 'overlay', source: 'overlay', target: container.rootfs, steps: [], rootfs: container.rootfs };
    if (dataLength(options) < pageSize) return { ...base, options };
    const relative = (p: string) => path.relative(store.root, p);
    const short = [`lowerdir=${container.lowers.map(relative).join(':')}`, `upperdir=${relative(container.upper)}`, `workdir=${relative(container.work)}`];
    if (dataLength(short) >= pageSize) throw new MountDataTooLongError('image', dataLength(short), pageSize);
    return { ...base, options: short, cwd: store.root };
  }

  async checkKernel(): Promise<void> {
    await checkOverlaySupport(this.deps.kernel, 'image');
  }

  protected override detachOnUnmount(): boolean {
    return true;
  }
}
