/**
 * The work a container's parent-to-be does: start the init through the OCI runtime, or restore
 * the tree through CRIU. Serializable, because a detached monitor process receives it.
 */
import type { RestoreCriuOptions } from '../../criu/options.js';
import type { ResetSpec } from './control.js';

export interface RunJob {
  readonly kind: 'run';
  readonly id: string;
  readonly pidFile?: string;
}

export interface RestoreJob {
  readonly kind: 'restore';
  readonly id: string;
  readonly imagePath: string;
  readonly criu: RestoreCriuOptions;
  readonly pidFile?: string;
}

export interface ResetJob {
  readonly kind: 'reset';
  readonly id: string;
  readonly reset: ResetSpec;
  readonly pidFile?: string;
}

export type MonitorJob = RunJob | RestoreJob | ResetJob;

/** What the monitor tells the command that launched it, once the init runs or has failed. */
export type MonitorReport =
  | { readonly ok: true; readonly pid: number }
  | { readonly ok: false; readonly error: SerializedError };

export interface SerializedError {
  readonly code: string;
  readonly message: string;
  readonly hint?: string;
  /** CRIU's failure details, when CRIU failed. */
  readonly failure?: unknown;
}
