/**
 * `run --image`: a container's bundle made from an image the user already has (an OCI image
 * layout, a docker archive). The image is read and verified, its layers unpacked into the store
 * once (rootfs/image/store.ts), the container gets its own upper layer over them (an overlay,
 * the `image` storage driver, so checkpoint, restore, snapshots and resets treat it like any
 * overlay rootfs), and config.json is derived from the image's config as Docker does
 * (image-spec.ts), reading the user from the image's own /etc/passwd.
 */
import { chown, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { RuntimeContext } from './context.js';
import { CAP_SYS_RESOURCE, hasEffectiveCapability } from './privileges.js';
import { specFromImage } from './image-spec.js';
import { mountStorage, planStorage, removeImageContainer, unmountStorage, type StorageSpec } from './storage.js';
import { parseImageReference, resolveImage } from '../rootfs/image/source.js';
import { ImageStore, type IdShift } from '../rootfs/image/store.js';
import { makeInRoot, resolveInRoot } from '../rootfs/in-root.js';

export interface ImageRunOptions {
  /** `oci:DIR[:TAG]` (skopeo, buildah, umoci) or `docker-archive:FILE[:NAME:TAG]` (docker save). */
  readonly reference: string;
  /** Replaces the image's Cmd (`run --image REF ID -- CMD...`); the Entrypoint stays. */
  readonly args?: readonly string[];
  /** Replaces the image's Entrypoint (and drops its Cmd, as `docker run --entrypoint` does). */
  readonly entrypoint?: readonly string[];
  /** KEY=VALUE, after the image's own. */
  readonly env?: readonly string[];
  /** Replaces the image's User: name, uid, name:group or uid:gid, looked up in the image. */
  readonly user?: string;
  /** Replaces the image's WorkingDir. */
  readonly workdir?: string;
  /**
   * A user namespace: the container's ids 0..size-1 are the host's hostId.. (podman's
   * `--uidmap 0:HOST:SIZE`). The layers are used through a copy of them owned that way, made
   * once per mapping; the shared layers are never chowned.
   */
  readonly userns?: { readonly hostId: number; readonly size: number };
}

export interface ImageBundle {
  readonly bundle: string;
  readonly rootfs: string;
  readonly storage: StorageSpec;
  /** The ports the image exposes ("5432/tcp"), for -p. */
  readonly exposedPorts: readonly string[];
}

/**
 * Makes and mounts the container's rootfs and writes its bundle. On failure nothing of it is
 * left (the layers unpacked stay in the store, for the next run).
 */
export async function bundleFromImage(context: RuntimeContext, id: string, options: ImageRunOptions): Promise<ImageBundle> {
  const reference = parseImageReference(options.reference);
  const store = new ImageStore(context.config.imageRoot);
  const image = await resolveImage(reference);
  const shift: IdShift | undefined = options.userns ? { uid: options.userns, gid: options.userns } : undefined;
  const progress = (message: string) => context.logger.info(message, { image: image.reference });
  const stored = await store.add(image, { ...(shift ? { shift } : {}), progress });
  const container = await store.createContainer(id, stored, image.reference, shift);
  const storage: StorageSpec = { driver: 'image', storageRoot: store.root, layer: id };
  let mounted = false;
  try {
    mounted = await mountStorage(context, await planStorage(context, storage));
    const made = await specFromImage({
      config: stored.config,
      rootfs: container.rootfs,
      id,
      ...(options.args && options.args.length > 0 ? { args: options.args } : {}),
      ...(options.entrypoint ? { entrypoint: options.entrypoint } : {}),
      ...(options.env ? { env: options.env } : {}),
      ...(options.user !== undefined ? { user: options.user } : {}),
      ...(options.workdir !== undefined ? { workdir: options.workdir } : {}),
      ...(options.userns
        ? {
            userNamespace: {
              uidMappings: [{ containerID: 0, hostID: options.userns.hostId, size: options.userns.size }],
              gidMappings: [{ containerID: 0, hostID: options.userns.hostId, size: options.userns.size }],
            },
          }
        : {}),
    });
    const uid = made.spec.process?.user.uid ?? 0;
    if (uid !== 0 && !options.userns && !hasEffectiveCapability(CAP_SYS_RESOURCE)) {
      context.logger.warn(
        `container ${id} runs as uid ${uid}, and this host's root lacks CAP_SYS_RESOURCE: CRIU will not be able to checkpoint it; ` +
          'run it with --uidmap 0:100000:65536 (a user namespace) to checkpoint, snapshot and reset it',
      );
    }
    // Docker makes a working directory the image lacks, root's (the container's root's).
    const cwd = made.spec.process?.cwd ?? '/';
    if (makeInRoot(container.rootfs, cwd, 'directory') && options.userns) {
      await chown(path.join(container.rootfs, await resolveInRoot(container.rootfs, cwd)), options.userns.hostId, options.userns.hostId);
    }
    await writeFile(path.join(container.bundle, 'config.json'), `${JSON.stringify(made.spec, null, 2)}\n`, { mode: 0o644 });
    return {
      bundle: container.bundle,
      rootfs: container.rootfs,
      storage,
      exposedPorts: made.exposedPorts.map((p) => `${p.port}/${p.protocol}`),
    };
  } catch (error) {
    if (mounted) await unmountStorage(context, storage).catch(() => undefined);
    await removeImageContainer(context, id, store.root);
    throw error;
  }
}
