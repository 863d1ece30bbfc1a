/**
 * A container's status and the moves between them. The OCI statuses plus `checkpointed`, which
 * the OCI spec allows a runtime to add: the process tree lives in a checkpoint, not on the host.
 * (runc forgets a container once it is dumped; this runtime keeps it so a bare restore works.)
 */
import { RuntimeError } from '../errors.js';

export const statuses = ['creating', 'running', 'stopped', 'checkpointed'] as const;
export type ContainerStatus = (typeof statuses)[number];

const transitions: Readonly<Record<ContainerStatus, readonly ContainerStatus[]>> = {
  // The OCI runtime started the init, or failed to.
  creating: ['running', 'stopped'],
  // The init exited or was killed; or a dump without --leave-running took the tree down.
  running: ['stopped', 'checkpointed'],
  // Restored from its checkpoint.
  checkpointed: ['running'],
  // Restored from its last checkpoint after it had stopped.
  stopped: ['running'],
};

export class IllegalTransitionError extends RuntimeError {
  readonly code = 'ILLEGAL_TRANSITION' as const;
  constructor(readonly id: string, readonly from: ContainerStatus, readonly to: ContainerStatus, readonly operation: string) {
    super(`cannot ${operation} container ${JSON.stringify(id)}: it is ${from}, and a ${from} container cannot become ${to}`, {
      hint: hintFor(from, operation, id),
    });
  }
}

function hintFor(from: ContainerStatus, operation: string, id: string): string {
  switch (from) {
    case 'checkpointed':
      return `restore it first with \`runtime restore ${id}\``;
    case 'stopped':
      return operation === 'restore'
        ? `it has no checkpoint to restore; remove it with \`runtime delete ${id}\``
        : `remove it with \`runtime delete ${id}\`, or restore a checkpoint of it`;
    case 'running':
      return `it is running; checkpoint it or stop it with \`runtime kill ${id}\``;
    case 'creating':
      return 'wait for it to start, or remove it with `runtime delete -f`';
  }
}

export function canTransition(from: ContainerStatus, to: ContainerStatus): boolean {
  return transitions[from].includes(to);
}

/** Throws IllegalTransitionError, naming both states, unless from → to is allowed. */
export function assertTransition(id: string, from: ContainerStatus, to: ContainerStatus, operation: string): void {
  if (!canTransition(from, to)) throw new IllegalTransitionError(id, from, to, operation);
}
