/**
 * The codec against CRIT on a real checkpoint: every image decodes to the exact text
 * `crit decode` prints (plain and --pretty), encodes back to the same bytes, and the explorers
 * print what `crit x` prints. Needs root, runc, criu and crit.
 */
import anyTest, { type TestFn } from 'ava';
import { createReadStream } from 'node:fs';
import { readdir, readFile, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  decodeImage, decodeImageStream, encodeImage, exploreFds, exploreMems, explorePs, exploreRss, formatFds, formatImageJson,
  formatMems, formatPs, formatRss, imageInfo, parseImageJson, UnknownMagicError, writeImage, type ImageJson,
} from '../../../src/criu/images/index.js';
import { makeCheckpoint, missingCheckpointPrerequisite, type Checkpoint } from '../../fixtures/images/checkpoint.js';
import { crit, mapLimit, requiring } from './helpers.js';

interface Context {
  checkpoint: Checkpoint;
  /** Every image file: the image directory's and stats-dump. */
  files: string[];
}

const missing = missingCheckpointPrerequisite();
const test = requiring(anyTest as TestFn<Context>, 'checkpoint image tests (root, runc, criu, crit)', missing);

if (!missing) {
  test.before(async (t) => {
    const checkpoint = await makeCheckpoint();
    t.context.checkpoint = checkpoint;
    const names = (await readdir(checkpoint.imagesDir)).filter((n) => n.endsWith('.img')).sort();
    t.context.files = [...names.map((n) => path.join(checkpoint.imagesDir, n)), path.join(checkpoint.workDir, 'stats-dump')];
  });

  test.after.always(async (t) => {
    await t.context.checkpoint?.cleanup();
  });
}

const isRaw = (file: string): boolean => /\/(pages-\d+\.img|.*\.tar\.gz\.img)$/.test(file);

test('the checkpoint holds the image types the container was built to produce', (t) => {
  const names = new Set(t.context.files.map((f) => path.basename(f).replace(/-\d+\.img$/, '').replace(/\.img$/, '')));
  for (const kind of ['inventory', 'pstree', 'core', 'mm', 'pagemap', 'pages', 'files', 'fdinfo', 'pipes-data', 'fifo-data', 'ghost-file', 'stats-dump']) {
    t.true(names.has(kind), `${kind} image missing; have ${[...names].join(', ')}`);
  }
});

for (const pretty of [false, true]) {
  test(`every image decodes to the text of crit decode${pretty ? ' --pretty' : ''}`, async (t) => {
    const results = await mapLimit(t.context.files, 8, async (file) => {
      const expected = await crit(['decode', ...(pretty ? ['--pretty'] : []), '-i', file]);
      if (isRaw(file)) {
        // CRIT refuses raw images by their first word; so must the codec, naming the same magic.
        t.false(expected.ok, `crit decoded raw image ${file}`);
        const magic = /Unknown magic (0x[0-9a-f]+)/.exec(expected.stderr)?.[1];
        const error = await t.throwsAsync(decodeImage(file, { pretty }), { instanceOf: UnknownMagicError });
        t.true(error !== undefined && magic !== undefined && error.message.includes(magic), `${file}: ${error?.message} vs crit ${magic}`);
        return 'raw';
      }
      t.true(expected.ok, `crit decode ${file}: ${expected.stderr}`);
      const image = await decodeImage(file, { pretty });
      t.is(`${formatImageJson(image, { pretty })}\n`, expected.stdout, file);
      t.deepEqual(image, parseImageJson(expected.stdout), file);
      return 'decoded';
    });
    t.true(results.filter((r) => r === 'decoded').length > 20);
    t.true(results.includes('raw'));
  });

  test(`encode(decode${pretty ? ' --pretty' : ''}(F)) is F, byte for byte`, async (t) => {
    for (const file of t.context.files.filter((f) => !isRaw(f))) {
      const bytes = await readFile(file);
      const image = await decodeImage(file, { pretty });
      t.true(encodeImage(image).equals(bytes), file);
      // Through the JSON text too, which is what `crit encode` reads.
      t.true(encodeImage(parseImageJson(formatImageJson(image, { pretty }))).equals(bytes), `${file} via text`);
    }
  });
}

test('crit encode of the codec JSON gives the same bytes', async (t) => {
  for (const file of t.context.files.filter((f) => /\/(files|pstree|core-1|mm-1|pagemap-1|ghost-file-\d+|pipes-data|fifo-data)\.img$/.test(f))) {
    const json = formatImageJson(await decodeImage(file, { pretty: true }), { pretty: true });
    const encoded = await crit(['encode'], json);
    t.true(encoded.ok, encoded.stderr);
    t.true(encoded.stdoutBytes.equals(await readFile(file)), file);
  }
});

test('imageInfo gives crit info, and the true count where crit miscounts payload images', async (t) => {
  for (const file of t.context.files.filter((f) => !isRaw(f))) {
    const info = await imageInfo(file);
    const decoded = await decodeImage(file);
    const entries = decoded.magic === 'PAGEMAP' ? decoded.entries.length - 1 : decoded.entries.length;
    t.deepEqual(info, { magic: decoded.magic, count: entries }, file);
    if (!['PIPES_DATA', 'FIFO_DATA', 'GHOST_FILE'].includes(info.magic)) {
      const expected = await crit(['info', file]);
      t.deepEqual(info, JSON.parse(expected.stdout), file);
    }
  }
});

test('crit show --nopl: payloads replaced by their size', async (t) => {
  for (const file of t.context.files.filter((f) => /\/(pipes-data|fifo-data|ghost-file-\d+)\.img$/.test(f))) {
    const expected = await crit(['show', '--nopl', file]);
    t.true(expected.ok, expected.stderr);
    t.is(`${formatImageJson(await decodeImage(file, { pretty: true, noPayload: true }), { pretty: true })}\n`, expected.stdout, file);
  }
});

test('the explorers print what crit x prints', async (t) => {
  const dir = t.context.checkpoint.imagesDir;
  const root = await explorePs(dir);
  t.is(root?.comm, 'sh');
  t.is(formatPs(root), (await crit(['x', dir, 'ps'])).stdout);
  const fds = await exploreFds(dir);
  t.true(fds.some((task) => task.fds.some((fd) => fd.file.startsWith('unix['))), 'syslogd socket listed');
  t.true(fds.some((task) => task.fds.some((fd) => /^pipe\[\d+\]$/.test(fd.file))), 'pipes listed');
  t.is(formatFds(fds), (await crit(['x', dir, 'fds'])).stdout);
  t.is(formatMems(await exploreMems(dir)), (await crit(['x', dir, 'mems'])).stdout);
  t.is(formatRss(await exploreRss(dir)), (await crit(['x', dir, 'rss'])).stdout);
});

test('streams: a path, a buffer and a Readable give the same entries, one at a time', async (t) => {
  const file = t.context.files.find((f) => f.endsWith('/files.img'))!;
  const whole = await decodeImage(file);
  const fromBuffer = await decodeImage(await readFile(file));
  t.deepEqual(fromBuffer, whole);
  const stream = await decodeImageStream(createReadStream(file, { highWaterMark: 7 }), { name: file });
  t.is(stream.magic, 'FILES');
  const entries = [];
  for await (const entry of stream) entries.push(entry);
  t.deepEqual(entries, whole.entries);
  // Breaking out early closes the file.
  const early = await decodeImageStream(file);
  for await (const _ of early) break;
  await t.notThrowsAsync(early.close());
});

test('writeImage streams entries into a file', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'runtime-images-write-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  for (const file of t.context.files.filter((f) => /\/(files|mm-1|pagemap-1|ghost-file-\d+)\.img$/.test(f))) {
    const stream = await decodeImageStream(file, { pretty: true });
    const out = path.join(dir, path.basename(file));
    await writeImage(out, stream);
    t.true((await readFile(out)).equals(await readFile(file)), file);
    const image: ImageJson = await decodeImage(file);
    await writeImage(out, image);
    t.true((await readFile(out)).equals(await readFile(file)), `${file} from an array`);
  }
});
