/**
 * CRIU's statistics files: `stats-dump` after a dump (or pre-dump), `stats-restore` after a
 * restore, one STATS image each (stats.proto). CRIU writes them to its work directory, which is
 * the image directory unless a work directory was given. Times are microseconds.
 */
import path from 'node:path';
import { decodeImage } from './image.js';
import { ImageReadError } from './errors.js';
import type { CritJsonObject, CritJsonValue } from './types.js';

export const DUMP_STATS_FILE = 'stats-dump';
export const RESTORE_STATS_FILE = 'stats-restore';

/** dump_stats_entry, with stats.proto's field names. */
export interface DumpStatistics {
  readonly freezing_time: number;
  readonly frozen_time: number;
  readonly memdump_time: number;
  readonly memwrite_time: number;
  readonly pages_scanned: number;
  readonly pages_skipped_parent: number;
  readonly pages_written: number;
  readonly irmap_resolve?: number;
  readonly pages_lazy?: number;
  readonly page_pipes?: number;
  readonly page_pipe_bufs?: number;
  readonly shpages_scanned?: number;
  readonly shpages_skipped_parent?: number;
  readonly shpages_written?: number;
}

/** restore_stats_entry, with stats.proto's field names. */
export interface RestoreStatistics {
  readonly pages_compared: number;
  readonly pages_skipped_cow: number;
  readonly forking_time: number;
  readonly restore_time: number;
  readonly pages_restored?: number;
}

/** Counters and microseconds as numbers: none comes near 2^53. */
function numbers(entry: CritJsonValue | undefined): Record<string, number> | undefined {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return undefined;
  const out: Record<string, number> = {};
  for (const [key, value] of Object.entries(entry as CritJsonObject)) {
    if (typeof value === 'number' || typeof value === 'bigint') out[key] = Number(value);
  }
  return out;
}

function isMissing(error: unknown): boolean {
  return error instanceof ImageReadError && (error.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

async function readStats(file: string, member: 'dump' | 'restore', pycriuDir?: string): Promise<Record<string, number> | undefined> {
  try {
    const image = await decodeImage(file, pycriuDir ? { pycriuDir } : {});
    return numbers(image.entries[0]?.[member]);
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
}

/** The first directory's stats-dump, in the order given (work directory first); undefined if none has one. */
export async function readDumpStatistics(
  dirs: string | readonly string[],
  options: { readonly pycriuDir?: string } = {},
): Promise<DumpStatistics | undefined> {
  for (const dir of typeof dirs === 'string' ? [dirs] : dirs) {
    const stats = await readStats(path.join(dir, DUMP_STATS_FILE), 'dump', options.pycriuDir);
    if (stats) return stats as unknown as DumpStatistics;
  }
  return undefined;
}

/** The first directory's stats-restore, in the order given (work directory first); undefined if none has one. */
export async function readRestoreStatistics(
  dirs: string | readonly string[],
  options: { readonly pycriuDir?: string } = {},
): Promise<RestoreStatistics | undefined> {
  for (const dir of typeof dirs === 'string' ? [dirs] : dirs) {
    const stats = await readStats(path.join(dir, RESTORE_STATS_FILE), 'restore', options.pycriuDir);
    if (stats) return stats as unknown as RestoreStatistics;
  }
  return undefined;
}
