/**
 * What every verb works with, resolved from the composition root: configuration, the container
 * and snapshot stores, and the services that reach the system (CRIU, mounts, cgroups, processes,
 * the OCI runtime, the reaper, the monitor processes). A verb reaches the system only through them.
 */
import type { RuntimeConfig } from './config.js';
import type { Logger } from './logger.js';
import type { ContainerStore } from './state/store.js';
import type { SnapshotStore } from './snapshots/store.js';
import type { CgroupService } from './cgroups.js';
import type { OciRuntime } from './oci-runtime.js';
import type { MonitorClient } from './monitor/launch.js';
import type { CriuService } from '../criu/service.js';
import type { MountService } from '../rootfs/mount-service.js';
import type { ProcessService } from '../system/processes.js';
import type { ChildReaper } from '../system/reaper.js';

export interface RuntimeContext {
  readonly config: RuntimeConfig;
  readonly logger: Logger;
  readonly store: ContainerStore;
  readonly snapshots: SnapshotStore;
  readonly criu: CriuService;
  readonly mounts: MountService;
  readonly cgroups: CgroupService;
  readonly processes: ProcessService;
  readonly ociRuntime: OciRuntime;
  /** Reaps the inits this process is the parent of (foreground, or the monitor). */
  readonly reaper: ChildReaper;
  /** Starts a container's monitor process, and asks a running one for a reset. */
  readonly monitors: MonitorClient;
}

export const RUNTIME_CONFIG = Symbol('RuntimeConfig');
export const CONTAINER_STORE = Symbol('ContainerStore');
export const SNAPSHOT_STORE = Symbol('SnapshotStore');
export const REAPER = Symbol('Reaper');
export const MONITOR_CLIENT = Symbol('MonitorClient');
