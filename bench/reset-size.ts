/**
 * One size of the reset benchmark. A runtime container holding N MiB is snapshotted once
 * ("pristine", left running), and runc checkpoints an identical container of its own once. Then
 * the series with a standby reset the runtime container, one series after the other (the CLI's
 * start-up alone is timed after each CLI reset); then the interleaved series (resets without a
 * standby, runc restore, cold starts) run round by round in a rotated order. Every series runs
 * one warm-up round first, not kept.
 *
 * After each reset the container must be at the snapshot: the returned pid is the record's init
 * and the monitor's child, and (eager) holds N MiB. memhog checks every byte after the last round
 * of each series (every round with BENCH_RESET_VERIFY=every).
 */
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Runtime } from '../src/index.js';
import type { Cleanup } from './cleanup.js';
import { BenchError, timed, timedCommand } from './exec.js';
import { parentOf, waitSettled } from './reset-settle.js';
import type { ResetSample, ResetWay, Series, SeriesName, SizeFacts } from './reset-series.js';
import type { Runc } from './tools.js';
import { clearReady, imageSize, isAlive, makeBundle, readPidFile, readyFileInContainer, residentMiB, waitReady } from './workload.js';

export interface ResetSizeRun {
  readonly sizeMiB: number;
  readonly rounds: number;
  readonly warmupRounds: number;
  /** The series to run, in allSeries' order. */
  readonly series: readonly Series[];
  readonly repoRoot: string;
  readonly memhog: string;
  /** Bundles and pid files. */
  readonly workDir: string;
  /** runc's checkpoint images. */
  readonly imagesDir: string;
  /** The in-process runtime; the CLI gets the same roots through cliEnv. */
  readonly runtime: Runtime;
  readonly cliEnv: NodeJS.ProcessEnv;
  readonly cliLog: string;
  readonly runc: Runc;
  /** Idle time after each operation (after the monitor settled, for a reset). */
  readonly pauseMs: number;
  readonly settleTimeoutMs: number;
  readonly verifyEveryRound: boolean;
  readonly cleanup: Cleanup;
  readonly abort: AbortSignal;
  /** Things that are not as the design says, but do not stop the benchmark. */
  readonly anomalies: string[];
}

/** A sample before it knows its round. */
type Measured = Omit<ResetSample, 'sizeMiB' | 'series' | 'round'>;

/** The container being reset: its id, monitor, and current init. */
interface ResetTarget {
  readonly id: string;
  readonly monitorPid: number;
  pid: number;
}

/** Accept a little less than N MiB: the page count, not the last KiB, is the point. */
function holds(mib: number, sizeMiB: number): boolean {
  return mib >= sizeMiB * 0.98;
}

function describe(measured: Measured): string {
  const parts = [`${measured.ms.toFixed(1)} ms`, `RSS ${measured.residentMiB.toFixed(0)}`];
  if (measured.settleMs !== undefined) parts.push(`settled +${measured.settleMs}`);
  if (measured.commandMs !== undefined) parts.push(`returned ${measured.commandMs.toFixed(0)}`);
  return parts.join(', ');
}

function roundLabel(run: ResetSizeRun, round: number): string {
  return round < run.warmupRounds ? 'warm-up' : `round ${round - run.warmupRounds + 1}/${run.rounds}`;
}

export async function benchmarkResetSize(run: ResetSizeRun): Promise<{ samples: ResetSample[]; facts: SizeFacts }> {
  const { sizeMiB } = run;
  const samples: ResetSample[] = [];
  const verified: string[] = [];
  const total = run.warmupRounds + run.rounds;
  const keep = (series: SeriesName, round: number, measured: Measured) => {
    if (round >= run.warmupRounds) samples.push({ sizeMiB, series, round: round - run.warmupRounds, ...measured });
  };

  // The runtime's container and its snapshot.
  const bundle = path.join(run.workDir, 'reset');
  await makeBundle(run.repoRoot, bundle, run.memhog, sizeMiB);
  const id = `reset-${process.pid}-${sizeMiB}`;
  run.cleanup.add(`delete runtime container ${id}`, () => run.runtime.delete(id, { force: true }).catch(() => undefined));
  run.abort.throwIfAborted();
  const firstPid = await run.runtime.run({ id, bundle });
  await waitReady(bundle, sizeMiB);
  const snapshot = await timed(() => run.runtime.checkpoint({ id, name: 'pristine', leaveRunning: true }));
  if (!isAlive(firstPid)) throw new BenchError('BENCH_STILL_RUNNING', `container ${id}: pid ${firstPid} is gone after a leaveRunning snapshot`);
  const snapshotPages = await imageSize(snapshot.value.imagePath);
  if (!holds(snapshotPages.pagesMiB, sizeMiB)) {
    throw new BenchError(
      'BENCH_IMAGE_SIZE',
      `container ${id}: the snapshot holds ${snapshotPages.pagesMiB.toFixed(1)} MiB of pages, expected ${sizeMiB} MiB`,
    );
  }
  const first = await recordOf(run.runtime, id);
  const monitorPid = first.status === 'running' ? first.monitor?.pid : undefined;
  if (!monitorPid) throw new BenchError('BENCH_NO_MONITOR', `container ${id} has no monitor after run`);
  const target: ResetTarget = { id, monitorPid, pid: firstPid };
  process.stderr.write(`  ${sizeMiB} MiB snapshot "pristine": ${Math.round(snapshot.ms)} ms, ${snapshotPages.pagesMiB.toFixed(1)} MiB of pages\n`);

  // runc's checkpoint of an identical container; the container is gone after it.
  const runcBundle = path.join(run.workDir, 'runc');
  await makeBundle(run.repoRoot, runcBundle, run.memhog, sizeMiB);
  const runcId = `runc-${process.pid}-${sizeMiB}`;
  const runcPidFile = path.join(run.workDir, 'runc.pid');
  run.cleanup.add(`delete runc container ${runcId}`, () => run.runc.remove(runcId));
  run.abort.throwIfAborted();
  await run.runc.start(runcId, runcBundle, runcPidFile);
  await waitReady(runcBundle, sizeMiB);
  const imagePath = path.join(run.imagesDir, `runc-${sizeMiB}`);
  const runcCheckpointMs = await run.runc.checkpoint(runcId, imagePath);
  const runcPages = await imageSize(imagePath);
  if (!holds(runcPages.pagesMiB, sizeMiB)) {
    throw new BenchError(
      'BENCH_IMAGE_SIZE',
      `runc container ${runcId}: the image holds ${runcPages.pagesMiB.toFixed(1)} MiB of pages, expected ${sizeMiB} MiB`,
    );
  }
  process.stderr.write(`  ${sizeMiB} MiB runc checkpoint: ${Math.round(runcCheckpointMs)} ms, ${runcPages.pagesMiB.toFixed(1)} MiB of pages\n`);

  // The series with a standby, each to its end; the CLI's start-up alone after each CLI reset.
  const startupToo = run.series.some((s) => s.name === 'cli-startup');
  for (const series of run.series.filter((s) => !s.interleaved && s.reset)) {
    for (let round = 0; round < total; round++) {
      run.abort.throwIfAborted();
      const measured = await resetOnce(run, target, series.name, series.reset!, round);
      if (run.verifyEveryRound || round === total - 1) await verifyMemoryOf(target.pid, sizeMiB);
      keep(series.name, round, measured);
      let text = describe(measured);
      if (series.reset!.via === 'cli' && startupToo) {
        const startup = await cliStartup(run);
        keep('cli-startup', round, startup);
        text += `; CLI start-up alone ${startup.ms.toFixed(1)} ms`;
      }
      process.stderr.write(`  ${sizeMiB} MiB ${series.label}, ${roundLabel(run, round)}: ${text}\n`);
    }
    verified.push(series.name);
  }

  // The others, round by round.
  const contenders: { series: Series; once: (round: number) => Promise<Measured> }[] = [];
  for (const series of run.series.filter((s) => s.interleaved)) {
    contenders.push({ series, once: await contender(run, series, { target, runcId, runcBundle, runcPidFile, imagePath }) });
  }
  for (let round = 0; round < total; round++) {
    const shift = round % Math.max(contenders.length, 1);
    const order = [...contenders.slice(shift), ...contenders.slice(0, shift)];
    const line: string[] = [];
    for (const { series, once } of order) {
      run.abort.throwIfAborted();
      const measured = await once(round);
      keep(series.name, round, measured);
      line.push(`${series.name} ${describe(measured)}`);
    }
    if (line.length > 0) process.stderr.write(`  ${sizeMiB} MiB ${roundLabel(run, round)}: ${line.join('; ')}\n`);
  }
  // A cold start has nothing to check against: memhog wrote its memory just now.
  verified.push(...contenders.filter(({ series }) => !series.name.startsWith('cold-start')).map(({ series }) => series.name));

  await run.runtime.delete(id, { force: true });
  await rm(imagePath, { recursive: true, force: true });
  for (const dir of [bundle, runcBundle, path.join(run.workDir, 'cold')]) await rm(dir, { recursive: true, force: true });
  return {
    samples,
    facts: {
      sizeMiB,
      snapshotMs: snapshot.ms,
      snapshotPagesMiB: snapshotPages.pagesMiB,
      runcCheckpointMs,
      runcPagesMiB: runcPages.pagesMiB,
      verified: verified.map((name) => `${name}: memhog checked every byte ${run.verifyEveryRound ? 'after every round' : 'after the last round'}`),
    },
  };
}

interface Shared {
  readonly target: ResetTarget;
  readonly runcId: string;
  readonly runcBundle: string;
  readonly runcPidFile: string;
  readonly imagePath: string;
}

/** One round of an interleaved series, as a function; it leaves only the reset container running. */
async function contender(run: ResetSizeRun, series: Series, shared: Shared): Promise<(round: number) => Promise<Measured>> {
  const { sizeMiB } = run;
  const last = (round: number) => run.verifyEveryRound || round === run.warmupRounds + run.rounds - 1;
  const pause = () => (run.pauseMs > 0 ? sleep(run.pauseMs) : Promise.resolve());
  switch (series.name) {
    case 'runc-restore':
      // From the same image directory every round; runc restore needs the container gone.
      return async (round) => {
        await rm(shared.runcPidFile, { force: true });
        const ms = await run.runc.restore(shared.runcId, shared.imagePath, shared.runcBundle, shared.runcPidFile);
        const pid = await readPidFile(shared.runcPidFile);
        const resident = await residentMiB(pid);
        if (!holds(resident, sizeMiB))
          throw new BenchError(
            'BENCH_RESTORE',
            `runc container ${shared.runcId} holds ${resident.toFixed(1)} MiB after the restore, expected ${sizeMiB} MiB`,
          );
        if (last(round)) await verifyMemoryOf(pid, sizeMiB);
        await run.runc.remove(shared.runcId);
        await pause();
        return { ms, residentMiB: resident };
      };
    case 'cold-start-runc': {
      const id = `runc-cold-${process.pid}-${sizeMiB}`;
      run.cleanup.add(`delete runc container ${id}`, () => run.runc.remove(id));
      return (round) =>
        coldStart(run, series.name, shared.runcBundle, round, {
          start: async () => {
            await rm(shared.runcPidFile, { force: true });
            await run.runc.start(id, shared.runcBundle, shared.runcPidFile);
            return readPidFile(shared.runcPidFile);
          },
          remove: () => run.runc.remove(id),
        });
    }
    case 'cold-start-runtime': {
      // A bundle of its own: the reset container's rootfs path has its instance mounted on it.
      const bundle = path.join(run.workDir, 'cold');
      await makeBundle(run.repoRoot, bundle, run.memhog, sizeMiB);
      const id = `cold-${process.pid}-${sizeMiB}`;
      run.cleanup.add(`delete runtime container ${id}`, () => run.runtime.delete(id, { force: true }).catch(() => undefined));
      return (round) =>
        coldStart(run, series.name, bundle, round, {
          start: () => run.runtime.run({ id, bundle }),
          remove: () => run.runtime.delete(id, { force: true }),
        });
    }
    default:
      if (!series.reset) throw new BenchError('BENCH_SETTING', `no way to run the series ${series.name}`);
      return async (round) => {
        const measured = await resetOnce(run, shared.target, series.name, series.reset!, round);
        if (last(round)) await verifyMemoryOf(shared.target.pid, sizeMiB);
        return measured;
      };
  }
}

/** `runtime --version`: Node's start and the CLI's modules, no work. */
async function cliStartup(run: ResetSizeRun): Promise<Measured> {
  const ms = await timedCommand([process.execPath, path.join(run.repoRoot, 'bin/runtime.js'), '--version'], { env: run.cliEnv, logPath: run.cliLog });
  if (run.pauseMs > 0) await sleep(run.pauseMs);
  return { ms, residentMiB: 0 };
}

async function recordOf(runtime: Runtime, id: string) {
  const row = (await runtime.listRecords()).find((entry) => entry.record.id === id);
  if (!row) throw new BenchError('BENCH_NO_RECORD', `container ${id} has no record`);
  return row.record;
}

/** One timed reset, checked, then the wait for the monitor to settle and the pause. */
async function resetOnce(run: ResetSizeRun, target: ResetTarget, series: SeriesName, way: ResetWay, round: number): Promise<Measured> {
  const { sizeMiB, runtime } = run;
  const { id } = target;
  let ms: number;
  let pid: number;
  if (way.via === 'library') {
    const result = await timed(() =>
      runtime.reset({ id, name: 'pristine', ...(way.lazy ? { lazyPages: true } : {}), ...(way.standby ? {} : { standby: false }) }),
    );
    ms = result.ms;
    pid = result.value;
  } else {
    const pidFile = path.join(run.workDir, 'reset.pid');
    await rm(pidFile, { force: true });
    const flags = [...(way.lazy ? ['--lazy-pages'] : []), ...(way.standby ? [] : ['--no-standby'])];
    ms = await timedCommand([process.execPath, path.join(run.repoRoot, 'bin/runtime.js'), 'reset', ...flags, '--pid-file', pidFile, id, 'pristine'], {
      env: run.cliEnv,
      logPath: run.cliLog,
    });
    pid = await readPidFile(pidFile);
  }
  // Right after the return: how much of the memory is there (all of it, unless lazy).
  const resident = await residentMiB(pid);
  const where = `container ${id}, ${series} ${roundLabel(run, round)}`;
  if (!way.lazy && !holds(resident, sizeMiB)) {
    throw new BenchError('BENCH_RESET', `${where}: the reset init (pid ${pid}) holds ${resident.toFixed(1)} MiB, expected ${sizeMiB} MiB`);
  }
  if (pid === target.pid) throw new BenchError('BENCH_RESET', `${where}: the reset returned the previous init's pid ${pid}`);
  const record = await recordOf(runtime, id);
  if (record.status !== 'running' || record.init.pid !== pid) {
    throw new BenchError(
      'BENCH_RESET',
      `${where}: the record says ${record.status}, init ${record.status === 'running' ? record.init.pid : 'none'}, but the reset returned pid ${pid}`,
    );
  }
  const parent = await parentOf(pid);
  if (record.monitor?.pid !== target.monitorPid || parent !== target.monitorPid) {
    run.anomalies.push(
      `${sizeMiB} MiB ${series}: the init's parent is ${parent} and the record's monitor ${record.monitor?.pid}, not the container's monitor ${target.monitorPid}`,
    );
  }
  target.pid = pid;

  const paths = runtime.context.store.paths(id);
  const settleMs = await waitSettled({
    monitorPid: record.monitor?.pid ?? target.monitorPid,
    initPid: pid,
    instancesDir: path.join(paths.dir, 'instances'),
    standby: way.standby,
    timeoutMs: run.settleTimeoutMs,
    monitorLog: paths.monitorLog,
    abort: run.abort,
  });
  if (run.pauseMs > 0) await sleep(run.pauseMs);
  return { ms, residentMiB: resident, settleMs };
}

/** Starts the workload from nothing until memhog is ready; the removal after is not timed. */
async function coldStart(
  run: ResetSizeRun,
  series: SeriesName,
  bundle: string,
  round: number,
  how: { start: () => Promise<number>; remove: () => Promise<void> },
): Promise<Measured> {
  const ready = path.join(bundle, 'rootfs', readyFileInContainer);
  await clearReady(bundle);
  const started = process.hrtime.bigint();
  const pid = await how.start();
  const commandMs = Number(process.hrtime.bigint() - started) / 1e6;
  // memhog renames the file into place once every page is touched; 1 ms polls, no busy loop.
  const deadline = Date.now() + 60_000;
  while (!existsSync(ready)) {
    if (Date.now() > deadline) throw new BenchError('BENCH_TIMEOUT', `${series} ${roundLabel(run, round)}: memhog in ${bundle} was not ready within 60 s`);
    await sleep(1);
  }
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  const text = (await readFile(ready, 'utf8')).trim();
  if (Number(text.split(/\s+/)[1]) !== run.sizeMiB)
    throw new BenchError('BENCH_WORKLOAD', `${series}: memhog reports "${text}", expected ${run.sizeMiB} MiB`);
  const resident = await residentMiB(pid);
  await how.remove();
  if (run.pauseMs > 0) await sleep(run.pauseMs);
  return { ms, residentMiB: resident, commandMs };
}

/**
 * Has memhog check every byte (SIGUSR1), through the process's own root: a reset instance's
 * rootfs is an overlay of its own, not the bundle's directory.
 */
export async function verifyMemoryOf(pid: number, mib: number): Promise<void> {
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
