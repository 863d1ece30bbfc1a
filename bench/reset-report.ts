/** The reset benchmark's results: medians, ratios to runc restore, the targets, the table. */
import os from 'node:os';
import { allSeries, seriesNamed, type ResetSample, type SeriesName, type SizeFacts } from './reset-series.js';
import { formatTable, round, summarize } from './stats.js';

export interface ResetSettings {
  readonly rounds: number;
  readonly warmupRounds: number;
  readonly sizesMiB: readonly number[];
  readonly series: readonly SeriesName[];
  readonly pauseMs: number;
  readonly settleTimeoutMs: number;
  readonly verifyEveryRound: boolean;
  readonly storageDir: string | undefined;
}

export interface SeriesResult {
  readonly sizeMiB: number;
  readonly series: SeriesName;
  readonly samplesMs: number[];
  readonly medianMs: number;
  readonly minMs: number;
  readonly maxMs: number;
  /** median / runc restore's median of the same size: below 1, faster than runc. */
  readonly perRuncRestore: number | null;
  readonly residentMiB: number;
  readonly settleMs: number | null;
  readonly commandMs: number | null;
}

export interface TargetCheck {
  readonly target: string;
  /** The target, or the same bound applied to another series for information. */
  readonly kind: 'target' | 'informational';
  readonly measuredMs: number | null;
  readonly limitMs: number | null;
  readonly ratio: number | null;
  readonly bound: number;
  readonly verdict: 'PASS' | 'FAIL' | 'n/a';
  readonly why?: string;
}

export interface ReportContext {
  readonly versions: Record<string, string>;
  readonly storage: string;
  readonly elapsedSeconds: number;
  readonly facts: readonly SizeFacts[];
  readonly anomalies: readonly string[];
  /** os.loadavg() when the benchmark began and ended: other work on the host skews the times. */
  readonly load: { readonly before: readonly number[]; readonly after: readonly number[] };
}

export function results(settings: ResetSettings, samples: readonly ResetSample[]): SeriesResult[] {
  const rows: SeriesResult[] = [];
  for (const sizeMiB of settings.sizesMiB) {
    const of = (series: SeriesName) => samples.filter((sample) => sample.sizeMiB === sizeMiB && sample.series === series);
    const runc = of('runc-restore');
    const runcMedian = runc.length > 0 ? summarize(runc.map((sample) => sample.ms)).median : undefined;
    for (const series of settings.series) {
      const mine = of(series);
      if (mine.length === 0) continue;
      const summary = summarize(mine.map((sample) => sample.ms));
      const median = (values: (number | undefined)[]) => {
        const present = values.filter((value): value is number => value !== undefined);
        return present.length > 0 ? round(summarize(present).median) : null;
      };
      rows.push({
        sizeMiB,
        series,
        samplesMs: mine.map((sample) => round(sample.ms)),
        medianMs: round(summary.median),
        minMs: round(summary.min),
        maxMs: round(summary.max),
        perRuncRestore: runcMedian ? round(summary.median / runcMedian, 3) : null,
        residentMiB: round(summarize(mine.map((sample) => sample.residentMiB)).median),
        settleMs: median(mine.map((sample) => sample.settleMs)),
        commandMs: median(mine.map((sample) => sample.commandMs)),
      });
    }
  }
  return rows;
}

/**
 * The three targets, on the default reset (with a standby) through the library, and the
 * same bounds on the other ways of resetting, for information.
 */
export function targetChecks(rows: readonly SeriesResult[]): TargetCheck[] {
  const median = (sizeMiB: number, series: SeriesName) => rows.find((row) => row.sizeMiB === sizeMiB && row.series === series)?.medianMs;
  const check = (
    kind: TargetCheck['kind'],
    target: string,
    bound: number,
    measured: number | undefined,
    against: number | undefined,
    missing: string,
  ): TargetCheck => {
    if (measured === undefined || against === undefined)
      return { target, kind, measuredMs: null, limitMs: null, ratio: null, bound, verdict: 'n/a', why: missing };
    const ratio = round(measured / against, 3);
    return { target, kind, measuredMs: measured, limitMs: round(bound * against), ratio, bound, verdict: measured <= bound * against ? 'PASS' : 'FAIL' };
  };
  const runc256 = median(256, 'runc-restore');
  const checks: TargetCheck[] = [];
  const ways: [TargetCheck['kind'], SeriesName, SeriesName, string][] = [
    ['target', 'reset-eager-standby', 'reset-lazy-standby', 'standby, library'],
    ['informational', 'reset-eager-standby-cli', 'reset-lazy-standby', 'standby, CLI'],
    ['informational', 'reset-eager-cold', 'reset-lazy-cold', 'no standby, library'],
  ];
  for (const [kind, eager, lazy, how] of ways) {
    const missing = (series: SeriesName, sizes: string) => `needs ${sizes} MiB in BENCH_RESET_SIZES and the series ${series} and runc-restore`;
    checks.push(check(kind, `eager reset 256 MiB (${how}) <= 0.5 x runc restore 256 MiB`, 0.5, median(256, eager), runc256, missing(eager, '256')));
    if (kind === 'informational' && eager === 'reset-eager-standby-cli') continue; // the CLI runs eager resets only
    checks.push(check(kind, `lazy reset 256 MiB (${how}) <= 0.25 x runc restore 256 MiB`, 0.25, median(256, lazy), runc256, missing(lazy, '256')));
    checks.push(
      check(
        kind,
        `lazy reset 1024 MiB (${how}) <= 2 x lazy reset 16 MiB`,
        2,
        median(1024, lazy),
        median(16, lazy),
        `needs 16 and 1024 MiB in BENCH_RESET_SIZES and the series ${lazy}`,
      ),
    );
  }
  return checks;
}

export function buildReport(settings: ResetSettings, samples: readonly ResetSample[], context: ReportContext) {
  const rows = results(settings, samples);
  return {
    benchmark: 'reset',
    date: new Date().toISOString(),
    host: {
      ...context.versions,
      cpu: os.cpus()[0]?.model ?? 'unknown',
      cpus: os.cpus().length,
      memoryMiB: Math.round(os.totalmem() / 2 ** 20),
      loadAverage: { before: context.load.before.map((value) => round(value, 2)), after: context.load.after.map((value) => round(value, 2)) },
    },
    setup: {
      workload:
        'busybox bundle (scripts/make-busybox-bundle.sh) whose init is bench/fixtures/memhog.c holding N MiB of touched, non-zero pages, ' +
        'snapshotted once as "pristine" (Runtime.checkpoint, leaveRunning)',
      rounds: settings.rounds,
      warmupRounds: settings.warmupRounds,
      sizesMiB: settings.sizesMiB,
      storage: context.storage,
      pause:
        `after each reset the benchmark waits until the monitor has settled (polling /proc every 10 ms: with a standby, its only ` +
        `children are the new init and one stopped standby tree, and no CRIU restore or lazy-pages daemon runs; without, the init ` +
        `alone), then ${settings.pauseMs} ms more; the wait is the "settled after" column, never part of a measured time`,
      runc:
        'runc checkpoints its own container of an identical bundle (same memhog, same size) once; every round `runc restore -d` ' +
        'restores from that same image directory, and an untimed `runc delete -f` follows',
      verification:
        "after each reset: the returned pid is the record's init and the monitor's child, and an eager reset's init holds N MiB; " +
        `memhog checks every byte (SIGUSR1) ${settings.verifyEveryRound ? 'after every round' : 'after the last round of each series'}`,
      series: Object.fromEntries(settings.series.map((name) => [name, seriesNamed(name).measured])),
      elapsedSeconds: round(context.elapsedSeconds),
    },
    results: rows,
    targets: targetChecks(rows),
    sizes: context.facts.map((facts) => ({
      ...facts,
      snapshotMs: round(facts.snapshotMs),
      snapshotPagesMiB: round(facts.snapshotPagesMiB, 2),
      runcCheckpointMs: round(facts.runcCheckpointMs),
      runcPagesMiB: round(facts.runcPagesMiB, 2),
    })),
    anomalies: context.anomalies,
    samples: samples.map((sample) => ({
      ...sample,
      ms: round(sample.ms),
      residentMiB: round(sample.residentMiB),
      ...(sample.commandMs !== undefined ? { commandMs: round(sample.commandMs) } : {}),
    })),
  };
}

export type ResetReport = ReturnType<typeof buildReport>;

export function renderReport(settings: ResetSettings, report: ResetReport): string {
  const order = allSeries.map((series) => series.name);
  const rows = [...report.results].sort((a, b) => a.sizeMiB - b.sizeMiB || order.indexOf(a.series) - order.indexOf(b.series));
  const table = formatTable(
    ['size', 'operation', 'median ms (min–max)', 'x runc restore', 'RSS after MiB', 'settled after ms'],
    rows.map((row) => [
      `${row.sizeMiB} MiB`,
      seriesNamed(row.series).label,
      `${row.medianMs.toFixed(1)} (${row.minMs.toFixed(1)}–${row.maxMs.toFixed(1)})`,
      row.perRuncRestore === null ? '' : row.perRuncRestore.toFixed(3),
      row.series === 'cli-startup' ? '' : row.residentMiB.toFixed(0),
      row.settleMs === null ? '' : row.settleMs.toFixed(0),
    ]),
  );
  const targets = report.targets.map((check) => {
    const detail =
      check.verdict === 'n/a'
        ? (check.why ?? '')
        : `${check.measuredMs!.toFixed(1)} ms vs limit ${check.limitMs!.toFixed(1)} ms (ratio ${check.ratio!.toFixed(3)}, bound ${check.bound})`;
    return `  ${check.verdict.padEnd(4)} ${check.kind === 'target' ? '' : '(info) '}${check.target}: ${detail}`;
  });
  const median = (sizeMiB: number, series: SeriesName) => report.results.find((row) => row.sizeMiB === sizeMiB && row.series === series)?.medianMs;
  const facts = report.sizes.map((size) => {
    const cli = median(size.sizeMiB, 'reset-eager-standby-cli');
    const startup = median(size.sizeMiB, 'cli-startup');
    return (
      `  ${size.sizeMiB} MiB: snapshot ${size.snapshotMs.toFixed(0)} ms (${size.snapshotPagesMiB.toFixed(1)} MiB of pages), ` +
      `runc checkpoint ${size.runcCheckpointMs.toFixed(0)} ms (${size.runcPagesMiB.toFixed(1)} MiB of pages)` +
      (cli !== undefined && startup !== undefined ? `; CLI reset minus CLI start-up: ${(cli - startup).toFixed(0)} ms` : '')
    );
  });
  const load = report.host.loadAverage;
  return [
    `reset latency, median (min–max) of ${settings.rounds} rounds after ${settings.warmupRounds} warm-up; images and state on ${report.setup.storage.split(' ')[0]}; ` +
      `${report.host.cpus} CPUs, load average ${load.before[0]!.toFixed(1)} before, ${load.after[0]!.toFixed(1)} after`,
    `between resets: wait until the monitor settled (standby ready, no CRIU running; "settled after"), then ${settings.pauseMs} ms`,
    '',
    table,
    '',
    'targets (issue "pristine reset"):',
    ...targets,
    '',
    'once per size:',
    ...facts,
    ...(report.anomalies.length > 0 ? ['', 'anomalies:', ...report.anomalies.map((text) => `  ${text}`)] : []),
  ].join('\n');
}
