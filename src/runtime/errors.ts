/** The runtime's own errors (containers, ids, privileges), on the shared base in system/errors. */
import { RuntimeError } from '../system/errors.js';

export { RuntimeError, UsageError, SystemCallError, errnoName, describeError, type RuntimeErrorOptions } from '../system/errors.js';

export class InvalidIdError extends RuntimeError {
  readonly code = 'INVALID_ID' as const;
  constructor(
    readonly id: string,
    reason: string,
  ) {
    super(`invalid container id ${JSON.stringify(id)}: ${reason}`, {
      hint: 'ids are 1 to 1024 characters of letters, digits, "_", "+", "-" and ".", not starting with "-"; not "." or ".."',
    });
  }
}

export class ContainerNotFoundError extends RuntimeError {
  readonly code = 'CONTAINER_NOT_FOUND' as const;
  constructor(
    readonly id: string,
    stateRoot: string,
  ) {
    super(`container ${JSON.stringify(id)} does not exist in ${stateRoot}`, {
      hint: 'run `runtime list` to see the containers, or pass the --root the container was created with',
    });
  }
}

export class ContainerExistsError extends RuntimeError {
  readonly code = 'CONTAINER_EXISTS' as const;
  constructor(readonly id: string) {
    super(`container ${JSON.stringify(id)} already exists`, {
      hint: `choose another id, or remove it first with \`runtime delete -f ${id}\``,
    });
  }
}

export class ContainerBusyError extends RuntimeError {
  readonly code = 'CONTAINER_BUSY' as const;
  constructor(
    readonly id: string,
    reason: string,
  ) {
    super(`container ${JSON.stringify(id)} is busy: ${reason}`, { hint: 'wait for the other command to finish, then try again' });
  }
}

export class NotRootError extends RuntimeError {
  readonly code = 'NOT_ROOT' as const;
  constructor(operation: string) {
    super(`${operation} needs root (effective uid 0); running as uid ${process.geteuid?.() ?? 'unknown'}`, {
      hint: 'run it again as root, for example with sudo',
    });
  }
}

export class InitEndedError extends RuntimeError {
  readonly code = 'INIT_ENDED' as const;
  constructor(
    readonly id: string,
    readonly pid: number,
    how: 'started' | 'restored',
    logPath: string,
  ) {
    super(`the init of ${id} (pid ${pid}) ended right after it was ${how}`, { hint: `read the container's output in ${logPath}` });
  }
}
