/** What the reset benchmark measures: the series of one size, and what one sample holds. */

export type SeriesName =
  | 'reset-eager-standby'
  | 'reset-eager-standby-cli'
  | 'reset-lazy-standby'
  | 'reset-eager-cold'
  | 'reset-lazy-cold'
  | 'runc-restore'
  | 'cold-start-runc'
  | 'cold-start-runtime'
  | 'cli-startup';

/** How a reset series asks for its resets. */
export interface ResetWay {
  readonly via: 'library' | 'cli';
  /** ResetRequest.lazyPages (CLI --lazy-pages). */
  readonly lazy: boolean;
  /** ResetRequest.standby (CLI --no-standby when false). */
  readonly standby: boolean;
}

export interface Series {
  readonly name: SeriesName;
  /** The table's row label. */
  readonly label: string;
  /** What is timed, for the JSON. */
  readonly measured: string;
  readonly reset?: ResetWay;
  /**
   * Run round by round with the other interleaved series, rather than to its end alone (the
   * CLI's start-up runs beside the CLI resets instead).
   */
  readonly interleaved: boolean;
}

/**
 * In the order they run for a size. The series with a standby run one after the other, each to
 * its end: the monitor keeps a standby for the request it was made for (snapshot and CRIU
 * options, not the standby flag), so each one's warm-up reset is the one that finds the standby
 * of the series before, or none. The others (interleaved: true) then run round by round, each
 * round in a rotated order, so that a change in the host's load falls on all of them alike.
 */
export const allSeries: readonly Series[] = [
  {
    name: 'reset-eager-standby',
    label: 'reset, eager, standby (library)',
    measured: 'Runtime.reset({id, name}) in the benchmark process, the default: the monitor thaws the standby it prepared after the previous reset',
    reset: { via: 'library', lazy: false, standby: true },
    interleaved: false,
  },
  {
    name: 'reset-eager-standby-cli',
    label: 'reset, eager, standby (CLI)',
    measured: '`node bin/runtime.js reset --pid-file F ID pristine` to its exit: the same reset plus a Node start-up and module loading',
    reset: { via: 'cli', lazy: false, standby: true },
    interleaved: false,
  },
  {
    name: 'reset-lazy-standby',
    label: 'reset, lazy, standby (library)',
    measured:
      'Runtime.reset({id, name, lazyPages: true}): the standby was restored through the lazy-pages daemon, which has filled in all ' +
      'its memory by the time the monitor settled, so it is thawed with all its pages (RSS after = N MiB)',
    reset: { via: 'library', lazy: true, standby: true },
    interleaved: false,
  },
  {
    name: 'reset-eager-cold',
    label: 'reset, eager, no standby (library)',
    measured: 'Runtime.reset({id, name, standby: false}): the monitor kills the instance and CRIU restores the snapshot, all memory copied',
    reset: { via: 'library', lazy: false, standby: false },
    interleaved: true,
  },
  {
    name: 'reset-lazy-cold',
    label: 'reset, lazy, no standby (library)',
    measured: 'Runtime.reset({id, name, standby: false, lazyPages: true}): as eager, but CRIU returns before the memory is copied',
    reset: { via: 'library', lazy: true, standby: false },
    interleaved: true,
  },
  {
    name: 'runc-restore',
    label: 'runc restore -d',
    measured: '`runc restore -d --image-path` of a runc checkpoint of an identical container, to its exit (the container runs)',
    interleaved: true,
  },
  {
    name: 'cold-start-runc',
    label: 'cold start, runc run -d',
    measured: 'from spawning `runc run -d` until memhog has written its ready file (all its memory touched)',
    interleaved: true,
  },
  {
    name: 'cold-start-runtime',
    label: 'cold start, Runtime.run',
    measured: 'from calling Runtime.run({id, bundle}) until memhog has written its ready file',
    interleaved: true,
  },
  {
    name: 'cli-startup',
    label: 'CLI start-up (runtime --version)',
    measured:
      '`node bin/runtime.js --version` to its exit: Node and every module the CLI loads, no work; the part of a CLI reset that is not the reset. ' +
      'Run right after each CLI reset (once the monitor settled), so the two are paired',
    interleaved: false,
  },
];

export function seriesNamed(name: SeriesName): Series {
  return allSeries.find((series) => series.name === name)!;
}

export interface ResetSample {
  readonly sizeMiB: number;
  readonly series: SeriesName;
  /** Counting from the first measured round. */
  readonly round: number;
  readonly ms: number;
  /** The init's resident memory right after the call returned (a cold start: once ready). */
  readonly residentMiB: number;
  /** Resets: how long the monitor took to settle afterwards (standby prepared, lazy daemon done). */
  readonly settleMs?: number;
  /** Cold starts: when the start command (or call) returned, before memhog was ready. */
  readonly commandMs?: number;
}

/** Once per size: what the compared operations start from. */
export interface SizeFacts {
  readonly sizeMiB: number;
  /** Runtime.checkpoint({name: 'pristine', leaveRunning: true}). */
  readonly snapshotMs: number;
  readonly snapshotPagesMiB: number;
  /** `runc checkpoint` (the container stops). */
  readonly runcCheckpointMs: number;
  readonly runcPagesMiB: number;
  /** The series whose memory memhog checked byte by byte, and when. */
  readonly verified: readonly string[];
}
