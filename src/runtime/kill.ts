/** `runtime kill <id> [SIGNAL]`: signals the init, only if it is still the very process recorded. */
import type { RuntimeContext } from './context.js';
import { validateId } from './id.js';
import { requireRoot } from './privileges.js';
import { ContainerNotRunningError } from './checkpoint.js';

export async function kill(context: RuntimeContext, id: string, signal: number): Promise<void> {
  validateId(id);
  requireRoot(context.processes, 'runtime kill');
  const record = await context.store.load(id);
  if (record.status !== 'running' || !(await context.processes.signal(record.init, signal))) {
    throw new ContainerNotRunningError(id, record.status === 'running' ? 'stopped' : record.status);
  }
}
