import { NotRootError } from './errors.js';
import type { ProcessService } from '../system/processes.js';

/** Checkpoint, restore and running containers need root, as with runc and crun. */
export function requireRoot(processes: Pick<ProcessService, 'effectiveUid'>, operation: string): void {
  if (processes.effectiveUid() !== 0) throw new NotRootError(operation);
}
