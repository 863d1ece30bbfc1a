import test from 'ava';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { canonicalJson, readDockerArchive, type ArchiveSelector } from '../../../src/rootfs/image/docker-archive.js';
import { DigestMismatchError, ImageNotFoundError, MalformedImageError, UnsupportedImageError } from '../../../src/rootfs/image/errors.js';
import { collect, gzip, hexOf, sha256, tempDir, writeDockerArchive, type ArchiveImage } from './helpers.js';

function read(file: string, selector?: ArchiveSelector) {
  return readDockerArchive({ file, ...(selector === undefined ? {} : { selector }), reference: `docker-archive:${file}` });
}

const twoImages: readonly ArchiveImage[] = [
  { repoTags: ['redis:7', 'redis:latest'], layers: [{ files: { 'bin/redis': 'redis' } }] },
  { repoTags: ['docker.io/library/alpine:3.20'], architecture: 'arm64', layers: [{ files: { 'etc/alpine-release': '3.20' } }, { files: { b: 'b' } }] },
];

test('an archive in the old layout (docker save before 25) is read, its layers verified against their diff ids', async (t) => {
  const archive = await writeDockerArchive(t, [{ repoTags: ['app:1'], layers: [{ files: { a: 'a' } }, { files: { 'etc/b': 'b' } }] }], { layout: 'old' });
  const written = archive.images[0]!;
  const image = await read(archive.file);
  t.is(image.configDigest, written.configDigest);
  t.is(image.manifestDigest, sha256(canonicalJson(archive.manifest[0])));
  t.deepEqual(
    image.config.rootfs.diff_ids,
    written.layers.map((l) => l.diffId),
  );
  t.deepEqual(image.platform, { os: 'linux', architecture: 'amd64' });
  t.deepEqual(
    image.layers.map((l) => [l.digest, l.diffId, l.compression, l.size, l.mediaType]),
    written.layers.map((l) => [l.diffId, l.diffId, 'none', l.bytes.length, 'application/vnd.oci.image.layer.v1.tar']),
  );
  t.deepEqual(await collect(image.layers[1]!.open()), written.layers[1]!.tar);
});

test('an archive in the blobs layout (docker save 25+) is read, a gzip layer checked against its blob digest', async (t) => {
  const archive = await writeDockerArchive(t, [{ repoTags: ['app:1'], layers: [{ files: { a: 'a' } }, { files: { b: 'b' }, gzip: true }] }], {
    layout: 'blobs',
  });
  const written = archive.images[0]!;
  const image = await read(archive.file);
  t.is(image.configDigest, written.configDigest);
  t.is(image.layers[1]!.compression, 'gzip');
  t.is(image.layers[1]!.digest, sha256(written.layers[1]!.bytes));
  t.is(image.layers[1]!.mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
  const bytes = await collect(image.layers[1]!.open());
  t.is(sha256(gunzipSync(bytes)), image.layers[1]!.diffId);
});

test("podman's archive, whose layers are reached through symbolic links, is read", async (t) => {
  const archive = await writeDockerArchive(t, [{ repoTags: ['localhost/app:latest'], layers: [{ files: { a: 'a' } }] }], { layout: 'podman' });
  const image = await read(archive.file, { kind: 'name', name: 'localhost/app:latest' });
  t.deepEqual(await collect(image.layers[0]!.open()), archive.images[0]!.layers[0]!.tar);
});

test('a gzip layer with no digest in its name is checked on size here, its diff id by the store', async (t) => {
  const archive = await writeDockerArchive(t, [{ repoTags: ['app:1'], layers: [{ files: { a: 'a' }, gzip: true }] }], { layout: 'old' });
  const layer = (await read(archive.file)).layers[0]!;
  t.is(layer.compression, 'gzip');
  t.is(layer.digest, layer.diffId);
  // The compressed bytes' digest is not the diff id, and the stream does not claim it is.
  const bytes = await collect(layer.open());
  t.not(sha256(bytes), layer.diffId);
  t.is(sha256(gunzipSync(bytes)), layer.diffId);
});

test('an image is picked by its RepoTags, short and full names matching either way', async (t) => {
  const archive = await writeDockerArchive(t, twoImages, { layout: 'old' });
  const [redis, alpine] = archive.images;
  t.is((await read(archive.file, { kind: 'name', name: 'docker.io/library/redis:7' })).configDigest, redis!.configDigest);
  t.is((await read(archive.file, { kind: 'name', name: 'docker.io/library/redis:latest' })).configDigest, redis!.configDigest);
  const arm = await read(archive.file, { kind: 'name', name: 'docker.io/library/alpine:3.20' });
  t.is(arm.configDigest, alpine!.configDigest);
  t.is(arm.platform.architecture, 'arm64');
  t.is(arm.layers.length, 2);

  const error = await t.throwsAsync(read(archive.file, { kind: 'name', name: 'docker.io/library/alpine:latest' }), { instanceOf: ImageNotFoundError });
  t.deepEqual(error?.available, ['redis:7', 'redis:latest', 'docker.io/library/alpine:3.20']);
  t.regex(error!.message, /no image in the archive is tagged docker\.io\/library\/alpine:latest/);
});

test('an image is picked by its index in manifest.json', async (t) => {
  const archive = await writeDockerArchive(t, twoImages, { layout: 'blobs' });
  t.is((await read(archive.file, { kind: 'index', index: 1 })).configDigest, archive.images[1]!.configDigest);
  t.is((await read(archive.file, { kind: 'index', index: 0 })).configDigest, archive.images[0]!.configDigest);
  const error = await t.throwsAsync(read(archive.file, { kind: 'index', index: 2 }), { instanceOf: ImageNotFoundError });
  t.regex(error!.message, /holds 2 images, so there is no @2/);
});

test('an archive of several images, named by none, is refused with a list of them', async (t) => {
  const archive = await writeDockerArchive(t, [...twoImages, { repoTags: null, layers: [{ files: { c: 'c' } }] }], { layout: 'old' });
  const error = await t.throwsAsync(read(archive.file), { instanceOf: ImageNotFoundError });
  t.deepEqual(error?.available, ['@0 (redis:7, redis:latest)', '@1 (docker.io/library/alpine:3.20)', '@2 (untagged)']);
  t.regex(error!.hint!, /docker-archive:FILE/);
});

test('a layer whose bytes are not its diff id fails when its stream is consumed', async (t) => {
  const archive = await writeDockerArchive(
    t,
    [{ repoTags: ['app:1'], layers: [{ files: { a: 'original' } }] }],
    { layout: 'old' },
    async (staging, written) => {
      // Same length, other bytes: only the digest can tell.
      const file = path.join(staging, written.images[0]!.layers[0]!.name);
      const bytes = await readFile(file);
      bytes.write('ORIGINAL', bytes.indexOf('original'));
      await writeFile(file, bytes);
    },
  );
  const image = await read(archive.file);
  const error = await t.throwsAsync(collect(image.layers[0]!.open()), { instanceOf: DigestMismatchError });
  t.is(error?.expected, archive.images[0]!.layers[0]!.diffId);
  t.is(error?.what, 'digest');
});

test('a blob-layout layer whose bytes are not its name is refused when streamed', async (t) => {
  const archive = await writeDockerArchive(
    t,
    [{ repoTags: ['app:1'], layers: [{ files: { a: 'x' }, gzip: true }] }],
    { layout: 'blobs' },
    async (staging, written) => {
      const name = written.images[0]!.layers[0]!.name;
      // Another gzip of the same tar: a valid layer, but not the blob the name promises.
      const other = gzip(Buffer.concat([written.images[0]!.layers[0]!.tar]));
      other[9] = 0x07; // gzip's OS byte: the bytes differ, the content does not
      await writeFile(path.join(staging, name), other);
    },
  );
  const image = await read(archive.file);
  const error = await t.throwsAsync(collect(image.layers[0]!.open()), { instanceOf: DigestMismatchError });
  t.is(error?.expected, `sha256:${path.basename(archive.images[0]!.layers[0]!.name)}`);
});

test('a config whose name is not its digest is refused', async (t) => {
  const archive = await writeDockerArchive(t, [{ repoTags: ['app:1'], layers: [{ files: { a: 'a' } }] }], { layout: 'old' }, async (staging, written) => {
    const file = path.join(staging, written.images[0]!.configName);
    await writeFile(file, (await readFile(file, 'utf8')).replace('"amd64"', '"arm64"'));
  });
  const error = await t.throwsAsync(read(archive.file), { instanceOf: DigestMismatchError });
  t.is(error?.blob, archive.images[0]!.configName);
  t.is(error?.expected, archive.images[0]!.configDigest);
});

test('a layer manifest.json names that the archive lacks is named', async (t) => {
  const archive = await writeDockerArchive(
    t,
    [{ repoTags: ['app:1'], layers: [{ files: { a: 'a' } }, { files: { b: 'b' } }] }],
    { layout: 'old' },
    async (staging, written) => {
      await rm(path.join(staging, written.images[0]!.layers[1]!.name));
    },
  );
  const error = await t.throwsAsync(read(archive.file), { instanceOf: MalformedImageError });
  t.is(error?.part, 'manifest.json: [0].Layers[1]');
  t.regex(error!.detail, new RegExp(`"${hexOf(sha256('0/1'))}/layer.tar" is not in the archive`));
});

test('a tar without manifest.json is not a docker archive', async (t) => {
  const archive = await writeDockerArchive(t, [{ repoTags: ['app:1'], layers: [{ files: { a: 'a' } }] }], { layout: 'old' }, async (staging) => {
    await rm(path.join(staging, 'manifest.json'));
  });
  const error = await t.throwsAsync(read(archive.file), { instanceOf: MalformedImageError });
  t.is(error?.part, 'manifest.json');
  t.regex(error!.hint!, /oci:DIR/);
});

test('a manifest.json of the wrong shape is refused, naming the field', async (t) => {
  const archive = await writeDockerArchive(t, [{ repoTags: ['app:1'], layers: [{ files: { a: 'a' } }] }], { layout: 'old' }, async (staging) => {
    await writeFile(path.join(staging, 'manifest.json'), JSON.stringify([{ Config: 'x.json', RepoTags: ['a:1'], Layers: 'a/layer.tar' }]));
  });
  const error = await t.throwsAsync(read(archive.file), { instanceOf: MalformedImageError });
  t.regex(error!.message, /manifest\.json: \[0\]\.Layers: /);
});

test('a compressed archive is refused with the command that decompresses it', async (t) => {
  const archive = await writeDockerArchive(t, [{ repoTags: ['app:1'], layers: [{ files: { a: 'a' } }] }], { layout: 'old' });
  const compressed = path.join(await tempDir(t), 'image.tar.gz');
  await writeFile(compressed, gzip(await readFile(archive.file)));
  const error = await t.throwsAsync(read(compressed), { instanceOf: UnsupportedImageError });
  t.regex(error!.hint!, /gunzip -k/);
});

test('an archive file that does not exist is not found', async (t) => {
  const error = await t.throwsAsync(read(path.join(await tempDir(t), 'none.tar')), { instanceOf: ImageNotFoundError });
  t.regex(error!.message, /there is no file/);
});

test('canonical JSON sorts keys at every level', (t) => {
  t.is(canonicalJson({ b: [{ z: 1, a: null }], a: 'x' }), '{"a":"x","b":[{"a":null,"z":1}]}');
});
