/**
 * `npm run bench`: the benchmarks, one after the other; BENCH_ONLY=NAME[,NAME] runs only those
 * (checkpoint-restore, reset, reset-postgres, images, oci-images, migration). Each cleans up after itself before the next starts.
 *
 * checkpoint-restore: checkpoint and restore of the same busybox container holding 64 and 256 MiB,
 * by `runtime` and by `runc checkpoint`/`runc restore`, in one run. Prints medians and the ratio
 * runtime/runc as a table and writes them, with every sample, to bench-results/checkpoint-restore.json.
 *
 *   BENCH_ROUNDS=5        measured rounds per size (one warm-up round more, discarded)
 *   BENCH_SIZES=64,256    MiB the container holds
 *   BENCH_LIBRARY=0       leave out the in-process library (the CLI and runc only)
 *   BENCH_IMAGE_DIR=DIR   put the images in DIR instead of a tmpfs the benchmark mounts
 */
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchmarkSize, type Sample } from './checkpoint-restore.js';
import { Cleanup } from './cleanup.js';
import { BenchError } from './exec.js';
import { formatTable, round, summarize, type Summary } from './stats.js';
import { Runc, RuntimeCli, RuntimeLibrary, type Tool, type ToolName } from './tools.js';
import { buildMemhog } from './workload.js';
import { benchmarkBackToBack } from './back-to-back.js';
import { benchmarkPostgres } from './back-to-back-postgres.js';
import { runImagesBench } from './images.js';
import { benchmarkOciImages } from './oci-images.js';
import { benchmarkMigration } from './migration.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const resultsFile = path.join(repoRoot, 'bench-results/checkpoint-restore.json');
const operations = ['checkpoint', 'restore'] as const;
const labels: Record<ToolName, string> = { 'runtime-cli': 'runtime CLI', 'runtime-library': 'runtime library', runc: 'runc' };

interface Settings {
  readonly rounds: number;
  readonly warmupRounds: number;
  readonly sizesMiB: readonly number[];
  readonly library: boolean;
  readonly imageDir: string | undefined;
}

function settingsFromEnvironment(environment: NodeJS.ProcessEnv): Settings {
  const positive = (name: string, text: string): number => {
    const value = Number(text);
    if (!Number.isInteger(value) || value < 1) throw new BenchError('BENCH_SETTING', `${name}=${text}: expected a positive integer`);
    return value;
  };
  return {
    rounds: positive('BENCH_ROUNDS', environment.BENCH_ROUNDS ?? '5'),
    warmupRounds: 1,
    sizesMiB: (environment.BENCH_SIZES ?? '64,256').split(',').map((size) => positive('BENCH_SIZES', size.trim())),
    library: environment.BENCH_LIBRARY !== '0',
    imageDir: environment.BENCH_IMAGE_DIR || undefined,
  };
}

/** The first line of `<command> --version`, or an error naming the package. */
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

async function checkpointRestore(cleanup: Cleanup, abort: AbortSignal): Promise<void> {
  const settings = settingsFromEnvironment(process.env);
  if (process.getuid?.() !== 0) throw new BenchError('BENCH_NOT_ROOT', 'checkpoint and restore need root', { hint: 'run `sudo npm run bench`' });
  const versions = { node: process.version, criu: version('criu', 'criu'), runc: version('runc', 'runc'), kernel: os.release() };

  const memhog = await buildMemhog(path.join(repoRoot, 'bench/fixtures/memhog.c'), path.join(repoRoot, 'node_modules/.cache/runtime-bench'));
  const temp = await mkdtemp(path.join(os.tmpdir(), 'runtime-bench-'));
  cleanup.add(`remove ${temp}`, () => rm(temp, { recursive: true, force: true }));

  // Images on a tmpfs by default: the comparison is of the two runtimes' work, not of the disk.
  let imagesDir: string;
  if (settings.imageDir) {
    await mkdir(settings.imageDir, { recursive: true });
    imagesDir = await mkdtemp(path.join(path.resolve(settings.imageDir), 'runtime-bench-images-'));
    cleanup.add(`remove ${imagesDir}`, () => rm(imagesDir, { recursive: true, force: true }));
  } else {
    imagesDir = path.join(temp, 'images');
    await mkdir(imagesDir);
    const tmpfsMiB = Math.max(...settings.sizesMiB) * 2 + 256;
    const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${tmpfsMiB}m,mode=0700`, 'runtime-bench', imagesDir], { encoding: 'utf8' });
    if (mount.status !== 0)
      throw new BenchError('BENCH_TMPFS', `could not mount a tmpfs on ${imagesDir}: ${mount.stderr.trim()}`, {
        hint: 'set BENCH_IMAGE_DIR to use a directory instead',
      });
    cleanup.add(`unmount ${imagesDir}`, () => {
      const umount = spawnSync('umount', [imagesDir], { encoding: 'utf8' });
      if (umount.status !== 0) throw new Error(umount.stderr.trim());
    });
  }
  const imageStorage = `${findmntFstype(imagesDir)} (${imagesDir})`;

  const tools: Tool[] = [await RuntimeCli.create(repoRoot, path.join(temp, 'runtime-cli')), await Runc.create(path.join(temp, 'runc'))];
  if (settings.library) tools.splice(1, 0, new RuntimeLibrary(path.join(temp, 'runtime-library')));
  for (const tool of tools) cleanup.add(`close ${tool.name}`, () => tool.close());

  process.stderr.write(
    `bench: checkpoint/restore, ${settings.rounds} rounds (+${settings.warmupRounds} warm-up) per size, ` +
      `${tools.map((tool) => labels[tool.name]).join(' vs ')}; images on ${imageStorage}\n`,
  );
  const started = Date.now();
  const samples: Sample[] = [];
  for (const sizeMiB of settings.sizesMiB) {
    const workDir = path.join(temp, `size-${sizeMiB}`);
    await mkdir(workDir);
    samples.push(
      ...(await benchmarkSize({
        sizeMiB,
        tools,
        rounds: settings.rounds,
        warmupRounds: settings.warmupRounds,
        repoRoot,
        memhog,
        workDir,
        imagesDir,
        cleanup,
        abort,
      })),
    );
  }
  const elapsedSeconds = (Date.now() - started) / 1000;

  const report = buildReport(settings, tools, samples, { versions, imageStorage, elapsedSeconds });
  process.stdout.write(`\n${renderTables(settings, tools, report)}\n`);
  await mkdir(path.dirname(resultsFile), { recursive: true });
  await writeFile(resultsFile, `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(`\nwritten to ${path.relative(process.cwd(), resultsFile)} (${elapsedSeconds.toFixed(0)} s)\n`);
}

interface Result {
  readonly sizeMiB: number;
  readonly tool: ToolName;
  readonly operation: (typeof operations)[number];
  readonly samplesMs: number[];
  readonly medianMs: number;
  readonly minMs: number;
  readonly maxMs: number;
}

type Report = ReturnType<typeof buildReport>;

function buildReport(
  settings: Settings,
  tools: readonly Tool[],
  samples: readonly Sample[],
  context: { versions: Record<string, string>; imageStorage: string; elapsedSeconds: number },
) {
  const of = (sizeMiB: number, tool: ToolName) => samples.filter((sample) => sample.sizeMiB === sizeMiB && sample.tool === tool);
  const results: Result[] = [];
  for (const sizeMiB of settings.sizesMiB) {
    for (const operation of operations) {
      for (const tool of tools) {
        const samplesMs = of(sizeMiB, tool.name).map((sample) => (operation === 'checkpoint' ? sample.checkpointMs : sample.restoreMs));
        const summary: Summary = summarize(samplesMs);
        results.push({
          sizeMiB,
          tool: tool.name,
          operation,
          samplesMs: samplesMs.map((ms) => round(ms)),
          medianMs: round(summary.median),
          minMs: round(summary.min),
          maxMs: round(summary.max),
        });
      }
    }
  }
  const median = (sizeMiB: number, tool: ToolName, operation: string) =>
    results.find((result) => result.sizeMiB === sizeMiB && result.tool === tool && result.operation === operation)!.medianMs;
  const ratios = results
    .filter((result) => result.tool !== 'runc')
    .map(({ sizeMiB, tool, operation }) => ({
      sizeMiB,
      operation,
      tool,
      // runtime median / runc median: above 1, runtime is slower.
      ratio: round(median(sizeMiB, tool, operation) / median(sizeMiB, 'runc', operation), 2),
    }));
  const images = settings.sizesMiB.flatMap((sizeMiB) =>
    tools.map((tool) => {
      const mine = of(sizeMiB, tool.name);
      return {
        sizeMiB,
        tool: tool.name,
        imageMiB: round(summarize(mine.map((sample) => sample.image.totalMiB)).median),
        pagesMiB: round(summarize(mine.map((sample) => sample.image.pagesMiB)).median),
        residentAfterRestoreMiB: round(summarize(mine.map((sample) => sample.residentAfterMiB)).median),
      };
    }),
  );
  return {
    benchmark: 'checkpoint-restore',
    date: new Date().toISOString(),
    host: { ...context.versions, cpu: os.cpus()[0]?.model ?? 'unknown', cpus: os.cpus().length, memoryMiB: Math.round(os.totalmem() / 2 ** 20) },
    setup: {
      workload: 'busybox bundle (scripts/make-busybox-bundle.sh) whose init is bench/fixtures/memhog.c holding N MiB of touched, non-zero pages',
      rounds: settings.rounds,
      warmupRounds: settings.warmupRounds,
      sizesMiB: settings.sizesMiB,
      imageStorage: context.imageStorage,
      measured: {
        checkpoint: 'wall time of `runtime checkpoint --image-path` / `runc checkpoint --image-path` (the container stops)',
        restore: 'wall time of `runtime restore -d` / `runc restore -d --bundle` until it returns with the container running',
        'runtime-cli': 'node bin/runtime.js, a process per operation like runc',
        'runtime-library': 'Runtime.checkpoint / Runtime.restore in the benchmark process (no Node start-up)',
      },
      elapsedSeconds: round(context.elapsedSeconds),
    },
    results,
    ratios,
    images,
    samples: samples.map((sample) => ({
      ...sample,
      checkpointMs: round(sample.checkpointMs),
      restoreMs: round(sample.restoreMs),
      image: { totalMiB: round(sample.image.totalMiB, 2), pagesMiB: round(sample.image.pagesMiB, 2) },
      residentBeforeMiB: round(sample.residentBeforeMiB),
      residentAfterMiB: round(sample.residentAfterMiB),
    })),
  };
}

function renderTables(settings: Settings, tools: readonly Tool[], report: Report): string {
  const runtimes = tools.filter((tool) => tool.name !== 'runc');
  const cell = (result: Result) => `${result.medianMs.toFixed(0)} (${result.minMs.toFixed(0)}–${result.maxMs.toFixed(0)})`;
  const times = formatTable(
    ['size', 'operation', ...tools.map((tool) => `${labels[tool.name]} ms`), ...runtimes.map((tool) => `${labels[tool.name]}/runc`)],
    settings.sizesMiB.flatMap((sizeMiB) =>
      operations.map((operation) => [
        `${sizeMiB} MiB`,
        operation,
        ...tools.map((tool) => cell(report.results.find((r) => r.sizeMiB === sizeMiB && r.operation === operation && r.tool === tool.name)!)),
        ...runtimes.map((tool) => report.ratios.find((r) => r.sizeMiB === sizeMiB && r.operation === operation && r.tool === tool.name)!.ratio.toFixed(2)),
      ]),
    ),
  );
  const images = formatTable(
    ['size', 'tool', 'image MiB', 'pages MiB', 'RSS after restore MiB'],
    report.images.map((image) => [
      `${image.sizeMiB} MiB`,
      labels[image.tool],
      image.imageMiB.toFixed(1),
      image.pagesMiB.toFixed(1),
      image.residentAfterRestoreMiB.toFixed(1),
    ]),
  );
  return [
    `checkpoint/restore wall time, median (min–max) of ${settings.rounds} rounds after ${settings.warmupRounds} warm-up; images on ${report.setup.imageStorage.split(' ')[0]}`,
    '',
    times,
    '',
    images,
  ].join('\n');
}

const benchmarks: Record<string, (cleanup: Cleanup, abort: AbortSignal) => Promise<void>> = {
  'checkpoint-restore': checkpointRestore,
  reset: (cleanup, abort) => benchmarkBackToBack(repoRoot, cleanup, abort),
  'reset-postgres': (cleanup, abort) => benchmarkPostgres(repoRoot, cleanup, abort),
  images: (cleanup, abort) => runImagesBench(cleanup, abort),
  'oci-images': (cleanup, abort) => benchmarkOciImages(cleanup, abort),
  migration: (cleanup, abort) => benchmarkMigration(cleanup, abort),
};

let cleanup = new Cleanup();
// The first signal stops the benchmark between two operations (the one under way finishes, or
// fails if the signal reached it too) and the normal cleanup follows; a second cleans up at once.
const stop = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (!stop.signal.aborted) {
      process.stderr.write(`\nbench: ${signal}, stopping after the current operation\n`);
      stop.abort(new BenchError('BENCH_INTERRUPTED', `interrupted by ${signal}`));
      return;
    }
    process.stderr.write(`\nbench: ${signal} again, cleaning up now\n`);
    void cleanup.run().finally(() => process.exit(130));
  });
}
const selected = (process.env.BENCH_ONLY ?? Object.keys(benchmarks).join(','))
  .split(',')
  .map((name) => name.trim())
  .filter((name) => name !== '');
const unknown = selected.filter((name) => !(name in benchmarks));
if (unknown.length > 0) {
  process.stderr.write(`bench: BENCH_ONLY: unknown benchmark ${unknown.join(', ')}\n  hint: the benchmarks are ${Object.keys(benchmarks).join(', ')}\n`);
  process.exitCode = 2;
}
// One failing benchmark does not keep the next from running; an interruption stops them all.
for (const name of unknown.length > 0 ? [] : selected) {
  if (stop.signal.aborted) break;
  cleanup = new Cleanup();
  try {
    await benchmarks[name]!(cleanup, stop.signal);
  } catch (error) {
    process.exitCode = stop.signal.aborted ? 130 : 1;
    const hint = error instanceof BenchError && error.hint ? `\n  hint: ${error.hint}` : '';
    process.stderr.write(`bench: ${name}: ${error instanceof Error ? error.message : String(error)}${hint}\n`);
  } finally {
    await cleanup.run();
  }
}
