/**
 * `--print-stats` of checkpoint and restore: CRIU's statistics in podman's JSON shape (podman
 * prints the same objects per container: `runtime_checkpoint_duration` / `runtime_restore_duration`
 * in microseconds and the CRIU counters it picks from stats-dump / stats-restore).
 */
import { readDumpStatistics, readRestoreStatistics, DUMP_STATS_FILE, RESTORE_STATS_FILE } from '../criu/images/stats.js';
import type { DumpStatistics, RestoreStatistics } from '../criu/images/stats.js';
import path from 'node:path';
import { RuntimeError } from './errors.js';
import type { RuntimeContext } from './context.js';
import { CheckpointNotFoundError } from './checkpoint-metadata.js';

export interface CheckpointStatsReport {
  /** Microseconds the runtime's checkpoint took. */
  readonly runtime_checkpoint_duration: number;
  readonly criu_statistics: Pick<DumpStatistics, 'freezing_time' | 'frozen_time' | 'memdump_time' | 'memwrite_time' | 'pages_scanned' | 'pages_written'>;
}

export interface RestoreStatsReport {
  /** Microseconds the runtime's restore took. */
  readonly runtime_restore_duration: number;
  readonly criu_statistics: Required<Pick<RestoreStatistics, 'pages_compared' | 'pages_skipped_cow' | 'forking_time' | 'restore_time' | 'pages_restored'>>;
}

export class StatisticsNotFoundError extends RuntimeError {
  readonly code = 'CRIU_STATISTICS_NOT_FOUND' as const;
  constructor(
    readonly file: string,
    readonly dirs: readonly string[],
  ) {
    super(`CRIU wrote no ${file} in ${dirs.join(' or ')}`, {
      hint: 'CRIU writes its statistics to the work directory (--work-path), else the image directory; a lazy-pages restore writes them only when all pages are in',
    });
  }
}

export function checkpointStatsReport(durationUs: number, stats: DumpStatistics): CheckpointStatsReport {
  return {
    runtime_checkpoint_duration: Math.round(durationUs),
    criu_statistics: {
      freezing_time: stats.freezing_time,
      frozen_time: stats.frozen_time,
      memdump_time: stats.memdump_time,
      memwrite_time: stats.memwrite_time,
      pages_scanned: stats.pages_scanned,
      pages_written: stats.pages_written,
    },
  };
}

export function restoreStatsReport(durationUs: number, stats: RestoreStatistics): RestoreStatsReport {
  return {
    runtime_restore_duration: Math.round(durationUs),
    criu_statistics: {
      pages_compared: stats.pages_compared,
      pages_skipped_cow: stats.pages_skipped_cow,
      forking_time: stats.forking_time,
      restore_time: stats.restore_time,
      pages_restored: stats.pages_restored ?? 0,
    },
  };
}

/** Where CRIU put its statistics: the work directory when one was given, else the image directory. */
function statsDirs(imagePath: string, workPath: string | undefined): string[] {
  return workPath ? [workPath, imagePath] : [imagePath];
}

/** The report for a checkpoint that took durationUs and wrote its images to imagePath. */
export async function readCheckpointStats(durationUs: number, imagePath: string, workPath?: string): Promise<CheckpointStatsReport> {
  const dirs = statsDirs(imagePath, workPath);
  const stats = await readDumpStatistics(dirs);
  if (!stats) throw new StatisticsNotFoundError(DUMP_STATS_FILE, dirs);
  return checkpointStatsReport(durationUs, stats);
}

/** The report for a restore that took durationUs from the images in imagePath. */
export async function readRestoreStats(durationUs: number, imagePath: string, workPath?: string): Promise<RestoreStatsReport> {
  const dirs = statsDirs(imagePath, workPath);
  const stats = await readRestoreStatistics(dirs);
  if (!stats) throw new StatisticsNotFoundError(RESTORE_STATS_FILE, dirs);
  return restoreStatsReport(durationUs, stats);
}

/**
 * The report for a restore of container `id` that just returned: its images are the --image-path
 * given, else the container's last checkpoint (where restore took them from).
 */
export async function readContainerRestoreStats(
  context: RuntimeContext,
  request: { readonly id: string; readonly imagePath?: string; readonly workPath?: string },
  durationUs: number,
): Promise<RestoreStatsReport> {
  const imagePath = request.imagePath ?? (await context.store.load(request.id)).lastCheckpoint?.imagePath;
  if (imagePath === undefined) throw new CheckpointNotFoundError(request.id, `container ${request.id} has no last checkpoint`);
  return readRestoreStats(durationUs, path.resolve(imagePath), request.workPath ? path.resolve(request.workPath) : undefined);
}

/** The text printed: indented JSON, as podman prints it (json.MarshalIndent with four spaces). */
export function formatStatsReport(report: CheckpointStatsReport | RestoreStatsReport): string {
  return `${JSON.stringify(report, null, 4)}\n`;
}

/** Microseconds elapsed since a process.hrtime.bigint() reading. */
export function microsecondsSince(started: bigint, now = process.hrtime.bigint()): number {
  return Number((now - started) / 1000n);
}
