/**
 * `runtime checkpoint <id>`: dumps the container's process tree through CRIU. Without
 * --image-path the images go to a managed directory (<checkpointRoot>/<id>/checkpoint), written
 * beside the previous checkpoint and swapped in only when the dump succeeded. A failed dump
 * leaves the container running (CRIU resumes the tree) and its state unchanged.
 */
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { RuntimeContext } from './context.js';
import { validateId } from './id.js';
import { requireRoot } from './privileges.js';
import { assertTransition } from './state/status.js';
import type { ContainerRecord } from './state/record.js';
import { readEffectiveSpec } from './effective-bundle.js';
import { dumpMountMap, externalMountsForDump } from './external-mounts.js';
import { cgroupHierarchies, freezerDirectory } from './cgroups.js';
import { writeCheckpointMetadata } from './checkpoint-metadata.js';
import { dumpOpts, type CheckpointOptions } from '../criu/options.js';
import { formatVersion } from '../criu/version.js';
import { CriuRequestError, withLogAt } from '../criu/errors.js';
import { keepLog } from '../criu/log.js';
import { RuntimeError, UsageError } from './errors.js';
import { SnapshotStore, memoryBytes, validateSnapshotName, type SnapshotInfo } from './snapshots/store.js';
import { currentLayers } from './snapshots/rootfs.js';
import { copyLayer, diskUsage } from '../rootfs/layers.js';
import { specHasNamespace } from './oci/index.js';

export interface CheckpointRequest extends CheckpointOptions {
  readonly id: string;
  /**
   * Save a named snapshot: the process tree and the rootfs as one consistent point (the rootfs
   * layer is copied while CRIU holds the tree frozen, at its post-dump notification).
   */
  readonly name?: string;
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
  constructor(readonly id: string, status: string) {
    super(`container ${JSON.stringify(id)} is not running (it is ${status})`, {
      hint: status === 'checkpointed' ? `restore it with \`runtime restore ${id}\`` : `start it with \`runtime run\` first`,
    });
  }
}

/** The managed image directory of a container's bare checkpoint. */
export function defaultImagePath(context: RuntimeContext, id: string): string {
  return path.join(context.config.checkpointRoot, id, 'checkpoint');
}

export async function checkpoint(context: RuntimeContext, request: CheckpointRequest): Promise<CheckpointResult> {
  const started = Date.now();
  const id = validateId(request.id);
  requireRoot('runtime checkpoint');
  const { store, criu, processes, mounts, logger } = context;
  await store.load(id);
  const criuVersion = await criu.requireVersion();
  if (request.preDump || request.parentPath) await criu.requireFeature('mem_track', request.preDump ? '--pre-dump' : '--parent-path');
  if (request.lazyPages) await criu.requireFeature('lazy_pages', '--lazy-pages');
  if (request.name !== undefined) {
    validateSnapshotName(request.name);
    if (request.autoDedup) throw new UsageError('--auto-dedup cannot be used with --name', 'a named snapshot\'s images are never changed, so every reset starts from the same bytes');
    if (request.imagePath || request.preDump) throw new UsageError('--name keeps its images in the container\'s snapshots; it goes without --image-path and --pre-dump');
  }
  const snapshots = new SnapshotStore(context.config.checkpointRoot);

  return store.withLock(id, async () => {
    const record = await store.load(id);
    if (record.status !== 'running' || !record.init || !(await processes.isAlive(record.init))) {
      throw new ContainerNotRunningError(id, record.status === 'running' ? 'stopped' : record.status);
    }
    const leftRunning = request.leaveRunning === true || request.preDump === true;
    if (!leftRunning) assertTransition(id, record.status, 'checkpointed', 'checkpoint');

    const building = request.name !== undefined ? await snapshots.begin(id, request.name) : undefined;
    const managed = request.imagePath === undefined && building === undefined;
    const finalPath = building ? snapshots.paths(id, request.name!).images : path.resolve(request.imagePath ?? defaultImagePath(context, id));
    // A managed checkpoint is written aside and swapped in, so a failure keeps the last good one.
    const writePath = building ? building.images : managed ? `${finalPath}.new` : finalPath;
    if (managed) await rm(writePath, { recursive: true, force: true });
    await mkdir(writePath, { recursive: true, mode: 0o700 });
    const layers = building ? await currentLayers(context, record) : undefined;

    const paths = store.paths(id);
    const { spec, text: specText } = await readEffectiveSpec(paths.effectiveBundle);
    const pid = record.init.pid;
    const externalMounts = await externalMountsForDump({
      spec,
      rootfs: record.rootfs,
      containerMounts: await mounts.mounts(pid),
      containerRoot: `/proc/${pid}/root`,
    });
    const hierarchies = cgroupHierarchies(await mounts.mounts());
    const freezeCgroup = freezerDirectory(hierarchies, record.cgroupPath);
    const external = await externalNamespaces(spec, processes, pid);

    if (!request.preDump) {
      await writeCheckpointMetadata(
        writePath,
        {
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
        },
        await processes.fdTargets(pid, 3),
        specText,
      );
    }

    logger.info(`checkpointing ${id}`, { pid, imagePath: finalPath, leaveRunning: leftRunning, ...(request.name ? { snapshot: request.name } : {}) });
    try {
    await criu.dump({
      opts: dumpOpts(request, {
        pid,
        root: record.rootfs,
        ...(freezeCgroup ? { freezeCgroup } : {}),
        extMounts: dumpMountMap(externalMounts),
        external,
      }),
      imagePath: writePath,
      ...(request.workPath ? { workPath: path.resolve(request.workPath) } : {}),
      ...(request.preDump ? { preDump: true } : {}),
      ...(building && layers
        ? {
            onNotify: async (notify: { script?: string }) => {
              // The tree is still frozen here: no write can fall between the memory and the rootfs.
              if (notify.script === 'post-dump') await copyLayer(layers.writable, building.rootfs);
            },
          }
        : {}),
    });
    } catch (error) {
      if (!building) throw error;
      // The unfinished snapshot goes, and CRIU's log with it: the log is kept beside the state.
      const kept = error instanceof CriuRequestError
        ? await keepLog(error.failure.logPath ?? '', path.join(store.paths(id).dir, 'checkpoint-failed.log'))
        : undefined;
      await snapshots.abandon(building);
      throw kept && error instanceof CriuRequestError ? new CriuRequestError(withLogAt(error.failure, kept), { cause: error }) : error;
    }

    let snapshot: SnapshotInfo | undefined;
    if (building && layers) {
      snapshot = {
        formatVersion: 1,
        name: request.name!,
        id,
        created: new Date().toISOString(),
        layers: [snapshots.paths(id, request.name!).rootfs, ...layers.lowers],
        memoryBytes: await memoryBytes(building.images),
        rootfsBytes: await diskUsage(building.rootfs),
        leftRunning,
      };
      await snapshots.commit(id, building, snapshot);
    }
    if (managed) {
      await rm(finalPath, { recursive: true, force: true });
      await rename(writePath, finalPath);
    }
    if (!request.preDump) {
      // A named snapshot is reached by name (reset), never as the bare checkpoint to restore.
      const lastCheckpoint = snapshot ? record.lastCheckpoint : { imagePath: finalPath, time: new Date().toISOString(), leftRunning };
      if (leftRunning) {
        await store.save({ ...record, ...(lastCheckpoint ? { lastCheckpoint } : {}) });
      } else {
        const { init: _init, monitor: _monitor, lastCheckpoint: _last, ...rest } = record;
        const next: ContainerRecord = { ...rest, status: 'checkpointed', ...(lastCheckpoint ? { lastCheckpoint } : {}) };
        await store.save(next);
      }
    }
    return { imagePath: finalPath, leftRunning, durationMs: Date.now() - started, ...(snapshot ? { snapshot } : {}) };
  });
}

/**
 * A network or pid namespace the container joined by path is not the container's to dump: CRIU
 * records it as external (runc: "net[<inode>]:extRootNetNS"), and a restore joins it again.
 */
async function externalNamespaces(
  spec: Awaited<ReturnType<typeof readEffectiveSpec>>['spec'],
  processes: RuntimeContext['processes'],
  pid: number,
): Promise<string[]> {
  const external: string[] = [];
  for (const [type, short, key] of [
    ['network', 'net', 'extRootNetNS'],
    ['pid', 'pid', 'extRootPidNS'],
  ] as const) {
    const namespace = specHasNamespace(spec, type);
    if (!namespace?.path) continue;
    const inode = await processes.namespaceInode(pid, short);
    external.push(`${short}[${inode}]:${key}`);
  }
  return external;
}
