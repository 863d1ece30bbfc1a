/**
 * The reset benchmark: the loop a test suite runs. A short test, then the container is put back to
 * its pristine state, then the next test, with no idle time between them. Per container size (memhog
 * holding 16, 256 and 1024 MiB), each way of getting back to pristine runs its tests back to back:
 *
 *   runtime reset (CLI)      `dist/bin/runtime reset --pid-file F <id> pristine` to its exit: the
 *                            `runtime` command, whose native front asks the monitor
 *   ... (Node CLI)           `node bin/runtime.js reset --pid-file F <id> pristine`: the same request
 *                            from the Node CLI, which every other command runs
 *   runtime reset (library)  Runtime.reset({ id, name: 'pristine' }) in this process
 *   runc loop                `runc delete -f <id>` then `runc restore -d` from runc's checkpoint of an
 *                            identical container, both to their exit (processes only: runc leaves
 *                            the rootfs as the test left it, the lighter job)
 *   cold restart             `runc delete -f`, a fresh copy of the pristine rootfs, `runc run -d`,
 *                            until memhog has touched all its memory again
 *
 * What is timed, per test: from the end of the test's work to the moment the container is back
 * (the command or call returned; for the cold restart, memhog ready). The test's own work is not
 * timed: it writes a file into the container's /tmp and waits BENCH_B2B_TEST_MS (20 ms). After each
 * runtime reset the test's file must be gone and the returned pid must be the container's init.
 *
 * Each series runs in blocks of BENCH_B2B_BLOCK tests (the first two of each block are warm-up,
 * not kept: a runtime standby prepared while another series ran would be ready), the blocks of
 * the series taking turns, so that a change in the host's load falls on all of them alike.
 * Whole processes are compared with whole processes (CLI against runc); the library's figures are
 * in-process and shown beside them, not as a ratio to runc. memhog checks every byte of its memory
 * after the last test of each runtime series.
 *
 *   BENCH_B2B_SIZES=16,256,1024   MiB the container holds
 *   BENCH_B2B_TESTS=30            kept tests per series and size (in blocks)
 *   BENCH_B2B_BLOCK=10            kept tests per block
 *   BENCH_B2B_TEST_MS=20          the test's own work
 *   BENCH_IMAGE_DIR=DIR           state, snapshots and runc's images in DIR instead of a tmpfs
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Runtime } from '../src/index.js';
import type { Cleanup } from './cleanup.js';
import { BenchError, timed, timedCommand } from './exec.js';
import { integerSetting, mountsBelow, runtimeCliEnv } from './roots.js';
import { formatTable, round } from './stats.js';
import { Runc } from './tools.js';
import { buildMemhog, isAlive, makeBundle, readPidFile, readyFileInContainer, waitReady } from './workload.js';

export type WayName = 'runtime-cli' | 'runtime-cli-node' | 'runtime-library' | 'runc-loop' | 'cold-restart';

const labels: Record<WayName, string> = {
  'runtime-cli': 'runtime reset (CLI)',
  'runtime-cli-node': 'runtime reset (Node CLI)',
  'runtime-library': 'runtime reset (library)',
  'runc-loop': 'runc delete + restore',
  'cold-restart': 'cold restart (runc run)',
};

interface Settings {
  readonly sizesMiB: readonly number[];
  readonly tests: number;
  readonly block: number;
  readonly warmup: number;
  readonly testMs: number;
  readonly storageDir: string | undefined;
}

function settingsFromEnvironment(environment: NodeJS.ProcessEnv): Settings {
  const integer = integerSetting;
  const block = integer('BENCH_B2B_BLOCK', environment.BENCH_B2B_BLOCK ?? '10', 1);
  const tests = integer('BENCH_B2B_TESTS', environment.BENCH_B2B_TESTS ?? '30', 1);
  return {
    sizesMiB: (environment.BENCH_B2B_SIZES ?? '16,256,1024').split(',').map((size) => integer('BENCH_B2B_SIZES', size.trim(), 1)),
    tests: Math.ceil(tests / block) * block,
    block,
    warmup: 2,
    testMs: integer('BENCH_B2B_TEST_MS', environment.BENCH_B2B_TEST_MS ?? '20', 0),
    storageDir: environment.BENCH_IMAGE_DIR || undefined,
  };
}

export interface Distribution {
  readonly median: number;
  readonly p90: number;
  readonly max: number;
}

export function distribution(values: readonly number[]): Distribution {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!;
  return { median: round(at(0.5)), p90: round(at(0.9)), max: round(sorted[sorted.length - 1]!) };
}

/** One way of getting back to pristine, for one size: a test's work, then the timed way back. */
interface Way {
  readonly name: WayName;
  /** Does the test's work on the running container (its init is pid). */
  test(pid: number, number: number): Promise<void>;
  /** Gets back to pristine; returns the milliseconds it took and the new init's pid. */
  back(number: number): Promise<{ ms: number; pid: number }>;
  /** The init now. */
  readonly pid: number;
  /** Checks the container after the last test (memhog's memory). */
  finish(): Promise<void>;
}

/** The test's work: a file in the container's /tmp, then the rest of its time. */
async function testWork(pid: number, number: number, testMs: number): Promise<void> {
  const started = performance.now();
  await writeFile(`/proc/${pid}/root/tmp/test-${number}`, `test ${number}\n`);
  const left = testMs - (performance.now() - started);
  if (left > 0) await sleep(left);
}

/** After a runtime reset: the new init runs and the last test's file is gone. */
function checkPristine(pid: number, number: number): void {
  if (!isAlive(pid)) throw new BenchError('BENCH_NOT_RUNNING', `after reset ${number}: the returned init ${pid} is not running`);
  if (existsSync(`/proc/${pid}/root/tmp/test-${number}`)) {
    throw new BenchError('BENCH_NOT_PRISTINE', `after reset ${number}: the file the test wrote is still in the container's /tmp`);
  }
}

/** memhog checks every byte (SIGUSR1) and writes "ok N" beside its ready file. */
async function verifyMemory(pid: number, mib: number): Promise<void> {
  const file = `/proc/${pid}/root${readyFileInContainer}.verified`;
  await rm(file, { force: true });
  process.kill(pid, 'SIGUSR1');
  const deadline = Date.now() + 60_000;
  for (;;) {
    const text = await readFile(file, 'utf8').catch(() => undefined);
    if (text !== undefined) {
      if (text.trim() !== `ok ${mib}`) throw new BenchError('BENCH_MEMORY_LOST', `memory of memhog (pid ${pid}) is not the snapshot's: ${text.trim()}`);
      return;
    }
    if (!isAlive(pid)) throw new BenchError('BENCH_NOT_RUNNING', `memhog (pid ${pid}) ended while checking its memory`);
    if (Date.now() > deadline) throw new BenchError('BENCH_TIMEOUT', `memhog (pid ${pid}) did not check its memory within 60 s`);
    await sleep(10);
  }
}

interface SizeRun {
  readonly sizeMiB: number;
  readonly settings: Settings;
  readonly repoRoot: string;
  readonly memhog: string;
  readonly workDir: string;
  readonly imagesDir: string;
  readonly runtime: Runtime;
  readonly cliEnv: NodeJS.ProcessEnv;
  readonly cliLog: string;
  readonly runc: Runc;
  readonly cleanup: Cleanup;
}

/** The runtime's container, snapshotted once; the CLI and the library reset it in turn. */
async function runtimeWays(run: SizeRun): Promise<Way[]> {
  const { sizeMiB, settings } = run;
  const bundle = path.join(run.workDir, 'runtime');
  await makeBundle(run.repoRoot, bundle, run.memhog, sizeMiB);
  const id = `b2b-${process.pid}-${sizeMiB}`;
  run.cleanup.add(`delete runtime container ${id}`, () => run.runtime.delete(id, { force: true }).catch(() => undefined));
  let pid = await run.runtime.run({ id, bundle });
  await waitReady(bundle, sizeMiB);
  const snapshot = await timed(() => run.runtime.checkpoint({ id, name: 'pristine', leaveRunning: true }));
  process.stderr.write(`  ${sizeMiB} MiB: snapshot "pristine" in ${Math.round(snapshot.ms)} ms\n`);
  const pidFile = path.join(run.workDir, 'reset.pid');
  const reset = ['reset', '--pid-file', pidFile, id, 'pristine'];
  const viaCli = async (command: readonly string[]) => {
    await timedCommand([...command, ...reset], { env: run.cliEnv, logPath: run.cliLog });
    return readPidFile(pidFile);
  };
  const way = (name: WayName, reset: () => Promise<number>): Way => ({
    name,
    get pid() {
      return pid;
    },
    test: (current, number) => testWork(current, number, settings.testMs),
    async back(number) {
      const { ms, value } = await timed(reset);
      checkPristine(value, number);
      pid = value;
      return { ms, pid: value };
    },
    finish: () => verifyMemory(pid, sizeMiB),
  });
  return [
    way('runtime-cli', () => viaCli([runtimeCommand(run.repoRoot)])),
    way('runtime-cli-node', () => viaCli(['node', path.join(run.repoRoot, 'bin/runtime.js')])),
    way('runtime-library', () => run.runtime.reset({ id, name: 'pristine' })),
  ];
}

/** runc's checkpoint of an identical container, restored after `delete -f` for every test. */
async function runcLoop(run: SizeRun): Promise<Way> {
  const { sizeMiB, settings } = run;
  const bundle = path.join(run.workDir, 'runc');
  await makeBundle(run.repoRoot, bundle, run.memhog, sizeMiB);
  const id = `b2b-runc-${process.pid}-${sizeMiB}`;
  const pidFile = path.join(run.workDir, 'runc.pid');
  run.cleanup.add(`delete runc container ${id}`, () => run.runc.remove(id));
  await run.runc.start(id, bundle, pidFile);
  await waitReady(bundle, sizeMiB);
  const imagePath = path.join(run.imagesDir, `runc-${sizeMiB}`);
  const checkpointMs = await run.runc.checkpoint(id, imagePath);
  process.stderr.write(`  ${sizeMiB} MiB: runc checkpoint in ${Math.round(checkpointMs)} ms\n`);
  await run.runc.restore(id, imagePath, bundle, pidFile);
  let pid = await readPidFile(pidFile);
  return {
    name: 'runc-loop',
    get pid() {
      return pid;
    },
    test: (current, number) => testWork(current, number, settings.testMs),
    async back() {
      await rm(pidFile, { force: true });
      const started = performance.now();
      await run.runc.remove(id);
      await run.runc.restore(id, imagePath, bundle, pidFile);
      const ms = performance.now() - started;
      pid = await readPidFile(pidFile);
      if (!isAlive(pid)) throw new BenchError('BENCH_NOT_RUNNING', `runc restore returned, and its init ${pid} is not running`);
      return { ms, pid };
    },
    finish: () => verifyMemory(pid, sizeMiB),
  };
}

/** A fresh container from a pristine copy of the rootfs, for every test, until memhog is ready. */
async function coldRestart(run: SizeRun): Promise<Way> {
  const { sizeMiB, settings } = run;
  const bundle = path.join(run.workDir, 'cold');
  await makeBundle(run.repoRoot, bundle, run.memhog, sizeMiB);
  const pristine = path.join(run.workDir, 'cold-pristine-rootfs');
  await cp(path.join(bundle, 'rootfs'), pristine, { recursive: true, verbatimSymlinks: true });
  const id = `b2b-cold-${process.pid}-${sizeMiB}`;
  const pidFile = path.join(run.workDir, 'cold.pid');
  run.cleanup.add(`delete runc container ${id}`, () => run.runc.remove(id));
  const start = async () => {
    await rm(pidFile, { force: true });
    await run.runc.start(id, bundle, pidFile);
    await waitReady(bundle, sizeMiB, 60_000);
    return readPidFile(pidFile);
  };
  let pid = await start();
  return {
    name: 'cold-restart',
    get pid() {
      return pid;
    },
    test: (current, number) => testWork(current, number, settings.testMs),
    async back() {
      const started = performance.now();
      await run.runc.remove(id);
      await rm(path.join(bundle, 'rootfs'), { recursive: true, force: true });
      await cp(pristine, path.join(bundle, 'rootfs'), { recursive: true, verbatimSymlinks: true });
      pid = await start();
      return { ms: performance.now() - started, pid };
    },
    finish: async () => undefined,
  };
}

interface SeriesResult {
  readonly sizeMiB: number;
  readonly way: WayName;
  readonly samplesMs: number[];
  readonly overhead: Distribution;
}

/** Runs the ways' blocks in turn, each block a series of tests back to back. */
async function runSize(run: SizeRun, ways: readonly Way[], abort: AbortSignal): Promise<SeriesResult[]> {
  const { settings } = run;
  const kept = new Map<WayName, number[]>(ways.map((way) => [way.name, []]));
  const blocks = settings.tests / settings.block;
  let testNumber = 0;
  for (let block = 0; block < blocks; block++) {
    const order = [...ways.slice(block % ways.length), ...ways.slice(0, block % ways.length)];
    for (const way of order) {
      const times: number[] = [];
      for (let i = 0; i < settings.warmup + settings.block; i++) {
        abort.throwIfAborted();
        const number = ++testNumber;
        await way.test(way.pid, number);
        const { ms } = await way.back(number);
        if (i >= settings.warmup) times.push(ms);
      }
      kept.get(way.name)!.push(...times);
      const d = distribution(times);
      process.stderr.write(`  ${run.sizeMiB} MiB, block ${block + 1}/${blocks}, ${labels[way.name]}: median ${d.median} ms, p90 ${d.p90}, max ${d.max}\n`);
    }
  }
  for (const way of ways) await way.finish();
  return ways.map((way) => ({
    sizeMiB: run.sizeMiB,
    way: way.name,
    samplesMs: kept.get(way.name)!.map((ms) => round(ms)),
    overhead: distribution(kept.get(way.name)!),
  }));
}

/** The `runtime` command as npm installs it (scripts/build-client.sh builds it). */
export function runtimeCommand(repoRoot: string): string {
  const command = path.join(repoRoot, 'dist/bin/runtime');
  if (!existsSync(command)) throw new BenchError('BENCH_NOT_BUILT', `${command} is missing`, { hint: 'run `npm run build`' });
  return command;
}

/** `runtime state`, the Node CLI's `state` and a bare Node start, each timed to its exit, in turn. */
async function startupFigures(repoRoot: string, id: string, env: NodeJS.ProcessEnv, logPath: string, rounds = 20) {
  const state: number[] = [];
  const nodeState: number[] = [];
  const node: number[] = [];
  for (let i = 0; i < rounds; i++) {
    state.push(await timedCommand([runtimeCommand(repoRoot), 'state', id], { env, logPath }));
    nodeState.push(await timedCommand(['node', path.join(repoRoot, 'bin/runtime.js'), 'state', id], { env, logPath }));
    node.push(await timedCommand(['node', '-e', '0'], { logPath }));
  }
  return { runtimeState: distribution(state), nodeCliState: distribution(nodeState), nodeStart: distribution(node) };
}

function version(command: string): string {
  const result = spawnSync(command, ['--version'], { encoding: 'utf8' });
  if (result.error || result.status !== 0) throw new BenchError('BENCH_MISSING_TOOL', `\`${command} --version\` failed`, { hint: `install ${command}` });
  return `${result.stdout}${result.stderr}`.trim().split('\n')[0]!;
}

/** Runs the benchmark; `repoRoot` holds bin/runtime.js and bench/fixtures. */
export async function benchmarkBackToBack(repoRoot: string, cleanup: Cleanup, abort: AbortSignal): Promise<void> {
  const settings = settingsFromEnvironment(process.env);
  if (process.getuid?.() !== 0) throw new BenchError('BENCH_NOT_ROOT', 'reset and restore need root', { hint: 'run `sudo npm run bench`' });
  const versions = { node: process.version, criu: version('criu'), runc: version('runc'), kernel: os.release() };
  const memhog = await buildMemhog(path.join(repoRoot, 'bench/fixtures/memhog.c'), path.join(repoRoot, 'node_modules/.cache/runtime-bench'));

  // Short paths: a unix socket's path (the monitor's, the lazy-pages daemon's) fits in 108 bytes.
  const temp = await mkdtemp(path.join(os.tmpdir(), 'rb-'));
  cleanup.add(`remove ${temp}`, async () => {
    for (const point of await mountsBelow(temp)) spawnSync('umount', ['-l', point]);
    await rm(temp, { recursive: true, force: true });
  });
  let storage: string;
  if (settings.storageDir) {
    await mkdir(settings.storageDir, { recursive: true });
    storage = await mkdtemp(path.join(path.resolve(settings.storageDir), 'rb-'));
    cleanup.add(`remove ${storage}`, async () => {
      for (const point of await mountsBelow(storage)) spawnSync('umount', ['-l', point]);
      await rm(storage, { recursive: true, force: true });
    });
  } else {
    // Snapshots, state and runc's images on a tmpfs: the comparison is of the work, not of a disk.
    storage = path.join(temp, 'm');
    await mkdir(storage);
    const tmpfsMiB = Math.max(...settings.sizesMiB) * 3 + 512;
    const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${tmpfsMiB}m,mode=0711`, 'runtime-bench-b2b', storage], { encoding: 'utf8' });
    if (mount.status !== 0)
      throw new BenchError('BENCH_TMPFS', `could not mount a tmpfs on ${storage}: ${mount.stderr.trim()}`, { hint: 'set BENCH_IMAGE_DIR' });
    cleanup.add(`unmount ${storage}`, () => {
      const umount = spawnSync('umount', [storage], { encoding: 'utf8' });
      if (umount.status !== 0) throw new Error(umount.stderr.trim());
    });
  }
  const stateRoot = path.join(storage, 's');
  const checkpointRoot = path.join(storage, 'c');
  const imagesDir = path.join(storage, 'runc-images');
  await mkdir(imagesDir, { recursive: true });
  const cgroupParent = `/runtime-bench-${process.pid}`;
  const runtime = Runtime.create({ stateRoot, checkpointRoot, cgroupParent, logLevel: 'warn' });
  const cliEnv = runtimeCliEnv({ stateRoot, checkpointRoot, cgroupParent });
  // Registered before any container: it runs once they are gone.
  cleanup.add(`remove the cgroups below ${cgroupParent}`, async () => {
    const left = await runtime.context.cgroups.removeTree(cgroupParent);
    if (left.length > 0) throw new Error(`still busy: ${left.join(', ')}`);
  });
  const cliLog = path.join(temp, 'runtime-cli.log');
  const runc = await Runc.create(path.join(temp, 'runc'));
  cleanup.add('close the runc stdio pipes', () => runc.close());

  const storageText = `${spawnSync('findmnt', ['-n', '-o', 'FSTYPE', '--target', storage], { encoding: 'utf8' }).stdout.trim()} (${storage})`;
  process.stderr.write(
    `bench: reset back to back, ${settings.tests} tests per series and size in blocks of ${settings.block} (+${settings.warmup} warm-up each), ` +
      `${settings.testMs} ms of test work, sizes ${settings.sizesMiB.join(', ')} MiB; state and images on ${storageText}\n`,
  );
  const started = Date.now();
  const load = { before: os.loadavg() };
  const results: SeriesResult[] = [];
  let startup: Awaited<ReturnType<typeof startupFigures>> | undefined;
  for (const sizeMiB of settings.sizesMiB) {
    const workDir = path.join(temp, `size-${sizeMiB}`);
    await mkdir(workDir);
    const run: SizeRun = { sizeMiB, settings, repoRoot, memhog, workDir, imagesDir, runtime, cliEnv, cliLog, runc, cleanup };
    const ways = [...(await runtimeWays(run)), await runcLoop(run), await coldRestart(run)];
    results.push(...(await runSize(run, ways, abort)));
    if (!startup) startup = await startupFigures(repoRoot, `b2b-${process.pid}-${sizeMiB}`, cliEnv, cliLog);
    await runtime.delete(`b2b-${process.pid}-${sizeMiB}`, { force: true });
    await runc.remove(`b2b-runc-${process.pid}-${sizeMiB}`);
    await runc.remove(`b2b-cold-${process.pid}-${sizeMiB}`);
  }
  const elapsedSeconds = (Date.now() - started) / 1000;

  const of = (sizeMiB: number, way: WayName) => results.find((r) => r.sizeMiB === sizeMiB && r.way === way)!.overhead;
  const smallest = Math.min(...settings.sizesMiB);
  const largest = Math.max(...settings.sizesMiB);
  const ratios = settings.sizesMiB.map((sizeMiB) => ({
    sizeMiB,
    cliToRunc: round(of(sizeMiB, 'runtime-cli').median / of(sizeMiB, 'runc-loop').median, 2),
    nodeCliToRunc: round(of(sizeMiB, 'runtime-cli-node').median / of(sizeMiB, 'runc-loop').median, 2),
    coldToRunc: round(of(sizeMiB, 'cold-restart').median / of(sizeMiB, 'runc-loop').median, 2),
    cliMinusLibraryMs: round(of(sizeMiB, 'runtime-cli').median - of(sizeMiB, 'runtime-library').median),
  }));
  const report = {
    benchmark: 'reset-back-to-back',
    date: new Date().toISOString(),
    host: { ...versions, cpu: os.cpus()[0]?.model ?? 'unknown', cpus: os.cpus().length, memoryMiB: Math.round(os.totalmem() / 2 ** 20) },
    setup: {
      workload: 'busybox bundle whose init is bench/fixtures/memhog.c holding N MiB of touched, non-zero pages',
      test: `writes /tmp/test-N in the container, then waits; ${settings.testMs} ms in all, not timed`,
      timed: Object.fromEntries(Object.entries(labels).map(([name, label]) => [name, label])),
      overhead: 'per test: from the end of its work until the container is back to pristine (the call or command returned)',
      tests: settings.tests,
      block: settings.block,
      warmupPerBlock: settings.warmup,
      storage: storageText,
      load: { ...load, after: os.loadavg() },
      elapsedSeconds: round(elapsedSeconds),
    },
    results,
    ratios,
    sizeScaling: {
      from: smallest,
      to: largest,
      cli: round(of(largest, 'runtime-cli').median / of(smallest, 'runtime-cli').median, 2),
      library: round(of(largest, 'runtime-library').median / of(smallest, 'runtime-library').median, 2),
    },
    startup,
  };

  const rows = settings.sizesMiB.flatMap((sizeMiB) =>
    (['runtime-cli', 'runtime-cli-node', 'runtime-library', 'runc-loop', 'cold-restart'] as const).map((way) => {
      const d = of(sizeMiB, way);
      const ratio = way === 'runtime-library' ? '(in-process)' : (d.median / of(sizeMiB, 'runc-loop').median).toFixed(2);
      return [`${sizeMiB} MiB`, labels[way], d.median.toFixed(0), d.p90.toFixed(0), d.max.toFixed(0), ratio];
    }),
  );
  const text = [
    `per-test overhead, ms: ${settings.tests} tests back to back per series and size (${settings.testMs} ms of test work each, not counted)`,
    '',
    formatTable(['size', 'way back to pristine', 'median', 'p90', 'max', 'median/runc'], rows),
    '',
    `${largest} MiB against ${smallest} MiB, CLI reset median: ${report.sizeScaling.cli.toFixed(2)}x; library: ${report.sizeScaling.library.toFixed(2)}x`,
    ...ratios.map((r) => `${r.sizeMiB} MiB: CLI reset - library reset (medians): ${r.cliMinusLibraryMs.toFixed(0)} ms`),
    startup
      ? `runtime state: median ${startup.runtimeState.median} ms, p90 ${startup.runtimeState.p90}; through the Node CLI: median ${startup.nodeCliState.median} ms, p90 ${startup.nodeCliState.p90} (node -e 0 alone: median ${startup.nodeStart.median} ms, p90 ${startup.nodeStart.p90})`
      : '',
    `load average before ${load.before.map((l) => l.toFixed(2)).join(' ')}, after ${report.setup.load.after.map((l) => l.toFixed(2)).join(' ')}`,
  ].join('\n');
  process.stdout.write(`\n${text}\n`);
  const resultsFile = path.join(repoRoot, 'bench-results/reset.json');
  await mkdir(path.dirname(resultsFile), { recursive: true });
  await writeFile(resultsFile, `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(`\nwritten to ${path.relative(process.cwd(), resultsFile)} (${elapsedSeconds.toFixed(0)} s)\n`);
}
