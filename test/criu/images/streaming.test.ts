/**
 * Streaming: entries are decoded as the bytes arrive, a raw multi-GiB image is refused after its
 * first word, and errors name the file and the offset.
 */
import test from 'ava';
import { mkdtemp, open, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  CorruptImageError,
  decodeImage,
  decodeImageStream,
  encodeImage,
  ImageReadError,
  imageInfo,
  UnknownMagicError,
  UnsupportedImageError,
} from '../../../src/criu/images/index.js';
import { hasCommand } from './helpers.js';

const maybe = hasCommand('crit') ? test : test.skip;

maybe('entries come out while the input is still arriving', async (t) => {
  const count = 50_000;
  const entries = Array.from({ length: count }, (_, i) => ({ vaddr: 0x400000 + i * 4096, compat_nr_pages: 0, flags: 4, nr_pages: 1 + (i % 7) }));
  const bytes = encodeImage({ magic: 'PAGEMAP', entries: [{ pages_id: 1 }, ...entries] });
  let pulled = 0;
  async function* chunks(): AsyncGenerator<Uint8Array> {
    for (let i = 0; i < bytes.length; i += 4096) {
      pulled += 1;
      yield bytes.subarray(i, i + 4096);
    }
  }
  const stream = await decodeImageStream(chunks(), { name: 'pagemap-1.img' });
  let seen = 0;
  for await (const entry of stream) {
    if (seen === 1) t.true(pulled <= 2, `the first entries came after ${pulled} chunks`);
    if (seen > 0) t.is(entry.vaddr, entries[seen - 1]!.vaddr);
    seen++;
  }
  t.is(seen, count + 1);
  t.is(pulled, Math.ceil(bytes.length / 4096));
  t.deepEqual(await imageInfo(bytes), { magic: 'PAGEMAP', count });
});

maybe('a 4 GiB raw image is refused at once, by its first word', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'runtime-images-raw-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'pages-1.img');
  const handle = await open(file, 'w');
  await handle.write(Buffer.from([0x48, 0x83, 0xec, 0x08]));
  await handle.truncate(4 * 1024 ** 3);
  await handle.close();
  const started = Date.now();
  const error = await t.throwsAsync(decodeImage(file), { instanceOf: UnknownMagicError });
  t.is(error?.magic, 0x08ec8348);
  t.regex(error?.message ?? '', /pages-1\.img: unknown image magic 0x8ec8348/);
  await t.throwsAsync(imageInfo(file), { instanceOf: UnknownMagicError });
  t.true(Date.now() - started < 2000);
});

maybe('errors name the file, the offset and the reason', async (t) => {
  const bytes = encodeImage({
    magic: 'RLIMIT',
    entries: [
      { cur: 1, max: 2 },
      { cur: 3, max: 4 },
    ],
  });
  const cut = await t.throwsAsync(decodeImage(bytes.subarray(0, bytes.length - 1), { name: 'rlimit.img' }), { instanceOf: CorruptImageError });
  t.is(cut?.file, 'rlimit.img');
  t.is(cut?.offset, 16);
  t.regex(cut?.reason ?? '', /cut short/);
  const garbage = Buffer.from(bytes);
  garbage[8] = 0xff;
  garbage[9] = 0xff;
  garbage[10] = 0xff;
  garbage[11] = 0xff;
  const negative = await t.throwsAsync(decodeImage(garbage), { instanceOf: CorruptImageError });
  t.regex(negative?.message ?? '', /<buffer>: corrupt image at byte 8: entry size -1 is negative/);
  await t.throwsAsync(decodeImage(Buffer.from([0x19, 0x43])), { instanceOf: CorruptImageError, message: /2 bytes into the image magic/ });
  // KDAT has a magic but no pycriu handler.
  await t.throwsAsync(decodeImage(Buffer.from([0x19, 0x43, 0x56, 0x54, 0x58, 0x34, 0x02, 0x57])), { instanceOf: UnsupportedImageError });
  await t.throwsAsync(decodeImage('/nonexistent/core-1.img'), { instanceOf: ImageReadError, message: /ENOENT/ });
});
