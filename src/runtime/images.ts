/**
 * `runtime images` and `runtime images rm`: what the image store holds, with the disk its layers
 * take (each shared layer counted once in the total), and the removal of images no container
 * uses. A container's place in the store whose container the runtime no longer knows (a run
 * killed before it recorded anything) is not a user: it is removed on the way.
 */
import { existsSync } from 'node:fs';
import type { RuntimeContext } from './context.js';
import { removeImageContainer } from './storage.js';
import { ImageStore, type StoredImage } from '../rootfs/image/store.js';

export interface ImageInfo {
  /** The references the image was added by, newest first. */
  readonly references: readonly string[];
  readonly manifestDigest: string;
  readonly configDigest: string;
  readonly platform: string;
  readonly layers: number;
  /** Blocks its unpacked layers take, shared ones included. */
  readonly diskBytes: number;
  /** Of those, the blocks of layers no other image stacks. */
  readonly uniqueBytes: number;
  /** Containers made from it. */
  readonly containers: readonly string[];
  readonly added: string;
}

export interface ImagesRemoved {
  readonly images: readonly string[];
  readonly layers: number;
  readonly freedBytes: number;
}

export async function listImages(context: RuntimeContext): Promise<ImageInfo[]> {
  const store = await tidyStore(context);
  const [images, containers] = await Promise.all([store.images(), store.containers()]);
  const users = new Map<string, number>();
  for (const image of images) for (const layer of new Set(image.layers)) users.set(layer, (users.get(layer) ?? 0) + 1);
  const sizes = new Map<string, number>();
  for (const layer of users.keys()) sizes.set(layer, (await store.layer(layer))?.diskBytes ?? 0);
  return images.map((image) => ({
    references: image.references,
    manifestDigest: image.manifestDigest,
    configDigest: image.configDigest,
    platform: platformText(image),
    layers: image.layers.length,
    diskBytes: [...new Set(image.layers)].reduce((sum, l) => sum + (sizes.get(l) ?? 0), 0),
    uniqueBytes: [...new Set(image.layers)].filter((l) => users.get(l) === 1).reduce((sum, l) => sum + (sizes.get(l) ?? 0), 0),
    containers: containers.filter((c) => c.manifestDigest === image.manifestDigest).map((c) => c.id),
    added: image.added,
  }));
}

/** Removes the named images, or with none named every image no container uses, and their unshared layers. */
export async function removeImages(context: RuntimeContext, names: readonly string[]): Promise<ImagesRemoved> {
  const store = await tidyStore(context);
  const removed = await store.remove(names);
  return { images: removed.images.map((i) => i.references[0] ?? i.manifestDigest), layers: removed.layers, freedBytes: removed.freedBytes };
}

/** The store, with the places of containers the runtime does not know removed. */
async function tidyStore(context: RuntimeContext): Promise<ImageStore> {
  const store = new ImageStore(context.config.imageRoot);
  for (const container of await store.containers()) {
    // A run reserves the id (its state directory) before it makes its place in the store.
    if (existsSync(context.store.paths(container.id).dir)) continue;
    context.logger.info('removing the image store place of a container the runtime does not know', { id: container.id });
    await removeImageContainer(context, container.id);
  }
  return store;
}

function platformText(image: StoredImage): string {
  const { os, architecture, variant } = image.platform;
  return `${os}/${architecture}${variant ? `/${variant}` : ''}`;
}
