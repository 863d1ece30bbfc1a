/**
 * A container for a test suite: started from a bundle or an image, snapshotted once it is ready, and reset
 * to that snapshot before each test, fast (the monitor keeps a standby ready). Dispose removes
 * it. This is the library form of run + checkpoint --name + reset + delete -f.
 */
import type { SnapshotInfo } from './snapshots/store.js';
import type { RunOptions } from './run.js';
import type { CheckpointRequest, CheckpointResult } from './checkpoint.js';
import { ContainerNotRunningError } from './checkpoint.js';
import type { ResetRequest } from './reset.js';
import type { DeleteOptions } from './delete.js';
import type { OciState } from './oci/index.js';
import { pickResetCriuOptions, type ResetCriuOptions } from './monitor/protocol.js';
import type { PublishedPort } from './ports.js';
import type { ImageRunOptions } from './from-image.js';

/** The operations a pristine container is made of (the Runtime has them). */
export interface PristineHost {
  run(options: RunOptions): Promise<number>;
  checkpoint(request: CheckpointRequest): Promise<CheckpointResult>;
  reset(request: ResetRequest): Promise<number>;
  state(id: string): Promise<OciState>;
  delete(id: string, options?: DeleteOptions): Promise<void>;
}

export interface PristineOptions extends ResetCriuOptions {
  readonly id: string;
  /** The OCI bundle (config.json and rootfs). */
  readonly bundle?: string;
  /** Or an image to make the container from (`oci:DIR[:TAG]`, `docker-archive:FILE`), in place of a bundle. */
  readonly image?: ImageRunOptions;
  /**
   * Resolves once the container has reached the state every test should start from (a server
   * listening, data loaded). Called with the container after it starts; the snapshot is taken after.
   */
  readonly ready?: (container: PristineContainer) => Promise<unknown>;
  /** The snapshot's name (default "pristine"). */
  readonly snapshot?: string;
  /** Keep a stopped standby ready so a reset only switches to it (default true). */
  readonly standby?: boolean;
  /** Host ports forwarded into the container; the same host address reaches it after every reset. */
  readonly ports?: readonly PublishedPort[];
}

export class PristineContainer {
  private constructor(
    private readonly runtime: PristineHost,
    private readonly options: PristineOptions,
    private current: SnapshotInfo,
  ) {}

  /** Runs the container, waits for `ready`, and takes the snapshot (the container keeps running). */
  static async start(runtime: PristineHost, options: PristineOptions): Promise<PristineContainer> {
    await runtime.run({
      id: options.id,
      ...(options.bundle !== undefined ? { bundle: options.bundle } : {}),
      ...(options.image ? { image: options.image } : {}),
      ...(options.ports ? { ports: options.ports } : {}),
    });
    try {
      const starting = new PristineContainer(runtime, options, undefined as unknown as SnapshotInfo);
      await options.ready?.(starting);
      const { snapshot } = await runtime.checkpoint({
        id: options.id,
        name: options.snapshot ?? 'pristine',
        leaveRunning: true,
        ...(options.tcpEstablished ? { tcpEstablished: true } : {}),
      });
      starting.current = snapshot!;
      return starting;
    } catch (error) {
      await runtime.delete(options.id, { force: true }).catch(() => undefined);
      throw error;
    }
  }

  get id(): string {
    return this.options.id;
  }

  /** The snapshot resets go back to. */
  get snapshot(): SnapshotInfo {
    return this.current;
  }

  /** The pid of the container's init on the host (it changes with each reset). */
  async pid(): Promise<number> {
    const state = await this.runtime.state(this.options.id);
    if (state.pid === undefined) throw new ContainerNotRunningError(this.options.id, state.status);
    return state.pid;
  }

  /** Puts the container back to the snapshot: processes, memory and rootfs. Returns the new pid. */
  reset(): Promise<number> {
    return this.runtime.reset({
      id: this.options.id,
      name: this.current.name,
      ...pickResetCriuOptions(this.options),
      ...(this.options.standby === false ? { standby: false } : {}),
    });
  }

  /** Takes another snapshot of the current state; later resets go back to it. */
  async resnapshot(name: string): Promise<SnapshotInfo> {
    const { snapshot } = await this.runtime.checkpoint({ id: this.options.id, name, leaveRunning: true });
    this.current = snapshot!;
    return this.current;
  }

  /** Stops and removes the container with its snapshots. */
  async dispose(): Promise<void> {
    await this.runtime.delete(this.options.id, { force: true });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }
}
