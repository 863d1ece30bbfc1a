/**
 * A container's monitor: the parent of its init for as long as the container lives, across
 * resets. It serves reset requests on its control socket. A reset restores the snapshot as a new
 * instance (its own overlay of the snapshot's layers with an empty upper, its own cgroup below
 * the container's, its own namespaces), switches the container's rootfs path and record to it,
 * and kills the old instance. With a standby, the next instance is restored ahead of time and
 * left stopped, so a reset only thaws it: the slow part, CRIU's restore, is off the reset's path.
 */
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { RuntimeContext } from '../context.js';
import type { ContainerRecord, ProcessIdentity } from '../state/record.js';
import { readEffectiveSpec } from '../effective-bundle.js';
import { cgroupHierarchies, removeCgroupTree, setFrozen, signalCgroup, type CgroupHierarchy } from '../cgroups.js';
import { mountLayers, unmountAll, type LayeredRootfs } from '../../rootfs/layers.js';
import { SnapshotStore, type SnapshotInfo } from '../snapshots/store.js';
import { describeError } from '../errors.js';
import { CriuRequestError, withLogAt } from '../../criu/errors.js';
import { keepLog } from '../../criu/log.js';
import { restoreInstance } from './instance.js';
import { Supervisor } from './supervisor.js';
import { serveControl, type ControlRequest, type ControlResponse, type ControlServer, type ResetSpec } from './control.js';
import { serializeError } from './report.js';
import type { WaitStatus } from '../../system/libc.js';

/** One restored copy of the process tree, with everything that is its own. */
interface Instance {
  readonly number: number;
  readonly pid: number;
  readonly identity: ProcessIdentity;
  readonly supervisor: Supervisor;
  readonly exited: Promise<WaitStatus>;
  readonly cgroupPath: string;
  readonly layers?: LayeredRootfs;
  readonly dir?: string;
  /** What the instance was restored from, to tell whether a standby fits a request. */
  readonly key?: string;
}

/** How long background work waits after a reset is answered. */
const BACKGROUND_DELAY_MS = 50;

function instanceKey(spec: ResetSpec): string {
  return JSON.stringify([spec.sourceId, spec.name, spec.criu]);
}

export class ContainerMonitor {
  private current: Instance | undefined;
  private standby: Promise<Instance | undefined> = Promise.resolve(undefined);
  private queue: Promise<unknown> = Promise.resolve();
  private server: ControlServer | undefined;
  private readonly snapshots: SnapshotStore;

  constructor(private readonly context: RuntimeContext, private readonly id: string) {
    this.snapshots = new SnapshotStore(context.config.checkpointRoot);
  }

  private get paths() {
    return this.context.store.paths(this.id);
  }

  /** Adopts the instance a run or restore job started, and opens the control socket. */
  async adopt(pid: number, supervisor: Supervisor): Promise<void> {
    const record = await this.context.store.load(this.id);
    this.current = await this.track({ number: record.instance ?? 0, pid, supervisor, cgroupPath: record.cgroupPath, ...(record.layers ? { layers: record.layers } : {}) });
    await rm(path.join(this.paths.dir, 'monitor.sock'), { force: true });
    this.server = await serveControl(this.paths.dir, (request) => this.handle(request));
  }

  /** Resolves when the container has ended on its own (not replaced by a reset). */
  async untilEnded(): Promise<WaitStatus> {
    for (;;) {
      const instance = this.current!;
      const status = await instance.exited;
      await this.queue.catch(() => undefined);
      if (this.current === instance) return status;
    }
  }

  /** Closes the socket and discards the standby; the ended instance is cleaned up. */
  async shutdown(): Promise<void> {
    this.server?.close();
    await this.server?.idle();
    await rm(path.join(this.paths.dir, 'monitor.sock'), { force: true });
    const standby = await this.standby.catch(() => undefined);
    if (standby) await this.discard(standby, await this.hierarchies());
    if (this.current) await this.current.supervisor.close();
  }

  /** A reset as the first job of a new monitor (no monitor was alive to ask). */
  async resetFirst(spec: ResetSpec): Promise<number> {
    const pid = await this.reset(spec);
    await rm(path.join(this.paths.dir, 'monitor.sock'), { force: true });
    this.server = await serveControl(this.paths.dir, (request) => this.handle(request));
    return pid;
  }

  private async handle(request: ControlRequest): Promise<ControlResponse> {
    if (request.op !== 'reset') return { ok: false, error: { code: 'USAGE', message: `unknown control request ${JSON.stringify(request)}` } };
    try {
      return { ok: true, pid: await this.reset(request.reset) };
    } catch (error) {
      this.context.logger.error(`reset of ${this.id} failed`, { error: describeError(error) });
      return { ok: false, error: serializeError(error) };
    }
  }

  /** Resets are done one at a time, in the order asked. */
  reset(spec: ResetSpec): Promise<number> {
    const run = this.queue.catch(() => undefined).then(() => this.resetNow(spec));
    this.queue = run;
    return run;
  }

  private async resetNow(spec: ResetSpec): Promise<number> {
    const { store, logger } = this.context;
    const started = Date.now();
    if (spec.criu.lazyPages) await this.context.criu.requireFeature('lazy_pages', '--lazy-pages');
    const snapshot = await this.snapshots.read(spec.sourceId, spec.name);
    const hierarchies = await this.hierarchies();
    const key = instanceKey(spec);
    const ready = await this.standby.catch(() => undefined);
    this.standby = Promise.resolve(undefined);
    let next: Instance;
    const old = this.current;
    if (spec.standby && ready && ready.key === key && (await this.context.processes.isAlive(ready.identity))) {
      next = ready;
    } else {
      if (ready) void this.retire(ready, hierarchies);
      // The old instance stops first, so it cannot write on (to shared volumes) meanwhile. (It is
      // not frozen instead: a v1 freezer freezes the cgroups below too, where the new one goes.)
      // Its mounts and directories are removed in the background.
      if (old) {
        await this.stop(old, hierarchies);
        void this.retire(old, hierarchies);
      }
      next = await this.restoreNew(spec, snapshot, false);
    }

    await store.withLock(this.id, async () => {
      const record = await store.load(this.id);
      // The rootfs path shows the new instance's rootfs.
      await unmountAll(this.context.mounts, record.rootfs);
      await this.context.mounts.bind(next.layers!.target, record.rootfs);
      const { exit: _exit, ...rest } = record;
      const updated: ContainerRecord = {
        ...rest,
        status: 'running',
        init: next.identity,
        monitor: (await this.context.processes.identify(process.pid))!,
        cgroupBase: record.cgroupBase ?? record.cgroupPath,
        cgroupPath: next.cgroupPath,
        layers: next.layers!,
        instance: next.number,
        snapshot: spec.name,
        restoreCount: record.restoreCount + 1,
      };
      await store.save(updated);
    });
    this.current = next;
    // A standby was left stopped by CRIU: now it runs.
    if (next === ready) await signalCgroup(hierarchies, next.cgroupPath, 'SIGCONT');
    logger.info(`reset ${this.id} to ${spec.name}`, { pid: next.pid, ms: Date.now() - started, standby: next === ready });

    // The answer goes out first, and the caller gets a moment to act on it: the old instance's
    // teardown (freeing a large tree takes the kernel a while) and the next standby's restore
    // start after that, not in its way.
    const afterReply = new Promise<void>((resolve) => setTimeout(resolve, BACKGROUND_DELAY_MS));
    if (old && next === ready) void afterReply.then(() => this.retire(old, hierarchies));
    if (spec.standby) this.standby = afterReply.then(() => this.prepareStandby(spec, snapshot));
    return next.pid;
  }

  private async prepareStandby(spec: ResetSpec, snapshot: SnapshotInfo): Promise<Instance | undefined> {
    try {
      return await this.restoreNew(spec, snapshot, true);
    } catch (error) {
      this.context.logger.warn(`no standby for ${this.id}`, { error: describeError(error) });
      return undefined;
    }
  }

  /** Restores the snapshot as a new instance: its own overlay, read-only images view and cgroup. */
  private async restoreNew(spec: ResetSpec, snapshot: SnapshotInfo, leaveStopped: boolean): Promise<Instance> {
    const { store, mounts } = this.context;
    const record = await store.load(this.id);
    // Numbers only grow: the current instance, a standby and the next never share a directory.
    const number = Math.max(record.instance ?? 0, this.lastNumber) + 1;
    this.lastNumber = number;
    const dir = path.join(this.paths.dir, 'instances', String(number));
    await rm(dir, { recursive: true, force: true });
    const layers: LayeredRootfs = {
      lowers: snapshot.layers,
      upper: path.join(dir, 'upper'),
      work: path.join(dir, 'work'),
      target: path.join(dir, 'rootfs'),
    };
    const images = path.join(dir, 'images');
    const workPath = path.join(dir, 'criu-work');
    const cgroupPath = `${record.cgroupBase ?? record.cgroupPath}/${number}`;
    const supervisor = new Supervisor({ id: this.id, store, reaper: this.context.reaper, foreground: false });
    try {
      await mountLayers(mounts, layers);
      await mkdir(images, { recursive: true });
      // Read-only: the kernel guarantees a reset never changes the snapshot's images.
      await mounts.bindReadOnly(this.snapshots.paths(spec.sourceId, spec.name).images, images);
      await mkdir(workPath, { recursive: true, mode: 0o700 });
      const { spec: ociSpec } = await readEffectiveSpec(this.paths.effectiveBundle);
      const pid = await restoreInstance(this.context, supervisor, {
        record,
        spec: ociSpec,
        imagePath: images,
        criu: { ...spec.criu, workPath },
        rootfs: layers.target,
        cgroupPath,
        criuRoot: path.join(dir, 'criu-root'),
        leaveStopped,
      });
      supervisor.startPumping();
      return await this.track({ number, pid, supervisor, cgroupPath, layers, dir, key: instanceKey(spec) });
    } catch (error) {
      await supervisor.close();
      // The instance's directory goes, and CRIU's log with it: the log is kept beside the state.
      const kept = error instanceof CriuRequestError
        ? await keepLog(error.failure.logPath ?? '', path.join(this.paths.dir, 'reset-failed.log'))
        : undefined;
      await this.cleanupInstance(dir, cgroupPath, await this.hierarchies());
      throw kept && error instanceof CriuRequestError ? new CriuRequestError(withLogAt(error.failure, kept), { cause: error }) : error;
    }
  }

  private lastNumber = 0;

  /** Starts reaping the instance's init and records who it is (pid and start time). */
  private async track(partial: Omit<Instance, 'identity' | 'exited'>): Promise<Instance> {
    const exited = partial.supervisor.superviseInit(partial.pid);
    const identity = await this.context.processes.identify(partial.pid);
    if (!identity) {
      exited.catch(() => undefined);
      throw new Error(`the init of ${this.id} (pid ${partial.pid}) ended right after it was restored`);
    }
    return { ...partial, identity, exited };
  }

  /** Kills an instance's processes and waits until its init is reaped. */
  private async stop(instance: Instance, hierarchies: readonly CgroupHierarchy[]): Promise<void> {
    await signalCgroup(hierarchies, instance.cgroupPath, 'SIGKILL');
    // Frozen v1 tasks die only once thawed.
    await setFrozen(hierarchies, instance.cgroupPath, false);
    await instance.exited.catch(() => undefined);
  }

  /** Kills an instance that was replaced, and removes what was its own once it is gone. */
  private async retire(instance: Instance, hierarchies: readonly CgroupHierarchy[]): Promise<void> {
    try {
      await this.stop(instance, hierarchies);
      await instance.supervisor.close();
      if (instance.dir) await this.cleanupInstance(instance.dir, instance.cgroupPath, hierarchies);
    } catch (error) {
      this.context.logger.warn(`cleaning up instance ${instance.number} of ${this.id}`, { error: describeError(error) });
    }
  }

  private async discard(instance: Instance, hierarchies: readonly CgroupHierarchy[]): Promise<void> {
    await this.retire(instance, hierarchies);
  }

  private async cleanupInstance(dir: string, cgroupPath: string, hierarchies: readonly CgroupHierarchy[]): Promise<void> {
    const { mounts } = this.context;
    for (const target of ['criu-root', 'images', 'rootfs']) await unmountAll(mounts, path.join(dir, target)).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
    await removeCgroupTree(hierarchies, cgroupPath);
  }

  private async hierarchies(): Promise<CgroupHierarchy[]> {
    return cgroupHierarchies(await this.context.mounts.mounts());
  }
}
