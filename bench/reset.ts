/**
 * The reset benchmark (issue "pristine reset"): reset latency of containers holding 16, 256 and
 * 1024 MiB, by `runtime reset` (eager and lazy, with the monitor's standby and without), against
 * `runc restore` of the same workload's images and against a cold start of the same workload to
 * the same state, in one run. Prints medians and ratios to runc restore as a table with the
 * issue's three targets, and writes them with every sample to bench-results/reset.json.
 *
 *   BENCH_RESET_ROUNDS=5             measured rounds per series (one warm-up round more, discarded)
 *   BENCH_RESET_SIZES=16,256,1024    MiB the container holds
 *   BENCH_RESET_SERIES=a,b           only these series (names in bench/reset-series.ts)
 *   BENCH_RESET_CLI=0                leave out the CLI (reset-eager-standby-cli and cli-startup)
 *   BENCH_RESET_PAUSE_MS=100         idle time after the monitor settled, before the next reset
 *   BENCH_RESET_VERIFY=every         memhog checks every byte after every round, not only the last
 *   BENCH_IMAGE_DIR=DIR              put images and state in DIR instead of a tmpfs
 */
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Runtime } from '../src/index.js';
import type { Cleanup } from './cleanup.js';
import { BenchError } from './exec.js';
import { buildReport, renderReport, type ResetSettings } from './reset-report.js';
import { allSeries, type ResetSample, type SeriesName, type SizeFacts } from './reset-series.js';
import { benchmarkResetSize } from './reset-size.js';
import { Runc } from './tools.js';
import { buildMemhog } from './workload.js';

function settingsFromEnvironment(environment: NodeJS.ProcessEnv): ResetSettings {
  const integer = (name: string, text: string, minimum: number): number => {
    const value = Number(text);
    if (!Number.isInteger(value) || value < minimum) throw new BenchError('BENCH_SETTING', `${name}=${text}: expected an integer of at least ${minimum}`);
    return value;
  };
  const known = allSeries.map((series) => series.name);
  let series: SeriesName[] = known;
  if (environment.BENCH_RESET_SERIES) {
    series = environment.BENCH_RESET_SERIES.split(',').map((name) => name.trim()) as SeriesName[];
    const unknown = series.filter((name) => !known.includes(name));
    if (unknown.length > 0)
      throw new BenchError('BENCH_SETTING', `BENCH_RESET_SERIES: unknown ${unknown.join(', ')}`, { hint: `the series are ${known.join(', ')}` });
  }
  if (environment.BENCH_RESET_CLI === '0') series = series.filter((name) => name !== 'reset-eager-standby-cli' && name !== 'cli-startup');
  return {
    rounds: integer('BENCH_RESET_ROUNDS', environment.BENCH_RESET_ROUNDS ?? '5', 1),
    warmupRounds: 1,
    sizesMiB: (environment.BENCH_RESET_SIZES ?? '16,256,1024').split(',').map((size) => integer('BENCH_RESET_SIZES', size.trim(), 1)),
    series: known.filter((name) => series.includes(name)),
    pauseMs: integer('BENCH_RESET_PAUSE_MS', environment.BENCH_RESET_PAUSE_MS ?? '100', 0),
    settleTimeoutMs: 60_000,
    verifyEveryRound: environment.BENCH_RESET_VERIFY === 'every',
    storageDir: environment.BENCH_IMAGE_DIR || undefined,
  };
}

function version(command: string, packageName: string): string {
  const result = spawnSync(command, ['--version'], { encoding: 'utf8' });
  if (result.error || result.status !== 0) {
    throw new BenchError('BENCH_MISSING_TOOL', `\`${command} --version\` failed: ${result.error?.message ?? result.stderr.trim()}`, {
      hint: `install ${packageName}`,
    });
  }
  return `${result.stdout}${result.stderr}`.trim().split('\n')[0]!;
}

function findmntFstype(dir: string): string {
  const result = spawnSync('findmnt', ['-n', '-o', 'FSTYPE', '--target', dir], { encoding: 'utf8' });
  return result.status === 0 ? result.stdout.trim() : 'unknown';
}

/** Mount points at or below `dir`, deepest first (from /proc/self/mountinfo). */
async function mountsBelow(dir: string): Promise<string[]> {
  const unescape = (field: string) => field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
  const points = (await readFile('/proc/self/mountinfo', 'utf8'))
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => unescape(line.split(' ')[4]!));
  return [...new Set(points.filter((point) => point === dir || point.startsWith(`${dir}/`)))].sort().reverse();
}

/** Runs the reset benchmark; `repoRoot` holds bin/runtime.js and bench/fixtures. */
export async function benchmarkReset(repoRoot: string, cleanup: Cleanup, abort: AbortSignal): Promise<void> {
  const settings = settingsFromEnvironment(process.env);
  if (process.getuid?.() !== 0) throw new BenchError('BENCH_NOT_ROOT', 'reset and restore need root', { hint: 'run `sudo npm run bench`' });
  const versions = { node: process.version, criu: version('criu', 'criu'), runc: version('runc', 'runc'), kernel: os.release() };
  const memhog = await buildMemhog(path.join(repoRoot, 'bench/fixtures/memhog.c'), path.join(repoRoot, 'node_modules/.cache/runtime-bench'));

  // Short paths: the lazy-pages daemon's socket lives under the state directory, and a unix
  // socket's path has to fit in 108 bytes.
  const temp = await mkdtemp(path.join(os.tmpdir(), 'rb-'));
  const anomalies: string[] = [];
  cleanup.add(`remove ${temp}`, async () => {
    // Nothing may be left mounted when the directory goes (rm would reach through a mount):
    // the tmpfs when its unmount failed, and whatever the runtime left mounted on it.
    const left = await mountsBelow(temp);
    for (const point of left) spawnSync('umount', ['-l', point]);
    if (left.length > 0) process.stderr.write(`bench: unmounted what was left mounted below ${temp}: ${left.join(', ')}\n`);
    await rm(temp, { recursive: true, force: true });
  });
  let storage: string;
  // The runtime's snapshots and state and runc's images on a tmpfs by default, like the
  // checkpoint-restore benchmark: the comparison is of the restores' work, not of the disk.
  if (settings.storageDir) {
    await mkdir(settings.storageDir, { recursive: true });
    const dir = await mkdtemp(path.join(path.resolve(settings.storageDir), 'rb-'));
    storage = dir;
    cleanup.add(`remove ${dir}`, async () => {
      for (const point of await mountsBelow(dir)) spawnSync('umount', ['-l', point]);
      await rm(dir, { recursive: true, force: true });
    });
  } else {
    const tmpfs = path.join(temp, 'm');
    storage = tmpfs;
    await mkdir(tmpfs);
    // The snapshot and runc's images of the largest size, and room for overlay upper layers.
    const tmpfsMiB = Math.max(...settings.sizesMiB) * 2 + 512;
    const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${tmpfsMiB}m,mode=0700`, 'runtime-bench-reset', tmpfs], { encoding: 'utf8' });
    if (mount.status !== 0)
      throw new BenchError('BENCH_TMPFS', `could not mount a tmpfs on ${tmpfs}: ${mount.stderr.trim()}`, {
        hint: 'set BENCH_IMAGE_DIR to use a directory instead',
      });
    cleanup.add(`unmount ${tmpfs}`, () => {
      const umount = spawnSync('umount', [tmpfs], { encoding: 'utf8' });
      if (umount.status !== 0) throw new Error(umount.stderr.trim());
    });
  }
  const storageText = `${findmntFstype(storage)} (${storage})`;

  const stateRoot = path.join(storage, 's');
  const checkpointRoot = path.join(storage, 'c');
  const imagesDir = path.join(storage, 'runc-images');
  await mkdir(imagesDir, { recursive: true });
  const runtime = Runtime.create({ stateRoot, checkpointRoot, logLevel: 'warn' });
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('RUNTIME_')));
  const cliEnv = { ...inherited, RUNTIME_ROOT: stateRoot, RUNTIME_CHECKPOINT_ROOT: checkpointRoot, RUNTIME_LOG_LEVEL: 'warn' };
  const runc = await Runc.create(path.join(temp, 'runc'));
  cleanup.add('close the runc stdio pipes', () => runc.close());

  process.stderr.write(
    `bench: reset, ${settings.rounds} rounds (+${settings.warmupRounds} warm-up) per series and size, sizes ${settings.sizesMiB.join(', ')} MiB; ` +
      `state and images on ${storageText}\n`,
  );
  const started = Date.now();
  const loadBefore = os.loadavg();
  const samples: ResetSample[] = [];
  const facts: SizeFacts[] = [];
  for (const sizeMiB of settings.sizesMiB) {
    const workDir = path.join(temp, `size-${sizeMiB}`);
    await mkdir(workDir);
    const result = await benchmarkResetSize({
      sizeMiB,
      rounds: settings.rounds,
      warmupRounds: settings.warmupRounds,
      series: allSeries.filter((series) => settings.series.includes(series.name)),
      repoRoot,
      memhog,
      workDir,
      imagesDir,
      runtime,
      cliEnv,
      cliLog: path.join(temp, 'runtime-cli.log'),
      runc,
      pauseMs: settings.pauseMs,
      settleTimeoutMs: settings.settleTimeoutMs,
      verifyEveryRound: settings.verifyEveryRound,
      cleanup,
      abort,
      anomalies,
    });
    samples.push(...result.samples);
    facts.push(result.facts);
    // What a deleted container leaves behind is a leak worth reporting.
    const left = [...new Set([...(await mountsBelow(temp)), ...(await mountsBelow(storage))])].filter((point) => point !== storage);
    if (left.length > 0) anomalies.push(`${sizeMiB} MiB: still mounted after every container was deleted: ${left.join(', ')}`);
  }
  const elapsedSeconds = (Date.now() - started) / 1000;

  const report = buildReport(settings, samples, {
    versions,
    storage: storageText,
    elapsedSeconds,
    facts,
    anomalies,
    load: { before: loadBefore, after: os.loadavg() },
  });
  process.stdout.write(`\n${renderReport(settings, report)}\n`);
  const resultsFile = path.join(repoRoot, 'bench-results/reset.json');
  await mkdir(path.dirname(resultsFile), { recursive: true });
  await writeFile(resultsFile, `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(`\nwritten to ${path.relative(process.cwd(), resultsFile)} (${elapsedSeconds.toFixed(0)} s)\n`);
}
