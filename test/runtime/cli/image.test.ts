/** `runtime image ...` through main(), against crit on the stored fixture images. */
import anyTest, { type TestFn } from 'ava';
import { chmod, cp, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { decodeImage, encodeImage } from '../../../src/criu/images/index.js';
import { main } from '../../../src/runtime/cli/main.js';
import type { CommandIo } from '../../../src/runtime/cli/command.js';
import { crit, hasCommand, requiring, storedImagesDir } from '../../criu/images/helpers.js';
import { inspectImagesDir } from '../inspection/helpers.js';
import { tempDir } from '../fixtures.js';

const test = requiring(
  anyTest as TestFn,
  'image command tests (crit)',
  hasCommand('crit') ? undefined : 'crit is not installed (run scripts/install-criu.sh)',
);

async function run(argv: readonly string[], input?: Buffer): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  const stdin = new PassThrough();
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  stdout.on('data', (chunk: Buffer) => out.push(chunk));
  stderr.on('data', (chunk: Buffer) => err.push(chunk));
  if (input) stdin.end(input);
  else stdin.end();
  const code = await main(argv, { stdin, stdout, stderr } as unknown as CommandIo);
  return { code, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8') };
}

test('decode prints what crit decode prints (plain, --pretty, from stdin, to a file)', async (t) => {
  for (const name of ['files.img', 'core-1.img', 'mountpoints-13.img', 'pagemap-1.img', 'stats-dump']) {
    const file = path.join(inspectImagesDir, name);
    for (const pretty of [[], ['--pretty']]) {
      const expected = await crit(['decode', '-i', file, ...pretty]);
      t.is((await run(['image', 'decode', '-i', file, ...pretty])).stdout.toString('utf8'), expected.stdout, `${name} ${pretty.join('')}`);
    }
  }
  const file = path.join(storedImagesDir, 'pipes-data.img');
  const viaStdin = await run(['image', 'decode'], await readFile(file));
  t.is(viaStdin.stdout.toString('utf8'), (await crit(['decode', '-i', file])).stdout);
  const dir = await tempDir(t);
  t.is((await run(['image', 'decode', '--pretty', '-i', file, '-o', path.join(dir, 'runtime.json')])).code, 0);
  t.is((await crit(['decode', '--pretty', '-i', file, '-o', path.join(dir, 'crit.json')])).ok, true);
  t.deepEqual(await readFile(path.join(dir, 'runtime.json')), await readFile(path.join(dir, 'crit.json')), 'no newline at the end of a file, as crit');
});

test('encode turns the JSON back into the same bytes, to a file or stdout', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(inspectImagesDir, 'files.img');
  const json = path.join(dir, 'files.json');
  await run(['image', 'decode', '--pretty', '-i', file, '-o', json]);
  t.is((await run(['image', 'encode', '-i', json, '-o', path.join(dir, 'files.img')])).code, 0);
  t.deepEqual(await readFile(path.join(dir, 'files.img')), await readFile(file));
  t.deepEqual((await run(['image', 'encode'], await readFile(json))).stdout, await readFile(file));
});

test('encode -o of wrong JSON leaves the image it would replace as it was; of good JSON replaces it, keeping its mode', async (t) => {
  const dir = await tempDir(t);
  const image = path.join(dir, 'files.img');
  await cp(path.join(inspectImagesDir, 'files.img'), image);
  await chmod(image, 0o600);
  const original = await readFile(image);
  const json = path.join(dir, 'files.json');
  await run(['image', 'decode', '-i', image, '-o', json]);
  const decoded = JSON.parse(await readFile(json, 'utf8')) as { entries: Record<string, unknown>[] };
  // An entry the schema refuses, after good ones: a streaming encoder would have written those.
  await writeFile(path.join(dir, 'wrong.json'), JSON.stringify({ ...decoded, entries: [...decoded.entries, { id: 'not a number', type: 'REG' }] }));
  const wrong = await run(['image', 'encode', '-i', path.join(dir, 'wrong.json'), '-o', image]);
  t.not(wrong.code, 0);
  t.deepEqual(await readFile(image), original, 'the image is untouched');
  t.deepEqual((await readdir(dir)).sort(), ['files.img', 'files.json', 'wrong.json'], 'nothing left aside');

  await writeFile(path.join(dir, 'renamed.json'), JSON.stringify(decoded).replace('/bin/busybox', '/bin/busyboy'));
  t.is((await run(['image', 'encode', '-i', path.join(dir, 'renamed.json'), '-o', image])).code, 0);
  t.not(Buffer.compare(await readFile(image), original), 0);
  t.is((await stat(image)).mode & 0o777, 0o600, 'the replaced image keeps its mode');
});

test('info, show --nopl and x print what crit prints', async (t) => {
  // crit info miscounts payload images (the codec's README): compare on a plain one.
  const pstree = path.join(storedImagesDir, 'pstree.img');
  t.is((await run(['image', 'info', pstree])).stdout.toString('utf8'), (await crit(['info', pstree])).stdout);
  const file = path.join(storedImagesDir, 'pipes-data.img');
  t.is((await run(['image', 'show', file, '--nopl'])).stdout.toString('utf8'), (await crit(['show', file, '--nopl'])).stdout);
  for (const what of ['ps', 'fds', 'mems']) {
    t.is((await run(['image', 'x', inspectImagesDir, what])).stdout.toString('utf8'), (await crit(['x', inspectImagesDir, what])).stdout, what);
  }
  // The fixture is from CRIU 4.1.1, whose pagemaps hold the count in field 2 (compat_nr_pages to
  // CRIU 4.2); CRIT 4.2's rss reads only nr_pages and fails on them. Compare on a copy whose
  // pagemaps are written as CRIU 4.2 writes them; the runtime reads both the same.
  t.false((await crit(['x', inspectImagesDir, 'rss'])).ok, 'crit x rss was expected to fail on CRIU 4.1.1 pagemaps');
  const converted = await tempDir(t);
  await cp(inspectImagesDir, converted, { recursive: true });
  for (const name of (await readdir(converted)).filter((n) => /^pagemap-\d+\.img$/.test(n))) {
    const image = await decodeImage(path.join(converted, name));
    const entries = image.entries.map((e, i) => (i === 0 ? e : { ...e, compat_nr_pages: 0, nr_pages: e.compat_nr_pages! }));
    await writeFile(path.join(converted, name), encodeImage({ ...image, entries }));
  }
  const rss = await crit(['x', converted, 'rss']);
  t.true(rss.ok, rss.stderr);
  t.is((await run(['image', 'x', converted, 'rss'])).stdout.toString('utf8'), rss.stdout, 'rss');
  t.is((await run(['image', 'x', inspectImagesDir, 'rss'])).stdout.toString('utf8'), rss.stdout, 'rss of CRIU 4.1.1 pagemaps');
});

test('a raw image is refused; wrong flags and subcommands are usage errors', async (t) => {
  const raw = await run(['image', 'decode', '-i', path.join(storedImagesDir, 'pages-1.img')]);
  t.is(raw.code, 1);
  t.regex(raw.stderr, /unknown image magic/);
  t.is((await run(['image', 'info', path.join(storedImagesDir, 'pstree.img'), '--pretty'])).code, 2);
  t.is((await run(['image', 'frobnicate'])).code, 2);
  t.is((await run(['image', 'x', inspectImagesDir, 'cpu'])).code, 2);
  t.is((await run(['image', 'show'])).code, 2);
  const help = await run(['image', '--help']);
  t.regex(help.stdout.toString('utf8'), /subcommands:\n  decode/);
});

test('decode --dir writes every image of a checkpoint as crit decode -o would, and skips raw ones', async (t) => {
  const out = await tempDir(t);
  const result = await run(['image', 'decode', '--dir', storedImagesDir, '-o', out]);
  t.is(result.code, 0, result.stderr);
  t.regex(result.stderr, /skipped pages-1\.img: .*unknown image magic/);
  for (const name of ['pstree.img', 'core-1.img', 'files.img', 'mountpoints-13.img']) {
    const file = path.join(storedImagesDir, name);
    const expected = path.join(out, `${name}.crit.json`);
    await crit(['decode', '-i', file, '-o', expected]);
    t.deepEqual(await readFile(path.join(out, `${name}.json`)), await readFile(expected), name);
  }
  t.is((await run(['image', 'decode', '--dir', storedImagesDir])).code, 2, 'an output directory is required');
});

// Serial: it changes RUNTIME_PYCRIU_DIR for this process (ava runs serial tests before the others).
test.serial('decode --dir without the message definitions fails instead of skipping every image', async (t) => {
  const saved = process.env.RUNTIME_PYCRIU_DIR;
  process.env.RUNTIME_PYCRIU_DIR = path.join(await tempDir(t), 'no-pycriu-here');
  try {
    const result = await run(['image', 'decode', '--dir', storedImagesDir, '-o', await tempDir(t)]);
    t.is(result.code, 1);
    t.regex(result.stderr, /CRIU image descriptors not found/);
    t.notRegex(result.stderr, /skipped/);
  } finally {
    if (saved === undefined) delete process.env.RUNTIME_PYCRIU_DIR;
    else process.env.RUNTIME_PYCRIU_DIR = saved;
  }
});
