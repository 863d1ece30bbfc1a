/**
 * `runtime reset <id> [NAME]` (and `runtime restore --name NAME [--from SRC] <id>`): puts a
 * container back to a named snapshot. The running instance is replaced by a new one whose rootfs
 * is the snapshot's layers under a fresh, empty writable layer (an overlay: nothing is copied),
 * restored from the snapshot's images, which are only read (a read-only bind mount). The
 * container's monitor does the work (monitor/container-monitor.ts); this file validates the
 * request, makes copies, and asks the monitor, or starts one.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RuntimeContext } from './context.js';
import { validateId } from './id.js';
import { requireRoot } from './privileges.js';
import { ContainerExistsError, ContainerNotFoundError, UsageError } from './errors.js';
import { SnapshotStore, type SnapshotInfo } from './snapshots/store.js';
import { cgroupHierarchies, cgroupPids, defaultCgroupPath } from './cgroups.js';
import { newRecord, type ContainerRecord } from './state/record.js';
import type { RestoreCriuOptions } from '../criu/options.js';
import { launchMonitor } from './monitor/launch.js';
import { sendControl, type ResetSpec } from './monitor/control.js';
import { deserializeError } from './monitor/report.js';
import { readEffectiveSpec, writeEffectiveBundle } from './effective-bundle.js';

export interface ResetRequest extends Pick<RestoreCriuOptions, 'tcpEstablished' | 'extUnixSk' | 'shellJob' | 'fileLocks' | 'manageCgroupsMode' | 'lazyPages'> {
  readonly id: string;
  /** The snapshot; the newest one when unset. */
  readonly name?: string;
  /** Restore another container's snapshot as this (new) container: a copy. */
  readonly from?: string;
  readonly pidFile?: string;
  /**
   * Keep a stopped standby of the snapshot ready (default), so the next reset only switches to
   * it. It costs the snapshot's memory once more while it waits.
   */
  readonly standby?: boolean;
}

/**
 * Resets through the container's monitor when one is alive (it is the init's parent and keeps a
 * standby ready), or starts a monitor that does the reset. Returns the new init's pid.
 */
export async function reset(context: RuntimeContext, request: ResetRequest): Promise<number> {
  const { id, spec } = await prepareReset(context, request);
  const record = await context.store.load(id);
  if (record.monitor && (await context.processes.isAlive(record.monitor))) {
    // The monitor checked CRIU when it started; it does the reset.
    const response = await sendControl(context.store.paths(id).dir, { op: 'reset', reset: spec });
    if (response) {
      if (!response.ok) throw deserializeError(response.error, context.store.paths(id).monitorLog);
      if (request.pidFile) await writeFile(request.pidFile, String(response.pid));
      return response.pid;
    }
  }
  // No monitor to ask: the running instance (if any) is stopped, and a new monitor resets.
  await context.criu.requireVersion();
  if (request.lazyPages) await context.criu.requireFeature('lazy_pages', '--lazy-pages');
  await stopInstance(context, record);
  return launchMonitor(context, { kind: 'reset', id, reset: spec, ...(request.pidFile ? { pidFile: path.resolve(request.pidFile) } : {}) });
}

async function prepareReset(context: RuntimeContext, request: ResetRequest): Promise<{ id: string; spec: ResetSpec }> {
  const id = validateId(request.id);
  requireRoot('runtime reset');
  const { store } = context;
  const existing = await store.load(id).catch((error: unknown) => {
    if (error instanceof ContainerNotFoundError) return undefined;
    throw error;
  });
  // A copy resets to its source's snapshots unless it has one of that name (or any) itself.
  const snapshots = new SnapshotStore(context.config.checkpointRoot);
  const own = (await snapshots.list(id).catch(() => [])).filter((s) => request.name === undefined || s.name === request.name);
  const sourceId = validateId(request.from ?? (own.length === 0 && existing?.snapshotOf ? existing.snapshotOf : id));
  if ((request as { autoDedup?: boolean }).autoDedup) {
    throw new UsageError('--auto-dedup cannot be used with a named snapshot', 'a reset never changes the snapshot\'s images');
  }
  const snapshot = request.name !== undefined ? await snapshots.read(sourceId, request.name) : await snapshots.latest(sourceId);

  const record = existing;
  if (record && request.from && record.snapshotOf !== sourceId) throw new ContainerExistsError(id);
  if (!record) {
    if (!request.from) throw new ContainerNotFoundError(id, store.root);
    await createCopy(context, id, await store.load(sourceId), snapshot);
  }
  const spec: ResetSpec = {
    sourceId,
    name: snapshot.name,
    standby: request.standby ?? true,
    criu: {
      ...(request.tcpEstablished ? { tcpEstablished: true } : {}),
      ...(request.extUnixSk ? { extUnixSk: true } : {}),
      ...(request.shellJob ? { shellJob: true } : {}),
      ...(request.fileLocks ? { fileLocks: true } : {}),
      ...(request.manageCgroupsMode ? { manageCgroupsMode: request.manageCgroupsMode } : {}),
      ...(request.lazyPages ? { lazyPages: true } : {}),
    },
  };
  return { id, spec };
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
    const record = newRecord(
      {
        id,
        status: 'checkpointed',
        bundle: source.bundle,
        rootfs,
        cgroupPath: effective.cgroupPath || defaultCgroupPath(id),
        ociRuntime: source.ociRuntime,
        annotations: source.annotations,
        logPath: paths.containerLog,
      },
      { snapshotOf: source.id, snapshot: snapshot.name },
    );
    await store.save(record);
    return record;
  } catch (error) {
    await store.remove(id);
    throw error;
  }
}
