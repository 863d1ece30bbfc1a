/**
 * `runtime checkpoint <id>`: dumps the container's process tree through CRIU. A failed dump leaves
 * the container running (CRIU resumes the tree) and its state unchanged. Where the images go is
 * the checkpoint's target, one of:
 *
 *   managed    no --image-path: <checkpointRoot>/<id>/checkpoint, written beside the previous
 *              checkpoint and swapped in only when the dump succeeded
 *   directory  --image-path DIR, written in place
 *   pre-dump   --pre-dump: memory only, into --image-path; no metadata, no change of state
 *   snapshot   --name NAME: a named snapshot, images and rootfs layer as one consistent point
 *              (the layer is copied while CRIU holds the tree frozen, at post-dump)
 *
 * Everything else (checks, metadata, the CRIU request, the record) is the same for all four. A
 * tree restored lazily first gets the memory its lazy-pages daemon still holds (lazy-memory.ts).
 */
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { RuntimeContext } from './context.js';
import { validateId } from './id.js';
import { requireRoot } from './privileges.js';
import { assertCanHappen } from './state/status.js';
import type { RunningRecord } from './state/record.js';
import { readEffectiveSpec } from './effective-bundle.js';
import { replaceCheckpointMetadata, requireTrustedDirectory, writeCheckpointMetadata, type CheckpointMetadata } from './checkpoint-metadata.js';
export { UnsafeImageDirectoryError } from './checkpoint-metadata.js';
import { copiedTmpfsMounts, dumpMountMap, externalMountsForDump } from './external-mounts.js';
import { prepareTmpfsExternal } from '../criu/tmpfs-images.js';
import { dropRestoreLock, removeDefaultNetworkImages } from '../criu/network-images.js';
import { describeError, RuntimeError, UsageError } from './errors.js';
import { refuseAutoDedup, validateSnapshotName, type SnapshotInfo, type SnapshotPaths } from './snapshots/store.js';
import { currentLayers } from './snapshots/rootfs.js';
import { specHasNamespace, type Spec } from './oci/index.js';
import type { Logger } from './logger.js';
import { containerRoot, restrictImageFiles, shareWithContainerRoot } from './userns.js';
import { fillInLazyMemory } from './lazy-memory.js';
import { asOperation, recoverInterrupted, type CheckpointNote } from './interrupted.js';
import { recordCheckpoint } from './checkpoint-record.js';
import { writeImageDigests } from './image-digests.js';
import { dumpOpts, type CheckpointOptions } from '../criu/options.js';
import { formatVersion } from '../criu/version.js';
import { CriuRequestError, withLogAt } from '../criu/errors.js';
import { keepLog } from '../criu/log.js';
import { requireFeaturesFor } from '../criu/service.js';
import type { NotifyHandler } from '../criu/rpc/swrk.js';
import { copyLayer } from '../rootfs/layers.js';

export interface CheckpointRequest extends CheckpointOptions {
  readonly id: string;
  /**
   * Save a named snapshot: the process tree and the rootfs as one consistent point (the rootfs
   * layer is copied while CRIU holds the tree frozen, at its post-dump notification).
   */
  readonly name?: string;
  /**
   * A migration's dump (migration/migrate.ts): the images go to a directory of the migration's
   * own, and onFrozen sends them on while CRIU holds the tree frozen at its post-dump
   * notification; onFrozen throwing makes CRIU resume the tree, which runs on here.
   */
  readonly migration?: {
    readonly onFrozen: (imagePath: string) => Promise<void>;
  };
  /** Told `criu swrk`'s pid (a process group of its own), for a watchdog that may end it (migrate's). */
  readonly onCriuStarted?: (pid: number) => void;
}

export interface CheckpointResult {
  /** Absolute path of the image directory. */
  readonly imagePath: string;
  /** The snapshot written, for a named checkpoint. */
  readonly snapshot?: SnapshotInfo;
  readonly leftRunning: boolean;
  /** Milliseconds the whole checkpoint took. */
  readonly durationMs: number;
}

export class ContainerNotRunningError extends RuntimeError {
  readonly code = 'CONTAINER_NOT_RUNNING' as const;
  constructor(
    readonly id: string,
    status: string,
  ) {
    super(`container ${JSON.stringify(id)} is not running (it is ${status})`, {
      hint: status === 'checkpointed' ? `restore it with \`runtime restore ${id}\`` : `start it with \`runtime run\` first`,
    });
  }
}

/** The managed image directory of a container's bare checkpoint. */
export function defaultImagePath(context: RuntimeContext, id: string): string {
  return path.join(context.config.checkpointRoot, id, 'checkpoint');
}

/** Where a checkpoint's images go, and what happens to them after the dump. */
interface CheckpointTarget {
  readonly kind: CheckpointNote['target'];
  /** For a named snapshot: what finishes it should its command die once CRIU has dumped. */
  readonly snapshot?: CheckpointNote['snapshot'];
  /** The directory CRIU writes. */
  readonly writePath: string;
  /** Where the images are once the checkpoint is done. */
  readonly finalPath: string;
  /** Memory only: no metadata is written and the record does not change. */
  readonly preDump: boolean;
  /** Called at CRIU's notifications, while the tree is frozen. */
  readonly onNotify?: NotifyHandler;
  /** Puts the images in place once the dump succeeded; the snapshot, for a named one. */
  commit(leftRunning: boolean): Promise<SnapshotInfo | undefined>;
  /** Removes what the failed dump left, and returns the error to throw. */
  abandon(error: unknown): Promise<unknown>;
}

export async function checkpoint(context: RuntimeContext, request: CheckpointRequest): Promise<CheckpointResult> {
  const started = Date.now();
  const id = validateId(request.id);
  requireRoot(context.processes, 'runtime checkpoint');
  const { store, criu, processes, mounts, cgroups, logger } = context;
  await store.load(id);
  const criuVersion = await criu.requireVersion();
  await requireFeaturesFor(criu, request);
  const networkLock = request.networkLock ?? (await criu.preferredNetworkLock());
  if (request.name !== undefined) {
    validateSnapshotName(request.name);
    refuseAutoDedup(request, '--auto-dedup cannot be used with --name');
    if (request.imagePath || request.preDump)
      throw new UsageError("--name keeps its images in the container's snapshots; it goes without --image-path and --pre-dump");
  }

  return store.withLock(id, async () => {
    const record = await recoverInterrupted(context, await store.load(id));
    if (record.status !== 'running' || !(await processes.isAlive(record.init))) {
      throw new ContainerNotRunningError(id, record.status === 'running' ? 'stopped' : record.status);
    }
    const running: RunningRecord = record;
    const leftRunning = request.leaveRunning === true || request.preDump === true;
    if (!leftRunning) assertCanHappen(record, 'checkpointed');
    const target = await targetFor(context, record, request);

    // A note of the dump at work, for the command that finds it if this one dies (interrupted.ts).
    const note = {
      kind: 'checkpoint',
      target: target.kind,
      writePath: target.writePath,
      finalPath: target.finalPath,
      cgroupPath: record.cgroupPath,
      ...(target.snapshot ? { snapshot: target.snapshot } : {}),
    } as const;
    return asOperation(context, id, note, async (operation) => {
      const { spec, text: specText } = await readEffectiveSpec(store.paths(id).effectiveBundle);
      // A user namespace's tree is restored from inside it: its root must be able to open the
      // images. Done now, so that a snapshot is never changed after it was taken (resets only read it).
      await shareWithContainerRoot(target.writePath, spec);
      const pid = record.init.pid;
      const externalMounts = await externalMountsForDump({
        spec,
        rootfs: record.rootfs,
        containerMounts: await mounts.mounts(pid),
        containerRoot: `/proc/${pid}/root`,
      });
      const freezeCgroup = await cgroups.freezer(record.cgroupPath);
      const external = await externalNamespaces(spec, context, pid);

      const metadata: CheckpointMetadata = {
        formatVersion: 1,
        id,
        created: new Date().toISOString(),
        bundle: record.bundle,
        rootfs: record.rootfs,
        cgroupPath: record.cgroupPath,
        ociRuntime: record.ociRuntime,
        criuVersion: formatVersion(criuVersion),
        leftRunning,
        externalMounts,
        annotations: record.annotations,
      };
      // Written before anything stops: a checkpoint that cannot be described fails while it can.
      if (!target.preDump) await writeCheckpointMetadata(target.writePath, metadata, await processes.fdTargets(pid, 3), specText);

      logger.info(`checkpointing ${id}`, {
        pid,
        imagePath: target.finalPath,
        leaveRunning: leftRunning,
        ...(request.name ? { snapshot: request.name } : {}),
      });
      try {
        const filled = await fillInLazyMemory(processes, id, pid);
        if (filled.bytes > 0) logger.info(`copied in the memory ${id}'s lazy restore had left to its lazy-pages daemon`, { ...filled });
        await criu.dump({
          opts: dumpOpts(
            { ...request, networkLock },
            {
              pid,
              root: record.rootfs,
              ...(freezeCgroup ? { freezeCgroup } : {}),
              extMounts: dumpMountMap(externalMounts),
              external,
            },
          ),
          imagePath: target.writePath,
          ...(request.workPath ? { workPath: path.resolve(request.workPath) } : {}),
          ...(target.preDump ? { preDump: true } : {}),
          ...(target.onNotify ? { onNotify: target.onNotify } : {}),
          onStarted: async (pid) => {
            await operation.criuStarted(context, pid);
            request.onCriuStarted?.(pid);
          },
        });
      } catch (error) {
        // CRIU thaws the tree when a dump fails; a CRIU that was killed cannot.
        if (freezeCgroup) await cgroups.setFrozen(record.cgroupPath, false).catch(() => undefined);
        throw await target.abandon(error);
      }
      try {
        return await finishDump();
      } catch (error) {
        // CRIU's dump is done (and without --leave-running the tree is gone): it is not thrown
        // away with the error. The note stays, and the next command puts it in place.
        await operation.keep();
        throw error;
      }

      async function finishDump(): Promise<CheckpointResult> {
        // The images went to the destination: nothing here is restored from them again.
        if (target.kind === 'migration') {
          await target.commit(leftRunning);
          await recordCheckpoint(context, running, { imagePath: target.finalPath, leftRunning, snapshot: undefined });
          return { imagePath: target.finalPath, leftRunning, durationMs: Date.now() - started };
        }
        // Every restore and reset of these images then fills its tmpfs mounts without tar.
        if (!target.preDump) await copyTmpfsOutOfImages(target.writePath, spec, metadata, logger);
        // Every restore and reset of these images then runs no `ip` for what the kernel does itself,
        // and no nftables for a lock a namespace with lo alone does not need.
        if (!target.preDump) {
          await removeDefaultNetworkImages(target.writePath).then(
            (removed) => logger.debug('removed network images that restate the kernel defaults', { id, removed }),
            (error: unknown) => logger.warn('could not check the network images (they are kept whole)', { id, error: describeError(error) }),
          );
          await dropRestoreLock(target.writePath).then(
            (dropped) => logger.debug(dropped ? "restores skip the dump's network lock (lo alone)" : "restores keep the dump's network lock", { id }),
            (error: unknown) => logger.warn("could not check the dump's network lock (restores keep it)", { id, error: describeError(error) }),
          );
        }
        // In a directory of root's alone already; a failure here must not fail a dump that is done.
        await restrictImageFiles(target.writePath, spec).catch((error: unknown) =>
          logger.warn("could not make the images root's alone", { id, imagePath: target.writePath, error: describeError(error) }),
        );

        // Last, over the images as they stay: a restore checks them (image-digests.ts).
        if (!target.preDump) await writeImageDigests(target.writePath);
        const snapshot = await target.commit(leftRunning);
        if (!target.preDump) await recordCheckpoint(context, running, { imagePath: target.finalPath, leftRunning, snapshot });
        return { imagePath: target.finalPath, leftRunning, durationMs: Date.now() - started, ...(snapshot ? { snapshot } : {}) };
      }
    });
  });
}

/**
 * Takes the container's tmpfs mounts out of CRIU's images (criu/tmpfs-images.ts): the images
 * and the metadata change together or not at all, and a failure only costs the speed (restores
 * unpack the archives with tar, as CRIU does). Not for a user namespace joined by path: a
 * restore must map the owners its archives were made with, from the spec's mappings.
 */
async function copyTmpfsOutOfImages(imagePath: string, spec: Spec, metadata: CheckpointMetadata, logger: Logger): Promise<void> {
  if (specHasNamespace(spec, 'user') && !containerRoot(spec)) return;
  try {
    const prepared = await prepareTmpfsExternal(imagePath);
    if (prepared.kept.length > 0) logger.info('tmpfs mounts left to CRIU (its tar restores them)', { id: metadata.id, kept: prepared.kept });
    if (prepared.copied.length === 0) return;
    try {
      await replaceCheckpointMetadata(imagePath, { ...metadata, externalMounts: [...metadata.externalMounts, ...copiedTmpfsMounts(prepared.copied)] });
    } catch (error) {
      await prepared.discard();
      throw error;
    }
    // Extra keys are harmless to CRIU should this fail: the metadata may name mounts it keeps.
    await prepared.commit();
  } catch (error) {
    logger.warn("could not take the container's tmpfs mounts out of CRIU's images (restores unpack them with tar)", {
      id: metadata.id,
      error: describeError(error),
    });
  }
}

async function targetFor(context: RuntimeContext, record: RunningRecord, request: CheckpointRequest): Promise<CheckpointTarget> {
  if (request.name !== undefined) return snapshotTarget(context, record, request.name);
  if (request.migration) return migrationTarget(context, record, request.migration.onFrozen);
  if (request.imagePath === undefined) {
    // A managed pre-dump has a directory of its own: it must never replace the last full checkpoint.
    const finalPath = request.preDump ? path.join(context.config.checkpointRoot, record.id, 'pre-dump') : defaultImagePath(context, record.id);
    return managedTarget(finalPath, request.preDump === true, keptLogPath(context, record.id));
  }
  return directoryTarget(path.resolve(request.imagePath), request.preDump === true, context.processes.effectiveUid());
}

/** Written aside and swapped in, so a failure keeps the last good checkpoint. */
async function managedTarget(finalPath: string, preDump: boolean, keptLog: string): Promise<CheckpointTarget> {
  const writePath = `${finalPath}.new`;
  await rm(writePath, { recursive: true, force: true });
  await mkdir(writePath, { recursive: true, mode: 0o700 });
  return {
    kind: preDump ? 'pre-dump' : 'managed',
    writePath,
    finalPath,
    preDump,
    async commit() {
      await rm(finalPath, { recursive: true, force: true });
      await rename(writePath, finalPath);
      return undefined;
    },
    async abandon(error) {
      // The failed images go; CRIU's log is kept beside the state, and the error says where.
      const moved = await keepFailureLog(error, keptLog);
      await rm(writePath, { recursive: true, force: true });
      return moved;
    },
  };
}

/**
 * --image-path: the directory is made root's alone (0700) when it is new; one that exists must
 * belong to the runtime's user and be writable by no one else, or another user could read the
 * memory dumped there or put files of their own among the images a restore trusts.
 */
async function directoryTarget(imagePath: string, preDump: boolean, uid: number): Promise<CheckpointTarget> {
  await mkdir(imagePath, { recursive: true, mode: 0o700 });
  await requireTrustedDirectory(imagePath, uid, 'hold a checkpoint');
  return {
    kind: preDump ? 'pre-dump' : 'directory',
    writePath: imagePath,
    finalPath: imagePath,
    preDump,
    async commit() {
      return undefined;
    },
    async abandon(error) {
      return error;
    },
  };
}

/**
 * A migration's images: in a directory of their own beside the managed checkpoint (the last
 * good checkpoint stays), handed on at post-dump while the tree is frozen, removed after.
 */
async function migrationTarget(context: RuntimeContext, record: RunningRecord, onFrozen: (imagePath: string) => Promise<void>): Promise<CheckpointTarget> {
  const writePath = migrationImagePath(context, record.id);
  await rm(writePath, { recursive: true, force: true });
  await mkdir(writePath, { recursive: true, mode: 0o700 });
  return {
    kind: 'migration',
    writePath,
    finalPath: writePath,
    preDump: false,
    onNotify: async (notify) => {
      if (notify.script === 'post-dump') await onFrozen(writePath);
    },
    async commit() {
      await rm(writePath, { recursive: true, force: true });
      return undefined;
    },
    async abandon(error) {
      const moved = await keepFailureLog(error, keptLogPath(context, record.id));
      await rm(writePath, { recursive: true, force: true });
      return moved;
    },
  };
}

/** A named snapshot: built in a directory of its own, moved into place once complete. */
async function snapshotTarget(context: RuntimeContext, record: RunningRecord, name: string): Promise<CheckpointTarget> {
  const { snapshots } = context;
  const building: SnapshotPaths = await snapshots.begin(record.id, name);
  const layers = await currentLayers(context, record);
  return {
    kind: 'snapshot',
    snapshot: { name, lowers: [...layers.lowers] },
    writePath: building.images,
    finalPath: snapshots.paths(record.id, name).images,
    preDump: false,
    onNotify: async (notify) => {
      // The tree is still frozen here: no write can fall between the memory and the rootfs.
      if (notify.script === 'post-dump') await copyLayer(layers.writable, building.rootfs);
    },
    async commit(leftRunning) {
      const snapshot = await snapshots.describe(record.id, name, building, layers.lowers, leftRunning);
      await snapshots.commit(record.id, building, snapshot);
      return snapshot;
    },
    async abandon(error) {
      // The unfinished snapshot goes, and CRIU's log with it: the log is kept beside the state.
      const moved = await keepFailureLog(error, keptLogPath(context, record.id));
      await snapshots.abandon(building);
      return moved;
    },
  };
}

/** The directory a migration's dump writes (a pre-copy's final dump names its parent relative to it). */
export function migrationImagePath(context: RuntimeContext, id: string): string {
  return path.join(context.config.checkpointRoot, id, 'migration');
}

/** Where CRIU's logs of a failed checkpoint are kept once its directory is removed: the state directory. */
function keptLogPath(context: RuntimeContext, id: string): string {
  return context.store.paths(id).dir;
}

/** Moves a failed CRIU request's log into `dir` as failed-<name>; returns the error to throw, pointing there. */
async function keepFailureLog(error: unknown, dir: string): Promise<unknown> {
  if (!(error instanceof CriuRequestError) || !error.failure.logPath) return error;
  const moved = await keepLog(error.failure.logPath, path.join(dir, `failed-${path.basename(error.failure.logPath)}`));
  return moved ? new CriuRequestError(withLogAt(error.failure, moved), { cause: error }) : error;
}

/**
 * A network or pid namespace the container joined by path is not the container's to dump: CRIU
 * records it as external (runc: "net[<inode>]:extRootNetNS"), and a restore joins it again.
 */
async function externalNamespaces(spec: Spec, context: RuntimeContext, pid: number): Promise<string[]> {
  const external: string[] = [];
  for (const [type, short, key] of [
    ['network', 'net', 'extRootNetNS'],
    ['pid', 'pid', 'extRootPidNS'],
  ] as const) {
    const namespace = specHasNamespace(spec, type);
    if (!namespace?.path) continue;
    const inode = await context.processes.namespaceInode(pid, short);
    external.push(`${short}[${inode}]:${key}`);
  }
  return external;
}
