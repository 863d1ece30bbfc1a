/**
 * The runtime side of the images benchmark's in-process comparison, run as its own Node process
 * so its peak RSS is its own: the library decodes every image of DIR to OUT/<name>.json the way
 * `runtime image decode --dir` does (decodeImageStream + formatImageJsonChunks, written to a file
 * stream), once to warm up and then ROUNDS times, each pass timed here (start-up and imports
 * excluded). bench/fixtures/pycriu-decode-dir.py --loop is its pycriu twin.
 *
 *   node dist/bench/images-loop.js ROUNDS DIR OUT
 *
 * Prints {"ms": [...], "decoded": N, "skipped": [...], "maxRssKiB": N} on stdout.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, readdir } from 'node:fs/promises';
import { once } from 'node:events';
import path from 'node:path';
import { decodeImageStream, formatImageJsonChunks } from '../src/criu/images/index.js';
import { RuntimeError } from '../src/runtime/errors.js';

/** The files `runtime image decode --dir` tries, in its order. */
async function decodeCandidates(dir: string): Promise<string[]> {
  return (await readdir(dir, { withFileTypes: true }))
    .filter((e) => e.isFile() && (e.name.endsWith('.img') || e.name.startsWith('stats-')))
    .map((e) => e.name)
    .sort();
}

/** One pass: what src/runtime/cli/commands/image.ts decodeDirectory does, without its messages. */
async function decodePass(dir: string, out: string, names: readonly string[]): Promise<{ decoded: number; skipped: string[] }> {
  let decoded = 0;
  const skipped: string[] = [];
  for (const name of names) {
    let image;
    try {
      image = await decodeImageStream(path.join(dir, name));
    } catch (error) {
      if (error instanceof RuntimeError) {
        skipped.push(`${name}: ${error.name}`);
        continue;
      }
      throw error;
    }
    const stream = createWriteStream(path.join(out, `${name}.json`));
    try {
      for await (const chunk of formatImageJsonChunks(image)) {
        if (!stream.write(chunk)) await once(stream, 'drain');
      }
    } finally {
      await image.close();
      stream.end();
      await once(stream, 'finish');
    }
    decoded++;
  }
  return { decoded, skipped };
}

async function main([roundsText, dir, out]: string[]): Promise<void> {
  const rounds = Number(roundsText);
  if (!Number.isInteger(rounds) || rounds < 1 || !dir || !out) {
    process.stderr.write('usage: node dist/bench/images-loop.js ROUNDS DIR OUT\n');
    process.exitCode = 2;
    return;
  }
  await mkdir(out, { recursive: true });
  const names = await decodeCandidates(dir);
  await decodePass(dir, out, names);
  const ms: number[] = [];
  let last = { decoded: 0, skipped: [] as string[] };
  for (let round = 0; round < rounds; round++) {
    const started = process.hrtime.bigint();
    last = await decodePass(dir, out, names);
    ms.push(Number(process.hrtime.bigint() - started) / 1e6);
  }
  process.stdout.write(`${JSON.stringify({ ms, ...last, maxRssKiB: process.resourceUsage().maxRSS })}\n`);
}

await main(process.argv.slice(2));
