/**
 * `runtime images` and `runtime images rm`: what the image store holds, with the disk its layers
 * take (each shared layer counted once in the total), and the removal of images no container
 * uses. A container's place in the store whose container this runtime no longer knows (a run
 * killed before it recorded anything) is not a user: `images rm` removes it on the way; a place
 * another runtime (another state root) made is never judged here.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { RuntimeContext } from './context.js';
import { removeImageContainer } from './storage.js';
import { ImageStore, type ContainerLayers, type StoredImage } from '../rootfs/image/store.js';
import { canonicalReference, parseImageReference, resolveImage } from '../rootfs/image/source.js';

export interface ImageInfo {
  /** The references the image was added by, newest first. */
  readonly references: readonly string[];
  readonly manifestDigest: string;
  readonly configDigest: string;
  readonly platform: string;
  /** The ports its config exposes ("5432/tcp"): the container ports for `-p`. */
  readonly exposedPorts: readonly string[];
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
  const store = new ImageStore(context.config.imageRoot);
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
    exposedPorts: Object.keys(image.config.config?.ExposedPorts ?? {}),
    layers: image.layers.length,
    diskBytes: [...new Set(image.layers)].reduce((sum, l) => sum + (sizes.get(l) ?? 0), 0),
    uniqueBytes: [...new Set(image.layers)].filter((l) => users.get(l) === 1).reduce((sum, l) => sum + (sizes.get(l) ?? 0), 0),
    containers: containers.filter((c) => c.manifestDigest === image.manifestDigest).map((c) => c.id),
    added: image.added,
  }));
}

/** Removes the named images, or with none named every image no container uses, and their unshared layers. */
export async function removeImages(context: RuntimeContext, names: readonly string[]): Promise<ImagesRemoved> {
  const store = new ImageStore(context.config.imageRoot);
  const abandoned = async (container: ContainerLayers): Promise<boolean> => {
    if (!abandonedPlace(context, container)) return false;
    context.logger.info('removing the image store place of a container the runtime does not know', { id: container.id });
    await removeImageContainer(context, container.id, store.root);
    return true;
  };
  const removed = await store.remove(names, abandoned);
  return { images: removed.images.map((i) => i.references[0] ?? i.manifestDigest), layers: removed.layers, freedBytes: removed.freedBytes };
}

/**
 * Whether a container's place in the image store is one this runtime (this state root) made for
 * a container it no longer knows: not even as a run in progress (which reserves the id's state
 * directory first) or a migration arriving (receive.ts makes the place in its home's time).
 */
export function abandonedPlace(context: RuntimeContext, container: ContainerLayers): boolean {
  if (container.stateRoot !== path.resolve(context.config.stateRoot)) return false;
  return !existsSync(context.store.paths(container.id).dir) && !existsSync(path.join(context.config.checkpointRoot, container.id));
}

/**
 * `runtime images add REF`: the image into the store (its layers unpacked, and mapped for a user
 * namespace when userns is given), without a container: what a migration of a container made
 * from it needs on the destination, which receives only the container's own writable layer.
 */
export async function addImage(
  context: RuntimeContext,
  reference: string,
  options: { readonly userns?: { readonly hostId: number; readonly size: number }; readonly onProgress?: (message: string) => void } = {},
): Promise<ImageInfo> {
  const parsed = parseImageReference(reference);
  const store = new ImageStore(context.config.imageRoot);
  const resolved = await resolveImage(parsed);
  const name = canonicalReference(parsed);
  await store.add(
    { ...resolved, reference: name },
    {
      ...(options.userns ? { shift: { uid: options.userns, gid: options.userns } } : {}),
      ...(options.onProgress ? { progress: options.onProgress } : {}),
    },
  );
  const added = (await listImages(context)).find((image) => image.manifestDigest === resolved.manifestDigest);
  if (!added) throw new Error(`the image ${name} was added but is not listed`);
  return added;
}

function platformText(image: StoredImage): string {
  const { os, architecture, variant } = image.platform;
  return `${os}/${architecture}${variant ? `/${variant}` : ''}`;
}
