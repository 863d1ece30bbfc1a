/**
 * The library API: the runtime's operations as methods of one object, for TypeScript programs
 * that embed it. The CLI is a thin layer over the same functions.
 *
 *   const runtime = Runtime.create({ stateRoot: '/run/my-tool' });
 *   await runtime.run({ id: 'web1', bundle: './bundle' });
 *   await runtime.checkpoint({ id: 'web1' });
 *   await runtime.restore({ id: 'web1' });
 */
import type { DependencyContainer } from 'tsyringe';
import { resolveConfig, type RuntimeConfig } from './config.js';
import { composeRuntime, resolveContext } from './composition-root.js';
import type { RuntimeContext } from './context.js';
import { runDetached, runForeground, type RunOptions } from './run.js';
import { checkpoint, type CheckpointRequest, type CheckpointResult } from './checkpoint.js';
import { restoreDetached, restoreForeground, type RestoreRequest } from './restore.js';
import { kill, type KillOptions } from './kill.js';
import { deleteContainer, type DeleteOptions } from './delete.js';
import { list, listRecords, state } from './state.js';
import type { OciState } from './oci/index.js';
import type { ForegroundContainer, ForegroundStdio } from './monitor/foreground.js';
import { parseSignal } from './signals.js';
import type { CriuVersion } from '../criu/version.js';
import { reset, type ResetRequest } from './reset.js';
import { listSnapshots } from './list-snapshots.js';
import { removeSnapshot } from './remove-snapshot.js';
import type { SnapshotInfo } from './snapshots/store.js';
import { inspect, type InspectRequest } from './inspect.js';
import type { CheckpointInspection } from './inspection/model.js';
import { PristineContainer, type PristineOptions } from './pristine.js';
import type { MigrateRequest, MigrateResult } from './migration/migrate.js';
import type { ReceiveOptions, Receiver } from './migration/receive.js';
import { addImage, listImages, removeImages, type ImageInfo, type ImagesRemoved } from './images.js';

export class Runtime {
  /** The services behind this runtime; a test may build one with a service swapped. */
  readonly context: RuntimeContext;

  constructor(services: DependencyContainer) {
    this.context = resolveContext(services);
  }

  /** A runtime for the configuration: defaults, config file, environment, then these overrides. */
  static create(overrides: Partial<RuntimeConfig> = {}): Runtime {
    return new Runtime(composeRuntime(resolveConfig({ overrides })));
  }

  get config(): RuntimeConfig {
    return this.context.config;
  }

  /** Starts a container under a detached monitor; resolves with the init's pid once it runs. */
  run(options: RunOptions): Promise<number> {
    return runDetached(this.context, options);
  }

  /** Starts a container as a child of this process; `exited` settles when it ends. */
  runAttached(options: RunOptions, stdio: ForegroundStdio): Promise<ForegroundContainer> {
    return runForeground(this.context, options, stdio);
  }

  checkpoint(request: CheckpointRequest): Promise<CheckpointResult> {
    return checkpoint(this.context, request);
  }

  /** Restores under a detached monitor; resolves with the restored init's pid. */
  restore(request: RestoreRequest): Promise<number> {
    return restoreDetached(this.context, request);
  }

  restoreAttached(request: RestoreRequest, stdio: ForegroundStdio): Promise<ForegroundContainer> {
    return restoreForeground(this.context, request, stdio);
  }

  /**
   * Puts a container back to a named snapshot (the newest when no name is given): the running
   * instance is replaced by one with a fresh writable layer over the snapshot's rootfs and the
   * snapshot's processes, supervised by the container's monitor. With `from`, makes a new
   * container from another's snapshot. Resolves with the new init's pid.
   */
  reset(request: ResetRequest): Promise<number> {
    return reset(this.context, request);
  }

  /** A container for a test suite: run, snapshotted when ready, reset before each test. */
  pristine(options: PristineOptions): Promise<PristineContainer> {
    return PristineContainer.start(this, options);
  }

  snapshots(id: string): Promise<SnapshotInfo[]> {
    return listSnapshots(this.context, id);
  }

  removeSnapshot(id: string, name: string): Promise<void> {
    return removeSnapshot(this.context, id, name);
  }

  /** Moves a running container to the runtime receiving on another host (migration/migrate.ts). */
  async migrate(request: MigrateRequest): Promise<MigrateResult> {
    const { migrate } = await import('./migration/migrate.js');
    return migrate(this.context, request);
  }

  /** Receives migrations on an address until closed (migration/receive.ts). */
  async receive(options: ReceiveOptions): Promise<Receiver> {
    const { receive } = await import('./migration/receive.js');
    return receive(this.context, options);
  }

  /** The images in the store (`run` with `image` adds them), with their disk use and containers. */
  images(): Promise<ImageInfo[]> {
    return listImages(this.context);
  }

  /** Adds an image to the store without a container (its layers unpacked, mapped for userns when given). */
  addImage(
    reference: string,
    options: { readonly userns?: { readonly hostId: number; readonly size: number }; readonly onProgress?: (message: string) => void } = {},
  ): Promise<ImageInfo> {
    return addImage(this.context, reference, options);
  }

  /** Removes images by reference or digest, or with none named every image no container uses. */
  removeImages(names: readonly string[] = []): Promise<ImagesRemoved> {
    return removeImages(this.context, names);
  }

  /** What a checkpoint holds (process tree, files, sockets, memory, mounts, CRIU statistics). */
  inspect(request: InspectRequest): Promise<CheckpointInspection> {
    return inspect(this.context, request);
  }

  state(id: string): Promise<OciState> {
    return state(this.context, id);
  }

  list(): Promise<OciState[]> {
    return list(this.context);
  }

  listRecords(): ReturnType<typeof listRecords> {
    return listRecords(this.context);
  }

  /** Signals the init (every process, with all); without a signal, the image's stop signal or SIGTERM. */
  kill(id: string, signal?: string | number, options: KillOptions = {}): Promise<void> {
    return kill(this.context, id, signal === undefined ? undefined : typeof signal === 'number' ? signal : parseSignal(signal), options);
  }

  delete(id: string, options: DeleteOptions = {}): Promise<void> {
    return deleteContainer(this.context, id, options);
  }

  criuVersion(): Promise<CriuVersion> {
    return this.context.criu.requireVersion();
  }
}
