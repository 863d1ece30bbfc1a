import { readFileSync } from 'node:fs';
import { NotRootError } from './errors.js';
import type { ProcessService } from '../system/processes.js';

/** Checkpoint, restore and running containers need root, as with runc and crun. */
export function requireRoot(processes: Pick<ProcessService, 'effectiveUid'>, operation: string): void {
  if (processes.effectiveUid() !== 0) throw new NotRootError(operation);
}

/** CAP_SYS_RESOURCE: CRIU needs it to read the rlimits of another uid's process (prlimit). */
export const CAP_SYS_RESOURCE = 24;

/** Whether this process holds the capability in its effective set, by /proc/self/status's CapEff. */
export function hasEffectiveCapability(bit: number, status = readFileSync('/proc/self/status', 'utf8')): boolean {
  const mask = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1];
  return mask === undefined ? true : ((BigInt(`0x${mask}`) >> BigInt(bit)) & 1n) === 1n;
}
