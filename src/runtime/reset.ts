/**
 * Reset: putting a container back to a named snapshot (`runtime reset <id> [NAME]`, `runtime
 * restore --name NAME [--from SRC] <id>`). The running instance is replaced by a new one whose
 * rootfs is the snapshot's layers under a fresh, empty writable layer (an overlay: nothing is
 * copied), restored from the snapshot's images, which are only read (a read-only bind mount).
 *
 *   reset        the verb: checks the request, makes a copy's record, and asks the container's
 *                monitor, or starts one that resets first
 *   resetAsked   a reset asked of the monitor: the request checked and resolved there
 *   Resetter     what the monitor process runs: the container's instances (the current one and
 *                stopped standbys restored ahead of time, so a reset only thaws one), replaced
 *                one at a time, each with its own overlay, cgroup and namespaces
 */
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RuntimeContext } from './context.js';
import { validateId } from './id.js';
import { requireRoot } from './privileges.js';
import { ContainerBusyError, ContainerExistsError, ContainerNotFoundError, InitEndedError, UsageError, describeError } from './errors.js';
import { refuseAutoDedup, type SnapshotInfo } from './snapshots/store.js';
import { initOf, monitorOf, newRecord, type ContainerRecord, type ProcessIdentity } from './state/record.js';
import { readEffectiveSpec, writeEffectiveBundle } from './effective-bundle.js';
import type { Spec } from './oci/index.js';
import { criuBinaryFor, restoreTree } from './restore.js';
import { Supervisor } from './monitor/supervisor.js';
import { pickResetCriuOptions, type ResetAsk, type ResetSpec } from './monitor/protocol.js';
import { resetByMonitor, type ResetRequest } from './reset-by-monitor.js';
import { discardInstance, recoverInterrupted, removeInstance } from './interrupted.js';
import { CriuRequestError, withLogAt } from '../criu/errors.js';
import { keepLog } from '../criu/log.js';
import { requireFeaturesFor, type LazyPages } from '../criu/service.js';
import { mountLayers, unmountAll, type LayeredRootfs } from '../rootfs/layers.js';
import type { WaitStatus } from '../system/libc.js';
import { checkPublished, type PublishedPort } from './ports.js';
import { requireLazyPagesAllowed, shareWithContainerRoot, userfaultfdAllowed } from './userns.js';

export type { ResetRequest };

/** How many stopped instances of the snapshot a monitor keeps ready, unless asked otherwise. */
export const DEFAULT_STANDBYS = 2;
const MAX_STANDBYS = 8;

/** From this much memory in a snapshot on, resets restore it lazily unless asked otherwise. */
export const LAZY_FROM_BYTES = 64 * 2 ** 20;

/**
 * Resets through the container's monitor when one is alive (it is the init's parent and keeps a
 * standby ready), or starts a monitor that does the reset. Returns the new init's pid.
 */
export async function reset(context: RuntimeContext, request: ResetRequest): Promise<number> {
  validateId(request.id);
  requireRoot(context.processes, 'runtime reset');
  refuseAutoDedup(request as { autoDedup?: boolean });
  // The monitor checks the request and finds the snapshot itself (a copy is made here).
  if (request.from === undefined) {
    const pid = await resetByMonitor(context, request);
    if (pid !== undefined) return pid;
  }
  const { id, spec } = await prepareReset(context, request);
  const { store } = context;
  // One command at a time starts a container's monitor: a second one waits here, then asks the
  // monitor the first started (two monitors would replace each other's instances).
  return store.withLock(
    id,
    async () => {
      // Counted from the first time a live monitor is seen not to answer, not from the wait for
      // the lock (a restore may hold it for longer, and its new monitor then needs a moment).
      let deadline: number | undefined;
      for (;;) {
        const pid = await resetByMonitor(context, { ...request, id });
        if (pid !== undefined) return pid;
        // No monitor to ask: the running instance (if any) is stopped, and a new monitor resets;
        // not while a checkpoint dumps the tree or a restore makes it (they hold the state lock).
        const stopped = await store.withLock(id, async () => {
          const record = await recoverInterrupted(context, await store.load(id));
          // A monitor a restore started meanwhile is asked once it listens (a moment after it is
          // recorded); one that never does is taken for hung, and replaced.
          const monitor = monitorOf(record);
          if (monitor && (await context.processes.isAlive(monitor))) {
            deadline ??= Date.now() + 2_000;
            if (Date.now() < deadline) return undefined;
          }
          await context.criu.requireVersion();
          await requireFeaturesFor(context.criu, spec.criu);
          await stopInstance(context, record);
          return record;
        });
        if (stopped) {
          return context.monitors.launch({
            kind: 'reset',
            id,
            reset: spec,
            ...(request.pidFile ? { pidFile: path.resolve(request.pidFile) } : {}),
            ...criuBinaryFor(context, stopped),
          });
        }
        await sleep(20);
      }
    },
    undefined,
    'launch',
  );
}

/** A reset asked of this process, the container's monitor: checked and resolved here, then done. */
export async function resetAsked(context: RuntimeContext, resetter: Resetter, id: string, ask: ResetAsk): Promise<number> {
  const { spec } = await prepareReset(context, {
    id,
    ...(ask.name !== undefined ? { name: ask.name } : {}),
    ...(ask.standby !== undefined ? { standby: ask.standby } : {}),
    ...(ask.standbys !== undefined ? { standbys: ask.standbys } : {}),
    ...ask.criu,
  });
  return resetter.reset(spec);
}

/**
 * The request checked and resolved: the snapshot, the standbys, the CRIU options. A lazy reset the
 * kernel would refuse is refused here, while the running instance still runs, rather than by the
 * restore after it stopped.
 */
async function prepareReset(context: RuntimeContext, request: ResetRequest): Promise<{ id: string; spec: ResetSpec }> {
  const id = validateId(request.id);
  requireRoot(context.processes, 'runtime reset');
  const { store, snapshots } = context;
  refuseAutoDedup(request as { autoDedup?: boolean });
  const existing = await store.load(id).catch((error: unknown) => {
    if (error instanceof ContainerNotFoundError) return undefined;
    throw error;
  });
  // A copy resets to its source's snapshots unless it has one of that name (or any) itself.
  const own = (await snapshots.list(id).catch(() => [])).filter((s) => request.name === undefined || s.name === request.name);
  const sourceId = validateId(request.from ?? (own.length === 0 && existing?.snapshotOf ? existing.snapshotOf : id));
  const snapshot = request.name !== undefined ? await snapshots.read(sourceId, request.name) : await snapshots.latest(sourceId);

  if (existing && request.from && existing.snapshotOf !== sourceId) throw new ContainerExistsError(id);
  if (!existing) {
    if (!request.from) throw new ContainerNotFoundError(id, store.root);
    await createCopy(context, id, await store.load(sourceId), snapshot, checkPublished(request.ports ?? []));
  }
  const standbys = request.standby === false ? 0 : (request.standbys ?? DEFAULT_STANDBYS);
  if (!Number.isInteger(standbys) || standbys < 0 || standbys > MAX_STANDBYS) {
    throw new UsageError(`invalid number of standbys ${standbys}`, `keep 0 to ${MAX_STANDBYS} (each holds the snapshot's processes, stopped)`);
  }
  const { spec: ociSpec } = await readEffectiveSpec(store.paths(id).effectiveBundle);
  const { lazyPages: asked, ...criu } = pickResetCriuOptions(request);
  const lazyPages = asked ?? (await lazyByDefault(context, ociSpec, snapshot));
  await requireLazyPagesAllowed(context.processes, ociSpec, id, lazyPages);
  return { id, spec: { sourceId, name: snapshot.name, standbys, criu: { ...criu, ...(lazyPages ? { lazyPages: true } : {}) } } };
}

/**
 * A snapshot holding LAZY_FROM_BYTES of memory or more is restored lazily unless the request says
 * (--lazy-pages, --no-lazy-pages): a lazily restored instance's memory is copied when touched and
 * only then (with the project's CRIU; another copies the rest in the background once the instance
 * runs), so a reset costs what the test touched, not what the container holds. Only where CRIU
 * and the kernel can (userfaultfd; in a user namespace, only with vm.unprivileged_userfaultfd=1).
 */
async function lazyByDefault(context: RuntimeContext, spec: Spec, snapshot: SnapshotInfo): Promise<boolean> {
  if (snapshot.memoryBytes < LAZY_FROM_BYTES) return false;
  if ((await context.criu.features()).lazy_pages !== true) return false;
  return userfaultfdAllowed(context.processes, spec);
}

/**
 * Stops the running instance when no monitor answers to do it: its processes are killed, and this
 * waits until the init has ended (its parent, if any is left, records the exit; the monitor that
 * resets next replaces the record either way).
 */
export async function stopInstance(context: RuntimeContext, record: ContainerRecord): Promise<void> {
  const { processes, cgroups } = context;
  const init = initOf(record);
  if (!init || !(await processes.isAlive(init))) return;
  await processes.signal(init, 'SIGKILL');
  await cgroups.killTree(record.cgroupPath);
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && (await processes.isAlive(init))) await sleep(5);
}

/** A new container made from another's snapshot: its own rootfs mount point, cgroup and state. */
async function createCopy(
  context: RuntimeContext,
  id: string,
  source: ContainerRecord,
  snapshot: SnapshotInfo,
  ports: readonly PublishedPort[],
): Promise<void> {
  const { store, logger } = context;
  const paths = await store.reserve(id);
  try {
    const { spec } = await readEffectiveSpec(store.paths(source.id).effectiveBundle);
    const rootfs = path.join(paths.dir, 'rootfs');
    await mkdir(rootfs, { recursive: true });
    const { cgroupsPath: _own, ...linux } = spec.linux ?? {};
    const effective = await writeEffectiveBundle(
      paths.effectiveBundle,
      { path: source.bundle, configPath: path.join(source.bundle, 'config.json'), spec: { ...spec, linux }, rootfs },
      id,
      logger,
      context.config.cgroupParent,
    );
    await store.create(
      newRecord(
        {
          id,
          status: 'checkpointed',
          bundle: source.bundle,
          rootfs,
          cgroupPath: effective.cgroupPath,
          ociRuntime: source.ociRuntime,
          annotations: source.annotations,
          logPath: paths.containerLog,
        },
        {
          snapshotOf: source.id,
          snapshot: snapshot.name,
          ...(ports.length > 0 ? { ports } : {}),
          ...(source.criu ? { criu: source.criu } : {}),
        },
      ),
    );
  } catch (error) {
    await store.remove(id);
    throw error;
  }
}

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
  /** The daemon serving its memory when it was restored lazily (paused while it is a standby). */
  readonly lazyPages?: LazyPages;
}

function instanceKey(spec: ResetSpec): string {
  return JSON.stringify([spec.sourceId, spec.name, spec.criu]);
}

/**
 * The resets of one container, in the process that is its parent (the monitor). It keeps the
 * current instance, and after a reset with standbys, the next ones restored and left stopped,
 * oldest first. Restored side by side, several standbys keep up with short tests better than one:
 * much of a restore is waiting (on CRIU's helpers, on the kernel), not computing.
 */
export class Resetter {
  private current: Instance | undefined;
  private standbys: Promise<Instance | undefined>[] = [];
  private queue: Promise<unknown> = Promise.resolve();
  private lastNumber = 0;

  constructor(
    private readonly context: RuntimeContext,
    private readonly id: string,
    /** Told the pid of each instance that becomes the current one (published ports follow it). */
    private readonly onInstance: (pid: number) => void = () => undefined,
  ) {}

  private get paths() {
    return this.context.store.paths(this.id);
  }

  /** Takes over the instance a run or restore started (this process is its parent). */
  async adopt(pid: number, supervisor: Supervisor): Promise<void> {
    const record = await this.context.store.load(this.id);
    this.current = await this.track({
      number: record.instance ?? 0,
      pid,
      supervisor,
      cgroupPath: record.cgroupPath,
      ...(record.layers ? { layers: record.layers } : {}),
    });
    this.onInstance(pid);
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

  /** Discards the standbys and closes the ended instance. */
  async shutdown(): Promise<void> {
    const standbys = this.standbys;
    this.standbys = [];
    for (const pending of standbys) {
      const standby = await pending.catch(() => undefined);
      if (standby) await this.retire(standby);
    }
    if (this.current) await this.current.supervisor.close();
  }

  /** Resets are done one at a time, in the order asked. */
  reset(spec: ResetSpec): Promise<number> {
    const run = this.queue.catch(() => undefined).then(() => this.resetNow(spec));
    this.queue = run;
    return run;
  }

  private async resetNow(spec: ResetSpec): Promise<number> {
    const { logger, cgroups, snapshots, store } = this.context;
    const started = Date.now();
    await requireFeaturesFor(this.context.criu, spec.criu);
    const snapshot = await snapshots.read(spec.sourceId, spec.name);
    const key = instanceKey(spec);
    const ready = await this.takeStandby(spec.standbys > 0 ? key : undefined);
    const standbyAt = Date.now();
    const old = this.current;
    let restored: Instance | undefined = ready;
    let next: Instance;
    // The instance a monitor that died left running, when this monitor resets first: not this
    // one's to retire as it retires its own, but its overlay, images view and cgroup go too.
    let orphan: { readonly dir: string; readonly cgroupPath: string } | undefined;
    try {
      // Under the container's lock: no checkpoint, restore or delete is mid-way while the running
      // instance is held still and replaced, and none starts before the record names the new one.
      next = await store.withLock(this.id, async () => {
        const record = await recoverInterrupted(this.context, await store.load(this.id));
        await this.refuseTakenOver(record);
        if (!old && record.instance !== undefined && record.cgroupBase !== undefined)
          orphan = { dir: path.join(this.paths.dir, 'instances', String(record.instance)), cgroupPath: record.cgroupPath };
        // The old instance is held still (SIGSTOP) while the new one is made ready, so it cannot
        // write on (to shared volumes) meanwhile, and it runs on if the new one cannot be had: a
        // failed reset leaves the container as it was. (A v1 freezer would freeze the cgroups
        // below the first instance's too, where the new ones go; a stop signal reaches its own
        // processes only.)
        if (old) await cgroups.signal(old.cgroupPath, 'SIGSTOP');
        try {
          restored ??= await this.restoreInstance(spec, snapshot, false);
          await this.switchTo(restored, spec);
          return restored;
        } catch (error) {
          if (old) await cgroups.signal(old.cgroupPath, 'SIGCONT');
          throw error;
        }
      });
    } catch (error) {
      if (restored) void this.retire(restored);
      throw error;
    }
    // A standby was left stopped by CRIU (and a background daemon paused): now both run.
    if (next === ready) {
      next.lazyPages?.resume();
      await cgroups.signal(next.cgroupPath, 'SIGCONT');
    }
    // When the reset returns, the old instance is gone: its processes killed and reaped (its
    // published port already points at the new one). Its mounts and directories go afterwards.
    const switchedAt = Date.now();
    if (old) {
      await this.stop(old);
      void this.retire(old);
    }
    if (orphan) void this.removeOrphan(orphan);
    logger.info(`reset ${this.id} to ${spec.name}`, { pid: next.pid, ms: Date.now() - started, standby: next === ready });
    // Where the time went: waiting for a standby still being restored (or the restore itself),
    // switching to it, and the old instance's end.
    logger.debug('reset phases', { id: this.id, standbyMs: standbyAt - started, switchMs: switchedAt - standbyAt, stopMs: Date.now() - switchedAt });

    // The standbys are topped up at once, in the background, once the answer is on its way: a
    // test suite's next reset comes after a short test, and waits for whatever is left of one.
    const missing = spec.standbys - this.standbys.length;
    for (let i = 0; i < missing; i++) this.standbys.push(new Promise(setImmediate).then(() => this.prepareStandby(spec, snapshot)));
    return next.pid;
  }

  /**
   * The oldest standby restored for this request (key) and still alive, waiting for it if it is
   * being restored; standbys of another request are discarded. Undefined when none fits (or no
   * key: the request wants none).
   */
  private async takeStandby(key: string | undefined): Promise<Instance | undefined> {
    while (this.standbys.length > 0) {
      const standby = await this.standbys.shift()!.catch(() => undefined);
      if (!standby) continue;
      if (key !== undefined && standby.key === key && (await this.context.processes.isAlive(standby.identity))) return standby;
      void this.retire(standby);
    }
    return undefined;
  }

  /**
   * A container another command started meanwhile (a restore, the reset of a monitor started
   * alongside this one) runs an instance this monitor is not the parent of: not its to replace.
   */
  private async refuseTakenOver(record: ContainerRecord): Promise<void> {
    if (record.status !== 'running' || record.init.pid === this.current?.pid) return;
    if (!(await this.context.processes.isAlive(record.init))) return;
    throw new ContainerBusyError(this.id, `its running instance (pid ${record.init.pid}) was started by another command, not by this monitor`);
  }

  /** Makes next the container's instance (under the lock): its rootfs on the container's rootfs path, the record, the ports. */
  private async switchTo(next: Instance, spec: ResetSpec): Promise<void> {
    const { store, mounts, processes } = this.context;
    const record = await store.load(this.id);
    // The rootfs path shows the new instance's rootfs.
    await unmountAll(mounts, record.rootfs);
    await mounts.bind(next.layers!.target, record.rootfs);
    await store.commit(record, {
      kind: 'reset',
      init: next.identity,
      monitor: await processes.self(),
      cgroupPath: next.cgroupPath,
      layers: next.layers!,
      instance: next.number,
      snapshot: spec.name,
    });
    this.current = next;
    this.onInstance(next.pid);
  }

  private async prepareStandby(spec: ResetSpec, snapshot: SnapshotInfo): Promise<Instance | undefined> {
    try {
      const standby = await this.restoreInstance(spec, snapshot, true);
      // Nothing of a stopped tree faults. A daemon copying in the background (a CRIU without the
      // project's patch) is held still so as not to fill in memory the next test may never touch;
      // one on demand has nothing to hold back (pause() leaves it be).
      standby.lazyPages?.pause();
      return standby;
    } catch (error) {
      this.context.logger.warn(`no standby for ${this.id}`, { error: describeError(error) });
      return undefined;
    }
  }

  /** Restores the snapshot as a new instance: its own overlay, read-only images view and cgroup. */
  private async restoreInstance(spec: ResetSpec, snapshot: SnapshotInfo, leaveStopped: boolean): Promise<Instance> {
    const { store, mounts, snapshots } = this.context;
    const record = await store.load(this.id);
    // Numbers only grow: the current instance, a standby and the next never share a directory.
    let number = Math.max(record.instance ?? 0, this.lastNumber) + 1;
    // Nor one a monitor replaced for being hung may still keep (its standbys' directories).
    while (existsSync(path.join(this.paths.dir, 'instances', String(number)))) number++;
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
    let lazyPages: LazyPages | undefined;
    const started = Date.now();
    let restoreStarted = started;
    try {
      const { spec: ociSpec } = await readEffectiveSpec(this.paths.effectiveBundle);
      await mountLayers(mounts, layers);
      await mkdir(images, { recursive: true });
      // The snapshot's images directory is made searchable for a user namespace's root when the
      // snapshot is taken; this only does it for one taken before the runtime did (it cannot be
      // done through the read-only view).
      const snapshotImages = snapshots.paths(spec.sourceId, spec.name).images;
      await shareWithContainerRoot(snapshotImages, ociSpec);
      // Read-only: the kernel guarantees a reset never changes the snapshot's images.
      await mounts.bindReadOnly(snapshotImages, images);
      await mkdir(workPath, { recursive: true, mode: 0o700 });
      restoreStarted = Date.now();
      const pid = await supervisor.startInit((s) =>
        restoreTree(this.context, s, {
          record,
          spec: ociSpec,
          imagePath: images,
          criu: { ...spec.criu, workPath },
          rootfs: layers.target,
          cgroupPath,
          criuRoot: path.join(dir, 'criu-root'),
          leaveStopped,
          onLazyPages: (daemon) => (lazyPages = daemon),
        }),
      );
      const instance = await this.track({ number, pid, supervisor, cgroupPath, layers, dir, key: instanceKey(spec), ...(lazyPages ? { lazyPages } : {}) });
      this.context.logger.debug('instance restored', {
        id: this.id,
        number,
        standby: leaveStopped,
        prepareMs: restoreStarted - started,
        restoreMs: Date.now() - restoreStarted,
      });
      return instance;
    } catch (error) {
      await supervisor.close();
      // The instance's directory goes, and CRIU's log with it: the log is kept beside the state.
      const kept =
        error instanceof CriuRequestError ? await keepLog(error.failure.logPath ?? '', path.join(this.paths.dir, 'reset-failed.log')) : undefined;
      await removeInstance(this.context, dir, cgroupPath);
      throw kept && error instanceof CriuRequestError ? new CriuRequestError(withLogAt(error.failure, kept), { cause: error }) : error;
    }
  }

  /** Starts reaping the instance's init and records who it is (pid and start time). */
  private async track(partial: Omit<Instance, 'identity' | 'exited'>): Promise<Instance> {
    const exited = partial.supervisor.superviseInit(partial.pid);
    const identity = await this.context.processes.identify(partial.pid);
    if (!identity) {
      exited.catch(() => undefined);
      throw new InitEndedError(this.id, partial.pid, 'restored', this.paths.containerLog);
    }
    return { ...partial, identity, exited };
  }

  /** Kills an instance's processes and waits until its init is reaped. */
  private async stop(instance: Instance): Promise<void> {
    await this.context.cgroups.kill(instance.cgroupPath);
    await instance.exited.catch(() => undefined);
  }

  /** The instance of a monitor that died, replaced by this one's first reset. */
  private async removeOrphan(orphan: { readonly dir: string; readonly cgroupPath: string }): Promise<void> {
    try {
      await discardInstance(this.context, orphan.dir, orphan.cgroupPath);
    } catch (error) {
      this.context.logger.warn(`cleaning up the instance a dead monitor of ${this.id} left`, { dir: orphan.dir, error: describeError(error) });
    }
  }

  /** Kills an instance that was replaced, and removes what was its own once it is gone. */
  private async retire(instance: Instance): Promise<void> {
    try {
      await this.stop(instance);
      await instance.supervisor.close();
      if (instance.dir) await removeInstance(this.context, instance.dir, instance.cgroupPath);
    } catch (error) {
      this.context.logger.warn(`cleaning up instance ${instance.number} of ${this.id}`, { error: describeError(error) });
    }
  }
}
