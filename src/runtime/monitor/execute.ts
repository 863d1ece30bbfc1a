/**
 * Runs a job in the process that will be the init's parent, and records the running container.
 * Start: the OCI runtime forks the init and exits; the init is reparented to us (subreaper).
 * Restore: CRIU restores with rst_sibling, so the restored init is our child directly.
 */
import { mkdir, rmdir, writeFile } from 'node:fs/promises';
import { cgroupHierarchies, attachToCgroup, createCgroup, criuCgroupRoots } from '../cgroups.js';
import type { RuntimeContext } from '../context.js';
import { readCheckpoint, type CheckpointMetadata } from '../checkpoint-metadata.js';
import { mountStorage, planStorage, unmountStorage } from '../storage.js';
import { readEffectiveSpec } from '../effective-bundle.js';
import { restoreMountMap } from '../external-mounts.js';
import { ensureMountpoints } from '../../rootfs/mountpoints.js';
import { restoreOpts } from '../../criu/options.js';
import type { InheritFd } from '../../criu/rpc/messages.js';
import { assertTransition } from '../state/status.js';
import type { ContainerRecord } from '../state/record.js';
import { specHasNamespace, type Spec } from '../oci/index.js';
import type { Supervisor } from './supervisor.js';
import type { MonitorJob, RestoreJob, RunJob } from './job.js';
import { describeError } from '../errors.js';

export async function executeJob(context: RuntimeContext, supervisor: Supervisor, job: MonitorJob): Promise<number> {
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
    const { metadata, descriptors } = await readCheckpoint(job.imagePath);
    const { spec } = await readEffectiveSpec(paths.effectiveBundle);

    // A rootfs from a storage driver is mounted first when it is not (after a reboot, or moved).
    const planned = record.storage ? await planStorage(context, record.storage) : undefined;
    const mountedNow = planned ? await mountStorage(context, planned) : false;
    try {
      return await restoreMounted(context, supervisor, job, record, spec, metadata, descriptors, mountedNow);
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
  metadata: CheckpointMetadata,
  descriptors: readonly string[],
  mountedNow: boolean,
): Promise<number> {
  const { store, criu, mounts, processes, logger } = context;
  const paths = store.paths(job.id);
  const hierarchies = cgroupHierarchies(await mounts.mounts());
  const created = await ensureMountpoints(spec, record.rootfs, record.bundle);
  if (created.length > 0) logger.debug('recreated mountpoints in the rootfs', { id: job.id, created });
  const extMounts = await restoreMountMap(metadata.externalMounts, {
    spec,
    bundle: record.bundle,
    bundleConfig: `${paths.effectiveBundle}/config.json`,
    rootfs: record.rootfs,
    hierarchies,
    cgroupPath: record.cgroupPath,
  });
  // runc's convention: every stdio fd that was a pipe is reconnected to the new pipe at that fd.
  const inheritFds: InheritFd[] = descriptors
    .map((target, fd) => ({ key: target, fd }))
    .filter((entry) => entry.fd < 3 && entry.key.startsWith('pipe:'));

  // CRIU needs the root to be a mount point whose parent is not overmounted.
  await mkdir(paths.criuRoot, { recursive: true });
  await mounts.bind(record.rootfs, paths.criuRoot);
  let pid: number;
  try {
    pid = await criu.restore({
      opts: restoreOpts(job.criu, {
        root: paths.criuRoot,
        extMounts,
        inheritFds,
        cgroupRoots: [],
      }),
      imagePath: job.imagePath,
      inheritFiles: joinedNamespaces(spec),
      ...(job.criu.workPath ? { workPath: job.criu.workPath } : {}),
      stdio: supervisor.childStdio,
      prepare: async (criuPid) => {
        await createCgroup(hierarchies, record.cgroupPath);
        await attachToCgroup(hierarchies, record.cgroupPath, criuPid);
        return criuCgroupRoots(hierarchies, record.cgroupPath);
      },
    });
  } finally {
    await mounts.unmount(paths.criuRoot, { detach: true }).catch((error: unknown) => {
      logger.warn('could not unmount the restore root', { path: paths.criuRoot, error: describeError(error) });
    });
    await rmdir(paths.criuRoot).catch(() => undefined);
  }
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

/** Namespaces the container joins by path are handed to CRIU under the keys the dump named them. */
function joinedNamespaces(spec: Spec): { key: string; path: string }[] {
  const files: { key: string; path: string }[] = [];
  const network = specHasNamespace(spec, 'network')?.path;
  const pid = specHasNamespace(spec, 'pid')?.path;
  if (network) files.push({ key: 'extRootNetNS', path: network });
  if (pid) files.push({ key: 'extRootPidNS', path: pid });
  return files;
}
