/**
 * A bounded fuzz run over mutated and truncated images (the stored checkpoint images and the
 * synthetic ones) and mutated JSON: every call resolves or rejects with a RuntimeError, none hangs.
 * The loop runs in a worker that is killed when it stops reporting; set RUNTIME_FUZZ_SEED to replay.
 */
import test from 'ava';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { CorruptImageError, decodeImage, encodeImage, type ImageJson } from '../../../src/criu/images/index.js';
import { syntheticImages } from '../../fixtures/images/synthetic.js';
import type { FuzzInput, FuzzMessage } from './fuzz-worker.js';
import { storedImagesDir } from './helpers.js';

const milliseconds = Number(process.env.RUNTIME_FUZZ_MS ?? 2000);
/** A case that takes longer than this is a hang. */
const hangMs = 10_000;

async function seeds(): Promise<{ bytes: Uint8Array[]; images: ImageJson[] }> {
  const bytes: Uint8Array[] = [];
  const images: ImageJson[] = [];
  for (const name of (await readdir(storedImagesDir)).sort()) {
    const file = await readFile(path.join(storedImagesDir, name));
    bytes.push(name.startsWith('pages-') ? file.subarray(0, 64) : file);
    if (!name.startsWith('pages-')) images.push(await decodeImage(file, { pretty: name.length % 2 === 0 }));
  }
  for (const { image } of syntheticImages) {
    bytes.push(encodeImage(image));
    images.push(image);
  }
  return { bytes, images };
}

test('every prefix of an image decodes or fails with CorruptImageError', async (t) => {
  for (const name of ['files.img', 'pagemap-1.img', 'pipes-data.img', 'ghost-file-1.img', 'core-1.img']) {
    const bytes = await readFile(path.join(storedImagesDir, name));
    let complete = 0;
    for (let length = 0; length < bytes.length; length++) {
      try {
        await decodeImage(bytes.subarray(0, length));
        complete++;
      } catch (error) {
        t.true(error instanceof CorruptImageError, `${name}[0, ${length}): ${String(error)}`);
        const corrupt = error as CorruptImageError;
        t.true(corrupt.offset >= 0 && corrupt.offset <= length, `${name}: offset ${corrupt.offset} beyond ${length}`);
      }
    }
    t.log(`${name}: ${complete} of ${bytes.length} prefixes end on an entry boundary`);
  }
});

test(`fuzz for ${milliseconds} ms: no hang, no crash, only RuntimeErrors`, async (t) => {
  const { bytes, images } = await seeds();
  const seed = Number(process.env.RUNTIME_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
  t.log(`seed ${seed} (replay with RUNTIME_FUZZ_SEED=${seed})`);
  const workerData: FuzzInput = { seeds: bytes, images, seed, milliseconds };
  const worker = new Worker(new URL('./fuzz-worker.js', import.meta.url), { workerData });
  const bad: FuzzMessage[] = [];
  let last: FuzzMessage | undefined;
  const result = await new Promise<FuzzMessage & { kind: 'done' }>((resolve, reject) => {
    let watchdog = setTimeout(() => undefined, 0);
    const arm = (): void => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => {
        void worker.terminate();
        reject(new Error(`hang: no progress for ${hangMs} ms in ${JSON.stringify(last)}`));
      }, hangMs);
    };
    arm();
    worker.on('message', (message: FuzzMessage) => {
      if (message.kind === 'done') {
        clearTimeout(watchdog);
        resolve(message);
        return;
      }
      if (message.kind === 'bad') bad.push(message);
      last = message;
      arm();
    });
    worker.on('error', (error) => {
      clearTimeout(watchdog);
      reject(new Error(`the fuzz worker crashed in ${JSON.stringify(last)}`, { cause: error }));
    });
  });
  await worker.terminate();
  t.log(`${result.cases} cases: ${JSON.stringify(result.outcomes)}`);
  t.deepEqual(bad, [], 'calls that threw something other than a RuntimeError');
  t.true(result.cases > 10);
});
