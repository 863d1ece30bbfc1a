/**
 * The image codec against pycriu (CRIT's own library), like with like, on two checkpoints made in
 * the run with the runtime and real CRIU:
 *
 *   small  a busybox container whose init is memhog (bench/fixtures/memhog.c) holding 64 MiB;
 *   large  mapshog (bench/fixtures/mapshog.c): 51 processes with 40,000 one-page mappings each.
 *
 * For each, two comparisons, both sides decoding the same files to the same JSON files:
 *
 *   whole process  one `node bin/runtime.js image decode --dir DIR -o OUT` against one
 *                  `python3 bench/fixtures/pycriu-decode-dir.py DIR OUT` (pycriu.images.load and
 *                  json.dump per file, as `crit decode` does): wall time from spawn to exit, and
 *                  the process's peak RSS from /usr/bin/time. Start-up and imports are included.
 *   in-process     bench/images-loop.ts (the library) against pycriu-decode-dir.py --loop, each in
 *                  its own process: one warm-up pass over the files, then one timed pass per round,
 *                  timed inside that process; start-up and imports are not timed. Peak RSS is the
 *                  process's own high-water mark, so it includes the interpreter and the warm-up.
 *
 * Every output file must be byte for byte the same on both sides, and the raw pages images must
 * be refused by both. Prints a table per checkpoint and writes bench-results/images.json.
 *
 *   BENCH_IMAGES_ROUNDS=3                rounds (the median is kept; peaks are the highest)
 *   BENCH_IMAGES_CHECKPOINTS=small,large which checkpoints
 *   BENCH_IMAGES_MIB=64                  MiB the small checkpoint's memhog holds
 *   BENCH_IMAGES_LARGE=51x40000          processes x mappings of the large checkpoint
 *   BENCH_PYTHON=PATH                    the Python (default: the first of python3 and
 *                                        /usr/bin/python3 that imports pycriu)
 *   BENCH_IMAGE_DIR=DIR                  put the checkpoints and outputs in DIR (default: the
 *                                        system temp directory)
 *
 * pycriu is the copy the runtime reads its message definitions from: RUNTIME_PYCRIU_DIR, else
 * where the runtime finds it (findPycriuDir). Its parent directory becomes Python's PYTHONPATH.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Runtime } from '../src/index.js';
import { decodeImage, imageInfo } from '../src/criu/images/index.js';
import { findPycriuDir } from '../src/criu/images/descriptors/pycriu-source.js';
import { Cleanup } from './cleanup.js';
import { BenchError } from './exec.js';
import { formatTable, round, summarize } from './stats.js';
import { buildMemhog, buildStatic, makeBundle, makeBundleRunning, readyFileInContainer, readyText, waitReady } from './workload.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const resultsFile = path.join(repoRoot, 'bench-results/images.json');
const cliPath = path.join(repoRoot, 'bin/runtime.js');
const loopPath = path.join(repoRoot, 'dist/bench/images-loop.js');
const pythonScript = path.join(repoRoot, 'bench/fixtures/pycriu-decode-dir.py');
const fixtureCache = path.join(repoRoot, 'node_modules/.cache/runtime-bench');
const timeBinary = '/usr/bin/time';
/** Every mapshog process writes one page in this many of its mappings (the pages stay small). */
const mapshogStride = 8;

interface Settings {
  readonly rounds: number;
  readonly checkpoints: readonly ('small' | 'large')[];
  readonly smallMiB: number;
  readonly largeProcesses: number;
  readonly largeMappings: number;
}

function settingsFromEnvironment(environment: NodeJS.ProcessEnv): Settings {
  const positive = (name: string, text: string): number => {
    const value = Number(text);
    if (!Number.isInteger(value) || value < 1) throw new BenchError('BENCH_SETTING', `${name}=${text}: expected a positive integer`);
    return value;
  };
  const checkpoints = (environment.BENCH_IMAGES_CHECKPOINTS ?? 'small,large').split(',').map((name) => name.trim());
  for (const name of checkpoints) {
    if (name !== 'small' && name !== 'large')
      throw new BenchError('BENCH_SETTING', `BENCH_IMAGES_CHECKPOINTS: unknown checkpoint ${JSON.stringify(name)} (small, large)`);
  }
  const large = /^(\d+)x(\d+)$/.exec(environment.BENCH_IMAGES_LARGE ?? '51x40000');
  if (!large) throw new BenchError('BENCH_SETTING', `BENCH_IMAGES_LARGE=${environment.BENCH_IMAGES_LARGE}: expected PROCESSESxMAPPINGS, like 51x40000`);
  return {
    rounds: positive('BENCH_IMAGES_ROUNDS', environment.BENCH_IMAGES_ROUNDS ?? '3'),
    checkpoints: checkpoints as Settings['checkpoints'],
    smallMiB: positive('BENCH_IMAGES_MIB', environment.BENCH_IMAGES_MIB ?? '64'),
    largeProcesses: positive('BENCH_IMAGES_LARGE', large[1]!),
    largeMappings: positive('BENCH_IMAGES_LARGE', large[2]!),
  };
}

/** The Python side: an interpreter that imports the pycriu the runtime reads, and their versions. */
interface PythonSide {
  readonly python: string;
  readonly pycriuDir: string;
  readonly env: NodeJS.ProcessEnv;
  readonly versions: { readonly python: string; readonly protobuf: string; readonly protobufImplementation: string };
}

function findPythonSide(): PythonSide {
  const { dir, tried } = findPycriuDir();
  if (!dir) {
    throw new BenchError('BENCH_NO_PYCRIU', `no pycriu in ${tried.join(', ')}`, {
      hint: 'set RUNTIME_PYCRIU_DIR to the pycriu package directory (scripts/install-criu.sh installs it in /opt/runtime/criu/lib)',
    });
  }
  const pycriuDir = realpathSync(dir);
  const parent = path.dirname(pycriuDir);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    RUNTIME_PYCRIU_DIR: pycriuDir,
    PYTHONPATH: [parent, process.env.PYTHONPATH].filter(Boolean).join(':'),
  };
  const probe =
    'import os, sys, pycriu, google.protobuf\n' +
    'from google.protobuf.internal import api_implementation\n' +
    'print(os.path.realpath(os.path.dirname(pycriu.__file__)), sys.version.split()[0], google.protobuf.__version__, api_implementation.Type())';
  const candidates = process.env.BENCH_PYTHON ? [process.env.BENCH_PYTHON] : ['python3', '/usr/bin/python3'];
  const failures: string[] = [];
  for (const python of candidates) {
    const result = spawnSync(python, ['-c', probe], { encoding: 'utf8', env });
    if (result.error || result.status !== 0) {
      failures.push(`${python}: ${result.error?.message ?? result.stderr.trim().split('\n').at(-1)}`);
      continue;
    }
    const [loaded, pythonVersion, protobuf, implementation] = result.stdout.trim().split(' ');
    if (loaded !== pycriuDir) {
      failures.push(`${python}: imports pycriu from ${loaded}, not ${pycriuDir}`);
      continue;
    }
    return { python, pycriuDir, env, versions: { python: pythonVersion!, protobuf: protobuf!, protobufImplementation: implementation! } };
  }
  throw new BenchError('BENCH_NO_PYTHON', `no Python imports ${pycriuDir}:\n  ${failures.join('\n  ')}`, {
    hint: 'pycriu needs google.protobuf (apt-get install python3-protobuf); BENCH_PYTHON chooses the interpreter',
  });
}

function criuVersion(): string {
  const binary = process.env.RUNTIME_CRIU || 'criu';
  const result = spawnSync(binary, ['--version'], { encoding: 'utf8' });
  if (result.error || result.status !== 0)
    throw new BenchError('BENCH_MISSING_TOOL', `\`${binary} --version\` failed`, { hint: 'run scripts/install-criu.sh, or set RUNTIME_CRIU' });
  // `criu --version` prints "Version: 4.2.1" first.
  return `CRIU ${result.stdout
    .trim()
    .split('\n')[0]!
    .replace(/^Version:\s*/, '')}`;
}

interface Run {
  readonly ms: number;
  readonly maxRssKiB: number;
}

/** Runs argv under `/usr/bin/time -f %M`: wall time from spawn to exit, and its peak RSS. Fails unless it exits 0. */
async function measured(argv: readonly string[], env: NodeJS.ProcessEnv, scratch: string): Promise<Run> {
  const rssFile = path.join(scratch, 'rss');
  const started = process.hrtime.bigint();
  const child = spawn(timeBinary, ['-f', '%M', '-o', rssFile, ...argv], { stdio: ['ignore', 'ignore', 'pipe'], env });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  const exitCode = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (exitCode !== 0)
    throw new BenchError('BENCH_COMMAND_FAILED', `\`${argv.join(' ')}\` exited with ${exitCode}:\n${stderr.trim().split('\n').slice(-10).join('\n')}`);
  return { ms, maxRssKiB: Number((await readFile(rssFile, 'utf8')).trim()) };
}

interface LoopResult {
  readonly ms: number[];
  readonly decoded: number;
  readonly skipped: string[];
  readonly maxRssKiB: number;
}

/** Runs an in-process loop (images-loop.js or the Python script's --loop) and reads its report. */
async function loopRun(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<LoopResult> {
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const exitCode = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
  if (exitCode !== 0)
    throw new BenchError('BENCH_COMMAND_FAILED', `\`${argv.join(' ')}\` exited with ${exitCode}:\n${stderr.trim().split('\n').slice(-10).join('\n')}`);
  return JSON.parse(stdout) as LoopResult;
}

/** Compares two output directories: the same names, and each file the same bytes. */
async function compareOutputs(a: string, b: string): Promise<{ files: string[]; differing: string[] }> {
  const [left, right] = await Promise.all([readdir(a), readdir(b)]);
  const files = [...new Set([...left, ...right])].sort();
  const differing: string[] = [];
  for (const name of files) {
    if (!left.includes(name) || !right.includes(name)) {
      differing.push(`${name} (only in ${left.includes(name) ? a : b})`);
      continue;
    }
    const [x, y] = await Promise.all([readFile(path.join(a, name)), readFile(path.join(b, name))]);
    if (!x.equals(y)) differing.push(name);
  }
  return { files, differing };
}

interface Checkpoint {
  readonly name: 'small' | 'large';
  readonly workload: string;
  readonly images: string;
  readonly seconds: number;
}

async function checkpointContainer(cleanup: Cleanup, work: string, imageRoot: string, name: Checkpoint['name'], settings: Settings): Promise<Checkpoint> {
  const dir = path.join(work, name);
  const bundle = path.join(dir, 'bundle');
  let workload: string;
  let waitForWorkload: () => Promise<void>;
  if (name === 'small') {
    const mib = settings.smallMiB;
    await makeBundle(repoRoot, bundle, await buildMemhog(path.join(repoRoot, 'bench/fixtures/memhog.c'), fixtureCache), mib);
    workload = `busybox container whose init is memhog holding ${mib} MiB`;
    waitForWorkload = () => waitReady(bundle, mib, 120_000);
  } else {
    const mapshog = await buildStatic(path.join(repoRoot, 'bench/fixtures/mapshog.c'), fixtureCache);
    const { largeProcesses: procs, largeMappings: maps } = settings;
    await makeBundleRunning(repoRoot, bundle, mapshog, [String(procs), String(maps), String(mapshogStride), readyFileInContainer]);
    workload = `busybox container whose init is mapshog: ${procs} processes, each with ${maps} one-page mappings (one in ${mapshogStride} written)`;
    waitForWorkload = async () => {
      // "<pid> <processes> <mappings of all processes>"
      const text = await readyText(bundle, `mapshog in ${bundle} to map ${procs} x ${maps}`, 300_000);
      const [, reportedProcs, reportedMaps] = text.trim().split(/\s+/).map(Number);
      if (reportedProcs !== procs || !(reportedMaps! >= procs * maps)) throw new BenchError('BENCH_WORKLOAD', `mapshog reports "${text.trim()}"`);
    };
  }
  const runtime = Runtime.create({ stateRoot: path.join(dir, 'state'), checkpointRoot: path.join(dir, 'checkpoints'), logLevel: 'warn' });
  const id = `bench-images-${name}-${process.pid}`;
  cleanup.add(`delete container ${id}`, () => runtime.delete(id, { force: true }).catch(() => undefined));
  await runtime.run({ id, bundle });
  await waitForWorkload();
  const images = path.join(imageRoot, name);
  const started = Date.now();
  await runtime.checkpoint({ id, imagePath: images });
  return { name, workload, images, seconds: (Date.now() - started) / 1000 };
}

/** What the checkpoint holds, read with the library (not timed). */
async function describeImages(images: string) {
  const entries = (await readdir(images, { withFileTypes: true })).filter((e) => e.isFile());
  const sizes = new Map<string, number>();
  for (const entry of entries) sizes.set(entry.name, (await stat(path.join(images, entry.name))).size);
  let mappings = 0;
  let pagemapEntries = 0;
  for (const name of sizes.keys()) {
    if (/^mm-\d+\.img$/.test(name)) {
      const mm = await decodeImage(path.join(images, name));
      mappings += (mm.entries[0]?.vmas as unknown[] | undefined)?.length ?? 0;
    } else if (/^pagemap-\d+\.img$/.test(name)) {
      pagemapEntries += (await imageInfo(path.join(images, name))).count;
    }
  }
  const processes = (await imageInfo(path.join(images, 'pstree.img'))).count;
  return { sizes, processes, mappings, pagemapEntries };
}

interface Side {
  readonly samplesMs: number[];
  readonly medianMs: number;
  readonly minMs: number;
  readonly maxMs: number;
  readonly peakMiB: number;
}

function side(samplesMs: readonly number[], peakKiB: number): Side {
  const summary = summarize(samplesMs);
  return {
    samplesMs: samplesMs.map((ms) => round(ms, 2)),
    medianMs: round(summary.median, 2),
    minMs: round(summary.min, 2),
    maxMs: round(summary.max, 2),
    peakMiB: round(peakKiB / 1024),
  };
}

function comparison(runtime: Side, pycriu: Side) {
  return { runtime, pycriu, timeRatio: round(runtime.medianMs / pycriu.medianMs, 2), peakRatio: round(runtime.peakMiB / pycriu.peakMiB, 2) };
}

async function benchmarkCheckpoint(checkpoint: Checkpoint, python: PythonSide, rounds: number, scratch: string, abort: AbortSignal) {
  const { images } = checkpoint;
  const described = await describeImages(images);
  const dir = path.join(scratch, checkpoint.name);
  await mkdir(dir, { recursive: true });
  const cliOut = path.join(dir, 'runtime');
  const pyOut = path.join(dir, 'pycriu');
  const cli = [process.execPath, cliPath, 'image', 'decode', '--dir', images, '-o', cliOut];
  const py = [python.python, pythonScript, images, pyOut];

  // Whole process: the rounds, alternating who goes first; outputs are removed before each run,
  // outside the timing. The images were just written, so both read them from the page cache, and
  // pycriu is byte-compiled (its __pycache__, as installed; the probe writes it if missing).
  const loadBefore = os.loadavg()[0]!;
  const runs = { runtime: [] as Run[], pycriu: [] as Run[] };
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? (['runtime', 'pycriu'] as const) : (['pycriu', 'runtime'] as const);
    for (const tool of order) {
      abort.throwIfAborted();
      const out = tool === 'runtime' ? cliOut : pyOut;
      await rm(out, { recursive: true, force: true });
      process.stderr.write(`bench images: ${checkpoint.name}: whole process, round ${r + 1}/${rounds}, ${tool}\n`);
      runs[tool].push(await measured(tool === 'runtime' ? cli : py, python.env, dir));
    }
  }
  const whole = await compareOutputs(cliOut, pyOut);

  // In-process: each side in its own process, a warm-up pass, then `rounds` timed passes.
  const nodeLoopOut = path.join(dir, 'runtime-loop');
  const pyLoopOut = path.join(dir, 'pycriu-loop');
  process.stderr.write(`bench images: ${checkpoint.name}: in-process, 1 warm-up + ${rounds} passes, runtime library\n`);
  const nodeLoop = await loopRun([process.execPath, loopPath, String(rounds), images, nodeLoopOut], python.env);
  process.stderr.write(`bench images: ${checkpoint.name}: in-process, 1 warm-up + ${rounds} passes, pycriu\n`);
  const pyLoop = await loopRun([python.python, pythonScript, '--loop', String(rounds), images, pyLoopOut], python.env);
  const loadAfter = os.loadavg()[0]!;
  const lastPass = (out: string) => path.join(out, String(rounds));
  const inProcess = await compareOutputs(lastPass(nodeLoopOut), lastPass(pyLoopOut));
  const loopAgreesWithWhole = await compareOutputs(lastPass(nodeLoopOut), cliOut);

  const decodedNames = whole.files.map((file) => file.replace(/\.json$/, ''));
  // What each side refused, by name ("pages-1.img: UnknownMagicError"): the same files, the raw pages among them.
  const refusedNames = (loop: LoopResult) => loop.skipped.map((line) => line.split(':')[0]!).sort();
  const refused = refusedNames(nodeLoop);
  const rawPages = [...described.sizes.keys()].filter((name) => /^pages-\d+\.img$/.test(name)).sort();
  const refusedAlike = refused.join('\n') === refusedNames(pyLoop).join('\n') && rawPages.every((name) => refused.includes(name));
  const sum = (names: readonly string[]) => names.reduce((total, name) => total + (described.sizes.get(name) ?? 0), 0);
  const differing = [...whole.differing, ...inProcess.differing, ...loopAgreesWithWhole.differing.map((name) => `${name} (library pass vs CLI)`)];
  await rm(dir, { recursive: true, force: true });
  return {
    name: checkpoint.name,
    workload: checkpoint.workload,
    checkpointSeconds: round(checkpoint.seconds),
    processes: described.processes,
    mappings: described.mappings,
    pagemapEntries: described.pagemapEntries,
    decoded: decodedNames.length,
    decodedBytes: sum(decodedNames),
    refused: refused.length,
    refusedBytes: sum(refused),
    rawPages: rawPages.length,
    rawPagesBytes: sum(rawPages),
    /** Both refused the same files, every pages-*.img among them. */
    refusedAlike,
    refusedBy: { runtime: nodeLoop.skipped, pycriu: pyLoop.skipped },
    /** The 1-minute load average before the whole-process runs and after the in-process ones. */
    loadAverage: [round(loadBefore, 2), round(loadAfter, 2)],
    sameOutput: differing.length === 0,
    differing,
    wholeProcess: comparison(
      side(
        runs.runtime.map((run) => run.ms),
        Math.max(...runs.runtime.map((run) => run.maxRssKiB)),
      ),
      side(
        runs.pycriu.map((run) => run.ms),
        Math.max(...runs.pycriu.map((run) => run.maxRssKiB)),
      ),
    ),
    inProcess: comparison(side(nodeLoop.ms, nodeLoop.maxRssKiB), side(pyLoop.ms, pyLoop.maxRssKiB)),
  };
}

type CheckpointResult = Awaited<ReturnType<typeof benchmarkCheckpoint>>;

const size = (bytes: number) =>
  bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(2)} GiB` : bytes >= 2 ** 20 ? `${(bytes / 2 ** 20).toFixed(1)} MiB` : `${(bytes / 1024).toFixed(1)} KiB`;

function renderCheckpoint(result: CheckpointResult, rounds: number): string {
  const ms = (s: Side) => `${s.medianMs.toFixed(0)} (${s.minMs.toFixed(0)}–${s.maxMs.toFixed(0)})`;
  const row = (label: string, timed: string, c: CheckpointResult['wholeProcess']) => [
    label,
    timed,
    ms(c.runtime),
    ms(c.pycriu),
    c.timeRatio.toFixed(2),
    c.runtime.peakMiB.toFixed(1),
    c.pycriu.peakMiB.toFixed(1),
    c.peakRatio.toFixed(2),
  ];
  const table = formatTable(
    ['', 'timed', 'runtime ms', 'pycriu ms', 'time runtime/pycriu', 'runtime peak MiB', 'pycriu peak MiB', 'peak runtime/pycriu'],
    [row('whole process', 'spawn to exit', result.wholeProcess), row('in-process', 'one warm pass', result.inProcess)],
  );
  return [
    `${result.name} checkpoint: ${result.workload}`,
    `  processes: ${result.processes}, mappings (VMAs): ${result.mappings}, pagemap entries: ${result.pagemapEntries}`,
    `  decoded by both: ${result.decoded} files, ${size(result.decodedBytes)}; ` +
      `${result.refusedAlike ? 'refused by both' : 'NOT REFUSED ALIKE'}: ${result.refused} raw files, ${size(result.refusedBytes)} ` +
      `(${result.rawPages} pages-*.img, ${size(result.rawPagesBytes)})`,
    `  median (min–max) of ${rounds} rounds; outputs ${result.sameOutput ? 'byte for byte the same on both sides' : `DIFFER: ${result.differing.slice(0, 5).join(', ')}`}; ` +
      `load average ${result.loadAverage[0]!.toFixed(2)} before, ${result.loadAverage[1]!.toFixed(2)} after (${os.cpus().length} CPUs)`,
    '',
    table,
  ].join('\n');
}

export async function runImagesBench(cleanup: Cleanup, abort: AbortSignal): Promise<void> {
  const settings = settingsFromEnvironment(process.env);
  if (process.getuid?.() !== 0)
    throw new BenchError('BENCH_NOT_ROOT', 'the images benchmark checkpoints containers and needs root', { hint: 'run `npm run bench` as root' });
  if (!existsSync(timeBinary))
    throw new BenchError('BENCH_MISSING_TOOL', `${timeBinary} is missing (it measures the peak RSS)`, { hint: 'apt-get install time' });
  if (!existsSync(path.join(repoRoot, 'dist/src/runtime/cli/main.js')) || !existsSync(loopPath)) {
    throw new BenchError('BENCH_NOT_BUILT', 'the CLI or dist/bench/images-loop.js is not built', { hint: 'npm run bench builds both' });
  }
  if (settings.checkpoints.includes('large')) {
    const limit = Number(readFileSync('/proc/sys/vm/max_map_count', 'utf8'));
    // A process has about a dozen mappings of its own besides mapshog's.
    if (settings.largeMappings + 100 > limit) {
      throw new BenchError('BENCH_SETTING', `BENCH_IMAGES_LARGE asks for ${settings.largeMappings} mappings a process; vm.max_map_count is ${limit}`, {
        hint: `ask for at most ${limit - 100}`,
      });
    }
  }
  const criu = criuVersion();

  const temp = await mkdtemp(path.join(os.tmpdir(), 'runtime-bench-images-'));
  cleanup.add(`remove ${temp}`, () => rm(temp, { recursive: true, force: true }));
  let imageRoot = temp;
  if (process.env.BENCH_IMAGE_DIR) {
    await mkdir(process.env.BENCH_IMAGE_DIR, { recursive: true });
    imageRoot = await mkdtemp(path.join(path.resolve(process.env.BENCH_IMAGE_DIR), 'runtime-bench-images-'));
    cleanup.add(`remove ${imageRoot}`, () => rm(imageRoot, { recursive: true, force: true }));
  }
  const python = findPythonSide();
  const storage = spawnSync('findmnt', ['-n', '-o', 'FSTYPE', '--target', imageRoot], { encoding: 'utf8' }).stdout?.trim() || 'unknown';
  const header =
    `images: runtime (Node ${process.version}) against pycriu from ${python.pycriuDir} (Python ${python.versions.python}, ` +
    `protobuf ${python.versions.protobuf} ${python.versions.protobufImplementation}); ${criu}; images and JSON on ${storage}\n` +
    `  whole process: \`node bin/runtime.js image decode --dir DIR -o OUT\` against \`${python.python} bench/fixtures/pycriu-decode-dir.py DIR OUT\`,\n` +
    '    wall time from spawn to exit (start-up, imports, decoding, JSON, writing), peak RSS from /usr/bin/time (highest of the rounds)\n' +
    '  in-process: the library (bench/images-loop.ts) against pycriu (pycriu-decode-dir.py --loop), each in its own process: one pass over\n' +
    '    the same files (read, decode, format as crit does, write a new OUT/<name>.json) timed inside the process after a warm-up pass;\n' +
    "    start-up and imports not timed; peak RSS is the process's own high-water mark, so it includes the interpreter and the warm-up pass";

  const results: CheckpointResult[] = [];
  const started = Date.now();
  for (const name of settings.checkpoints) {
    abort.throwIfAborted();
    process.stderr.write(`bench images: making the ${name} checkpoint\n`);
    const checkpoint = await checkpointContainer(cleanup, path.join(temp, 'work'), imageRoot, name, settings);
    results.push(await benchmarkCheckpoint(checkpoint, python, settings.rounds, path.join(temp, 'out'), abort));
    // The images can be large (the large checkpoint's pages): gone before the next checkpoint.
    await rm(checkpoint.images, { recursive: true, force: true });
  }
  const elapsedSeconds = (Date.now() - started) / 1000;

  const report = {
    benchmark: 'images',
    date: new Date().toISOString(),
    host: {
      node: process.version,
      python: python.versions.python,
      protobuf: `${python.versions.protobuf} (${python.versions.protobufImplementation})`,
      pycriu: python.pycriuDir,
      criu,
      kernel: os.release(),
      cpu: os.cpus()[0]?.model ?? 'unknown',
      cpus: os.cpus().length,
    },
    setup: {
      rounds: settings.rounds,
      storage,
      measured: {
        wholeProcess:
          'wall time from spawn to exit of `node bin/runtime.js image decode --dir DIR -o OUT` and of `python3 bench/fixtures/pycriu-decode-dir.py DIR OUT`; peak RSS by /usr/bin/time %M (highest of the rounds)',
        inProcess:
          "one pass over the same files (decode, format, write OUT/<name>.json) timed inside its own process after one warm-up pass: dist/bench/images-loop.js (library) and pycriu-decode-dir.py --loop; start-up and imports excluded; peak = that process's maxRSS (interpreter and warm-up included)",
        outputs: 'every output file byte for byte the same on both sides; raw pages-*.img refused by both',
      },
      elapsedSeconds: round(elapsedSeconds),
    },
    checkpoints: results,
  };
  process.stdout.write(`\n${header}\n\n${results.map((result) => renderCheckpoint(result, settings.rounds)).join('\n\n')}\n`);
  await mkdir(path.dirname(resultsFile), { recursive: true });
  await writeFile(resultsFile, `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(`\nwritten to ${path.relative(process.cwd(), resultsFile)} (${elapsedSeconds.toFixed(0)} s)\n`);
  const wrong = results.filter((result) => !result.sameOutput || !result.refusedAlike);
  if (wrong.length > 0) {
    throw new BenchError(
      'BENCH_MISMATCH',
      `the runtime and pycriu disagree on the ${wrong.map((result) => result.name).join(' and ')} checkpoint (see above)`,
    );
  }
}
