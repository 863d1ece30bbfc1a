/**
 * `runtime delete [-f] <id>`: removes a stopped or checkpointed container: its cgroups, its state
 * and its managed checkpoints. With -f a running container is killed first (SIGKILL to every
 * process in its cgroup, as runc does), and the command waits for its monitor to reap it.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RuntimeContext } from './context.js';
import { validateId } from './id.js';
import { requireRoot } from './privileges.js';
import { RuntimeError } from './errors.js';
import { initOf, monitorOf, type ProcessIdentity } from './state/record.js';
import { unmountStorage } from './storage.js';
import { unmountAll } from '../rootfs/layers.js';
import { SnapshotInUseError } from './snapshots/store.js';

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
  const { store, processes, mounts, cgroups, logger } = context;
  const record = await store.load(id);
  const copies = [];
  for (const other of await store.ids()) {
    if (other !== id && (await store.load(other).catch(() => undefined))?.snapshotOf === id) copies.push(other);
  }
  if (copies.length > 0)
    throw new SnapshotInUseError(
      `of ${id}`,
      copies.map((c) => `container ${c}`),
    );
  const init = initOf(record);
  const monitor = monitorOf(record);
  const running = init !== undefined && (await processes.isAlive(init));
  if (running && !options.force) throw new ContainerRunningError(id);
  const cgroupBase = record.cgroupBase ?? record.cgroupPath;
  if (running) {
    await processes.signal(init, 'SIGKILL');
    await cgroups.killTree(cgroupBase);
    await waitGone(context, init, 10_000);
  }
  // The monitor records the exit under the lock (and drops a standby); let it finish first.
  if (monitor) await waitGone(context, monitor, 5_000);
  // Whatever is left in the container's cgroups (a standby whose monitor died) goes too.
  if (options.force) await cgroups.killTree(cgroupBase);

  const paths = store.paths(id);
  // Nothing may stay mounted below the state directory before it is removed (a restore root,
  // a copy's rootfs), and the overlay a reset put on the rootfs goes too.
  for (const target of (await mounts.mounts())
    .map((m) => m.mountPoint)
    .filter((p) => p.startsWith(`${paths.dir}/`))
    .sort()
    .reverse()) {
    await unmountAll(mounts, target);
  }
  if (record.layers) {
    await unmountAll(mounts, record.rootfs);
    await unmountAll(mounts, record.layers.target);
  }
  if (record.storage && record.rootfsMountedByRuntime) await unmountStorage(context, record.storage);
  const left = await cgroups.removeTree(cgroupBase);
  if (left.length > 0) logger.warn('some cgroup directories are still busy and were left', { id, left });
  await context.ociRuntime.forget({ id, root: paths.ociRoot });
  await store.remove(id);
  await rm(path.join(context.config.checkpointRoot, id), { recursive: true, force: true });
}

async function waitGone(context: RuntimeContext, identity: ProcessIdentity, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && (await context.processes.isAlive(identity))) await sleep(20);
}
