/**
 * `run --image`: a container's bundle made from an image the user already has (an OCI image
 * layout, a docker archive). The image is read and verified, its layers unpacked into the store
 * once (rootfs/image/store.ts), the container gets its own upper layer over them (an overlay,
 * the `image` storage driver, so checkpoint, restore, snapshots and resets treat it like any
 * overlay rootfs), and config.json is derived from the image's config as Docker does
 * (image-spec.ts), reading the user from the image's own /etc/passwd.
 */
import { chown, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import type { RuntimeContext } from './context.js';
import { CAP_SYS_RESOURCE, hasEffectiveCapability } from './privileges.js';
import { specFromImage } from './image-spec.js';
import { mountStorage, planStorage, removeImageContainer, unmountStorage, type StorageSpec } from './storage.js';
import { canonicalReference, parseImageReference, resolveImage } from '../rootfs/image/source.js';
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
  const name = canonicalReference(reference);
  const progress = (message: string) => context.logger.info(message, { image: name });
  const { image: stored, container } = await store.prepareContainer(
    image,
    { id, reference: name, stateRoot: path.resolve(context.config.stateRoot), ...(shift ? { shift } : {}) },
    progress,
  );
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
      nofileHardLimit: ownNofileHardLimit(),
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
    const spec = { ...made.spec, mounts: [...(made.spec.mounts ?? []), ...(await networkFiles(container.dir, id, options.userns?.hostId ?? 0))] };
    await writeFile(path.join(container.bundle, 'config.json'), `${JSON.stringify(spec, null, 2)}\n`, { mode: 0o644 });
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

/**
 * /etc/hosts, /etc/hostname and /etc/resolv.conf, as Docker gives every container: files of the
 * container's own place, bind-mounted over the image's (an image often has no /etc/hosts, and
 * then `localhost` and the container's name resolve nowhere). Owned by the container's root.
 */
async function networkFiles(dir: string, id: string, rootId: number): Promise<{ destination: string; type: string; source: string; options: string[] }[]> {
  const hosts = ['127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback', `127.0.1.1\t${id}`, ''].join('\n');
  const resolv = await readFile('/etc/resolv.conf', 'utf8').catch(() => '');
  const files: [string, string][] = [
    ['hosts', hosts],
    ['hostname', `${id}\n`],
    ['resolv.conf', resolv],
  ];
  const mounts = [];
  for (const [name, content] of files) {
    const source = path.join(dir, name);
    await writeFile(source, content, { mode: 0o644 });
    if (rootId !== 0) await chown(source, rootId, rootId);
    mounts.push({ destination: `/etc/${name}`, type: 'bind', source, options: ['rbind', 'rprivate'] });
  }
  return mounts;
}

/** This process's hard limit of open files (/proc/self/limits), which runc can give a container at most. */
function ownNofileHardLimit(): number | undefined {
  const line = /^Max open files\s+\S+\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1];
  return line === undefined || line === 'unlimited' ? undefined : Number(line);
}
