/**
 * `runtime snapshots rm <id> NAME`: deletes a snapshot, unless something is built on its layer:
 * a later snapshot, or a container (this one, or a copy) running on it.
 */
import type { RuntimeContext } from './context.js';
import { validateId } from './id.js';
import { requireRoot } from './privileges.js';

export async function removeSnapshot(context: RuntimeContext, id: string, name: string): Promise<void> {
  validateId(id);
  requireRoot(context.processes, 'runtime snapshots rm');
  await context.store.load(id);
  const inUse: { user: string; layers: readonly string[] }[] = [];
  for (const other of await context.store.ids()) {
    const record = await context.store.load(other).catch(() => undefined);
    if (record?.layers) inUse.push({ user: `container ${other}`, layers: record.layers.lowers });
  }
  await context.snapshots.remove(id, name, inUse);
}
