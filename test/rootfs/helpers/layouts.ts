/**
 * Builds the engines' storage layouts in a temporary folder, file for file as the engines' Create
 * writes them (moby overlay2/aufs/devmapper, containers/storage overlay). Specs go bottom layer
 * first; the last one is the container's read-write layer.
 */
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import type { ExecutionContext } from 'ava';

export const isRoot = process.geteuid?.() === 0;

export interface LayerSpec {
  /** Files of the layer, path -> content. */
  readonly files?: Readonly<Record<string, string>>;
  /** Names hidden from the layers below: overlay char 0/0 devices (root only), aufs .wh.<name>. */
  readonly whiteouts?: readonly string[];
}

/** A fresh temporary storage root, removed when the test ends; `pad` lengthens its path. */
export async function tempStorageRoot(t: ExecutionContext, pad = 0): Promise<string> {
  const base = await mkdtemp(path.join(os.tmpdir(), 'runtime-rootfs-'));
  t.teardown(() => rm(base, { recursive: true, force: true }));
  if (pad === 0) return base;
  // Path components are limited to 255 bytes: pad with several.
  const parts: string[] = [];
  for (let left = pad; left > 0; left -= 101) parts.push('p'.repeat(Math.min(100, left)));
  const root = path.join(base, ...parts);
  await mkdir(root, { recursive: true });
  return root;
}

export function layerId(): string {
  return randomBytes(32).toString('hex');
}

/** A 26-character link id in the engines' alphabet (base32, upper case). */
export function linkId(): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  return [...randomBytes(26)].map((b) => alphabet[b % 32]).join('');
}

async function writeFiles(dir: string, files: Readonly<Record<string, string>> = {}): Promise<void> {
  for (const [name, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await writeFile(path.join(dir, name), content);
  }
}

async function overlayWhiteouts(dir: string, names: readonly string[] = []): Promise<void> {
  if (names.length === 0 || !isRoot) return; // a 0/0 character device needs CAP_MKNOD
  for (const name of names) {
    await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await execa('mknod', [path.join(dir, name), 'c', '0', '0']);
  }
}

export interface OverlayLayer {
  readonly id: string;
  readonly dir: string;
  readonly diff: string;
  readonly link: string;
  /** The content of its `lower` file, or undefined for a bottom layer. */
  readonly lower: string | undefined;
}

export interface OverlayLayout {
  readonly storageRoot: string;
  readonly home: string;
  readonly layers: readonly OverlayLayer[];
  readonly top: OverlayLayer;
}

/**
 * Docker overlay2 (moby overlay2 create): <id>/diff, <id>/link, l/<link> -> ../<id>/diff; with a
 * parent also <id>/work, <id>/lower and a `committed` file in the parent.
 * containers/storage overlay (create): the same plus work/ and merged/ always, empty/ for a bottom
 * layer, and no `committed` files.
 */
export async function buildOverlay(storageRoot: string, flavour: 'overlay2' | 'overlay', specs: readonly LayerSpec[]): Promise<OverlayLayout> {
  const home = path.join(storageRoot, flavour);
  await mkdir(path.join(home, 'l'), { recursive: true });
  const layers: OverlayLayer[] = [];
  for (const spec of specs) {
    const id = layerId();
    const dir = path.join(home, id);
    const diff = path.join(dir, 'diff');
    await mkdir(diff, { recursive: true });
    await writeFiles(diff, spec.files);
    await overlayWhiteouts(diff, spec.whiteouts);
    const link = linkId();
    await symlink(path.join('..', id, 'diff'), path.join(home, 'l', link));
    await writeFile(path.join(dir, 'link'), link);
    const parent = layers.at(-1);
    if (flavour === 'overlay') {
      await mkdir(path.join(dir, 'work'));
      await mkdir(path.join(dir, 'merged'));
      if (parent === undefined) await mkdir(path.join(dir, 'empty'));
    } else if (parent !== undefined) {
      await mkdir(path.join(dir, 'work'));
      await writeFile(path.join(parent.dir, 'committed'), '');
    }
    const lower = parent === undefined ? undefined : [`l/${parent.link}`, ...(parent.lower === undefined ? [] : [parent.lower])].join(':');
    if (lower !== undefined) await writeFile(path.join(dir, 'lower'), lower);
    layers.push({ id, dir, diff, link, lower });
  }
  return { storageRoot, home, layers, top: layers.at(-1)! };
}

export interface AufsLayout {
  readonly storageRoot: string;
  readonly home: string;
  /** Bottom first. */
  readonly ids: readonly string[];
  readonly top: string;
}

/** Docker aufs (moby aufs Create): diff/<id>, mnt/<id>, layers/<id> = parents nearest first, one a line. */
export async function buildAufs(storageRoot: string, specs: readonly LayerSpec[]): Promise<AufsLayout> {
  const home = path.join(storageRoot, 'aufs');
  for (const sub of ['diff', 'mnt', 'layers']) await mkdir(path.join(home, sub), { recursive: true });
  const ids: string[] = [];
  for (const spec of specs) {
    const id = layerId();
    const diff = path.join(home, 'diff', id);
    await mkdir(diff);
    await mkdir(path.join(home, 'mnt', id));
    await writeFiles(diff, spec.files);
    for (const name of spec.whiteouts ?? []) {
      await mkdir(path.join(diff, path.dirname(name)), { recursive: true });
      await writeFile(path.join(diff, path.dirname(name), `.wh.${path.basename(name)}`), '');
    }
    const parents = [...ids].reverse();
    await writeFile(path.join(home, 'layers', id), parents.map((p) => `${p}\n`).join(''));
    ids.push(id);
  }
  return { storageRoot, home, ids, top: ids.at(-1)! };
}

export interface DeviceMapperLayout {
  readonly storageRoot: string;
  readonly home: string;
  readonly ids: readonly string[];
  readonly top: string;
  /** device_id per layer id. */
  readonly deviceIds: ReadonlyMap<string, number>;
}

/**
 * Docker devicemapper metadata as saveMetadata/saveDeviceSetMetaData write it (json.Marshal, in
 * field order): metadata/base, metadata/<id>, metadata/deviceset-metadata, transaction-metadata.
 */
export async function buildDeviceMapper(
  storageRoot: string,
  count: number,
  fs: 'xfs' | 'ext4' = 'xfs',
  size = 10 * 1024 ** 3,
): Promise<DeviceMapperLayout> {
  const home = path.join(storageRoot, 'devicemapper');
  for (const sub of ['metadata', 'mnt', 'devicemapper']) await mkdir(path.join(home, sub), { recursive: true });
  const info = (deviceId: number, transactionId: number, initialized: boolean): string =>
    JSON.stringify({ device_id: deviceId, size, transaction_id: transactionId, initialized, deleted: false });
  await writeFile(path.join(home, 'metadata', 'base'), info(1, 1, true));
  const ids: string[] = [];
  const deviceIds = new Map<string, number>();
  for (let n = 0; n < count; n += 1) {
    const id = layerId();
    const deviceId = n + 2;
    await writeFile(path.join(home, 'metadata', id), info(deviceId, deviceId, false));
    ids.push(id);
    deviceIds.set(id, deviceId);
  }
  await writeFile(
    path.join(home, 'metadata', 'deviceset-metadata'),
    JSON.stringify({ next_device_id: count + 1, BaseDeviceUUID: 'b0c7a6f2-3d1e-4c55-9a1f-6f0e5d4c3b2a', BaseDeviceFilesystem: fs }),
  );
  await writeFile(
    path.join(home, 'metadata', 'transaction-metadata'),
    JSON.stringify({ open_transaction_id: count + 1, device_hash: ids.at(-1) ?? '', device_id: count + 1 }),
  );
  return { storageRoot, home, ids, top: ids.at(-1)!, deviceIds };
}
