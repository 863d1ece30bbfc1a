/**
 * Every error the runtime raises is a RuntimeError: a literal `code` a program can switch on,
 * the `cause` when there is one, and a `hint` that tells the user what to do next.
 */
export interface RuntimeErrorOptions {
  readonly cause?: unknown;
  /** What the user can do about it: a flag, a command, a package. */
  readonly hint?: string;
}

export abstract class RuntimeError extends Error {
  abstract readonly code: string;
  readonly hint: string | undefined;

  constructor(message: string, options: RuntimeErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.hint = options.hint;
  }

  /** The message followed by the hint, as the CLI prints it. */
  describe(): string {
    return this.hint ? `${this.message}\n  hint: ${this.hint}` : this.message;
  }
}

export class InvalidIdError extends RuntimeError {
  readonly code = 'INVALID_ID' as const;
  constructor(readonly id: string, reason: string) {
    super(`invalid container id ${JSON.stringify(id)}: ${reason}`, {
      hint: 'ids are 1 to 1024 characters of letters, digits, "_", "+", "-" and "."; not "." or ".."',
    });
  }
}

export class ContainerNotFoundError extends RuntimeError {
  readonly code = 'CONTAINER_NOT_FOUND' as const;
  constructor(readonly id: string, stateRoot: string) {
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

export class NotRootError extends RuntimeError {
  readonly code = 'NOT_ROOT' as const;
  constructor(operation: string) {
    super(`${operation} needs root (effective uid 0); running as uid ${process.geteuid?.() ?? 'unknown'}`, {
      hint: 'run it again as root, for example with sudo',
    });
  }
}

export class UsageError extends RuntimeError {
  readonly code = 'USAGE' as const;
  constructor(message: string, hint?: string) {
    super(message, hint === undefined ? {} : { hint });
  }
}

export class SystemCallError extends RuntimeError {
  readonly code = 'SYSCALL' as const;
  constructor(readonly syscall: string, readonly errno: number, detail: string, options: RuntimeErrorOptions = {}) {
    super(`${syscall}(${detail}) failed: ${errnoName(errno)} (errno ${errno})`, options);
  }
}

const errnoNames: Readonly<Record<number, string>> = {
  1: 'EPERM', 2: 'ENOENT', 3: 'ESRCH', 4: 'EINTR', 9: 'EBADF', 10: 'ECHILD', 11: 'EAGAIN', 12: 'ENOMEM',
  13: 'EACCES', 16: 'EBUSY', 17: 'EEXIST', 19: 'ENODEV', 20: 'ENOTDIR', 22: 'EINVAL', 24: 'EMFILE',
  28: 'ENOSPC', 38: 'ENOSYS', 95: 'EOPNOTSUPP',
};

export function errnoName(errno: number): string {
  return errnoNames[errno] ?? `errno ${errno}`;
}

/** A short description of any thrown value, for logs and wrapped messages. */
export function describeError(error: unknown): string {
  if (error instanceof RuntimeError) return error.describe();
  if (error instanceof Error) return error.message;
  return String(error);
}
