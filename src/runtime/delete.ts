/**
 * `runtime delete [-f] <id>`: removes a stopped or checkpointed container: its cgroups, its state
 * and its managed checkpoints. With -f a running container is killed first (SIGKILL to every
 * process in its cgroup, as runc does), and the command waits for its monitor to reap it.
 */
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RuntimeContext } from './context.js';
import { validateId } from './id.js';
import { requireRoot } from './privileges.js';
import { RuntimeError, describeError } from './errors.js';
import { initOf, monitorOf, type ContainerRecord, type ProcessIdentity } from './state/record.js';
import { CorruptStateError } from './state/store.js';
import { removeImageContainer, unmountStorage } from './storage.js';
import { unmountAll, unmountBelow } from '../rootfs/layers.js';
import { SnapshotInUseError } from './snapshots/store.js';
import { recoverInterrupted } from './interrupted.js';

export class ContainerRunningError extends RuntimeError {
  readonly code = 'CONTAINER_RUNNING' as const;
  constructor(readonly id: string) {
    super(`container ${JSON.stringify(id)} is running`, { hint: `stop it first, or use \`runtime delete -f ${id}\`` });
  }
}

export interface DeleteOptions {
  readonly force?: boolean;
}

export async function deleteContainer(context: RuntimeContext, id: string, options: DeleteOptions = {}): Promise<void> {
  validateId(id);
  requireRoot(context.processes, 'runtime delete');
  const { store, processes, cgroups } = context;
  try {
    await store.load(id);
  } catch (error) {
    if (!(error instanceof CorruptStateError) || !options.force) throw error;
    // Without the lock: no command can use an unreadable record, and its monitor, blocked on the
    // lock to record the exit, would only end later.
    return deleteUnreadable(context, id, error);
  }
  // Under the container's lock: a run, restore, checkpoint or reset in progress finishes first,
  // and what it left is what is deleted (or refused, when it left the container running).
  const record = await store.withLock(id, async () => {
    // A checkpoint's CRIU that outlived its command is waited for, a half-made restore undone.
    const record = await recoverInterrupted(context, await store.load(id));
    await refuseCopied(context, id);
    const init = initOf(record);
    const running = init !== undefined && (await processes.isAlive(init));
    if (running && !options.force) throw new ContainerRunningError(id);
    if (running) {
      await processes.signal(init, 'SIGKILL');
      await cgroups.killTree(record.cgroupBase ?? record.cgroupPath);
    }
    return record;
  });
  // Out of the lock: the monitor records the exit under it (and drops its standbys).
  const init = initOf(record);
  if (init) await waitGone(context, init, 10_000);
  const monitor = monitorOf(record);
  if (monitor) await waitGone(context, monitor, 5_000);
  await store.withLock(id, async () => {
    // Another command may have brought the container back meanwhile (a restore, a reset).
    const current = await store.load(id);
    const now = initOf(current);
    if (now && (await processes.isAlive(now))) throw new ContainerRunningError(id);
    await removeContainer(context, current, options.force === true);
  });
}

/** A container whose snapshot another was made from stays as long as the copy does. */
async function refuseCopied(context: RuntimeContext, id: string): Promise<void> {
  const copies = [];
  for (const other of await context.store.ids()) {
    if (other !== id && (await context.store.load(other).catch(() => undefined))?.snapshotOf === id) copies.push(other);
  }
  if (copies.length > 0)
    throw new SnapshotInUseError(
      `of ${id}`,
      copies.map((c) => `container ${c}`),
    );
}

/** Everything of a container that no longer runs: mounts, cgroups, state and checkpoints. */
async function removeContainer(context: RuntimeContext, record: ContainerRecord, force: boolean): Promise<void> {
  const { store, mounts, cgroups, logger } = context;
  const cgroupBase = record.cgroupBase ?? record.cgroupPath;
  // Whatever is left in the container's cgroups (a standby whose monitor died) goes too.
  if (force) await cgroups.killTree(cgroupBase);
  const paths = store.paths(record.id);
  // Nothing may stay mounted below the state directory before it is removed (a restore root,
  // a copy's rootfs), and the overlay a reset put on the rootfs goes too.
  await unmountBelow(context.mounts, paths.dir);
  if (record.layers) {
    await unmountAll(mounts, record.rootfs);
    await unmountAll(mounts, record.layers.target);
  }
  if (record.storage && record.rootfsMountedByRuntime) await unmountStorage(context, record.storage);
  // A container made from an image: its writable layer and bundle in the image store go too.
  if (record.storage?.driver === 'image') await removeImageContainer(context, record.id, record.storage.storageRoot);
  const left = await cgroups.removeTree(cgroupBase);
  if (left.length > 0) logger.warn('some cgroup directories are still busy and were left', { id: record.id, left });
  await forget(context, record.id);
}

/**
 * delete -f of a container whose state file cannot be read: what the file still says of its
 * cgroups (the cgroup service refuses a root or unclean path) and its monitor (signalled only if
 * its start time matches) is used to stop its processes; everything of it the runtime keeps goes.
 */
async function deleteUnreadable(context: RuntimeContext, id: string, corrupt: CorruptStateError): Promise<void> {
  const { store, cgroups, processes, logger } = context;
  const paths = store.paths(id);
  const salvaged = salvageRecord(await readFile(paths.stateFile, 'utf8').catch(() => ''));
  logger.warn(`the state of ${id} is unreadable; removing what is known of it`, { error: corrupt.message, salvaged });
  for (const cgroup of salvaged.cgroups) {
    try {
      await cgroups.killTree(cgroup);
    } catch (error) {
      logger.warn('could not stop the processes of a cgroup the state names', { id, cgroup, error: describeError(error) });
    }
  }
  if (salvaged.monitor && (await processes.isAlive(salvaged.monitor))) {
    await processes.signal(salvaged.monitor, 'SIGTERM');
    await waitGone(context, salvaged.monitor, 5_000);
  }
  await unmountBelow(context.mounts, paths.dir);
  await removeImageContainer(context, id);
  for (const cgroup of salvaged.cgroups) {
    const left = await cgroups.removeTree(cgroup).catch(() => [cgroup]);
    if (left.length > 0) logger.warn('some cgroup directories are still busy and were left', { id, left });
  }
  await forget(context, id);
}

/** The cgroups and monitor an unreadable record still names, where it names them plainly. */
export function salvageRecord(text: string): { readonly cgroups: string[]; readonly monitor?: ProcessIdentity } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { cgroups: [] };
  }
  if (typeof raw !== 'object' || raw === null) return { cgroups: [] };
  const record = raw as { cgroupBase?: unknown; cgroupPath?: unknown; monitor?: { pid?: unknown; startTime?: unknown } };
  const cgroups = [record.cgroupBase, record.cgroupPath].filter((c): c is string => typeof c === 'string' && c !== '');
  const monitor = record.monitor;
  const identity =
    monitor && Number.isInteger(monitor.pid) && (monitor.pid as number) > 1 && typeof monitor.startTime === 'string' && /^\d+$/.test(monitor.startTime)
      ? { pid: monitor.pid as number, startTime: monitor.startTime }
      : undefined;
  return { cgroups: [...new Set(cgroups)], ...(identity ? { monitor: identity } : {}) };
}

/** The container's OCI state, its record and its managed checkpoints go. */
async function forget(context: RuntimeContext, id: string): Promise<void> {
  await context.ociRuntime.forget({ id, root: context.store.paths(id).ociRoot });
  await context.store.remove(id);
  await rm(path.join(context.config.checkpointRoot, id), { recursive: true, force: true });
}

async function waitGone(context: RuntimeContext, identity: ProcessIdentity, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && (await context.processes.isAlive(identity))) await sleep(20);
}
