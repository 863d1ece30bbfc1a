/**
 * `runtime kill [--all] <id> [SIGNAL]`: signals the init, only if it is still the very process
 * recorded; with --all (runc's flag), every process in the container's cgroup. A command at work
 * on the container (a checkpoint, a reset) finishes first, but for SIGKILL. Without a signal:
 * the image's stop signal (a container made from an image records it in the annotation
 * org.opencontainers.image.stopSignal, as Docker's `docker stop` uses it), else SIGTERM.
 */
import { constants } from 'node:os';
import type { RuntimeContext } from './context.js';
import { validateId } from './id.js';
import { requireRoot } from './privileges.js';
import { ContainerNotRunningError } from './checkpoint.js';
import { recoverInterrupted } from './interrupted.js';
import type { ContainerRecord } from './state/record.js';
import { parseSignal, signalName, stopSignalAnnotation } from './signals.js';

export interface KillOptions {
  /** Every process of the container (its cgroup), not only the init. */
  readonly all?: boolean;
}

const SIGKILL = constants.signals.SIGKILL;

export async function kill(context: RuntimeContext, id: string, signal?: number, options: KillOptions = {}): Promise<void> {
  validateId(id);
  requireRoot(context.processes, 'runtime kill');
  const act = async (record: ContainerRecord) => {
    const stopSignal = record.annotations[stopSignalAnnotation];
    const chosen = signal ?? (stopSignal ? parseSignal(stopSignal) : parseSignal('SIGTERM'));
    if (options.all && record.status === 'running') {
      const reached = await context.cgroups.signal(record.cgroupPath, signalName(chosen) as NodeJS.Signals);
      if (reached > 0) return;
    }
    if (record.status !== 'running' || !(await context.processes.signal(record.init, chosen))) {
      throw new ContainerNotRunningError(id, record.status === 'running' ? 'stopped' : record.status);
    }
  };
  // SIGKILL does not wait: the container is to end, a dump of it at work is moot, and a dump
  // stuck on a dead page server (CRIU has no timeout of its own) must not keep it alive.
  if (signal === SIGKILL) return act(await context.store.load(id));
  // Anything else under the container's lock, as every command that acts on its processes: a
  // signal that came while CRIU runs its parasite code in a task makes CRIU give the whole dump
  // up ("Unexpected task interruption"), and one sent during a reset could reach the instance
  // going away. It goes once the command at work is done, and once what a command that died
  // left is put right (interrupted.ts: a CRIU still dumping, a record not yet updated).
  await context.store.withLock(id, async () => act(await recoverInterrupted(context, await context.store.load(id))));
}
