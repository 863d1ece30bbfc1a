/**
 * The image store under the runtime's image root: layers unpacked once, keyed by their digest,
 * shared by every container; the images that name them; and each container's own writable
 * layer, stacked on the image's layers by an overlay (drivers/image.ts mounts it).
 *
 *   layers/sha256/<diff id>/diff          a layer in overlay's form (whiteouts as 0:0 devices,
 *                                         opaque directories by xattr), keyed by the digest of
 *                                         its uncompressed tar, so a gzip and a plain copy of a
 *                                         layer are one
 *   layers/sha256/<diff id>/layer.json    what it holds (entries, bytes); written last, so a
 *                                         layer without it was never finished
 *   layers/sha256/<diff id>/mapped/<map>/ the layer unpacked again with its owners shifted for
 *                                         a user namespace's mapping, kept once per mapping: the
 *                                         shared layer itself is never chowned
 *   images/sha256/<manifest>.json         an image: references, config, layers bottom first
 *   containers/<id>/                      image.json (the image and its lowers), upper/, work/,
 *                                         bundle/config.json and bundle/rootfs (the mount point)
 *
 * A layer is unpacked into tmp/ and renamed in place once its digest is checked, under a lock
 * per layer: two runs of one image unpack it once, and a failed or killed unpack leaves nothing
 * a later run could take for a layer.
 */
import { sizeText } from '../../system/size-text.js';
import { closeSync, openSync } from 'node:fs';
import { chmod, chown, mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import path from 'node:path';
import { RuntimeError } from '../../system/errors.js';
import { withFlock } from '../../system/flock.js';
import { diskUsage } from '../layers.js';
import { extractLayer } from './extract.js';
import type { ImageConfig, LayerBlob, Platform, ResolvedImage } from './types.js';

/** A user namespace's mapping, as the container sees it: its ids from 0 are the host's from hostId. */
export interface IdShift {
  readonly uid: { readonly hostId: number; readonly size: number };
  readonly gid: { readonly hostId: number; readonly size: number };
}

export interface StoredImage {
  /** The references it was added by ("oci:/images/redis:7"), newest first. */
  readonly references: readonly string[];
  readonly manifestDigest: string;
  readonly configDigest: string;
  readonly config: ImageConfig;
  /** Diff ids, bottom layer first. */
  readonly layers: readonly string[];
  readonly platform: Platform;
  readonly added: string;
}

export interface StoredLayer {
  readonly diffId: string;
  /** Blocks the unpacked layer takes on disk, as du counts them. */
  readonly diskBytes: number;
  readonly entries: number;
  /** Device nodes under dev/ that were not made (the container's /dev comes from config.json). */
  readonly devicesSkipped: readonly string[];
}

/** A container's place in the store. */
export interface ContainerLayers {
  readonly id: string;
  readonly dir: string;
  readonly manifestDigest: string;
  readonly reference: string;
  /** The layer directories the overlay stacks, top first. */
  readonly lowers: readonly string[];
  readonly upper: string;
  readonly work: string;
  /** The bundle the runtime writes for it: config.json and rootfs/ (the overlay's mount point). */
  readonly bundle: string;
  readonly rootfs: string;
  readonly shift?: IdShift;
  /** The state root of the runtime that made it: only that runtime may judge it abandoned. */
  readonly stateRoot?: string;
}

/** One line of progress while layers are unpacked. */
export type ImageProgress = (message: string) => void;

export class ImageNotStoredError extends RuntimeError {
  readonly code = 'IMAGE_NOT_STORED' as const;
  constructor(
    readonly reference: string,
    known: readonly string[],
  ) {
    super(`no image ${reference} in the store`, {
      hint:
        known.length > 0
          ? `the store holds: ${known.join(', ')} (\`runtime images\`); \`runtime images add REF\` adds one`
          : 'the store is empty: `runtime images add REF` (or `runtime run --image REF`) adds an image',
    });
  }
}

export class ImageInUseError extends RuntimeError {
  readonly code = 'IMAGE_IN_USE' as const;
  constructor(
    readonly reference: string,
    readonly containers: readonly string[],
  ) {
    super(`image ${reference} is used by ${containers.map((c) => `container ${c}`).join(', ')}`, {
      hint: `delete those first (\`runtime delete -f ${containers[0] ?? 'ID'}\`)`,
    });
  }
}

export class LayerDecompressError extends RuntimeError {
  readonly code = 'LAYER_DECOMPRESS_FAILED' as const;
  constructor(
    readonly blob: string,
    detail: string,
    cause: unknown,
  ) {
    super(`layer ${blob} is not a valid gzip stream: ${detail}`, {
      cause,
      hint: 'the image is damaged or was altered; copy it again from its source (nothing was kept)',
    });
  }
}

export class ContainerPlaceExistsError extends RuntimeError {
  readonly code = 'IMAGE_CONTAINER_EXISTS' as const;
  constructor(
    readonly id: string,
    readonly dir: string,
  ) {
    super(`the image store already holds a container ${id} (${dir})`, {
      hint: `\`runtime delete -f ${id}\` removes it; \`runtime images rm\` removes places no container of this runtime owns`,
    });
  }
}

export class LayersNotStoredError extends RuntimeError {
  readonly code = 'IMAGE_LAYERS_NOT_STORED' as const;
  constructor(
    readonly reference: string,
    readonly missing: readonly string[],
    shift: IdShift | undefined,
  ) {
    super(
      `the image store lacks ${missing.length} layer(s) of ${reference}${shift ? ` mapped for ${shiftKey(shift)}` : ''}: ${missing.map((d) => d.slice(7, 19)).join(', ')}`,
      { hint: `add the image here: \`runtime images add ${reference}${shift ? ` --uidmap 0:${shift.uid.hostId}:${shift.uid.size}` : ''}\`` },
    );
  }
}

export class UnmappableOwnerError extends RuntimeError {
  readonly code = 'IMAGE_OWNER_OUTSIDE_MAPPING' as const;
  constructor(
    readonly kind: 'uid' | 'gid',
    readonly id: number,
    readonly size: number,
  ) {
    super(`the image has a file owned by ${kind} ${id}, outside the user namespace's ${size} ids`, {
      hint: 'give --uidmap a larger size (65536 maps every id an image usually has)',
    });
  }
}

export class LayerDigestError extends RuntimeError {
  readonly code = 'LAYER_DIGEST_MISMATCH' as const;
  constructor(
    readonly layer: string,
    readonly actual: string,
  ) {
    super(`layer ${layer}: its uncompressed content has digest ${actual}, not the one the image's config names`, {
      hint: 'the image is damaged or was altered; copy it again from its source (nothing was kept)',
    });
  }
}

export class StoreDigestError extends RuntimeError {
  readonly code = 'STORE_DIGEST' as const;
  constructor(readonly digest: string) {
    super(`not a sha256 digest: ${JSON.stringify(digest)}`, { hint: 'the store keys layers and images by sha256 digests only' });
  }
}

const sha256Pattern = /^sha256:([a-f0-9]{64})$/;

function hexOf(digest: string): string {
  const match = sha256Pattern.exec(digest);
  if (!match) throw new StoreDigestError(digest);
  return match[1]!;
}

/** The key of a mapping's copies: "u100000-65536.g100000-65536". */
export function shiftKey(shift: IdShift): string {
  return `u${shift.uid.hostId}-${shift.uid.size}.g${shift.gid.hostId}-${shift.gid.size}`;
}

/**
 * What mapIds makes of an owner: the container's id as the host sees it. An owner beyond the
 * range has no host id the container could see as its own: refused (Docker's userns-remap
 * refuses such layers too), rather than given to some id the range does map.
 */
export function shiftIds(shift: IdShift): (id: number, kind: 'uid' | 'gid') => number {
  return (id, kind) => {
    const range = kind === 'uid' ? shift.uid : shift.gid;
    if (id >= range.size) throw new UnmappableOwnerError(kind, id, range.size);
    return range.hostId + id;
  };
}

export class ImageStore {
  readonly root: string;

  constructor(root: string) {
    this.root = path.resolve(root);
  }

  private layerHome(diffId: string, shift?: IdShift): string {
    const home = path.join(this.root, 'layers', 'sha256', hexOf(diffId));
    return shift ? path.join(home, 'mapped', shiftKey(shift)) : home;
  }

  /** The unpacked layer's directory (an overlay lowerdir). */
  layerDir(diffId: string, shift?: IdShift): string {
    return path.join(this.layerHome(diffId, shift), 'diff');
  }

  containerDir(id: string): string {
    return path.join(this.root, 'containers', id);
  }

  /** Makes the store's directories: searchable by all (a user namespace's root mounts below), listable by root. */
  private async prepare(): Promise<void> {
    for (const dir of [this.root, path.join(this.root, 'containers')]) {
      await mkdir(dir, { recursive: true, mode: 0o711 });
      await chmod(dir, 0o711);
    }
    for (const dir of ['layers/sha256', 'images/sha256', 'tmp']) await mkdir(path.join(this.root, dir), { recursive: true, mode: 0o700 });
    // What a killed unpack or container setup left: its name carries its process's pid.
    for (const name of await readdir(path.join(this.root, 'tmp'))) {
      const pid = Number(/^[^-]+-(\d+)-/.exec(name)?.[1]);
      if (Number.isInteger(pid) && pid > 0 && !processAlive(pid)) await rm(path.join(this.root, 'tmp', name), { recursive: true, force: true });
    }
  }

  /** A name in tmp/ of this process's own. */
  private tmpName(what: string): string {
    return path.join(this.root, 'tmp', `${what}-${process.pid}-${randomBytes(4).toString('hex')}`);
  }

  /**
   * Runs fn under the store's lock: shared by runs (they add images and make containers' places
   * side by side), exclusive for removal, so nothing a run is about to stack is removed under it.
   */
  private async locked<T>(shared: boolean, fn: () => Promise<T>): Promise<T> {
    await this.prepare();
    const fd = openSync(path.join(this.root, 'store.lock'), 'a', 0o600);
    try {
      return await withFlock(fd, fn, { shared, pollMs: 50 });
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Adds the image (its missing layers unpacked) and makes a container's place on it, under the
   * store's shared lock, so that no removal comes between the two.
   */
  async prepareContainer(
    image: ResolvedImage,
    container: { id: string; reference: string; stateRoot: string; shift?: IdShift },
    progress?: ImageProgress,
  ): Promise<{ image: StoredImage; container: ContainerLayers }> {
    return this.locked(true, async () => {
      const stored = await this.addUnlocked(image, container.reference, {
        ...(container.shift ? { shift: container.shift } : {}),
        ...(progress ? { progress } : {}),
      });
      return { image: stored, container: await this.createContainer(container.id, stored, container) };
    });
  }

  /**
   * Makes a place for a container of an image the store holds whole (every layer unpacked, and
   * mapped for shift when given), without the image's blobs: a container that arrives from
   * another host (migration) with its own writable layer, put in the place after.
   */
  async adoptContainer(
    id: string,
    manifestDigest: string,
    container: { reference: string; stateRoot: string; shift?: IdShift },
  ): Promise<{ image: StoredImage; container: ContainerLayers }> {
    return this.locked(true, async () => {
      const images = await this.images();
      const image = images.find((i) => i.manifestDigest === manifestDigest);
      if (!image) {
        throw new ImageNotStoredError(
          `${container.reference} (${manifestDigest})`,
          images.map((i) => i.references[0] ?? i.manifestDigest),
        );
      }
      const missing: string[] = [];
      for (const diffId of new Set(image.layers)) if (!(await this.layer(diffId, container.shift))) missing.push(diffId);
      if (missing.length > 0) throw new LayersNotStoredError(container.reference, missing, container.shift);
      return { image, container: await this.createContainer(id, image, container) };
    });
  }

  /**
   * Adds an image: each layer not in the store yet is unpacked (with its owners shifted too
   * when a mapping is given), its digest checked, then the image recorded under reference (which
   * leaves any older image it named).
   */
  async add(image: ResolvedImage, options: { shift?: IdShift; progress?: ImageProgress } = {}): Promise<StoredImage> {
    return this.locked(true, () => this.addUnlocked(image, image.reference, options));
  }

  private async addUnlocked(image: ResolvedImage, reference: string, options: { shift?: IdShift; progress?: ImageProgress }): Promise<StoredImage> {
    const total = image.layers.length;
    for (const [index, layer] of image.layers.entries()) {
      const what = `layer ${index + 1}/${total} ${layer.diffId.slice(7, 19)}`;
      await this.ensureLayer(layer, undefined, what, options.progress);
      if (options.shift) await this.ensureLayer(layer, options.shift, `${what} for ${shiftKey(options.shift)}`, options.progress);
    }
    for (const other of await this.images()) {
      if (other.manifestDigest === image.manifestDigest || !other.references.includes(reference)) continue;
      await writeJsonAtomically(this.imageFile(other.manifestDigest), { ...other, references: other.references.filter((r) => r !== reference) });
    }
    const file = this.imageFile(image.manifestDigest);
    const previous = await readJson<StoredImage>(file);
    const stored: StoredImage = {
      references: [reference, ...(previous?.references ?? []).filter((r) => r !== reference)],
      manifestDigest: image.manifestDigest,
      configDigest: image.configDigest,
      config: image.config,
      layers: image.layers.map((l) => l.diffId),
      platform: image.platform,
      added: previous?.added ?? new Date().toISOString(),
    };
    await writeJsonAtomically(file, stored);
    return stored;
  }

  private imageFile(manifestDigest: string): string {
    return path.join(this.root, 'images', 'sha256', `${hexOf(manifestDigest)}.json`);
  }

  /** The layer as stored, or undefined while it is not (or not finished). */
  async layer(diffId: string, shift?: IdShift): Promise<StoredLayer | undefined> {
    return readJson<StoredLayer>(path.join(this.layerHome(diffId, shift), 'layer.json'));
  }

  private async ensureLayer(layer: LayerBlob, shift: IdShift | undefined, what: string, progress?: ImageProgress): Promise<void> {
    if (await this.layer(layer.diffId, shift)) return;
    const home = this.layerHome(layer.diffId, shift);
    await mkdir(path.dirname(home), { recursive: true, mode: 0o700 });
    await withFileLock(`${home}.lock`, async () => {
      if (await this.layer(layer.diffId, shift)) return;
      const started = Date.now();
      progress?.(`unpacking ${what} (${sizeText(layer.size)}${layer.compression === 'gzip' ? ' gzip' : ''})`);
      const tmp = this.tmpName(hexOf(layer.diffId).slice(0, 12));
      await mkdir(tmp, { recursive: true, mode: 0o700 });
      // A layer's root is root's and 0755 (the container's root, with a mapping) unless its tar
      // says otherwise in a "./" entry, as Docker makes a layer's diff directory.
      await mkdir(path.join(tmp, 'diff'), { mode: 0o755 });
      await chmod(path.join(tmp, 'diff'), 0o755);
      if (shift) await chown(path.join(tmp, 'diff'), shiftIds(shift)(0, 'uid'), shiftIds(shift)(0, 'gid'));
      try {
        const result = await unpackBlob(layer, path.join(tmp, 'diff'), shift);
        const stored: StoredLayer = {
          diffId: layer.diffId,
          diskBytes: await diskUsage(path.join(tmp, 'diff')),
          entries: result.entries,
          devicesSkipped: result.devicesSkipped,
        };
        await writeFile(path.join(tmp, 'layer.json'), `${JSON.stringify(stored)}\n`);
        // A half-made home (a killed unpack of an older runtime, or a mapped copy) is replaced.
        await rm(home, { recursive: true, force: true });
        if (shift) {
          await rename(tmp, home);
        } else {
          // The base layer's home also holds mapped copies: only diff/ and layer.json move in.
          await mkdir(home, { recursive: true, mode: 0o700 });
          await rename(path.join(tmp, 'diff'), path.join(home, 'diff'));
          await rename(path.join(tmp, 'layer.json'), path.join(home, 'layer.json'));
        }
        progress?.(`unpacked ${what}: ${stored.entries} entries, ${sizeText(stored.diskBytes)} on disk, ${Date.now() - started} ms`);
      } finally {
        await rm(tmp, { recursive: true, force: true });
      }
    });
  }

  async images(): Promise<StoredImage[]> {
    const dir = path.join(this.root, 'images', 'sha256');
    const names = await readdir(dir).catch(() => [] as string[]);
    const images = await Promise.all(names.filter((n) => n.endsWith('.json')).map((n) => readJson<StoredImage>(path.join(dir, n))));
    return images.filter((i): i is StoredImage => i !== undefined).sort((a, b) => a.added.localeCompare(b.added));
  }

  /** The stored image a reference or a digest (or its first 12 hex digits, as `runtime images` shows it) names. */
  async find(name: string): Promise<StoredImage> {
    const images = await this.images();
    const hex = name.replace(/^sha256:/, '');
    const found =
      images.find((i) => i.references.includes(name)) ??
      (/^[a-f0-9]{12,64}$/.test(hex) ? images.filter((i) => hexOf(i.manifestDigest).startsWith(hex)) : []).at(0);
    if (!found)
      throw new ImageNotStoredError(
        name,
        images.map((i) => i.references[0] ?? i.manifestDigest),
      );
    return found;
  }

  /** The containers made from the store, as their image.json says. */
  async containers(): Promise<ContainerLayers[]> {
    const dir = path.join(this.root, 'containers');
    const ids = await readdir(dir).catch(() => [] as string[]);
    const all = await Promise.all(ids.map((id) => this.container(id)));
    return all.filter((c): c is ContainerLayers => c !== undefined);
  }

  async container(id: string): Promise<ContainerLayers | undefined> {
    return readJson<ContainerLayers>(path.join(this.containerDir(id), 'image.json'));
  }

  /**
   * Makes a container's place: its lowers are the image's layers (their mapped copies with a
   * mapping), top first, under a fresh upper whose root takes the top layer's owner and mode.
   * A layer the image lists twice is stacked once, where it is topmost (overlay refuses a
   * directory twice; the top copy hides all the lower one shows). Made in tmp/ and renamed in
   * place, so a place is whole or absent.
   */
  private async createContainer(
    id: string,
    image: StoredImage,
    options: { reference: string; stateRoot: string; shift?: IdShift },
  ): Promise<ContainerLayers> {
    const dir = this.containerDir(id);
    const shift = options.shift;
    const lowers = [...new Set([...image.layers].reverse())].map((diffId) => this.layerDir(diffId, shift));
    const container: ContainerLayers = {
      id,
      dir,
      manifestDigest: image.manifestDigest,
      reference: options.reference,
      lowers,
      upper: path.join(dir, 'upper'),
      work: path.join(dir, 'work'),
      bundle: path.join(dir, 'bundle'),
      rootfs: path.join(dir, 'bundle', 'rootfs'),
      ...(shift ? { shift } : {}),
      stateRoot: options.stateRoot,
    };
    const tmp = this.tmpName('container');
    try {
      await mkdir(tmp, { mode: 0o711 });
      await mkdir(path.join(tmp, 'upper'), { mode: 0o755 });
      await mkdir(path.join(tmp, 'work'), { mode: 0o700 });
      await mkdir(path.join(tmp, 'bundle', 'rootfs'), { recursive: true, mode: 0o755 });
      await chmod(path.join(tmp, 'bundle'), 0o711);
      const top = lowers[0];
      if (top !== undefined) {
        const info = await stat(top);
        await chown(path.join(tmp, 'upper'), info.uid, info.gid);
        await chmod(path.join(tmp, 'upper'), info.mode & 0o7777);
      }
      await writeJsonAtomically(path.join(tmp, 'image.json'), container);
      await rename(tmp, dir);
    } catch (error) {
      await rm(tmp, { recursive: true, force: true });
      if (['EEXIST', 'ENOTEMPTY'].includes((error as NodeJS.ErrnoException).code ?? '')) throw new ContainerPlaceExistsError(id, dir);
      throw error;
    }
    return container;
  }

  /** Removes a container's place (its writable layer with it). The caller has unmounted its rootfs. */
  async removeContainer(id: string): Promise<void> {
    await rm(this.containerDir(id), { recursive: true, force: true });
  }

  /**
   * Removes the named images (or, with none named, every image no container uses) and then every
   * layer and mapped copy no remaining image or container stacks. An image a container uses is
   * refused, naming the containers.
   */
  async remove(
    names: readonly string[],
    abandoned: (container: ContainerLayers) => Promise<boolean> = () => Promise.resolve(false),
  ): Promise<{ images: StoredImage[]; layers: number; freedBytes: number }> {
    return this.locked(false, () => this.removeUnlocked(names, abandoned));
  }

  private async removeUnlocked(
    names: readonly string[],
    abandoned: (container: ContainerLayers) => Promise<boolean>,
  ): Promise<{ images: StoredImage[]; layers: number; freedBytes: number }> {
    // A place whose container its runtime no longer knows (a run killed before it recorded the
    // container) uses nothing: the caller says which, and unmounts and removes them.
    const containers: ContainerLayers[] = [];
    for (const container of await this.containers()) if (!(await abandoned(container))) containers.push(container);
    const usedBy = (image: StoredImage) => containers.filter((c) => c.manifestDigest === image.manifestDigest).map((c) => c.id);
    const doomed =
      names.length > 0 ? await Promise.all(names.map((n) => this.find(n))) : (await this.images()).filter((image) => usedBy(image).length === 0);
    for (const image of doomed) {
      const users = usedBy(image);
      if (users.length > 0) throw new ImageInUseError(image.references[0] ?? image.manifestDigest, users);
    }
    for (const image of doomed) await rm(this.imageFile(image.manifestDigest), { force: true });
    const kept = new Set((await this.images()).flatMap((i) => i.layers.map(hexOf)));
    const stacked = new Set(containers.flatMap((c) => c.lowers));
    let layers = 0;
    let freedBytes = 0;
    const layersDir = path.join(this.root, 'layers', 'sha256');
    for (const hex of await readdir(layersDir).catch(() => [] as string[])) {
      if (!/^[a-f0-9]{64}$/.test(hex) || kept.has(hex)) continue;
      const home = path.join(layersDir, hex);
      const copies = await readdir(path.join(home, 'mapped')).catch(() => [] as string[]);
      if ([path.join(home, 'diff'), ...copies.map((c) => path.join(home, 'mapped', c, 'diff'))].some((d) => stacked.has(d))) continue;
      const layer = await readJson<StoredLayer>(path.join(home, 'layer.json'));
      freedBytes += layer?.diskBytes ?? 0;
      for (const copy of copies) freedBytes += (await readJson<StoredLayer>(path.join(home, 'mapped', copy, 'layer.json')))?.diskBytes ?? 0;
      await rm(home, { recursive: true, force: true });
      await rm(`${home}.lock`, { force: true });
      layers++;
    }
    return { images: doomed, layers, freedBytes };
  }
}

/**
 * Streams a layer's blob (checked against its digest as it goes), gunzipped when it is, into
 * the extractor, and checks the uncompressed bytes against the config's diff id. The tar's
 * padding after its end marker counts too: the whole stream is read.
 */
async function unpackBlob(layer: LayerBlob, target: string, shift?: IdShift) {
  const hash = createHash('sha256');
  let result: Awaited<ReturnType<typeof extractLayer>> | undefined;
  const consume = async (source: AsyncIterable<Buffer>) => {
    const iterator = source[Symbol.asyncIterator]();
    async function* hashed(): AsyncGenerator<Buffer> {
      for (;;) {
        const next = await iterator.next();
        if (next.done) return;
        hash.update(next.value);
        yield next.value;
      }
    }
    const chunks = hashed();
    // The extractor stops at the tar's end marker; what follows is read and hashed here.
    result = await extractLayer({ [Symbol.asyncIterator]: () => ({ next: () => chunks.next() }) }, target, shift ? { mapIds: shiftIds(shift) } : {});
    for await (const _ of chunks) void _;
  };
  try {
    if (layer.compression === 'gzip') await pipeline(Readable.from(layer.open()), createGunzip(), consume);
    else await pipeline(Readable.from(layer.open()), consume);
  } catch (error) {
    // zlib's own words name no layer: a damaged blob is said to be one.
    if ((error as { code?: string }).code?.startsWith('Z_')) throw new LayerDecompressError(layer.digest, (error as Error).message, error);
    throw error;
  }
  const actual = `sha256:${hash.digest('hex')}`;
  if (actual !== layer.diffId) throw new LayerDigestError(layer.diffId, actual);
  return result!;
}

async function withFileLock<T>(file: string, fn: () => Promise<T>): Promise<T> {
  const fd = openSync(file, 'a', 0o600);
  try {
    // Another run unpacking the layer holds it as long as that takes.
    return await withFlock(fd, fn, { pollMs: 50 });
  } finally {
    closeSync(fd);
  }
}

async function readJson<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

async function writeJsonAtomically(file: string, value: unknown): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
  await rename(tmp, file);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
