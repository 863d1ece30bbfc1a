/**
 * `runtime kill <id> [SIGNAL]`: signals the init, only if it is still the very process recorded.
 * Without a signal: the image's stop signal (a container made from an image records it in the
 * annotation org.opencontainers.image.stopSignal, as Docker's `docker stop` uses it), else SIGTERM.
 */
import type { RuntimeContext } from './context.js';
import { validateId } from './id.js';
import { requireRoot } from './privileges.js';
import { ContainerNotRunningError } from './checkpoint.js';
import { parseSignal, stopSignalAnnotation } from './signals.js';

export async function kill(context: RuntimeContext, id: string, signal?: number): Promise<void> {
  validateId(id);
  requireRoot(context.processes, 'runtime kill');
  const record = await context.store.load(id);
  const stopSignal = record.annotations[stopSignalAnnotation];
  const chosen = signal ?? (stopSignal ? parseSignal(stopSignal) : parseSignal('SIGTERM'));
  if (record.status !== 'running' || !(await context.processes.signal(record.init, chosen))) {
    throw new ContainerNotRunningError(id, record.status === 'running' ? 'stopped' : record.status);
  }
}
