/**
 * The codec against CRIT on the checkpoint images stored in test/fixtures/images/real (taken from
 * the busybox container of fixtures/images/checkpoint.ts), so the comparison also runs without
 * root. Needs crit.
 */
import anyTest, { type TestFn } from 'ava';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  decodeImage,
  decodeImageStream,
  encodeImage,
  formatImageJson,
  imageInfo,
  parseImageJson,
  UnknownMagicError,
} from '../../../src/criu/images/index.js';
import { crit, hasCommand, mapLimit, requiring, storedImagesDir } from './helpers.js';

const test = requiring(
  anyTest as TestFn,
  'stored image tests (crit)',
  hasCommand('crit') ? undefined : 'crit is not installed (run scripts/install-criu.sh)',
);

async function storedFiles(): Promise<string[]> {
  return (await readdir(storedImagesDir)).sort().map((name) => path.join(storedImagesDir, name));
}

for (const pretty of [false, true]) {
  test(`stored images decode to the text of crit decode${pretty ? ' --pretty' : ''} and encode back`, async (t) => {
    const files = (await storedFiles()).filter((f) => !f.includes('/pages-'));
    t.true(files.length > 15);
    await mapLimit(files, 8, async (file) => {
      const expected = await crit(['decode', ...(pretty ? ['--pretty'] : []), '-i', file]);
      t.true(expected.ok, `${file}: ${expected.stderr}`);
      const image = await decodeImage(file, { pretty });
      t.is(`${formatImageJson(image, { pretty })}\n`, expected.stdout, file);
      t.deepEqual(image, parseImageJson(expected.stdout));
      t.true(encodeImage(image).equals(await readFile(file)), `${file} encodes back`);
    });
  });
}

test('a raw image is refused by its first word, as crit does, without reading it all', async (t) => {
  const file = path.join(storedImagesDir, 'pages-1.img');
  const expected = await crit(['decode', '-i', file]);
  t.false(expected.ok);
  const magic = /Unknown magic (0x[0-9a-f]+)/.exec(expected.stderr)?.[1];
  t.truthy(magic);
  const error = await t.throwsAsync(decodeImage(file), { instanceOf: UnknownMagicError });
  t.is(error?.code, 'IMAGE_UNKNOWN_MAGIC');
  t.true(error?.message.includes(magic!) && error.message.includes(file));
  await t.throwsAsync(imageInfo(file), { instanceOf: UnknownMagicError });
});

test('imageInfo agrees with crit info on images without payloads', async (t) => {
  for (const file of (await storedFiles()).filter((f) => !/\/(pages-|pipes-data|fifo-data|ghost-file)/.test(f))) {
    const expected = await crit(['info', file]);
    t.deepEqual(await imageInfo(file), JSON.parse(expected.stdout), file);
  }
});

test('decodeImageStream yields the entries of decodeImage', async (t) => {
  const file = path.join(storedImagesDir, 'files.img');
  const stream = await decodeImageStream(file, { pretty: true });
  const entries = [];
  for await (const entry of stream) entries.push(entry);
  t.deepEqual({ magic: stream.magic, entries }, await decodeImage(file, { pretty: true }));
  await t.throwsAsync(
    async () => {
      for await (const _ of stream) break;
    },
    { message: /only once/ },
  );
});
