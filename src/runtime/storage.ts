/**
 * A container whose rootfs lives in a storage driver's layout (overlay2, overlay, aufs,
 * devicemapper, dir): the runtime mounts it when it is not mounted (run, restore), remembers
 * that it did, and unmounts what it mounted when the container is deleted. A container made from
 * an image (from-image.ts) has its own place in the image store, which goes with it.
 */
import type { RuntimeContext } from './context.js';
import { driverFor, type MountPlan, type RootfsDriver } from '../rootfs/drivers/index.js';
import type { StorageSpec } from '../rootfs/drivers/types.js';
import { ImageStore } from '../rootfs/image/store.js';
import { unmountBelow } from '../rootfs/layers.js';

export type { StorageSpec };

export interface PlannedStorage {
  readonly driver: RootfsDriver;
  readonly plan: MountPlan;
}

export async function planStorage(context: RuntimeContext, storage: StorageSpec): Promise<PlannedStorage> {
  const driver = driverFor(storage.driver, { mounts: context.mounts });
  return { driver, plan: await driver.plan(storage.storageRoot, storage.layer) };
}

/** Mounts the rootfs unless it is mounted (kernel support checked first); true when it mounted it. */
export async function mountStorage(context: RuntimeContext, planned: PlannedStorage): Promise<boolean> {
  if (await planned.driver.isMounted(planned.plan)) return false;
  await planned.driver.checkKernel();
  const mounted = await planned.driver.mount(planned.plan);
  if (mounted) context.logger.info('mounted the rootfs', { driver: planned.plan.driver, target: planned.plan.target });
  return mounted;
}

export async function unmountStorage(context: RuntimeContext, storage: StorageSpec): Promise<void> {
  const planned = await planStorage(context, storage);
  if (await planned.driver.unmount(planned.plan)) {
    context.logger.info('unmounted the rootfs', { driver: planned.plan.driver, target: planned.plan.target });
  }
}

/**
 * The container's own place in the image store goes (its writable layer, its bundle), once
 * nothing is mounted below it: the caller has unmounted its rootfs and any reset overlay.
 */
export async function removeImageContainer(context: RuntimeContext, id: string, imageRoot = context.config.imageRoot): Promise<void> {
  const store = new ImageStore(imageRoot);
  await unmountBelow(context.mounts, store.containerDir(id));
  await store.removeContainer(id);
}
