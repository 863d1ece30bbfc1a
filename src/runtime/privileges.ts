import { NotRootError } from './errors.js';

/** Checkpoint, restore and running containers need root, as with runc and crun. */
export function requireRoot(operation: string): void {
  if (process.geteuid?.() !== 0) throw new NotRootError(operation);
}
