/**
 * The image store with real extraction (as root: owners, whiteouts and xattrs need it), on
 * layouts written by the test helpers: layers unpacked once and shared, a digest that does not
 * match leaves nothing, copies for a mapping, containers' places, and removal of what nothing
 * uses.
 */
import test from 'ava';
import { readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { resolveImage } from '../../../src/rootfs/image/source.js';
import {
  ContainerPlaceExistsError,
  ImageInUseError,
  ImageNotStoredError,
  ImageStore,
  LayerDigestError,
  shiftIds,
  shiftKey,
  UnmappableOwnerError,
} from '../../../src/rootfs/image/store.js';
import { rootTest } from '../helpers/root.js';
import { layerTar, media, sha256, singleImageLayout, tagged, tempDir, writeBlob, writeIndex, writeJsonBlob, type ImageSpec } from './helpers.js';

const twoLayers: ImageSpec = {
  layers: [{ files: { 'etc/os-release': 'base\n', 'bin/tool': '#!/bin/sh\n' }, gzip: true }, { files: { 'app/main': 'main\n' } }],
};

async function layerHomes(root: string): Promise<string[]> {
  return (await readdir(path.join(root, 'layers/sha256')).catch(() => [] as string[])).filter((n) => /^[a-f0-9]{64}$/.test(n)).sort();
}

test('a mapping shifts ids into its range; an owner beyond it is refused', (t) => {
  const shift = { uid: { hostId: 100000, size: 65536 }, gid: { hostId: 200000, size: 1000 } };
  t.is(shiftKey(shift), 'u100000-65536.g200000-1000');
  const map = shiftIds(shift);
  t.is(map(0, 'uid'), 100000);
  t.is(map(999, 'gid'), 200999);
  t.throws(() => map(1000, 'gid'), { instanceOf: UnmappableOwnerError, message: /gid 1000, outside the user namespace's 1000 ids/ });
});

rootTest('each layer is unpacked once, by digest: a second reference of the same image adds a name, not a copy', async (t) => {
  const { dir, image: written } = await singleImageLayout(t, twoLayers, 'v1');
  const root = path.join(await tempDir(t), 'store');
  const store = new ImageStore(root);
  const messages: string[] = [];
  const first = await store.add(await resolveImage(`oci:${dir}:v1`), { progress: (m) => messages.push(m) });
  t.is(messages.filter((m) => m.startsWith('unpacking')).length, 2);
  t.is(first.layers.length, 2);
  const homes = await layerHomes(root);
  t.deepEqual(homes, [...first.layers].map((d) => d.slice(7)).sort());
  const inodes = await Promise.all(first.layers.map(async (d) => (await stat(store.layerDir(d))).ino));
  const layer = await store.layer(first.layers[0]!);
  t.like(layer, { diffId: first.layers[0], entries: 2 });
  t.true((layer?.diskBytes ?? 0) > 0);

  await writeIndex(dir, [tagged(written.manifest, 'v1'), tagged(written.manifest, 'v2')]);
  const again = await store.add(await resolveImage(`oci:${dir}:v2`), { progress: (m) => messages.push(m) });
  t.is(messages.filter((m) => m.startsWith('unpacking')).length, 2);
  t.deepEqual(again.references, [`oci:${dir}:v2`, `oci:${dir}:v1`]);
  t.deepEqual(await Promise.all(first.layers.map(async (d) => (await stat(store.layerDir(d))).ino)), inodes);
  t.is((await store.find(`oci:${dir}:v1`)).manifestDigest, first.manifestDigest);
  t.is((await store.find(first.manifestDigest.slice(7, 19))).manifestDigest, first.manifestDigest);
  const missing = await t.throwsAsync(store.find('oci:/nowhere:1'), { instanceOf: ImageNotStoredError });
  t.regex(missing?.hint ?? '', /oci:.*:v2/);
});

rootTest('two adds of one image at once unpack each layer once', async (t) => {
  const { dir } = await singleImageLayout(t, twoLayers, 'v1');
  const store = new ImageStore(path.join(await tempDir(t), 'store'));
  const messages: string[] = [];
  const image = await resolveImage(`oci:${dir}:v1`);
  await Promise.all([store.add(image, { progress: (m) => messages.push(m) }), store.add(image, { progress: (m) => messages.push(m) })]);
  t.is(messages.filter((m) => m.startsWith('unpacking')).length, 2);
  t.deepEqual(await readdir(path.join(store.root, 'tmp')), []);
});

rootTest("a layer whose content is not the config's diff id is refused and nothing of it is kept", async (t) => {
  const layout = path.join(await tempDir(t), 'layout');
  const tar = await layerTar({ 'etc/passwd': 'root:x:0:0::/:/bin/sh\n' });
  const layer = await writeBlob(layout, tar, media.ociLayer);
  const wrong = sha256('something else');
  const config = await writeJsonBlob(
    layout,
    { architecture: 'amd64', os: 'linux', config: { Cmd: ['/bin/sh'] }, rootfs: { type: 'layers', diff_ids: [wrong] } },
    media.ociConfig,
  );
  const manifest = await writeJsonBlob(layout, { schemaVersion: 2, mediaType: media.ociManifest, config, layers: [layer] }, media.ociManifest);
  await writeIndex(layout, [tagged(manifest, 'bad')]);
  const store = new ImageStore(path.join(await tempDir(t), 'store'));
  const error = await t.throwsAsync(store.add(await resolveImage(`oci:${layout}:bad`)), { instanceOf: LayerDigestError });
  t.regex(error?.message ?? '', new RegExp(sha256(tar)));
  t.deepEqual(await layerHomes(store.root), []);
  t.deepEqual(await readdir(path.join(store.root, 'tmp')), []);
  t.deepEqual(await store.images(), []);
});

rootTest("a mapping's copy is owned by its range, made once; the shared layer keeps the image's owners", async (t) => {
  const { dir } = await singleImageLayout(t, twoLayers, 'v1');
  const store = new ImageStore(path.join(await tempDir(t), 'store'));
  const shift = { uid: { hostId: 100000, size: 65536 }, gid: { hostId: 100000, size: 65536 } };
  const image = await store.add(await resolveImage(`oci:${dir}:v1`), { shift });
  const base = image.layers[0]!;
  t.like(await stat(path.join(store.layerDir(base), 'etc/os-release')), { uid: 0, gid: 0 });
  t.like(await stat(path.join(store.layerDir(base, shift), 'etc/os-release')), { uid: 100000, gid: 100000 });
  t.like(await stat(store.layerDir(base, shift)), { uid: 100000, gid: 100000 });
  t.true(store.layerDir(base, shift).includes('/mapped/u100000-65536.g100000-65536/'));
  const inode = (await stat(store.layerDir(base, shift))).ino;
  await store.add(await resolveImage(`oci:${dir}:v1`), { shift });
  t.is((await stat(store.layerDir(base, shift))).ino, inode);

  const { container } = await store.prepareContainer(await resolveImage(`oci:${dir}:v1`), {
    id: 'db',
    reference: `oci:${dir}:v1`,
    stateRoot: '/run/test',
    shift,
  });
  t.deepEqual(
    container.lowers,
    [...image.layers].reverse().map((d) => store.layerDir(d, shift)),
  );
  t.like(await stat(container.upper), { uid: 100000, gid: 100000 });
  t.deepEqual(await store.container('db'), container);
});

rootTest('images rm: an image a container uses is refused naming it; unused images and the layers only they stack go', async (t) => {
  const { dir } = await singleImageLayout(t, twoLayers, 'v1');
  const other = await singleImageLayout(t, { layers: [twoLayers.layers[0]!, { files: { 'other/file': 'other\n' } }] }, 'v1');
  const store = new ImageStore(path.join(await tempDir(t), 'store'));
  const used = await store.add(await resolveImage(`oci:${dir}:v1`));
  const unused = await store.add(await resolveImage(`oci:${other.dir}:v1`));
  t.is(used.layers[0], unused.layers[0]);
  t.is((await layerHomes(store.root)).length, 3);
  await store.prepareContainer(await resolveImage(`oci:${dir}:v1`), { id: 'web', reference: `oci:${dir}:v1`, stateRoot: '/run/test' });
  await t.throwsAsync(store.prepareContainer(await resolveImage(`oci:${dir}:v1`), { id: 'web', reference: `oci:${dir}:v1`, stateRoot: '/run/test' }), {
    instanceOf: ContainerPlaceExistsError,
  });

  const refused = await t.throwsAsync(store.remove([`oci:${dir}:v1`]), { instanceOf: ImageInUseError });
  t.deepEqual(refused?.containers, ['web']);
  t.is((await store.images()).length, 2);

  // With no name: every unused image; the base layer stays, the web container's image stacks it.
  const removed = await store.remove([]);
  t.deepEqual(
    removed.images.map((i) => i.manifestDigest),
    [unused.manifestDigest],
  );
  t.is(removed.layers, 1);
  t.true(removed.freedBytes > 0);
  t.deepEqual(await layerHomes(store.root), [...used.layers].map((d) => d.slice(7)).sort());

  // A place its runtime has abandoned is no user.
  await store.remove([used.manifestDigest.slice(7, 19)], (c) => Promise.resolve(c.id === 'web'));
  t.deepEqual(await layerHomes(store.root), []);
  t.deepEqual(await store.images(), []);
  await writeFile(path.join(store.root, 'layers/sha256/not-a-layer'), '');
  t.is((await store.remove([])).layers, 0);
});
