/**
 * What every verb works with, resolved from the composition root: configuration, the container
 * store, and the services that reach the system (CRIU, mounts, processes, the OCI runtime).
 */
import type { RuntimeConfig } from './config.js';
import type { Logger } from './logger.js';
import type { ContainerStore } from './state/store.js';
import type { CriuService } from '../criu/service.js';
import type { MountService } from '../rootfs/mount-service.js';
import type { ProcessService } from '../system/processes.js';
import type { OciRuntime } from './oci-runtime.js';
import type { Reaper } from '../system/reaper.js';

export interface RuntimeContext {
  readonly config: RuntimeConfig;
  readonly logger: Logger;
  readonly store: ContainerStore;
  readonly criu: CriuService;
  readonly mounts: MountService;
  readonly processes: ProcessService;
  readonly ociRuntime: OciRuntime;
  /** Reaps the inits this process is the parent of (foreground, or the monitor). */
  readonly reaper: Reaper;
}

export const RUNTIME_CONFIG = Symbol('RuntimeConfig');
export const CONTAINER_STORE = Symbol('ContainerStore');
export const REAPER = Symbol('Reaper');
