import test from 'ava';
import path from 'node:path';
import { canonicalReference, hostPlatform, parseImageReference, resolveImage } from '../../../src/rootfs/image/source.js';
import { normalizeImageName } from '../../../src/rootfs/image/docker-archive.js';
import { ImageReferenceError, NoMatchingPlatformError } from '../../../src/rootfs/image/errors.js';
import { media, singleImageLayout, tagged, tempDir, writeDockerArchive, writeImage, writeIndex, writeJsonBlob } from './helpers.js';

test('oci: references give an absolute directory and the tag', (t) => {
  t.deepEqual(parseImageReference('oci:/images/redis:7.2'), { transport: 'oci', text: 'oci:/images/redis:7.2', path: '/images/redis', tag: '7.2' });
  t.deepEqual(parseImageReference('oci:/images/redis'), { transport: 'oci', text: 'oci:/images/redis', path: '/images/redis' });
  // A relative directory is the working directory's, as skopeo reads it.
  t.deepEqual(parseImageReference('oci:layouts/app:v1'), { transport: 'oci', text: 'oci:layouts/app:v1', path: path.resolve('layouts/app'), tag: 'v1' });
  // Everything after the first colon is the tag, so a full name is one (buildah writes those).
  t.is((parseImageReference('oci:dir:docker.io/library/redis:7') as { tag?: string }).tag, 'docker.io/library/redis:7');
});

test('docker-archive: references give the file and which image', (t) => {
  t.deepEqual(parseImageReference('docker-archive:/tmp/save.tar'), {
    transport: 'docker-archive',
    text: 'docker-archive:/tmp/save.tar',
    path: '/tmp/save.tar',
  });
  t.deepEqual(parseImageReference('docker-archive:save.tar:redis:7'), {
    transport: 'docker-archive',
    text: 'docker-archive:save.tar:redis:7',
    path: path.resolve('save.tar'),
    selector: { kind: 'name', name: 'docker.io/library/redis:7' },
  });
  t.deepEqual(parseImageReference('docker-archive:/a.tar:quay.io/org/app'), {
    transport: 'docker-archive',
    text: 'docker-archive:/a.tar:quay.io/org/app',
    path: '/a.tar',
    selector: { kind: 'name', name: 'quay.io/org/app:latest' },
  });
  t.deepEqual(parseImageReference('docker-archive:/a.tar:@2'), {
    transport: 'docker-archive',
    text: 'docker-archive:/a.tar:@2',
    path: '/a.tar',
    selector: { kind: 'index', index: 2 },
  });
});

test('bad references are refused with the forms there are', (t) => {
  for (const [text, reason] of [
    ['/images/redis', /no transport/],
    ['docker://redis:7', /unknown transport "docker"/],
    ['oci:', /no directory/],
    ['oci::tag', /no directory/],
    ['oci:/dir:', /"" is not a valid tag/],
    ['oci:/dir:bad tag', /is not a valid tag/],
    ['docker-archive:', /no file/],
    ['docker-archive:/a.tar:@x', /@ must be followed by the image's index/],
    ['docker-archive:/a.tar:@-1', /@ must be followed/],
    ['docker-archive:/a.tar:Redis:7', /not a valid repository name/],
    ['docker-archive:/a.tar:redis@sha256:abc', /not by digest/],
  ] as const) {
    const error = t.throws(() => parseImageReference(text), { instanceOf: ImageReferenceError }, text);
    t.regex(error!.message, reason, text);
    t.regex(error!.hint!, /oci:DIR\[:TAG\]/);
  }
});

test('image names are normalized as Docker normalizes them', (t) => {
  t.is(normalizeImageName('redis:7'), 'docker.io/library/redis:7');
  t.is(normalizeImageName('redis'), 'docker.io/library/redis:latest');
  t.is(normalizeImageName('docker.io/library/redis:7'), 'docker.io/library/redis:7');
  t.is(normalizeImageName('index.docker.io/redis:7'), 'docker.io/library/redis:7');
  t.is(normalizeImageName('bitnami/redis:7'), 'docker.io/bitnami/redis:7');
  t.is(normalizeImageName('localhost/app'), 'localhost/app:latest');
  t.is(normalizeImageName('localhost:5000/team/app:v2'), 'localhost:5000/team/app:v2');
  t.is(normalizeImageName('quay.io/org/app:1.0'), 'quay.io/org/app:1.0');
});

test("the host's platform is linux and Node's architecture by its OCI name", (t) => {
  const platform = hostPlatform();
  t.is(platform.os, 'linux');
  const expected: Record<string, { architecture: string; variant?: string }> = {
    x64: { architecture: 'amd64' },
    arm64: { architecture: 'arm64', variant: 'v8' },
    ia32: { architecture: '386' },
    s390x: { architecture: 's390x' },
  };
  const want = expected[process.arch];
  if (want) t.like(platform, want);
  else t.regex(platform.architecture, /^[a-z0-9]+$/);
});

test('resolveImage reads an oci: reference, picking from an index by the platform given', async (t) => {
  const dir = path.join(await tempDir(t), 'layout');
  const x86 = await writeImage(dir, { architecture: 'amd64', layers: [{ files: { a: 'amd64' } }] });
  const arm = await writeImage(dir, { architecture: 'arm64', variant: 'v8', layers: [{ files: { a: 'arm64' } }] });
  const index = await writeJsonBlob(
    dir,
    {
      schemaVersion: 2,
      mediaType: media.ociIndex,
      manifests: [
        { ...x86.manifest, platform: { os: 'linux', architecture: 'amd64' } },
        { ...arm.manifest, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
      ],
    },
    media.ociIndex,
  );
  await writeIndex(dir, [tagged(index, 'app')]);

  const onArm = await resolveImage(`oci:${dir}:app`, { os: 'linux', architecture: 'arm64', variant: 'v8' });
  t.is(onArm.reference, `oci:${dir}:app`);
  t.is(onArm.manifestDigest, arm.manifest.digest);
  t.deepEqual(onArm.platform, { os: 'linux', architecture: 'arm64', variant: 'v8' });
  const parsed = parseImageReference(`oci:${dir}:app`);
  t.is((await resolveImage(parsed, { os: 'linux', architecture: 'amd64' })).manifestDigest, x86.manifest.digest);
  await t.throwsAsync(resolveImage(parsed, { os: 'linux', architecture: 'riscv64' }), { instanceOf: NoMatchingPlatformError });
  // Without a platform, the host's is used: this machine is one of the two or neither.
  const host = hostPlatform().architecture;
  if (host === 'amd64' || host === 'arm64') t.is((await resolveImage(parsed)).config.architecture, host);
});

test('resolveImage reads a docker-archive: reference', async (t) => {
  const archive = await writeDockerArchive(t, [{ repoTags: ['app:1'], layers: [{ files: { a: 'a' } }] }], { layout: 'old' });
  const image = await resolveImage(`docker-archive:${archive.file}:docker.io/library/app:1`);
  t.is(image.reference, `docker-archive:${archive.file}:docker.io/library/app:1`);
  t.is(image.configDigest, archive.images[0]!.configDigest);
});

test('a single-image layout resolves through resolveImage without a tag', async (t) => {
  const { dir, image } = await singleImageLayout(t, { layers: [{ files: { a: 'a' } }] });
  t.is((await resolveImage(`oci:${dir}`)).manifestDigest, image.manifest.digest);
});

test("an image of one manifest built for another machine is refused, naming its platform and the host's", async (t) => {
  const { dir } = await singleImageLayout(t, { architecture: 's390x', layers: [{ files: { 'bin/sh': '#!' } }] });
  const error = await t.throwsAsync(resolveImage(`oci:${dir}`, { os: 'linux', architecture: 'amd64' }), { instanceOf: NoMatchingPlatformError });
  t.regex(error?.message ?? '', /s390x/);
  t.regex(error?.message ?? '', /amd64/);
  await t.notThrowsAsync(resolveImage(`oci:${dir}`, { os: 'linux', architecture: 's390x' }));
});

test('the canonical reference has the absolute path and the tag or selector', (t) => {
  t.is(canonicalReference(parseImageReference('oci:images/redis:7')), `oci:${path.resolve('images/redis')}:7`);
  t.is(canonicalReference(parseImageReference('oci:/srv/l')), 'oci:/srv/l');
  t.is(canonicalReference(parseImageReference('docker-archive:/srv/a.tar:redis:7')), 'docker-archive:/srv/a.tar:docker.io/library/redis:7');
  t.is(canonicalReference(parseImageReference('docker-archive:/srv/a.tar:@1')), 'docker-archive:/srv/a.tar:@1');
});
