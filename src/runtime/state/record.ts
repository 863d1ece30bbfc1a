/** What the runtime keeps about one container, persisted as <stateRoot>/<id>/state.json. */
import type { ContainerStatus } from './status.js';
import type { OciRuntimeName } from '../config.js';
import type { StorageSpec } from '../../rootfs/drivers/types.js';
import type { LayeredRootfs } from '../../rootfs/layers.js';
import type { ProcessIdentity } from '../../system/processes.js';

export type { ProcessIdentity };

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

export interface ContainerRecord {
  readonly id: string;
  readonly status: ContainerStatus;
  /** The user's bundle directory (absolute). */
  readonly bundle: string;
  /** The root filesystem's host path (absolute). */
  readonly rootfs: string;
  /** The container's init, while it runs. */
  readonly init?: ProcessIdentity;
  /** The runtime process that is the init's parent and reaps it (absent for a foreground CLI). */
  readonly monitor?: ProcessIdentity;
  /** cgroup path below each v1 hierarchy's mount point, e.g. "/runtime/web1". */
  readonly cgroupPath: string;
  readonly ociRuntime: OciRuntimeName;
  readonly created: string;
  readonly annotations: Readonly<Record<string, string>>;
  /** Where the container's stdout and stderr are appended. */
  readonly logPath: string;
  readonly lastCheckpoint?: CheckpointRecord;
  readonly exit?: ExitRecord;
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
}

/** What every new container's record starts from; the caller adds what is particular to it. */
export interface NewRecordFields {
  readonly id: string;
  readonly status: ContainerRecord['status'];
  readonly bundle: string;
  readonly rootfs: string;
  readonly cgroupPath: string;
  readonly ociRuntime: OciRuntimeName;
  readonly annotations: Readonly<Record<string, string>>;
  readonly logPath: string;
}

export function newRecord(fields: NewRecordFields, extra: Partial<ContainerRecord> = {}): ContainerRecord {
  return { ...fields, created: new Date().toISOString(), restoreCount: 0, ...extra };
}
