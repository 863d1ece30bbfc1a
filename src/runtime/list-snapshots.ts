/** `runtime snapshots <id>`: a container's named snapshots with their sizes. */
import type { RuntimeContext } from './context.js';
import { validateId } from './id.js';
import { SnapshotStore, type SnapshotInfo } from './snapshots/store.js';

export async function listSnapshots(context: RuntimeContext, id: string): Promise<SnapshotInfo[]> {
  await context.store.load(validateId(id));
  return new SnapshotStore(context.config.checkpointRoot).list(id);
}
