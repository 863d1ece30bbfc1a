/**
 * Pre-copy's iteration logic: pre-dumps while the container runs, each sending only the pages
 * written since the one before (CRIU's memory tracking), until the next would not shorten the
 * final dump much. The stop rules are P.Haul's: few pages left (at most 64 written), the
 * pages written growing again (more than 10% over the round before: the container writes
 * faster than the copy goes), or the round limit. migrate.ts drives the rounds through
 * preCopyRounds (each a CRIU pre-dump into a page server of the destination's, with the round
 * before as its parent) and refuses pre-copy where the kernel has no memory tracking (this one:
 * no soft-dirty), before anything stops.
 */
import { UsageError } from '../errors.js';

/** The most pre-dumps a migration may ask for (P.Haul stops at 8; LXD allows up to 999). */
export const MAX_PRE_DUMPS = 16;
/** Few enough pages left that another round is not worth it. */
export const FEW_PAGES = 64;
/** A round that writes this much more than the one before: the copy does not converge. */
export const GROWTH_LIMIT = 1.1;

export interface PreDumpRound {
  /** Pages the round sent (CRIU's stats-dump: pages_written). */
  readonly pagesWritten: number;
}

export type StopReason = 'few pages left' | 'not converging' | 'round limit';

export type PreDumpDecision = { readonly next: true } | { readonly next: false; readonly reason: StopReason };

/** Checks the requested number of pre-dumps. */
export function planPreDumps(requested: number): number {
  if (!Number.isInteger(requested) || requested < 1 || requested > MAX_PRE_DUMPS) {
    throw new UsageError(`--pre-dump ${requested}: give a number of pre-dumps from 1 to ${MAX_PRE_DUMPS}`);
  }
  return requested;
}

/** Whether to pre-dump once more after the rounds so far, or go to the final dump. */
export function nextPreDump(rounds: readonly PreDumpRound[], limit: number): PreDumpDecision {
  if (rounds.length === 0) return { next: true };
  const last = rounds[rounds.length - 1]!;
  if (last.pagesWritten <= FEW_PAGES) return { next: false, reason: 'few pages left' };
  const before = rounds[rounds.length - 2];
  if (before !== undefined && last.pagesWritten > before.pagesWritten * GROWTH_LIMIT) return { next: false, reason: 'not converging' };
  if (rounds.length >= limit) return { next: false, reason: 'round limit' };
  return { next: true };
}

export interface PreCopyResult {
  readonly rounds: readonly PreDumpRound[];
  /** Why no further round ran. */
  readonly reason: StopReason;
}

/**
 * Runs pre-dump rounds (round n is 1 for the first) until nextPreDump says stop, each after the
 * one before has finished. A round that fails ends the rounds with its error: the caller calls
 * the migration off (a pre-dump leaves the container running).
 */
export async function preCopyRounds(limit: number, round: (n: number) => Promise<PreDumpRound>): Promise<PreCopyResult> {
  const rounds: PreDumpRound[] = [];
  for (;;) {
    const decision = nextPreDump(rounds, limit);
    if (!decision.next) return { rounds, reason: decision.reason };
    rounds.push(await round(rounds.length + 1));
  }
}
