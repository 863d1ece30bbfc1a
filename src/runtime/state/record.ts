/**
 * What the runtime keeps about one container, persisted as <stateRoot>/<id>/state.json: a union
 * by status, so a field exists only in the statuses that have it (an init only while running, an
 * exit only once stopped). Records change only through `transition` (state/status.ts), which
 * checks the move and drops what the new status does not have. The file is validated on read.
 */
import { s } from '../../system/schema.js';
import { ociRuntimes, type OciRuntimeName } from '../config.js';
import type { StorageSpec } from '../../rootfs/drivers/types.js';
import type { LayeredRootfs } from '../../rootfs/layers.js';
import type { ProcessIdentity } from '../../system/processes.js';
import type { PublishedPort } from '../ports.js';

export type { ProcessIdentity };

export const statuses = ['creating', 'running', 'stopped', 'checkpointed'] as const;
export type ContainerStatus = (typeof statuses)[number];

export interface ExitRecord {
  readonly code?: number;
  readonly signal?: string;
  readonly time: string;
}

export interface CheckpointRecord {
  /** Absolute path of the image directory. */
  readonly imagePath: string;
  readonly time: string;
  readonly leftRunning: boolean;
}

/** What a container has in every status. */
export interface RecordBase {
  readonly id: string;
  /** The user's bundle directory (absolute). */
  readonly bundle: string;
  /** The root filesystem's host path (absolute). */
  readonly rootfs: string;
  /** cgroup path below each v1 hierarchy's mount point, e.g. "/runtime/web1". */
  readonly cgroupPath: string;
  readonly ociRuntime: OciRuntimeName;
  readonly created: string;
  readonly annotations: Readonly<Record<string, string>>;
  /** Where the container's stdout and stderr are appended. */
  readonly logPath: string;
  readonly lastCheckpoint?: CheckpointRecord;
  /** Times this container has been restored. */
  readonly restoreCount: number;
  /** The storage driver layout the rootfs comes from, when it is not a plain directory. */
  readonly storage?: StorageSpec;
  /** True while the rootfs is mounted by the runtime (so delete unmounts it). */
  readonly rootfsMountedByRuntime?: boolean;
  /** The overlay of snapshot layers a reset mounted on the rootfs path (delete unmounts it). */
  readonly layers?: LayeredRootfs;
  /** The snapshot the running instance was reset to. */
  readonly snapshot?: string;
  /** For a copy: the container whose snapshot it was made from. */
  readonly snapshotOf?: string;
  /** The container's own cgroup, under which each reset instance gets one of its own. */
  readonly cgroupBase?: string;
  /** The number of the running reset instance (<stateRoot>/<id>/instances/<n>). */
  readonly instance?: number;
  /** Host ports forwarded into the container by its parent (`-p`). */
  readonly ports?: readonly PublishedPort[];
  /** The criu binary configured when the container was made; its monitors use it unless told another. */
  readonly criu?: string;
}

export interface CreatingRecord extends RecordBase {
  readonly status: 'creating';
}

export interface RunningRecord extends RecordBase {
  readonly status: 'running';
  /** The container's init. */
  readonly init: ProcessIdentity;
  /** The runtime process that is the init's parent and reaps it (absent for a foreground CLI). */
  readonly monitor?: ProcessIdentity;
}

export interface StoppedRecord extends RecordBase {
  readonly status: 'stopped';
  readonly exit?: ExitRecord;
}

export interface CheckpointedRecord extends RecordBase {
  readonly status: 'checkpointed';
}

export type ContainerRecord = CreatingRecord | RunningRecord | StoppedRecord | CheckpointedRecord;

/** The init of a running record; undefined in every other status. */
export function initOf(record: ContainerRecord): ProcessIdentity | undefined {
  return record.status === 'running' ? record.init : undefined;
}

/** The monitor of a running record; undefined in every other status. */
export function monitorOf(record: ContainerRecord): ProcessIdentity | undefined {
  return record.status === 'running' ? record.monitor : undefined;
}

/** What every new container's record starts from; the caller adds what is particular to it. */
export interface NewRecordFields {
  readonly id: string;
  readonly status: 'creating' | 'checkpointed';
  readonly bundle: string;
  readonly rootfs: string;
  readonly cgroupPath: string;
  readonly ociRuntime: OciRuntimeName;
  readonly annotations: Readonly<Record<string, string>>;
  readonly logPath: string;
}

export type NewRecordExtras = Partial<
  Pick<RecordBase, 'storage' | 'rootfsMountedByRuntime' | 'lastCheckpoint' | 'snapshotOf' | 'snapshot' | 'ports' | 'criu'>
>;

export function newRecord(fields: NewRecordFields, extra: NewRecordExtras = {}): CreatingRecord | CheckpointedRecord {
  return { ...fields, created: new Date().toISOString(), restoreCount: 0, ...extra } as CreatingRecord | CheckpointedRecord;
}

const identity = s.object({ pid: s.number().int().positive(), startTime: s.string().regex(/^\d+$/) });
const base = {
  id: s.string().min(1),
  bundle: s.string(),
  rootfs: s.string(),
  cgroupPath: s.string(),
  ociRuntime: s.enum(ociRuntimes),
  created: s.string(),
  annotations: s.record(s.string()),
  logPath: s.string(),
  lastCheckpoint: s.object({ imagePath: s.string(), time: s.string(), leftRunning: s.boolean() }).optional(),
  restoreCount: s.number().int().nonnegative(),
  storage: s.object({ driver: s.string(), storageRoot: s.string(), layer: s.string() }).optional(),
  rootfsMountedByRuntime: s.boolean().optional(),
  layers: s.object({ lowers: s.array(s.string()), upper: s.string(), work: s.string(), target: s.string() }).optional(),
  snapshot: s.string().optional(),
  snapshotOf: s.string().optional(),
  cgroupBase: s.string().optional(),
  instance: s.number().int().nonnegative().optional(),
  ports: s.array(s.object({ hostIp: s.string(), hostPort: s.number().int(), containerPort: s.number().int() })).optional(),
  criu: s.string().optional(),
};

/** state.json's schema: one shape per status. */
export const containerRecordSchema = s.discriminatedUnion('status', [
  s.object({ ...base, status: s.literal('creating') }),
  s.object({ ...base, status: s.literal('running'), init: identity, monitor: identity.optional() }),
  s.object({
    ...base,
    status: s.literal('stopped'),
    exit: s.object({ code: s.number().int().optional(), signal: s.string().optional(), time: s.string() }).optional(),
  }),
  s.object({ ...base, status: s.literal('checkpointed') }),
]);
