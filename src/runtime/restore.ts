/**
 * Restore: every way a process tree comes back from CRIU images, with this runtime as the restored
 * init's parent (rst_sibling).
 *
 *   restoreDetached / restoreForeground   `runtime restore [-d] <id>`: the container's last
 *                                         checkpoint, or with --image-path (and --bundle) any
 *                                         checkpoint, also under a new id
 *   restoreContainer                      what the init's parent-to-be runs for that: mount the
 *                                         rootfs if needed, restore, record the container running
 *   restoreTree                           the CRIU request itself, shared with reset (a new
 *                                         instance, a standby, a copy): mountpoints, external
 *                                         mounts, stdio, cgroups, lazy pages, the restore root,
 *                                         the images reachable from a user namespace
 */
import { mkdir, rmdir, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { RuntimeContext } from './context.js';
import { validateId } from './id.js';
import { asOperation, recoverInterrupted, removeCgroupYards, tmpfsStagingPrefix } from './interrupted.js';
import { verifyImageDigests } from './image-digests.js';
import { newRecord, type ContainerRecord } from './state/record.js';
import { assertCanHappen } from './state/status.js';
import { requireRoot } from './privileges.js';
import { loadBundle, specHasNamespace, type Spec } from './oci/index.js';
import { readEffectiveSpec, writeEffectiveBundle } from './effective-bundle.js';
import { containerCgroupPath, requireUnoccupied } from './cgroups.js';
import { readCheckpoint, CheckpointNotFoundError, requireTrustedDirectory } from './checkpoint-metadata.js';
import { defaultImagePath } from './checkpoint.js';
import { restoreMountMap } from './external-mounts.js';
import { mountStorage, planStorage, unmountStorage, type StorageSpec } from './storage.js';
import { InitEndedError, RuntimeError, UsageError, describeError } from './errors.js';
import { checkPublished, type PublishedPort } from './ports.js';
import { containerRoot, hostIds, requireLazyPagesAllowed, shareWithContainerRoot } from './userns.js';
import { runInForeground, type ForegroundContainer, type ForegroundStdio } from './monitor/foreground.js';
import type { Supervisor } from './monitor/supervisor.js';
import type { RestoreJob } from './monitor/protocol.js';
import { restoreOpts, type RestoreCriuOptions } from '../criu/options.js';
import { requireFeaturesFor, type LazyPages } from '../criu/service.js';
import type { ExtMountMap, InheritFd } from '../criu/rpc/messages.js';
import { ensureMountpoints } from '../rootfs/mountpoints.js';
import { prepareMaskedDirectorySource } from '../rootfs/masked-directory.js';
import { mountCopiedTmpfs, tmpfsStagingDirectory } from '../rootfs/tmpfs-copy.js';
import { TMPFS_TREE } from '../criu/tmpfs-images.js';
import { ImageStore } from '../rootfs/image/store.js';
import { fillInArguments } from './lazy-memory.js';
import { withTimeout } from '../system/timeout.js';

export interface RestoreRequest extends RestoreCriuOptions {
  readonly id: string;
  /** The bundle to restore with; the container's own (or the checkpoint's) when unset. */
  readonly bundle?: string;
  readonly pidFile?: string;
  /** For a container restored under a new id: host ports to forward into it (`-p`). */
  readonly ports?: readonly PublishedPort[];
  /**
   * The restored tasks are left stopped (SIGSTOP), recorded running: a migration's destination
   * holds the container so until the source has let go of it, then sends SIGCONT to every task.
   */
  readonly leaveStopped?: boolean;
  /**
   * For a container restored under a new id: the storage driver layout its rootfs is mounted
   * from (a container made from an image, arriving by migration with its place in the store).
   */
  readonly storage?: StorageSpec;
}

/** Restores under a detached monitor; returns the restored init's pid. */
export async function restoreDetached(context: RuntimeContext, request: RestoreRequest): Promise<number> {
  const { job, createdRecord } = await prepareRestore(context, request);
  try {
    return await context.monitors.launch(job);
  } catch (error) {
    if (createdRecord) await forgetRestored(context, job.id);
    throw error;
  }
}

/** Restores with this process as the init's parent. */
export async function restoreForeground(context: RuntimeContext, request: RestoreRequest, stdio: ForegroundStdio): Promise<ForegroundContainer> {
  const { job, createdRecord } = await prepareRestore(context, request);
  try {
    return await runInForeground(context, job.id, (supervisor) => restoreContainer(context, supervisor, job), stdio);
  } catch (error) {
    if (createdRecord) await forgetRestored(context, job.id);
    throw error;
  }
}

/**
 * A container made for a restore under a new id, whose restore failed, goes again: the cgroup
 * the restore made for it (CRIU is put into it before it restores), then its state.
 */
async function forgetRestored(context: RuntimeContext, id: string): Promise<void> {
  const record = await context.store.load(id).catch(() => undefined);
  if (record) {
    const left = await context.cgroups.removeTree(record.cgroupPath).catch((error: unknown) => {
      context.logger.warn('could not remove the cgroup of a failed restore', { id, error: describeError(error) });
      return [];
    });
    if (left.length > 0) context.logger.warn('some cgroup directories of a failed restore are still busy and were left', { id, left });
  }
  await context.store.remove(id);
}

/** Checks the request and the checkpoint, and records a container the runtime did not know yet. */
async function prepareRestore(context: RuntimeContext, request: RestoreRequest): Promise<{ job: RestoreJob; createdRecord: boolean }> {
  const id = validateId(request.id);
  requireRoot(context.processes, 'runtime restore');
  const { store, criu, logger } = context;
  const known = await store.exists(id);
  // What an interrupted checkpoint or restore, or a dead monitor, left is put right first.
  const existing = known ? await store.withLock(id, async () => recoverInterrupted(context, await store.load(id))) : undefined;
  if (existing) assertCanHappen(existing, 'restored');

  const imagePath = path.resolve(request.imagePath ?? existing?.lastCheckpoint?.imagePath ?? defaultImagePath(context, id));
  if (existing && !request.imagePath && !existing.lastCheckpoint) {
    throw new CheckpointNotFoundError(imagePath, `container ${id} was never checkpointed`);
  }
  // What a restore runs comes from the images' metadata (bundle, mounts): only from a directory
  // no one but root may have written.
  await requireTrustedDirectory(imagePath, context.processes.effectiveUid(), 'be restored from');
  const { metadata } = await readCheckpoint(imagePath);
  // Every file as it was dumped, or an error naming the ones that are not, before CRIU reads any;
  // not for a lazy restore, whose point is not to read the memory before it is touched.
  if (request.lazyPages) logger.info("a lazy restore does not check the images' digests", { imagePath });
  else if (!(await verifyImageDigests(imagePath)))
    logger.info('the checkpoint has no digests to check (made by an older runtime, or by a migration: its pages went straight to the page server)', {
      imagePath,
    });
  await criu.requireVersion();
  await requireFeaturesFor(criu, request);

  const { id: _id, bundle: _bundle, pidFile: _pidFile, ports: _ports, leaveStopped, storage, ...criuOptions } = request;
  if (existing && storage) throw new UsageError(`container ${id} keeps the storage it was run with`);
  const ports = checkPublished(request.ports ?? []);
  if (existing && ports.length > 0)
    throw new UsageError(`container ${id} keeps the ports it was run with`, '-p applies to a container restored under a new id');
  const job: RestoreJob = {
    kind: 'restore',
    id,
    imagePath,
    criu: { ...criuOptions, ...(request.workPath ? { workPath: path.resolve(request.workPath) } : {}) },
    ...(request.pidFile ? { pidFile: path.resolve(request.pidFile) } : {}),
    ...(leaveStopped ? { leaveStopped: true } : {}),
    ...criuBinaryFor(context, existing),
  };

  if (existing) {
    if (request.bundle) {
      const bundle = await loadBundle(request.bundle);
      await requireUnoccupied(context.cgroups, containerCgroupPath(bundle.spec.linux?.cgroupsPath, id, context.config.cgroupParent));
      const effective = await writeEffectiveBundle(store.paths(id).effectiveBundle, bundle, id, logger, context.config.cgroupParent);
      await store.withLock(id, async () => {
        const record = await store.load(id);
        await store.commit(record, { kind: 'amended', changes: { bundle: bundle.path, rootfs: bundle.rootfs, cgroupPath: effective.cgroupPath } });
      });
    }
    return { job, createdRecord: false };
  }

  // A container this runtime does not know yet: made from the checkpoint and a bundle.
  const bundle = await loadBundle(request.bundle ?? metadata.bundle);
  // A container made from an image arrives by migration in a place of its own, made for it.
  const ownPlace =
    storage?.driver === 'image' && storage.layer === id && path.dirname(bundle.path) === new ImageStore(storage.storageRoot).containerDir(id);
  if (!ownPlace) requireOwnBundle(bundle.path, id);
  const paths = await store.reserve(id);
  try {
    const effective = await writeEffectiveBundle(paths.effectiveBundle, bundle, id, logger, context.config.cgroupParent);
    await requireUnoccupied(context.cgroups, effective.cgroupPath);
    await store.create(
      newRecord(
        {
          id,
          status: 'checkpointed',
          bundle: bundle.path,
          rootfs: bundle.rootfs,
          cgroupPath: effective.cgroupPath,
          ociRuntime: context.config.ociRuntime,
          annotations: bundle.spec.annotations ?? {},
          logPath: paths.containerLog,
        },
        {
          lastCheckpoint: { imagePath, time: metadata.created, leftRunning: metadata.leftRunning },
          ...(storage ? { storage } : {}),
          ...(ports.length > 0 ? { ports } : {}),
          ...(context.config.criu ? { criu: context.config.criu } : {}),
        },
      ),
    );
  } catch (error) {
    await store.remove(id);
    throw error;
  }
  return { job, createdRecord: true };
}

/**
 * The criu binary a container's monitor uses: the one configured now, else the one the container
 * was made with (a monitor launched later, by a reset or a restore, keeps the container's CRIU).
 */
export function criuBinaryFor(context: RuntimeContext, record: ContainerRecord | undefined): { criuBinary?: string } {
  const binary = context.config.criu || record?.criu;
  return binary ? { criuBinary: binary } : {};
}

/**
 * Restores the container from the job's images with the supervisor's stdio, this process as the
 * init's parent, and records it running. A rootfs from a storage driver is mounted first when it
 * is not (after a reboot, or moved), and unmounted again if the restore fails.
 */
export async function restoreContainer(context: RuntimeContext, supervisor: Supervisor, job: RestoreJob): Promise<number> {
  const { store, processes } = context;
  const paths = store.paths(job.id);
  const pid = await store.withLock(job.id, async () => {
    const record = await recoverInterrupted(context, await store.load(job.id));
    assertCanHappen(record, 'restored');
    const { spec } = await readEffectiveSpec(paths.effectiveBundle);
    // A note of the restore at work, for the command that finds it if this one dies (interrupted.ts).
    const note = { kind: 'restore', cgroupPath: record.cgroupPath, criuRoot: paths.criuRoot, imagePath: job.criu.workPath ?? job.imagePath } as const;
    return asOperation(context, job.id, note, async (operation) => {
      const planned = record.storage ? await planStorage(context, record.storage) : undefined;
      const mountedNow = planned ? await mountStorage(context, planned) : false;
      try {
        if (mountedNow) await operation.storageMounted();
        const pid = await restoreTree(context, supervisor, {
          record,
          spec,
          imagePath: job.imagePath,
          criu: job.criu,
          rootfs: record.layers?.target ?? record.rootfs,
          cgroupPath: record.cgroupPath,
          criuRoot: paths.criuRoot,
          ...(job.leaveStopped ? { leaveStopped: true } : {}),
        });
        const init = await processes.identify(pid);
        if (!init) throw new InitEndedError(job.id, pid, 'restored', paths.containerLog);
        const monitor = supervisor.foreground ? undefined : await processes.self();
        await store.commit(record, { kind: 'restored', init, ...(monitor ? { monitor } : {}), ...(mountedNow ? { mountedRootfs: true } : {}) });
        return pid;
      } catch (error) {
        // Nothing stays mounted after a failed restore.
        if (mountedNow && record.storage) await unmountStorage(context, record.storage).catch(() => undefined);
        throw error;
      }
    });
  });
  if (job.pidFile) await writeFile(job.pidFile, String(pid));
  return pid;
}

/** One restore of a process tree: where from, where to, and how. */
export interface TreeRestore {
  readonly record: ContainerRecord;
  /** The container's effective spec (mounts, namespaces). */
  readonly spec: Spec;
  readonly imagePath: string;
  readonly criu: RestoreCriuOptions;
  /** The host directory holding the tree's root filesystem. */
  readonly rootfs: string;
  /** The cgroup to restore into (created, with CRIU put inside before it restores). */
  readonly cgroupPath: string;
  /** An empty directory to bind the rootfs on for CRIU (it needs a mount point). */
  readonly criuRoot: string;
  /** Leave the restored tree stopped (a standby for a later reset) → leave_stopped. */
  readonly leaveStopped?: boolean;
  /** Told of the lazy-pages daemon serving the tree's memory (lazy_pages), once it is started. */
  readonly onLazyPages?: (daemon: LazyPages) => void;
}

/**
 * The CRIU restore request, with the calling process as the restored init's parent: mountpoints
 * recreated, external mounts mapped to their sources, stdio pipes reconnected, the tree put into
 * its cgroup, lazy pages served when asked. Returns the init's pid.
 */
export async function restoreTree(context: RuntimeContext, supervisor: Supervisor, request: TreeRestore): Promise<number> {
  const { mounts, cgroups, logger, processes } = context;
  const { record, spec } = request;
  const { metadata, descriptors } = await readCheckpoint(request.imagePath);
  // A tree with a user namespace is restored from inside it, where its tasks open their images
  // and, for lazy pages, their userfaultfd as the container's root.
  await requireLazyPagesAllowed(processes, spec, record.id, request.criu.lazyPages);
  await shareWithContainerRoot(request.imagePath, spec);
  const created = await ensureMountpoints(spec.mounts ?? [], request.rootfs, record.bundle);
  if (created.length > 0) logger.debug('recreated mountpoints in the rootfs', { id: record.id, created });
  // The container's tmpfs mounts, filled for this restore; CRIU binds them into the container,
  // after which the host lets go of them (the container's binds keep them).
  let tmpfsDir: string | undefined;
  const tmpfsTargets: string[] = [];
  const tmpfsMounts: string[] = [];
  try {
    const extMounts = await restoreMountMap(metadata.externalMounts, {
      spec,
      bundle: record.bundle,
      bundleConfig: `${context.store.paths(record.id).effectiveBundle}/config.json`,
      rootfs: request.rootfs,
      hierarchies: await cgroups.hierarchies(),
      cgroupPath: request.cgroupPath,
      maskedDirectory: () => prepareMaskedDirectorySource(mounts),
      copiedTmpfs: async (tmpfs) => {
        tmpfsDir ??= await tmpfsStagingDirectory(tmpfsStagingPrefix(context, record.id), containerRoot(spec)?.gid);
        const target = path.join(tmpfsDir, String(tmpfsTargets.length));
        tmpfsTargets.push(target);
        // Unmounted again by mountCopiedTmpfs itself if it fails.
        await mountCopiedTmpfs(mounts, { ...tmpfs, content: path.join(request.imagePath, tmpfs.content, TMPFS_TREE) }, target, hostIds(spec));
        tmpfsMounts.push(target);
        return target;
      },
    });
    return await restoreTreeWith(context, supervisor, request, descriptors, extMounts);
  } finally {
    for (const target of tmpfsMounts) {
      await mounts
        .unmount(target, { detach: true })
        .catch((error: unknown) => logger.warn('could not unmount a restored tmpfs', { path: target, error: describeError(error) }));
    }
    // rmdir, never a recursive removal: a tmpfs still mounted there is the container's own.
    for (const target of tmpfsTargets) await rmdir(target).catch(() => undefined);
    if (tmpfsDir) await rmdir(tmpfsDir).catch(() => undefined);
  }
}

async function restoreTreeWith(
  context: RuntimeContext,
  supervisor: Supervisor,
  request: TreeRestore,
  descriptors: readonly string[],
  extMounts: ExtMountMap[],
): Promise<number> {
  const { criu, mounts, cgroups, logger, processes } = context;
  const { record, spec } = request;
  // runc's convention: every stdio fd that was a pipe is reconnected to the new pipe at that fd.
  const inheritFds: InheritFd[] = descriptors.map((target, fd) => ({ key: target, fd })).filter((entry) => entry.fd < 3 && entry.key.startsWith('pipe:'));

  const workPath = request.criu.workPath;
  const remote = request.criu.lazyPageServer
    ? { pageServer: request.criu.lazyPageServer, ...(request.criu.tls ? { tls: request.criu.tls } : {}) }
    : undefined;
  const lazy = request.criu.lazyPages && workPath ? await criu.startLazyPages(request.imagePath, workPath, remote) : undefined;
  if (lazy) {
    // Pages it never served would read as zeros once its userfaultfd is gone: the tree cannot
    // go on with its memory incomplete, and is killed.
    lazy.onFailure((detail) => {
      logger.error(`container ${record.id}: ${detail}; its memory cannot be whole, its processes are killed`);
      void cgroups.kill(request.cgroupPath).catch((error: unknown) => logger.warn('could not kill them', { id: record.id, error: describeError(error) }));
    });
    supervisor.onClose(() => lazy.stop());
    request.onLazyPages?.(lazy);
  }

  // CRIU needs the root to be a mount point whose parent is not overmounted.
  await mkdir(request.criuRoot, { recursive: true });
  await mounts.bind(request.rootfs, request.criuRoot);
  // The restored tasks are our children (rst_sibling, and orphans come to us as the subreaper):
  // if the restore fails, CRIU kills them and they are ours to reap, or they stay zombies of a
  // parent that lives on (the monitor, across resets).
  const children = context.reaper.children();
  try {
    const pid = await criu.restore({
      opts: restoreOpts(request.criu, {
        root: request.criuRoot,
        extMounts,
        inheritFds,
        cgroupRoots: [],
        ...(request.leaveStopped ? { leaveStopped: true } : {}),
      }),
      imagePath: request.imagePath,
      inheritFiles: joinedNamespaces(spec),
      ...(workPath ? { workPath } : {}),
      stdio: supervisor.childStdio,
      // As runc: CRIU is put into the container's cgroups before it restores, and told their roots.
      prepare: (criuPid) => cgroups.enter(request.cgroupPath, criuPid),
    });
    // ps and /proc/<pid>/cmdline read the tasks' arguments from their memory, which waits for no
    // daemon. Given up on after a while: a page its daemon never serves must not hold the
    // restore (and a monitor's every later reset) for ever.
    if (lazy)
      await withTimeout(
        fillInArguments(processes, pid),
        ARGUMENTS_TIMEOUT_MS,
        () => new Error(`the lazy-pages daemon did not serve them within ${ARGUMENTS_TIMEOUT_MS / 1000} s`),
      ).catch((error: unknown) => logger.warn("could not copy in the restored tasks' arguments", { id: record.id, error: describeError(error) }));
    return pid;
  } catch (error) {
    await lazy?.stop();
    // What CRIU restored before it failed goes now, whether CRIU killed it or not: the tree's
    // cgroup holds nothing else (the container's, checkpointed; or a reset instance's own).
    await cgroups
      .killTree(request.cgroupPath)
      .catch((killError: unknown) => logger.warn("could not kill the failed restore's tasks", { id: record.id, error: describeError(killError) }));
    const left = await context.reaper.reapStrays(children);
    if (left.length > 0) logger.warn('tasks of a failed restore are still running', { pids: left });
    // CRIU works in its work directory when it has one, else in the images directory.
    await removeCgroupYards(context, request.criu.workPath ?? request.imagePath);
    throw error;
  } finally {
    await mounts.unmount(request.criuRoot, { detach: true }).catch((error: unknown) => {
      logger.warn('could not unmount the restore root', { path: request.criuRoot, error: describeError(error) });
    });
    await rmdir(request.criuRoot).catch(() => undefined);
  }
}

const ARGUMENTS_TIMEOUT_MS = 5_000;

/** Namespaces the container joins by path are handed to CRIU under the keys the dump named them. */
function joinedNamespaces(spec: Spec): { key: string; path: string }[] {
  const files: { key: string; path: string }[] = [];
  const network = specHasNamespace(spec, 'network')?.path;
  const pid = specHasNamespace(spec, 'pid')?.path;
  if (network) files.push({ key: 'extRootNetNS', path: network });
  if (pid) files.push({ key: 'extRootPidNS', path: pid });
  return files;
}

/**
 * A bundle in the image store is one container's own (run --image): its rootfs is that
 * container's writable layer, which a second container must never share (the first one's
 * delete removes it). Such a checkpoint is restored under its own id.
 */
function requireOwnBundle(bundle: string, id: string): void {
  if (!existsSync(path.join(path.dirname(bundle), 'image.json'))) return;
  throw new ImageRootfsNotSharedError(bundle, path.basename(path.dirname(bundle)), id);
}

export class ImageRootfsNotSharedError extends RuntimeError {
  readonly code = 'IMAGE_ROOTFS_NOT_SHARED' as const;
  constructor(
    readonly bundle: string,
    readonly owner: string,
    readonly id: string,
  ) {
    super(`the checkpoint's bundle ${bundle} is container ${owner}'s own, made from an image: its rootfs is ${owner}'s writable layer`, {
      hint: `restore it as ${owner} (\`runtime restore ${owner}\`), or give ${id} a bundle of its own with --bundle`,
    });
  }
}
