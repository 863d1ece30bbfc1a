/** Waiting for a foreground container: the CLI exits with its exit code (128+N for signal N). */
import type { ForegroundContainer } from '../../monitor/foreground.js';
import { exitCodeForSignal } from '../../signals.js';

export async function exitCodeOf(container: ForegroundContainer): Promise<number> {
  const status = await container.exited;
  return status.kind === 'exited' ? status.code : exitCodeForSignal(status.signal);
}
