import test from 'ava';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { InvalidBundleError, loadBundle } from '../../../src/runtime/oci/index.js';
import { readFixture } from './fixtures.js';

async function tempDir(t: { teardown(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'oci-bundle-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('loads a bundle and resolves the rootfs against the bundle directory', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'config.json'), readFixture('runc-spec.json'));
  await mkdir(join(dir, 'rootfs'));

  // A relative bundle path is made absolute.
  const bundle = await loadBundle(relative(process.cwd(), dir));
  t.is(bundle.path, dir);
  t.is(bundle.configPath, join(dir, 'config.json'));
  t.is(bundle.rootfs, join(dir, 'rootfs'));
  t.deepEqual(bundle.spec.process.args, ['sh']);
});

test('an absolute root.path is used as it is', async (t) => {
  const dir = await tempDir(t);
  const elsewhere = await tempDir(t);
  const spec = JSON.parse(readFixture('runc-spec.json'));
  spec.root.path = elsewhere;
  await writeFile(join(dir, 'config.json'), JSON.stringify(spec));
  t.is((await loadBundle(dir)).rootfs, elsewhere);
});

test('a missing bundle directory', async (t) => {
  const dir = join(await tempDir(t), 'nope');
  const error = await t.throwsAsync(loadBundle(dir), { instanceOf: InvalidBundleError });
  t.is(error.code, 'INVALID_BUNDLE');
  t.is(error.file, join(dir, 'config.json'));
  t.is(error.field, '');
  t.is(error.message, `invalid ${join(dir, 'config.json')}: bundle directory ${dir} does not exist`);
  t.regex(error.hint ?? '', /--bundle/);
});

test('a bundle path that is a file', async (t) => {
  const file = join(await tempDir(t), 'file');
  await writeFile(file, '');
  const error = await t.throwsAsync(loadBundle(file), { instanceOf: InvalidBundleError });
  t.is(error.reason, `bundle path ${file} is not a directory`);
});

test('a missing config.json', async (t) => {
  const dir = await tempDir(t);
  const error = await t.throwsAsync(loadBundle(dir), { instanceOf: InvalidBundleError });
  t.is(error.file, join(dir, 'config.json'));
  t.is(error.field, '');
  t.is(error.message, `invalid ${join(dir, 'config.json')}: config.json does not exist in the bundle`);
  t.is(error.hint, `create one with \`runc spec --bundle ${dir}\` and edit it`);
  t.is((error.cause as NodeJS.ErrnoException).code, 'ENOENT');
});

test('an unreadable config.json', async (t) => {
  // A directory in its place fails to read even for root, unlike a chmod 000 file.
  const dir = await tempDir(t);
  await mkdir(join(dir, 'config.json'));
  const error = await t.throwsAsync(loadBundle(dir), { instanceOf: InvalidBundleError });
  t.is(error.file, join(dir, 'config.json'));
  t.is(error.field, '');
  t.regex(error.reason, /^cannot read it: EISDIR/);
  t.is((error.cause as NodeJS.ErrnoException).code, 'EISDIR');
});

test('a missing rootfs is reported at root.path', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'config.json'), readFixture('runc-spec.json'));
  const error = await t.throwsAsync(loadBundle(dir), { instanceOf: InvalidBundleError });
  t.is(error.file, join(dir, 'config.json'));
  t.is(error.field, 'root.path');
  t.is(error.message, `invalid ${join(dir, 'config.json')}: root.path: root filesystem ${join(dir, 'rootfs')} does not exist`);
});

test('a rootfs that is a file is reported at root.path', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'config.json'), readFixture('runc-spec.json'));
  await writeFile(join(dir, 'rootfs'), '');
  const error = await t.throwsAsync(loadBundle(dir), { instanceOf: InvalidBundleError });
  t.is(error.field, 'root.path');
  t.is(error.reason, `root filesystem ${join(dir, 'rootfs')} is not a directory`);
});

test('schema errors from loadBundle name the absolute config.json', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'config.json'), readFixture('relative-mount.json'));
  await mkdir(join(dir, 'rootfs'));
  const error = await t.throwsAsync(loadBundle(dir), { instanceOf: InvalidBundleError });
  t.is(error.field, 'mounts[2].destination');
  t.is(error.message, `invalid ${join(dir, 'config.json')}: mounts[2].destination: must be an absolute path`);
});
