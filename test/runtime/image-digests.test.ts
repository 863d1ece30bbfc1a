/** A checkpoint's digests: written after the dump, checked by restore, kept up by image encode -o. */
import test from 'ava';
import { appendFile, mkdir, readFile, truncate, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { CorruptCheckpointError, DIGESTS_FILE, updateImageDigest, verifyImageDigests, writeImageDigests } from '../../src/runtime/image-digests.js';
import { tempDir } from './fixtures.js';

async function images(t: Parameters<typeof tempDir>[0]): Promise<string> {
  const dir = await tempDir(t, 'digests-');
  await writeFile(path.join(dir, 'core-1.img'), Buffer.from('core of the init'));
  await writeFile(path.join(dir, 'pages-1.img'), Buffer.alloc(64 * 1024, 0x5a));
  await writeFile(path.join(dir, 'dump.log'), 'a log changes and is not checked');
  await mkdir(path.join(dir, 'tmpfs-content-42', 'tree'), { recursive: true });
  await writeFile(path.join(dir, 'tmpfs-content-42', 'tree', 'null'), 'x');
  await writeImageDigests(dir);
  return dir;
}

test('the digests are what sha256sum -c checks, logs aside, and a restore finds them all as dumped', async (t) => {
  const dir = await images(t);
  const text = await readFile(path.join(dir, DIGESTS_FILE), 'utf8');
  t.deepEqual(
    text
      .split('\n')
      .filter(Boolean)
      .map((line) => line.slice(66)),
    ['core-1.img', 'pages-1.img', 'tmpfs-content-42/tree/null'],
  );
  t.is((await execa('sha256sum', ['-c', '--quiet', DIGESTS_FILE], { cwd: dir, reject: false })).exitCode, 0);
  await appendFile(path.join(dir, 'dump.log'), 'more');
  t.true(await verifyImageDigests(dir));
});

test('a flipped bit, a cut-short image or a missing one is named', async (t) => {
  const dir = await images(t);
  const pages = path.join(dir, 'pages-1.img');
  const bytes = await readFile(pages);
  bytes[4096] ^= 0x01;
  await writeFile(pages, bytes);
  await t.throwsAsync(verifyImageDigests(dir), {
    instanceOf: CorruptCheckpointError,
    message: `the checkpoint in ${dir} is damaged: pages-1.img differs from what was dumped`,
  });
  bytes[4096] ^= 0x01;
  await writeFile(pages, bytes);
  await truncate(path.join(dir, 'core-1.img'), 4);
  await t.throwsAsync(verifyImageDigests(dir), { message: /damaged: core-1\.img differs from what was dumped/ });
  await unlink(path.join(dir, 'core-1.img'));
  await t.throwsAsync(verifyImageDigests(dir), { message: /damaged: core-1\.img is missing/ });
});

test('digests that name a file outside the directory, or are no digests, are refused; none at all is an older checkpoint', async (t) => {
  const dir = await images(t);
  await writeFile(path.join(dir, DIGESTS_FILE), `${'0'.repeat(64)}  ../../etc/shadow\n`);
  await t.throwsAsync(verifyImageDigests(dir), { code: 'CORRUPT_CHECKPOINT', message: /no digest of a file in it/ });
  await writeFile(path.join(dir, DIGESTS_FILE), 'garbage\n');
  await t.throwsAsync(verifyImageDigests(dir), { code: 'CORRUPT_CHECKPOINT' });
  await unlink(path.join(dir, DIGESTS_FILE));
  t.false(await verifyImageDigests(dir));
});

test('an image edited on purpose takes its new digest; the others keep theirs', async (t) => {
  const dir = await images(t);
  await writeFile(path.join(dir, 'core-1.img'), Buffer.from('edited with image encode -o'));
  await updateImageDigest(path.join(dir, 'core-1.img'));
  t.true(await verifyImageDigests(dir));
});
