/**
 * The runtime side of the images benchmark's in-process comparison, run as its own Node process
 * so its peak RSS is its own: the library decodes every image of DIR to OUT/<name>.json the way
 * `runtime image decode --dir` does (decodeImageStream + formatImageJsonChunks, written to a file
 * stream), once to warm up and then ROUNDS times, each pass timed here (start-up and imports
 * excluded). bench/fixtures/pycriu-decode-dir.py --loop is its pycriu twin.
 *
 *   node dist/bench/images-loop.js ROUNDS DIR OUT
 *
 * Pass N writes to OUT/N, a new directory as for the CLI (rewriting files in place would time the
 * file system's truncation instead); the one before is removed between passes, untimed, so
 * OUT/ROUNDS holds the last. Prints {"ms": [...], "decoded": N, "skipped": [...], "maxRssKiB": N}
 * on stdout.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
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
  await mkdir(out, { recursive: true });
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
  const names = await decodeCandidates(dir);
  await decodePass(dir, path.join(out, '0'), names);
  const ms: number[] = [];
  let last = { decoded: 0, skipped: [] as string[] };
  for (let pass = 1; pass <= rounds; pass++) {
    await rm(path.join(out, String(pass - 1)), { recursive: true, force: true });
    const started = process.hrtime.bigint();
    last = await decodePass(dir, path.join(out, String(pass)), names);
    ms.push(Number(process.hrtime.bigint() - started) / 1e6);
  }
  process.stdout.write(`${JSON.stringify({ ms, ...last, maxRssKiB: process.resourceUsage().maxRSS })}\n`);
}

await main(process.argv.slice(2));
