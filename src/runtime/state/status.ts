/**
 * A container's status and the moves between them. The OCI statuses plus `checkpointed`, which
 * the OCI spec allows a runtime to add: the process tree lives in a checkpoint, not on the host.
 * (runc forgets a container once it is dumped; this runtime keeps it so a bare restore works.)
 *
 * Every change of a record is an event given to `transition`, the one function that checks the
 * move (an illegal one throws, naming both states) and builds the new record: the fields of the
 * new status from the event, the status-independent fields carried over, nothing else.
 */
import { RuntimeError } from '../errors.js';
import type { CheckpointRecord, ContainerRecord, ContainerStatus, ExitRecord, ProcessIdentity, RecordBase, RunningRecord } from './record.js';
import type { LayeredRootfs } from '../../rootfs/layers.js';

export { statuses, type ContainerStatus } from './record.js';

/** Something that happened to a container, with what the record needs to know of it. */
export type RecordEvent =
  /** The OCI runtime started the init. */
  | { readonly kind: 'started'; readonly init: ProcessIdentity; readonly monitor?: ProcessIdentity }
  /** CRIU restored the tree from the container's checkpoint. */
  | {
      readonly kind: 'restored';
      readonly init: ProcessIdentity;
      readonly monitor?: ProcessIdentity;
      /** The restore mounted the storage driver's rootfs (so delete unmounts it). */
      readonly mountedRootfs?: boolean;
    }
  /** A reset replaced the container's instance by one restored from a snapshot. */
  | {
      readonly kind: 'reset';
      readonly init: ProcessIdentity;
      readonly monitor: ProcessIdentity;
      readonly cgroupPath: string;
      readonly layers: LayeredRootfs;
      readonly instance: number;
      readonly snapshot: string;
    }
  /** The init exited or was killed. */
  | { readonly kind: 'exited'; readonly exit: ExitRecord }
  /** A dump without --leave-running took the tree down. */
  | { readonly kind: 'checkpointed'; readonly lastCheckpoint?: CheckpointRecord }
  /** No change of status: a checkpoint that left it running, or a restore with another bundle. */
  | {
      readonly kind: 'amended';
      readonly changes: Partial<Pick<RecordBase, 'lastCheckpoint' | 'bundle' | 'rootfs' | 'cgroupPath'>>;
    };

export type RecordEventKind = RecordEvent['kind'];

/** For each event: the statuses it may happen in, the status it leads to, and the operation's name. */
const moves: Readonly<Record<RecordEventKind, { readonly from: readonly ContainerStatus[]; readonly to?: ContainerStatus; readonly operation: string }>> =
  {
    started: { from: ['creating'], to: 'running', operation: 'start' },
    // Restored from its checkpoint, or from its last checkpoint after it had stopped.
    restored: { from: ['checkpointed', 'stopped'], to: 'running', operation: 'restore' },
    // A reset replaces a running instance, or brings a stopped or checkpointed container back.
    reset: { from: ['running', 'stopped', 'checkpointed'], to: 'running', operation: 'reset' },
    // The init ended; or the OCI runtime failed to start it.
    exited: { from: ['running', 'creating'], to: 'stopped', operation: 'record the exit of' },
    // Or a dump finished by CRIU after its command died, found once the exit was recorded.
    checkpointed: { from: ['running', 'stopped'], to: 'checkpointed', operation: 'checkpoint' },
    amended: { from: ['creating', 'running', 'stopped', 'checkpointed'], operation: 'update' },
  };

export class IllegalTransitionError extends RuntimeError {
  readonly code = 'ILLEGAL_TRANSITION' as const;
  constructor(
    readonly id: string,
    readonly from: ContainerStatus,
    readonly to: ContainerStatus,
    readonly operation: string,
  ) {
    super(`cannot ${operation} container ${JSON.stringify(id)}: it is ${from}, and a ${from} container cannot become ${to}`, {
      hint: hintFor(from, operation, id),
    });
  }
}

function hintFor(from: ContainerStatus, operation: string, id: string): string {
  switch (from) {
    case 'checkpointed':
      return `restore it first with \`runtime restore ${id}\``;
    case 'stopped':
      return operation === 'restore'
        ? `it has no checkpoint to restore; remove it with \`runtime delete ${id}\``
        : `remove it with \`runtime delete ${id}\`, or restore a checkpoint of it`;
    case 'running':
      return `it is running; checkpoint it or stop it with \`runtime kill ${id}\``;
    case 'creating':
      return 'wait for it to start, or remove it with `runtime delete -f`';
  }
}

/** True when the event may happen to a container in this status. */
export function canHappen(status: ContainerStatus, kind: RecordEventKind): boolean {
  return moves[kind].from.includes(status);
}

/** Throws IllegalTransitionError, naming both states, unless the event may happen in this status. */
export function assertCanHappen(record: Pick<ContainerRecord, 'id' | 'status'>, kind: RecordEventKind): void {
  const move = moves[kind];
  if (!move.from.includes(record.status)) throw new IllegalTransitionError(record.id, record.status, move.to ?? record.status, move.operation);
}

/** The status-independent part of a record: what every status keeps. */
function baseOf(record: ContainerRecord): RecordBase {
  // Each status's own fields are dropped here; the new status adds its own.
  const { status: _status, ...rest } = record as ContainerRecord & { init?: unknown; monitor?: unknown; exit?: unknown };
  const { init: _init, monitor: _monitor, exit: _exit, ...base } = rest;
  return base;
}

/** The record after the event; throws IllegalTransitionError when the event cannot happen now. */
export function transition(record: ContainerRecord, event: RecordEvent): ContainerRecord {
  assertCanHappen(record, event.kind);
  const base = baseOf(record);
  switch (event.kind) {
    case 'started':
      return running(base, event.init, event.monitor);
    case 'restored':
      return {
        ...running(base, event.init, event.monitor),
        restoreCount: record.restoreCount + 1,
        ...(event.mountedRootfs ? { rootfsMountedByRuntime: true } : {}),
      };
    case 'reset':
      return {
        ...running(base, event.init, event.monitor),
        cgroupBase: record.cgroupBase ?? record.cgroupPath,
        cgroupPath: event.cgroupPath,
        layers: event.layers,
        instance: event.instance,
        snapshot: event.snapshot,
        restoreCount: record.restoreCount + 1,
      };
    case 'exited':
      return { ...base, status: 'stopped', exit: event.exit };
    case 'checkpointed': {
      const { lastCheckpoint: previous, ...rest } = base;
      const lastCheckpoint = event.lastCheckpoint ?? previous;
      return { ...rest, status: 'checkpointed', ...(lastCheckpoint ? { lastCheckpoint } : {}) };
    }
    case 'amended':
      return { ...record, ...event.changes } as ContainerRecord;
  }
}

function running(base: RecordBase, init: ProcessIdentity, monitor: ProcessIdentity | undefined): RunningRecord {
  return { ...base, status: 'running', init, ...(monitor ? { monitor } : {}) };
}
