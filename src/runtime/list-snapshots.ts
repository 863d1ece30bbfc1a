/** `runtime snapshots <id>`: a container's named snapshots with their sizes. */
import type { RuntimeContext } from './context.js';
import { validateId } from './id.js';
import type { SnapshotInfo } from './snapshots/store.js';

export async function listSnapshots(context: RuntimeContext, id: string): Promise<SnapshotInfo[]> {
  await context.store.load(validateId(id));
  return context.snapshots.list(id);
}
