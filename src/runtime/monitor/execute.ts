/**
 * Runs a job in the process that will be the init's parent, and records the running container.
 * Start: the OCI runtime forks the init and exits; the init is reparented to us (subreaper).
 * Restore: CRIU restores with rst_sibling, so the restored init is our child directly.
 */
import { writeFile } from 'node:fs/promises';
import type { RuntimeContext } from '../context.js';
import { mountStorage, planStorage, unmountStorage } from '../storage.js';
import { readEffectiveSpec } from '../effective-bundle.js';
import { assertTransition } from '../state/status.js';
import type { ContainerRecord } from '../state/record.js';
import type { Spec } from '../oci/index.js';
import { restoreInstance } from './instance.js';
import type { Supervisor } from './supervisor.js';
import type { RestoreJob, RunJob } from './job.js';

/**
 * Runs the job with supervisor as the new init's parent and starts copying its output; the
 * supervisor is closed again if the job fails.
 */
export async function startFirstInstance(context: RuntimeContext, supervisor: Supervisor, job: RunJob | RestoreJob): Promise<number> {
  let pid: number;
  try {
    pid = await executeJob(context, supervisor, job);
  } catch (error) {
    await supervisor.close();
    throw error;
  }
  supervisor.startPumping();
  return pid;
}

/** Starts or restores the container's first instance (a reset job goes to the ContainerMonitor). */
export async function executeJob(context: RuntimeContext, supervisor: Supervisor, job: RunJob | RestoreJob): Promise<number> {
  const pid = job.kind === 'run' ? await executeRun(context, supervisor, job) : await executeRestore(context, supervisor, job);
  if (job.pidFile) await writeFile(job.pidFile, String(pid));
  return pid;
}

async function monitorIdentity(context: RuntimeContext, foreground: boolean) {
  return foreground ? undefined : context.processes.identify(process.pid);
}

async function executeRun(context: RuntimeContext, supervisor: Supervisor, job: RunJob): Promise<number> {
  const { store, ociRuntime, processes } = context;
  const paths = store.paths(job.id);
  return store.withLock(job.id, async () => {
    const record = await store.load(job.id);
    assertTransition(job.id, record.status, 'running', 'start');
    const pid = await ociRuntime.start({
      id: job.id,
      bundle: paths.effectiveBundle,
      root: paths.ociRoot,
      logPath: paths.ociLog,
      stdio: supervisor.childStdio,
    });
    const init = await processes.identify(pid);
    if (!init) throw new Error(`the container's init (pid ${pid}) ended right after it started; see ${paths.containerLog}`);
    // The OCI runtime's own record is not needed past start: this runtime owns the container now.
    await ociRuntime.forget({ id: job.id, root: paths.ociRoot });
    const monitor = await monitorIdentity(context, supervisor.foreground);
    await store.save({ ...record, status: 'running', init, ...(monitor ? { monitor } : {}) });
    return pid;
  });
}

async function executeRestore(context: RuntimeContext, supervisor: Supervisor, job: RestoreJob): Promise<number> {
  const { store } = context;
  const paths = store.paths(job.id);
  return store.withLock(job.id, async () => {
    const record = await store.load(job.id);
    assertTransition(job.id, record.status, 'running', 'restore');
    const { spec } = await readEffectiveSpec(paths.effectiveBundle);

    // A rootfs from a storage driver is mounted first when it is not (after a reboot, or moved).
    const planned = record.storage ? await planStorage(context, record.storage) : undefined;
    const mountedNow = planned ? await mountStorage(context, planned) : false;
    try {
      return await restoreMounted(context, supervisor, job, record, spec, mountedNow);
    } catch (error) {
      // Nothing stays mounted after a failed restore.
      if (mountedNow && record.storage) await unmountStorage(context, record.storage).catch(() => undefined);
      throw error;
    }
  });
}

async function restoreMounted(
  context: RuntimeContext,
  supervisor: Supervisor,
  job: RestoreJob,
  record: ContainerRecord,
  spec: Spec,
  mountedNow: boolean,
): Promise<number> {
  const { store, processes } = context;
  const paths = store.paths(job.id);
  const pid = await restoreInstance(context, supervisor, {
    record,
    spec,
    imagePath: job.imagePath,
    criu: job.criu,
    rootfs: record.layers?.target ?? record.rootfs,
    cgroupPath: record.cgroupPath,
    criuRoot: paths.criuRoot,
  });
  const init = await processes.identify(pid);
  if (!init) throw new Error(`the restored init (pid ${pid}) ended right after the restore; see ${paths.containerLog}`);
  const monitor = await monitorIdentity(context, supervisor.foreground);
  const { exit: _exit, monitor: _oldMonitor, ...rest } = record;
  const next: ContainerRecord = {
    ...rest,
    status: 'running',
    init,
    ...(monitor ? { monitor } : {}),
    restoreCount: record.restoreCount + 1,
    ...(mountedNow ? { rootfsMountedByRuntime: true } : {}),
  };
  await store.save(next);
  return pid;
}
