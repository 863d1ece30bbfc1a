/**
 * `runtime reset <id> [NAME]` (and `runtime restore --name NAME [--from SRC] <id>`): puts a
 * container back to a named snapshot. The running instance is stopped, the rootfs becomes the
 * snapshot's layers under a fresh, empty writable layer (an overlay on the rootfs path: nothing
 * is copied), and the processes are restored from the snapshot's images, which are only read:
 * CRIU gets them through a read-only bind mount and writes its log to a work directory of the
 * container's own.
 */
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RuntimeContext } from './context.js';
import { validateId } from './id.js';
import { requireRoot } from './privileges.js';
import { ContainerExistsError, ContainerNotFoundError, UsageError } from './errors.js';
import { SnapshotStore, type SnapshotInfo } from './snapshots/store.js';
import { resetLayers } from './snapshots/rootfs.js';
import { mountLayers, unmountAll } from '../rootfs/layers.js';
import { cgroupHierarchies, cgroupPids, defaultCgroupPath } from './cgroups.js';
import type { ContainerRecord } from './state/record.js';
import type { RestoreCriuOptions } from '../criu/options.js';
import type { RestoreJob } from './monitor/job.js';
import { launchMonitor } from './monitor/launch.js';
import { runInForeground, type ForegroundContainer, type ForegroundStdio } from './monitor/foreground.js';
import { readEffectiveSpec, writeEffectiveBundle } from './effective-bundle.js';

export interface ResetRequest extends Pick<RestoreCriuOptions, 'tcpEstablished' | 'extUnixSk' | 'shellJob' | 'fileLocks' | 'manageCgroupsMode' | 'lazyPages'> {
  readonly id: string;
  /** The snapshot; the newest one when unset. */
  readonly name?: string;
  /** Restore another container's snapshot as this (new) container: a copy. */
  readonly from?: string;
  readonly pidFile?: string;
}

export async function resetDetached(context: RuntimeContext, request: ResetRequest): Promise<number> {
  return launchMonitor(context, await prepareReset(context, request));
}

export async function resetForeground(context: RuntimeContext, request: ResetRequest, stdio: ForegroundStdio): Promise<ForegroundContainer> {
  return runInForeground(context, await prepareReset(context, request), stdio);
}

async function prepareReset(context: RuntimeContext, request: ResetRequest): Promise<RestoreJob> {
  const id = validateId(request.id);
  const sourceId = validateId(request.from ?? id);
  requireRoot('runtime reset');
  if ((request as { autoDedup?: boolean }).autoDedup) {
    throw new UsageError('--auto-dedup cannot be used with a named snapshot', 'a reset never changes the snapshot\'s images');
  }
  const { store, criu } = context;
  const snapshots = new SnapshotStore(context.config.checkpointRoot);
  const snapshot = request.name !== undefined ? await snapshots.read(sourceId, request.name) : await snapshots.latest(sourceId);
  await criu.requireVersion();
  if (request.lazyPages) await criu.requireFeature('lazy_pages', '--lazy-pages');

  let record = await store.load(id).catch((error: unknown) => {
    if (error instanceof ContainerNotFoundError) return undefined;
    throw error;
  });
  if (record && request.from && record.snapshotOf !== sourceId) throw new ContainerExistsError(id);
  if (!record) {
    if (!request.from) throw new ContainerNotFoundError(id, store.root);
    record = await createCopy(context, id, await store.load(sourceId), snapshot);
  } else {
    await stopInstance(context, record);
  }

  const paths = store.paths(id);
  const imageView = path.join(paths.dir, 'images');
  const workPath = path.join(paths.dir, 'criu-work');
  await store.withLock(id, async () => {
    const current = await store.load(id);
    const layers = resetLayers(context, id, snapshot.layers, current.rootfs);
    await unmountAll(context.mounts, layers.target);
    await mountLayers(context.mounts, layers);
    // The snapshot's images, read-only: the kernel guarantees a reset never changes them.
    await unmountAll(context.mounts, imageView);
    await mkdir(imageView, { recursive: true, mode: 0o700 });
    await context.mounts.bindReadOnly(snapshots.paths(sourceId, snapshot.name).images, imageView);
    await rm(workPath, { recursive: true, force: true });
    await mkdir(workPath, { recursive: true, mode: 0o700 });
    const { init: _init, monitor: _monitor, ...rest } = current;
    await store.save({ ...rest, status: current.status === 'running' ? 'stopped' : current.status, layers, snapshot: snapshot.name });
  });

  const criuOptions: RestoreCriuOptions = {
    workPath,
    ...(request.tcpEstablished ? { tcpEstablished: true } : {}),
    ...(request.extUnixSk ? { extUnixSk: true } : {}),
    ...(request.shellJob ? { shellJob: true } : {}),
    ...(request.fileLocks ? { fileLocks: true } : {}),
    ...(request.manageCgroupsMode ? { manageCgroupsMode: request.manageCgroupsMode } : {}),
    ...(request.lazyPages ? { lazyPages: true } : {}),
  };
  return { kind: 'restore', id, imagePath: imageView, criu: criuOptions, ...(request.pidFile ? { pidFile: path.resolve(request.pidFile) } : {}) };
}

/**
 * Stops the running instance: SIGKILL to every process of its cgroup, then waits until its
 * parent (monitor or foreground runtime) has reaped it and recorded the exit.
 */
export async function stopInstance(context: RuntimeContext, record: ContainerRecord): Promise<void> {
  const { processes, store, mounts } = context;
  if (!record.init || !(await processes.isAlive(record.init))) return;
  await processes.signal(record.init, 'SIGKILL');
  const hierarchies = cgroupHierarchies(await mounts.mounts());
  for (const pid of await cgroupPids(hierarchies, record.cgroupPath)) {
    const identity = await processes.identify(pid);
    if (identity) await processes.signal(identity, 'SIGKILL');
  }
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const current = await store.load(record.id);
    if (current.status !== 'running' || current.init?.pid !== record.init.pid) return;
    // A parent that is gone cannot record the exit; the init is then reaped by pid 1.
    if (!(await processes.isAlive(record.init)) && (!current.monitor || !(await processes.isAlive(current.monitor)))) return;
    await sleep(5);
  }
}

/** A new container made from another's snapshot: its own rootfs mount point, cgroup and state. */
async function createCopy(context: RuntimeContext, id: string, source: ContainerRecord, snapshot: SnapshotInfo): Promise<ContainerRecord> {
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
    );
    const record: ContainerRecord = {
      id,
      status: 'checkpointed',
      bundle: source.bundle,
      rootfs,
      cgroupPath: effective.cgroupPath || defaultCgroupPath(id),
      ociRuntime: source.ociRuntime,
      created: new Date().toISOString(),
      annotations: source.annotations,
      logPath: paths.containerLog,
      restoreCount: 0,
      snapshotOf: source.id,
      snapshot: snapshot.name,
    };
    await store.save(record);
    return record;
  } catch (error) {
    await store.remove(id);
    throw error;
  }
}
