/** The library entry point: the Runtime class, its option types, and the errors it throws. */
import 'reflect-metadata';

export { Runtime } from './runtime/runtime.js';
export type { RunOptions } from './runtime/run.js';
export type { ImageRunOptions } from './runtime/from-image.js';
export type { ImageInfo, ImagesRemoved } from './runtime/images.js';
export type { CheckpointRequest, CheckpointResult } from './runtime/checkpoint.js';
export type { RestoreRequest } from './runtime/restore.js';
export type { DeleteOptions } from './runtime/delete.js';
export type { ResetRequest } from './runtime/reset.js';
export { PristineContainer, type PristineOptions } from './runtime/pristine.js';
export { parsePublish, PortInUseError, type PublishedPort } from './runtime/ports.js';
export type { SnapshotInfo } from './runtime/snapshots/store.js';
export type { RuntimeConfig } from './runtime/config.js';
export type { ForegroundContainer, ForegroundStdio } from './runtime/monitor/foreground.js';
export type { CheckpointOptions, RestoreCriuOptions, CgroupsModeName } from './criu/options.js';
export type { OciState, Spec } from './runtime/oci/index.js';
export type { ContainerRecord } from './runtime/state/record.js';
export type { ContainerStatus } from './runtime/state/status.js';
export { RuntimeError, ContainerNotFoundError, ContainerExistsError, InvalidIdError, NotRootError, UsageError } from './runtime/errors.js';
export { ContainerNotRunningError } from './runtime/checkpoint.js';
export { ContainerRunningError } from './runtime/delete.js';
export { IllegalTransitionError } from './runtime/state/status.js';
export { CheckpointNotFoundError, CorruptCheckpointError } from './runtime/checkpoint-metadata.js';
export { CriuNotFoundError, CriuTooOldError, CriuRequestError, CriuFeatureMissingError, CriuUnusableError } from './criu/errors.js';
export { InvalidBundleError } from './runtime/oci/index.js';
export { composeRuntime } from './runtime/composition-root.js';
export { resolveConfig } from './runtime/config.js';
export type { InspectRequest } from './runtime/inspect.js';
export type {
  CheckpointInspection,
  ProcessNode,
  ProcessFiles,
  ProcessSockets,
  ProcessMemory,
  CheckpointMount,
  SocketInfo,
} from './runtime/inspection/model.js';
export { formatInspection, formatInspectionJson } from './runtime/inspection/format.js';
export {
  readCheckpointStats,
  readRestoreStats,
  formatStatsReport,
  StatisticsNotFoundError,
  type CheckpointStatsReport,
  type RestoreStatsReport,
} from './runtime/checkpoint-stats.js';
