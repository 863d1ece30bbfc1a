/**
 * `runtime restore [-d] <id>`: restores a container's process tree from its checkpoint through
 * CRIU, with this runtime as the restored init's parent (rst_sibling). Bare, it takes the
 * container's last checkpoint; with --image-path (and --bundle) it restores any checkpoint,
 * also under a new id.
 */
import path from 'node:path';
import type { RuntimeContext } from './context.js';
import { validateId } from './id.js';
import { newRecord } from './state/record.js';
import { requireRoot } from './privileges.js';
import { loadBundle } from './oci/index.js';
import { writeEffectiveBundle } from './effective-bundle.js';
import { readCheckpoint, CheckpointNotFoundError } from './checkpoint-metadata.js';
import { assertTransition } from './state/status.js';
import { defaultImagePath } from './checkpoint.js';
import { launchMonitor } from './monitor/launch.js';
import { runInForeground, type ForegroundContainer, type ForegroundStdio } from './monitor/foreground.js';
import type { RestoreJob } from './monitor/job.js';
import type { RestoreCriuOptions } from '../criu/options.js';
import { ContainerNotFoundError } from './errors.js';

export interface RestoreRequest extends RestoreCriuOptions {
  readonly id: string;
  /** The bundle to restore with; the container's own (or the checkpoint's) when unset. */
  readonly bundle?: string;
  readonly pidFile?: string;
}

export async function restoreDetached(context: RuntimeContext, request: RestoreRequest): Promise<number> {
  const { job, createdRecord } = await prepareRestore(context, request);
  try {
    return await launchMonitor(context, job);
  } catch (error) {
    if (createdRecord) await context.store.remove(job.id);
    throw error;
  }
}

export async function restoreForeground(context: RuntimeContext, request: RestoreRequest, stdio: ForegroundStdio): Promise<ForegroundContainer> {
  const { job, createdRecord } = await prepareRestore(context, request);
  try {
    return await runInForeground(context, job, stdio);
  } catch (error) {
    if (createdRecord) await context.store.remove(job.id);
    throw error;
  }
}

async function prepareRestore(context: RuntimeContext, request: RestoreRequest): Promise<{ job: RestoreJob; createdRecord: boolean }> {
  const id = validateId(request.id);
  requireRoot('runtime restore');
  const { store, criu, logger } = context;
  const existing = await store.load(id).catch((error: unknown) => {
    if (error instanceof ContainerNotFoundError) return undefined;
    throw error;
  });
  if (existing) assertTransition(id, existing.status, 'running', 'restore');

  const imagePath = path.resolve(request.imagePath ?? existing?.lastCheckpoint?.imagePath ?? defaultImagePath(context, id));
  if (existing && !request.imagePath && !existing.lastCheckpoint) {
    throw new CheckpointNotFoundError(imagePath, `container ${id} was never checkpointed`);
  }
  const { metadata } = await readCheckpoint(imagePath);
  await criu.requireVersion();

  const criuOptions: RestoreCriuOptions = {
    ...request,
    ...(request.workPath ? { workPath: path.resolve(request.workPath) } : {}),
  };
  const job: RestoreJob = { kind: 'restore', id, imagePath, criu: stripRequest(criuOptions), ...(request.pidFile ? { pidFile: path.resolve(request.pidFile) } : {}) };

  if (existing) {
    if (request.bundle) {
      const bundle = await loadBundle(request.bundle);
      const effective = await writeEffectiveBundle(store.paths(id).effectiveBundle, bundle, id, logger);
      await store.withLock(id, async () => {
        const record = await store.load(id);
        await store.save({ ...record, bundle: bundle.path, rootfs: bundle.rootfs, cgroupPath: effective.cgroupPath });
      });
    }
    return { job, createdRecord: false };
  }

  // A container this runtime does not know yet: made from the checkpoint and a bundle.
  const bundle = await loadBundle(request.bundle ?? metadata.bundle);
  const paths = await store.reserve(id);
  try {
    const effective = await writeEffectiveBundle(paths.effectiveBundle, bundle, id, logger);
    await store.save(
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
        { lastCheckpoint: { imagePath, time: metadata.created, leftRunning: metadata.leftRunning } },
      ),
    );
  } catch (error) {
    await store.remove(id);
    throw error;
  }
  return { job, createdRecord: true };
}

/** Only the CRIU options travel in the job (not the id, bundle or pid file). */
function stripRequest(options: RestoreCriuOptions & Partial<RestoreRequest>): RestoreCriuOptions {
  const { id: _id, bundle: _bundle, pidFile: _pidFile, ...criu } = options;
  return criu;
}
