import test from 'ava';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { normalizePlatform, platformRank, readOciLayout } from '../../../src/rootfs/image/oci-layout.js';
import {
  DigestMismatchError,
  ImageNotFoundError,
  MalformedImageError,
  NoMatchingPlatformError,
  UnsupportedImageError,
} from '../../../src/rootfs/image/errors.js';
import type { Platform } from '../../../src/rootfs/image/types.js';
import {
  blobPath,
  collect,
  media,
  sha256,
  singleImageLayout,
  tagged,
  tempDir,
  writeBlob,
  writeImage,
  writeIndex,
  writeJsonBlob,
  type Descriptor,
} from './helpers.js';

const amd64: Platform = { os: 'linux', architecture: 'amd64' };
const arm64: Platform = { os: 'linux', architecture: 'arm64', variant: 'v8' };

function read(dir: string, tag?: string, platform: Platform = amd64) {
  return readOciLayout({ dir, ...(tag === undefined ? {} : { tag }), platform, reference: `oci:${dir}${tag === undefined ? '' : `:${tag}`}` });
}

/** Rewrites a blob with other bytes of the same length, so only its digest is wrong. */
async function flipByte(file: string, at = 0): Promise<void> {
  const bytes = await readFile(file);
  if (at >= bytes.length) throw new Error(`${file} has only ${bytes.length} bytes`);
  bytes[at] = bytes[at]! ^ 0x01;
  await writeFile(file, bytes);
}

test('a tagged image is picked by its ref.name, with its config and layers bottom first', async (t) => {
  const dir = path.join(await tempDir(t), 'layout');
  const a = await writeImage(dir, { layers: [{ files: { 'a.txt': 'a' } }], cmd: ['/a'] });
  const b = await writeImage(dir, { layers: [{ files: { 'etc/os-release': 'b' } }, { files: { 'b.txt': 'bb' }, gzip: true }], cmd: ['/b'] });
  await writeIndex(dir, [tagged(a.manifest, 'a'), tagged(b.manifest, 'b')]);

  const image = await read(dir, 'b');
  t.is(image.manifestDigest, b.manifest.digest);
  t.is(image.configDigest, b.config.digest);
  t.deepEqual(image.config.config?.Cmd, ['/b']);
  t.is(image.config.config?.Labels, undefined, 'Docker’s null labels read as absent');
  t.deepEqual(image.platform, { os: 'linux', architecture: 'amd64' });
  t.deepEqual(
    image.layers.map((l) => [l.digest, l.diffId, l.compression, l.size, l.mediaType]),
    b.layers.map((l) => [
      l.descriptor.digest,
      l.diffId,
      l.descriptor.mediaType === media.ociLayerGzip ? 'gzip' : 'none',
      l.bytes.length,
      l.descriptor.mediaType,
    ]),
  );
  t.deepEqual(
    image.layers.map((l) => l.compression),
    ['none', 'gzip'],
  );
  // The streams give the blobs as stored; the gzip one unpacks to the tar its diff id names.
  t.deepEqual(await collect(image.layers[0]!.open()), b.layers[0]!.bytes);
  const second = await collect(image.layers[1]!.open());
  t.deepEqual(second, b.layers[1]!.bytes);
  t.is(sha256(gunzipSync(second)), image.layers[1]!.diffId);
});

test('an unknown tag is not found, and the error lists the tags there are', async (t) => {
  const dir = path.join(await tempDir(t), 'layout');
  const a = await writeImage(dir, { layers: [{ files: { a: 'a' } }] });
  const b = await writeImage(dir, { layers: [{ files: { b: 'b' } }] });
  await writeIndex(dir, [tagged(a.manifest, '1.0'), tagged(b.manifest, '2.0')]);
  const error = await t.throwsAsync(read(dir, '3.0'), { instanceOf: ImageNotFoundError });
  t.deepEqual(error?.available, ['1.0', '2.0']);
  t.regex(error!.message, /no manifest in index\.json is tagged "3\.0".*1\.0, 2\.0/);
});

test('without a tag, the only manifest is the image', async (t) => {
  const { dir, image } = await singleImageLayout(t, { layers: [{ files: { a: 'a' } }] }, 'whatever');
  t.is((await read(dir)).manifestDigest, image.manifest.digest);
});

test('without a tag, a layout of several images is refused, listing their tags', async (t) => {
  const dir = path.join(await tempDir(t), 'layout');
  const a = await writeImage(dir, { layers: [{ files: { a: 'a' } }] });
  const b = await writeImage(dir, { layers: [{ files: { b: 'b' } }] });
  await writeIndex(dir, [tagged(a.manifest, 'alpha'), tagged(b.manifest, 'beta')]);
  const error = await t.throwsAsync(read(dir), { instanceOf: ImageNotFoundError });
  t.deepEqual(error?.available, ['alpha', 'beta']);
  t.regex(error!.message, /holds 2 images/);
});

/** A layout whose tag names a nested index of images for several platforms. */
async function multiPlatform(t: Parameters<typeof tempDir>[0], docker = false) {
  const dir = path.join(await tempDir(t), 'layout');
  const x86 = await writeImage(dir, { architecture: 'amd64', layers: [{ files: { arch: 'amd64' }, gzip: true }], docker });
  const arm = await writeImage(dir, { architecture: 'arm64', variant: 'v8', layers: [{ files: { arch: 'arm64' }, gzip: true }], docker });
  const arm7 = await writeImage(dir, { architecture: 'arm', variant: 'v7', layers: [{ files: { arch: 'arm' }, gzip: true }], docker });
  const manifests: Descriptor[] = [
    { ...x86.manifest, platform: { os: 'linux', architecture: 'amd64' } },
    // No variant, as many indexes say arm64: containerd takes it for v8.
    { ...arm.manifest, platform: { os: 'linux', architecture: 'arm64' } },
    { ...arm7.manifest, platform: { os: 'linux', architecture: 'arm', variant: 'v7' } },
  ];
  if (!docker) {
    // buildx's attestation manifest: not an image for any platform.
    const attestation = await writeJsonBlob(dir, { schemaVersion: 2, mediaType: media.ociManifest, config: x86.config, layers: [] }, media.ociManifest);
    manifests.push({ ...attestation, platform: { os: 'unknown', architecture: 'unknown' } });
  }
  const type = docker ? media.dockerList : media.ociIndex;
  const index = await writeJsonBlob(dir, { schemaVersion: 2, mediaType: type, manifests }, type);
  await writeIndex(dir, [tagged(index, 'multi')]);
  return { dir, x86, arm, arm7 };
}

test('a multi-platform index gives the manifest for the platform asked for', async (t) => {
  const { dir, x86, arm, arm7 } = await multiPlatform(t);
  const onAmd64 = await read(dir, 'multi', amd64);
  t.is(onAmd64.manifestDigest, x86.manifest.digest);
  t.is(onAmd64.config.architecture, 'amd64');
  t.deepEqual(await collect(onAmd64.layers[0]!.open()), x86.layers[0]!.bytes);
  t.is((await read(dir, 'multi', arm64)).manifestDigest, arm.manifest.digest);
  t.is((await read(dir, 'multi', { os: 'linux', architecture: 'arm', variant: 'v7' })).manifestDigest, arm7.manifest.digest);
});

test('an index with nothing for the platform is refused, naming what it offers and what was asked', async (t) => {
  const { dir } = await multiPlatform(t);
  const error = await t.throwsAsync(read(dir, 'multi', { os: 'linux', architecture: 's390x' }), { instanceOf: NoMatchingPlatformError });
  t.deepEqual(error?.offered, [
    { os: 'linux', architecture: 'amd64' },
    { os: 'linux', architecture: 'arm64' },
    { os: 'linux', architecture: 'arm', variant: 'v7' },
  ]);
  t.regex(error!.message, /no manifest for linux\/s390x: its index offers linux\/amd64, linux\/arm64, linux\/arm\/v7$/);
  t.regex(error!.hint!, /--override-arch s390x/);
});

test("Docker's manifest list and manifests are read, and Docker's gzip layers are sniffed", async (t) => {
  const { dir, arm } = await multiPlatform(t, true);
  const image = await read(dir, 'multi', arm64);
  t.is(image.manifestDigest, arm.manifest.digest);
  t.is(image.layers[0]!.mediaType, media.dockerLayerGzip);
  t.is(image.layers[0]!.compression, 'gzip');

  // A plain tar labelled .tar.gzip, as some tools wrote them: the magic bytes decide.
  const plain = await singleImageLayout(t, { docker: true, layers: [{ files: { a: 'a' }, gzip: false }] });
  t.is((await read(plain.dir)).layers[0]!.compression, 'none');
});

test('platforms match as containerd matches them', (t) => {
  t.deepEqual(normalizePlatform({ os: 'Linux', architecture: 'aarch64', variant: '8' }), { os: 'linux', architecture: 'arm64' });
  t.deepEqual(normalizePlatform({ os: 'linux', architecture: 'x86_64' }), { os: 'linux', architecture: 'amd64' });
  t.deepEqual(normalizePlatform({ os: 'linux', architecture: 'armhf' }), { os: 'linux', architecture: 'arm', variant: 'v7' });
  t.is(platformRank(arm64, { os: 'linux', architecture: 'arm64' }), 0);
  t.is(platformRank({ os: 'linux', architecture: 'arm64' }, { os: 'linux', architecture: 'arm64', variant: 'v8' }), 0);
  t.is(platformRank(arm64, { os: 'linux', architecture: 'arm64', variant: 'v9' }), undefined);
  t.is(platformRank({ os: 'linux', architecture: 'arm', variant: 'v7' }, { os: 'linux', architecture: 'arm', variant: 'v6' }), 1);
  t.is(platformRank({ os: 'linux', architecture: 'arm', variant: 'v6' }, { os: 'linux', architecture: 'arm', variant: 'v7' }), undefined);
  t.is(platformRank(amd64, arm64), undefined);
  t.is(platformRank(amd64, { os: 'windows', architecture: 'amd64' }), undefined);
});

test('a config whose bytes are not its digest is refused, naming the config blob', async (t) => {
  const { dir, image } = await singleImageLayout(t, { layers: [{ files: { a: 'a' } }] });
  await flipByte(blobPath(dir, image.config.digest), 5);
  const error = await t.throwsAsync(read(dir), { instanceOf: DigestMismatchError });
  t.is(error?.what, 'digest');
  t.is(error?.blob, `config blobs/sha256/${image.config.digest.slice(7)}`);
  t.is(error?.expected, image.config.digest);
  t.not(error?.actual, image.config.digest);
});

test('a manifest whose bytes are not its digest is refused', async (t) => {
  const { dir, image } = await singleImageLayout(t, { layers: [{ files: { a: 'a' } }] });
  await flipByte(blobPath(dir, image.manifest.digest), 3);
  const error = await t.throwsAsync(read(dir), { instanceOf: DigestMismatchError });
  t.is(error?.blob, `manifest blobs/sha256/${image.manifest.digest.slice(7)}`);
  t.is(error?.what, 'digest');
});

test('a damaged layer is found when its stream is consumed, not before', async (t) => {
  const { dir, image } = await singleImageLayout(t, { layers: [{ files: { a: 'a' } }, { files: { b: 'b' }, gzip: true }] });
  await flipByte(blobPath(dir, image.layers[1]!.descriptor.digest), 20);
  const resolved = await read(dir);
  await t.notThrowsAsync(collect(resolved.layers[0]!.open()));
  const error = await t.throwsAsync(collect(resolved.layers[1]!.open()), { instanceOf: DigestMismatchError });
  t.is(error?.what, 'digest');
  t.is(error?.expected, image.layers[1]!.descriptor.digest);
  t.regex(error!.blob, /^layer 2 blobs\/sha256\//);
});

test('a blob of another size than its descriptor says is refused', async (t) => {
  // The layer's file grows by a byte after the manifest was written: stat sees it at resolve.
  const { dir, image } = await singleImageLayout(t, { layers: [{ files: { a: 'a' } }] });
  const layer = blobPath(dir, image.layers[0]!.descriptor.digest);
  await writeFile(layer, Buffer.concat([await readFile(layer), Buffer.from('x')]));
  const error = await t.throwsAsync(read(dir), { instanceOf: DigestMismatchError });
  t.is(error?.what, 'size');
  t.is(error?.expected, String(image.layers[0]!.descriptor.size));
  t.is(error?.actual, String(image.layers[0]!.descriptor.size + 1));

  // A descriptor that gives the wrong size for a manifest.
  const other = await singleImageLayout(t, { layers: [{ files: { a: 'a' } }] });
  await writeIndex(other.dir, [{ ...other.image.manifest, size: other.image.manifest.size - 1 }]);
  const wrong = await t.throwsAsync(read(other.dir), { instanceOf: DigestMismatchError });
  t.is(wrong?.what, 'size');
});

test('a layer stream that runs short or long fails on size', async (t) => {
  const { dir, image } = await singleImageLayout(t, { layers: [{ files: { a: 'a' } }] });
  const resolved = await read(dir);
  const file = blobPath(dir, image.layers[0]!.descriptor.digest);
  const bytes = await readFile(file);
  await writeFile(file, bytes.subarray(0, bytes.length - 10));
  const short = await t.throwsAsync(collect(resolved.layers[0]!.open()), { instanceOf: DigestMismatchError });
  t.is(short?.what, 'size');
  t.is(short?.actual, String(bytes.length - 10));
  await writeFile(file, Buffer.concat([bytes, Buffer.alloc(10)]));
  const long = await t.throwsAsync(collect(resolved.layers[0]!.open()), { instanceOf: DigestMismatchError });
  t.is(long?.actual, `more than ${bytes.length}`);
});

test('a missing layer blob is named when the image is resolved', async (t) => {
  const { dir, image } = await singleImageLayout(t, { layers: [{ files: { a: 'a' } }, { files: { b: 'b' } }] });
  const digest = image.layers[1]!.descriptor.digest;
  await rm(blobPath(dir, digest));
  const error = await t.throwsAsync(read(dir), { instanceOf: MalformedImageError });
  t.is(error?.part, `layer 2 blobs/sha256/${digest.slice(7)}`);
  t.regex(error!.message, /missing from the layout/);

  // Removed after the image was resolved: its stream names it too.
  const other = await singleImageLayout(t, { layers: [{ files: { a: 'a' } }] });
  const resolved = await read(other.dir);
  await rm(blobPath(other.dir, other.image.layers[0]!.descriptor.digest));
  const late = await t.throwsAsync(collect(resolved.layers[0]!.open()), { instanceOf: MalformedImageError });
  t.regex(late!.message, /layer 1 blobs\/sha256\/[a-f0-9]{64}: missing from the layout/);
});

test('a bad oci-layout file is refused: missing, not JSON, or another version', async (t) => {
  const { dir } = await singleImageLayout(t, { layers: [{ files: { a: 'a' } }] });
  const file = path.join(dir, 'oci-layout');
  await writeFile(file, JSON.stringify({ imageLayoutVersion: '2.0.0' }));
  const version = await t.throwsAsync(read(dir), { instanceOf: UnsupportedImageError });
  t.regex(version!.message, /oci-layout: imageLayoutVersion "2\.0\.0"/);
  await writeFile(file, '{ nope');
  const json = await t.throwsAsync(read(dir), { instanceOf: MalformedImageError });
  t.is(json?.part, 'oci-layout');
  t.regex(json!.detail, /^not JSON/);
  await rm(file);
  const missing = await t.throwsAsync(read(dir), { instanceOf: MalformedImageError });
  t.regex(missing!.message, /oci-layout: missing/);
  t.regex(missing!.hint!, /skopeo copy/);
});

test('a layout directory that does not exist is not found', async (t) => {
  const error = await t.throwsAsync(read(path.join(await tempDir(t), 'nothing')), { instanceOf: ImageNotFoundError });
  t.regex(error!.message, /there is no directory/);
});

test('zstd layers are refused, with the skopeo command that recompresses them', async (t) => {
  const { dir } = await singleImageLayout(t, { layers: [{ files: { a: 'a' }, mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd' }] });
  const error = await t.throwsAsync(read(dir), { instanceOf: UnsupportedImageError });
  t.regex(error!.message, /zstd/);
  t.regex(error!.hint!, /skopeo copy --dest-compress-format gzip/);
});

test('a digest that would lead out of the layout is refused before any path is made of it', async (t) => {
  const { dir, image } = await singleImageLayout(t, { layers: [{ files: { a: 'a' } }] });
  await writeIndex(dir, [{ ...image.manifest, digest: 'sha256:../../etc' }]);
  const error = await t.throwsAsync(read(dir), { instanceOf: MalformedImageError });
  t.is(error?.part, 'index.json');
  t.regex(error!.message, /index\.json: manifests\[0\]\.digest: not a sha256 digest/);

  // In a manifest too: an upper-case or short hex is not a sha256 digest either.
  const manifest = await writeJsonBlob(
    dir,
    {
      schemaVersion: 2,
      mediaType: media.ociManifest,
      config: image.config,
      layers: [{ ...image.layers[0]!.descriptor, digest: `sha256:${'A'.repeat(64)}` }],
    },
    media.ociManifest,
  );
  await writeIndex(dir, [manifest]);
  const inManifest = await t.throwsAsync(read(dir), { instanceOf: MalformedImageError });
  t.is(inManifest?.part, `manifest blobs/sha256/${manifest.digest.slice(7)}`);
  t.is(inManifest?.detail, 'layers[0].digest: not a sha256 digest ("sha256:" and 64 lowercase hex digits)');
});

test('a sha512 digest is refused as unsupported', async (t) => {
  const { dir, image } = await singleImageLayout(t, { layers: [{ files: { a: 'a' } }] });
  await writeIndex(dir, [{ ...image.manifest, digest: `sha512:${'a'.repeat(128)}` }]);
  const error = await t.throwsAsync(read(dir), { instanceOf: UnsupportedImageError });
  t.regex(error!.message, /only sha256 digests are supported/);
});

test('malformed JSON is refused, naming the file and the place in it', async (t) => {
  const { dir, image } = await singleImageLayout(t, { layers: [{ files: { a: 'a' } }] });
  await writeFile(path.join(dir, 'index.json'), '{"schemaVersion": 2, "manifests": [');
  const index = await t.throwsAsync(read(dir), { instanceOf: MalformedImageError });
  t.is(index?.part, 'index.json');
  t.regex(index!.detail, /^not JSON: /);

  // A manifest blob that is not JSON, stored under its true digest.
  const garbage = await writeBlob(dir, 'not json at all', media.ociManifest);
  await writeIndex(dir, [garbage]);
  const blob = await t.throwsAsync(read(dir), { instanceOf: MalformedImageError });
  t.is(blob?.part, `manifest blobs/sha256/${garbage.digest.slice(7)}`);

  // JSON of the wrong shape: the path of the bad field is given.
  const noLayers = await writeJsonBlob(
    dir,
    {
      schemaVersion: 2,
      mediaType: media.ociManifest,
      config: image.config,
      layers: [{ mediaType: media.ociLayer, digest: image.layers[0]!.descriptor.digest }],
    },
    media.ociManifest,
  );
  await writeIndex(dir, [noLayers]);
  const shape = await t.throwsAsync(read(dir), { instanceOf: MalformedImageError });
  t.regex(shape!.detail, /^layers\[0\]\.size: /);
});

test('a config whose diff_ids do not count the layers is refused', async (t) => {
  const dir = path.join(await tempDir(t), 'layout');
  const image = await writeImage(dir, { layers: [{ files: { a: 'a' } }] });
  const config = await writeJsonBlob(dir, { ...image.configValue, rootfs: { type: 'layers', diff_ids: [] } }, media.ociConfig);
  const manifest = await writeJsonBlob(
    dir,
    { schemaVersion: 2, mediaType: media.ociManifest, config, layers: image.layers.map((l) => l.descriptor) },
    media.ociManifest,
  );
  await writeIndex(dir, [manifest]);
  const error = await t.throwsAsync(read(dir), { instanceOf: MalformedImageError });
  t.is(error?.detail, 'rootfs.diff_ids lists 0 layers, but the image has 1');
});

test("a manifest whose own mediaType is not its descriptor's is refused", async (t) => {
  const { dir, image } = await singleImageLayout(t, { layers: [{ files: { a: 'a' } }] });
  await writeIndex(dir, [{ ...image.manifest, mediaType: media.dockerManifest }]);
  const error = await t.throwsAsync(read(dir), { instanceOf: MalformedImageError });
  t.regex(error!.detail, /mediaType is "application\/vnd\.oci\.image\.manifest\.v1\+json", but its descriptor says/);
});

test('schema 1 manifests and artifacts are refused as unsupported', async (t) => {
  const { dir, image } = await singleImageLayout(t, { layers: [{ files: { a: 'a' } }] });
  const schema1 = await writeJsonBlob(
    dir,
    { schemaVersion: 1, name: 'x', tag: 'y', fsLayers: [] },
    'application/vnd.docker.distribution.manifest.v1+prettyjws',
  );
  await writeIndex(dir, [schema1]);
  const old = await t.throwsAsync(read(dir), { instanceOf: UnsupportedImageError });
  t.regex(old!.message, /schema 1/);
  t.regex(old!.hint!, /skopeo copy --format oci/);

  const artifact = await writeJsonBlob(
    dir,
    { schemaVersion: 2, mediaType: media.ociManifest, config: { ...image.config, mediaType: 'application/vnd.cncf.helm.config.v1+json' }, layers: [] },
    media.ociManifest,
  );
  await writeIndex(dir, [artifact]);
  const helm = await t.throwsAsync(read(dir), { instanceOf: UnsupportedImageError });
  t.regex(helm!.message, /is not a container image's config/);
});
