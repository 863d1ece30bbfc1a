/**
 * `runtime inspect <id | image-dir>`: what a checkpoint holds, as checkpointctl shows a podman
 * checkpoint: process tree, open files, sockets, memory, mounts, and CRIU's dump and restore
 * statistics. For a container id it takes the last checkpoint, or a named snapshot.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { RuntimeContext } from './context.js';
import { validateId } from './id.js';
import { CheckpointNotFoundError } from './checkpoint-metadata.js';
import { readInspection } from './inspection/read.js';
import type { CheckpointInspection } from './inspection/model.js';
import { verifyImageDigests } from './image-digests.js';

export interface InspectRequest {
  /** A container id, or a directory of checkpoint images (anything with a "/", or a directory that holds inventory.img). */
  readonly target: string;
  /** With an id: one of the container's named snapshots instead of its last checkpoint. */
  readonly snapshot?: string;
  /** Where CRIU wrote its statistics, if the checkpoint or restore had a --work-path. */
  readonly workPath?: string;
}

async function isImageDir(dir: string): Promise<boolean> {
  return stat(path.join(dir, 'inventory.img')).then(
    (s) => s.isFile(),
    () => false,
  );
}

/** The image directory the request names. */
export async function resolveInspectTarget(context: RuntimeContext, request: InspectRequest): Promise<string> {
  const { target } = request;
  if (request.snapshot === undefined && (target.includes('/') || target === '.' || target === '..' || (await isImageDir(target)))) {
    const dir = path.resolve(target);
    if (
      !(await stat(dir).then(
        (s) => s.isDirectory(),
        () => false,
      ))
    )
      throw new CheckpointNotFoundError(dir, 'the directory does not exist');
    if (!(await isImageDir(dir))) throw new CheckpointNotFoundError(dir, 'it holds no CRIU images (inventory.img is missing)');
    return dir;
  }
  const id = validateId(target);
  const record = await context.store.load(id);
  if (request.snapshot !== undefined) {
    const { snapshots } = context;
    await snapshots.read(id, request.snapshot);
    return snapshots.paths(id, request.snapshot).images;
  }
  if (!record.lastCheckpoint) {
    throw new CheckpointNotFoundError(
      path.join(context.config.checkpointRoot, id),
      `container ${id} was never checkpointed (inspect a named snapshot with --snapshot NAME)`,
    );
  }
  const dir = record.lastCheckpoint.imagePath;
  if (!(await isImageDir(dir))) throw new CheckpointNotFoundError(dir, 'its last checkpoint is gone or holds no CRIU images');
  return dir;
}

export async function inspect(context: RuntimeContext, request: InspectRequest): Promise<CheckpointInspection> {
  const dir = await resolveInspectTarget(context, request);
  // What is shown is what was dumped, or an error names the images that are not.
  await verifyImageDigests(dir);
  return readInspection(dir, request.workPath ? { workPath: request.workPath } : {});
}
