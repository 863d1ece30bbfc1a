/**
 * The image codec against CRIT on a real checkpoint holding 1 GiB: a busybox container whose init
 * is memhog (bench/fixtures/memhog.c) is checkpointed, then every image file is decoded by
 * `crit decode` and by `runtime image decode` (a process per file, each under /usr/bin/time for
 * its peak RSS), and by the library in this process. Files crit refuses (pages-*.img and other
 * raw images) are only checked to be refused by both, quickly: neither reads the 1 GiB.
 * Prints a table and writes bench-results/images.json.
 *
 *   BENCH_IMAGES_MIB=1024     MiB the container holds
 *   BENCH_IMAGES_ROUNDS=3     rounds per file and tool (the median is kept)
 *   BENCH_IMAGE_DIR=DIR       put the checkpoint in DIR (default: the system temp directory)
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Runtime } from '../src/index.js';
import { decodeImageStream, formatImageJsonChunks } from '../src/criu/images/index.js';
import { Cleanup } from './cleanup.js';
import { BenchError } from './exec.js';
import { formatTable, round, summarize } from './stats.js';
import { buildMemhog, makeBundle, waitReady } from './workload.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const resultsFile = path.join(repoRoot, 'bench-results/images.json');
const cliPath = path.join(repoRoot, 'bin/runtime.js');
const timeBinary = '/usr/bin/time';
/** Files of the image directory that are the runtime's or CRIU's own, not images. */
const notImages = /^(runtime-checkpoint\.json|descriptors\.json|config\.json|.*\.log)$/;

interface Run {
  readonly ms: number;
  readonly maxRssKiB: number;
  readonly exitCode: number;
  readonly stderr: string;
}

/** Runs argv under `/usr/bin/time -f %M`: wall time from spawn to exit, and the child's peak RSS. */
async function measured(argv: readonly string[], scratch: string): Promise<Run> {
  const rssFile = path.join(scratch, 'rss');
  const started = process.hrtime.bigint();
  const child = spawn(timeBinary, ['-f', '%M', '-o', rssFile, ...argv], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    if (stderr.length < 4096) stderr += chunk.toString('utf8');
  });
  const exitCode = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  // time(1) writes "Command exited with non-zero status N" before the number when the command fails.
  const lines = (await readFile(rssFile, 'utf8')).trim().split('\n');
  return { ms, maxRssKiB: Number(lines.at(-1)), exitCode, stderr };
}

async function sameBytes(a: string, b: string): Promise<boolean> {
  const [x, y] = await Promise.all([readFile(a), readFile(b)]);
  return x.equals(y);
}

/** The library in this process: decode and format, streaming, to nowhere. */
async function libraryDecode(file: string): Promise<number> {
  const started = process.hrtime.bigint();
  let length = 0;
  for await (const chunk of formatImageJsonChunks(await decodeImageStream(file))) length += chunk.length;
  if (length === 0) throw new BenchError('BENCH_LIBRARY', `${file} decoded to nothing`);
  return Number(process.hrtime.bigint() - started) / 1e6;
}

interface FileResult {
  readonly file: string;
  readonly bytes: number;
  readonly decodedByCrit: boolean;
  readonly critMs: number;
  readonly cliMs: number;
  readonly libraryMs: number | null;
  readonly critMaxRssMiB: number;
  readonly cliMaxRssMiB: number;
  /** runtime CLI / crit wall time. */
  readonly ratio: number;
  /** The two outputs are byte for byte the same (decoded files), or both refused (raw ones). */
  readonly agree: boolean;
}

async function checkpointWorkload(cleanup: Cleanup, temp: string, imageRoot: string, mib: number): Promise<string> {
  const memhog = await buildMemhog(path.join(repoRoot, 'bench/fixtures/memhog.c'), path.join(repoRoot, 'node_modules/.cache/runtime-bench'));
  const bundle = path.join(temp, 'bundle');
  await makeBundle(repoRoot, bundle, memhog, mib);
  const runtime = Runtime.create({ stateRoot: path.join(temp, 'state'), checkpointRoot: path.join(temp, 'checkpoints'), logLevel: 'warn' });
  const id = `bench-images-${process.pid}`;
  cleanup.add(`delete container ${id}`, () => runtime.delete(id, { force: true }).catch(() => undefined));
  await runtime.run({ id, bundle });
  await waitReady(bundle, mib, 120_000);
  const imagePath = path.join(imageRoot, 'checkpoint');
  await runtime.checkpoint({ id, imagePath });
  return imagePath;
}

export async function runImagesBench(): Promise<void> {
  const mib = Number(process.env.BENCH_IMAGES_MIB ?? '1024');
  const rounds = Number(process.env.BENCH_IMAGES_ROUNDS ?? '3');
  if (!Number.isInteger(mib) || mib < 1 || !Number.isInteger(rounds) || rounds < 1) {
    throw new BenchError('BENCH_SETTING', 'BENCH_IMAGES_MIB and BENCH_IMAGES_ROUNDS must be positive integers');
  }
  if (process.getuid?.() !== 0)
    throw new BenchError('BENCH_NOT_ROOT', 'the images benchmark checkpoints a container and needs root', { hint: 'run `sudo npm run bench`' });
  if (!existsSync(timeBinary))
    throw new BenchError('BENCH_MISSING_TOOL', `${timeBinary} is missing (it measures the peak RSS)`, { hint: 'apt-get install time' });
  const critVersion = spawnSync('crit', ['--version'], { encoding: 'utf8' });
  if (critVersion.error || critVersion.status !== 0)
    throw new BenchError('BENCH_MISSING_TOOL', '`crit --version` failed', { hint: 'run scripts/install-criu.sh as root' });
  if (!existsSync(path.join(repoRoot, 'dist/src/runtime/cli/main.js')))
    throw new BenchError('BENCH_NOT_BUILT', 'the CLI is not built', { hint: 'npm run build' });

  const cleanup = new Cleanup();
  try {
    const temp = await mkdtemp(path.join(os.tmpdir(), 'runtime-bench-images-'));
    cleanup.add(`remove ${temp}`, () => rm(temp, { recursive: true, force: true }));
    let imageRoot = temp;
    if (process.env.BENCH_IMAGE_DIR) {
      await mkdir(process.env.BENCH_IMAGE_DIR, { recursive: true });
      imageRoot = await mkdtemp(path.join(path.resolve(process.env.BENCH_IMAGE_DIR), 'runtime-bench-images-'));
      cleanup.add(`remove ${imageRoot}`, () => rm(imageRoot, { recursive: true, force: true }));
    }
    process.stderr.write(`bench images: checkpointing a container holding ${mib} MiB\n`);
    const checkpointed = Date.now();
    const images = await checkpointWorkload(cleanup, temp, imageRoot, mib);
    const checkpointSeconds = (Date.now() - checkpointed) / 1000;
    const scratch = path.join(temp, 'out');
    await mkdir(scratch);

    const names = (await readdir(images, { withFileTypes: true }))
      .filter((e) => e.isFile() && !notImages.test(e.name))
      .map((e) => e.name)
      .sort();
    process.stderr.write(`bench images: ${names.length} files, ${rounds} rounds each, crit decode vs runtime image decode vs the library\n`);
    const results: FileResult[] = [];
    const started = Date.now();
    for (const name of names) {
      const file = path.join(images, name);
      const { size } = await stat(file);
      const critOut = path.join(scratch, 'crit.json');
      const cliOut = path.join(scratch, 'runtime.json');
      const crit: Run[] = [];
      const cli: Run[] = [];
      const library: number[] = [];
      for (let round = 0; round < rounds; round++) {
        // Alternate who goes first, so neither always gets the warm page cache.
        const order = round % 2 === 0 ? ['crit', 'cli'] : ['cli', 'crit'];
        for (const tool of order) {
          if (tool === 'crit') crit.push(await measured(['crit', 'decode', '-i', file, '-o', critOut], scratch));
          else cli.push(await measured([process.execPath, cliPath, 'image', 'decode', '-i', file, '-o', cliOut], scratch));
        }
      }
      const decodedByCrit = crit.every((r) => r.exitCode === 0);
      if (decodedByCrit) {
        for (let round = 0; round < rounds; round++) library.push(await libraryDecode(file));
      }
      const agree = decodedByCrit ? cli.every((r) => r.exitCode === 0) && (await sameBytes(critOut, cliOut)) : cli.every((r) => r.exitCode !== 0);
      const median = (runs: readonly number[]) => summarize(runs).median;
      const critMs = median(crit.map((r) => r.ms));
      const cliMs = median(cli.map((r) => r.ms));
      results.push({
        file: name,
        bytes: size,
        decodedByCrit,
        critMs: round(critMs),
        cliMs: round(cliMs),
        libraryMs: library.length > 0 ? round(median(library), 2) : null,
        critMaxRssMiB: round(Math.max(...crit.map((r) => r.maxRssKiB)) / 1024),
        cliMaxRssMiB: round(Math.max(...cli.map((r) => r.maxRssKiB)) / 1024),
        ratio: round(cliMs / critMs, 2),
        agree,
      });
    }
    // The whole directory in one runtime process, against crit started once per file (the sum).
    const wholeDir: Run[] = [];
    for (let r = 0; r < rounds; r++) {
      const out = path.join(scratch, `dir-${r}`);
      wholeDir.push(await measured([process.execPath, cliPath, 'image', 'decode', '--dir', images, '-o', out], scratch));
    }
    const elapsedSeconds = (Date.now() - started) / 1000;

    const decoded = results.filter((r) => r.decodedByCrit);
    const refused = results.filter((r) => !r.decodedByCrit);
    const sum = (values: readonly number[]) => values.reduce((a, b) => a + b, 0);
    const totals = {
      files: decoded.length,
      bytes: sum(decoded.map((r) => r.bytes)),
      critMs: round(sum(decoded.map((r) => r.critMs))),
      cliMs: round(sum(decoded.map((r) => r.cliMs))),
      libraryMs: round(sum(decoded.map((r) => r.libraryMs ?? 0)), 2),
      cliToCrit: round(sum(decoded.map((r) => r.cliMs)) / sum(decoded.map((r) => r.critMs)), 2),
      libraryToCrit: round(sum(decoded.map((r) => r.libraryMs ?? 0)) / sum(decoded.map((r) => r.critMs)), 3),
      critMaxRssMiB: Math.max(...decoded.map((r) => r.critMaxRssMiB)),
      cliMaxRssMiB: Math.max(...decoded.map((r) => r.cliMaxRssMiB)),
      allAgree: results.every((r) => r.agree),
      /** `runtime image decode --dir` (one process for every file), wall time and peak RSS. */
      cliDirMs: round(summarize(wholeDir.map((r) => r.ms)).median),
      cliDirMaxRssMiB: round(Math.max(...wholeDir.map((r) => r.maxRssKiB)) / 1024),
      cliDirToCrit: 0,
    };
    totals.cliDirToCrit = round(totals.cliDirMs / totals.critMs, 3);
    const report = {
      benchmark: 'images',
      date: new Date().toISOString(),
      host: {
        node: process.version,
        crit: critVersion.stdout.trim(),
        kernel: os.release(),
        cpu: os.cpus()[0]?.model ?? 'unknown',
        cpus: os.cpus().length,
      },
      setup: {
        workload: `busybox bundle whose init is bench/fixtures/memhog.c holding ${mib} MiB, checkpointed by the runtime (library)`,
        rounds,
        measured: {
          crit: '`crit decode -i FILE -o OUT`, a process per file, wall time and peak RSS (/usr/bin/time %M)',
          'runtime-cli': '`node bin/runtime.js image decode -i FILE -o OUT`, the same way',
          library: 'decodeImageStream + formatImageJsonChunks in the benchmark process (no start-up), output discarded',
          refused: 'files crit refuses (raw pages-*.img, *.tar.gz.img and network dumps after their first word; empty files): both must refuse them',
        },
        checkpointSeconds: round(checkpointSeconds),
        imagesMiB: round(sum(results.map((r) => r.bytes)) / 2 ** 20),
        elapsedSeconds: round(elapsedSeconds),
        benchmarkProcessMaxRssMiB: round(process.resourceUsage().maxRSS / 1024),
      },
      totals,
      files: results,
    };

    const size = (bytes: number) =>
      bytes >= 2 ** 20 ? `${(bytes / 2 ** 20).toFixed(1)} MiB` : bytes >= 1024 ? `${(bytes / 1024).toFixed(1)} KiB` : `${bytes} B`;
    const rowOf = (r: FileResult) => [
      r.file,
      size(r.bytes),
      r.critMs.toFixed(0),
      r.cliMs.toFixed(0),
      r.libraryMs === null ? '-' : r.libraryMs.toFixed(2),
      r.ratio.toFixed(2),
      r.critMaxRssMiB.toFixed(1),
      r.cliMaxRssMiB.toFixed(1),
      r.agree ? 'yes' : 'NO',
    ];
    const header = ['file', 'size', 'crit ms', 'runtime CLI ms', 'library ms', 'CLI/crit', 'crit peak MiB', 'CLI peak MiB', 'same'];
    const bySize = [...decoded].sort((a, b) => b.bytes - a.bytes);
    const table = formatTable(header, [
      ...bySize.map(rowOf),
      [
        'all decoded',
        size(totals.bytes),
        totals.critMs.toFixed(0),
        totals.cliMs.toFixed(0),
        totals.libraryMs.toFixed(2),
        totals.cliToCrit.toFixed(2),
        totals.critMaxRssMiB.toFixed(1),
        totals.cliMaxRssMiB.toFixed(1),
        totals.allAgree ? 'yes' : 'NO',
      ],
    ]);
    const refusedTable = formatTable(
      ['refused by crit (raw)', 'size', 'crit ms', 'runtime CLI ms', 'crit peak MiB', 'CLI peak MiB', 'both refuse'],
      refused.map((r) => [
        r.file,
        size(r.bytes),
        r.critMs.toFixed(0),
        r.cliMs.toFixed(0),
        r.critMaxRssMiB.toFixed(1),
        r.cliMaxRssMiB.toFixed(1),
        r.agree ? 'yes' : 'NO',
      ]),
    );
    process.stdout.write(
      `\ndecoding the images of a ${mib} MiB checkpoint (${report.setup.imagesMiB} MiB of files), median of ${rounds} rounds; ` +
        `library = in this process, without start-up\n\n${table}\n\n${refusedTable}\n` +
        `\nall images in one call, \`runtime image decode --dir\`: ${totals.cliDirMs.toFixed(0)} ms (peak ${totals.cliDirMaxRssMiB.toFixed(1)} MiB) ` +
        `against ${totals.critMs.toFixed(0)} ms for crit decode once per file: ratio ${totals.cliDirToCrit.toFixed(3)}\n`,
    );
    await mkdir(path.dirname(resultsFile), { recursive: true });
    await writeFile(resultsFile, `${JSON.stringify(report, null, 2)}\n`);
    process.stdout.write(`\nwritten to ${path.relative(process.cwd(), resultsFile)} (${elapsedSeconds.toFixed(0)} s)\n`);
    if (!totals.allAgree) throw new BenchError('BENCH_MISMATCH', 'runtime image decode and crit decode disagree on some files (see "same" above)');
  } finally {
    await cleanup.run();
  }
}
