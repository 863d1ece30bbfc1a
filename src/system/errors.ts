/**
 * The base of every error the project raises, below all layers: a RuntimeError has a literal
 * `code` a program can switch on, the `cause` when there is one, and a `hint` that tells the
 * user what to do next. Also the errors any layer raises: bad usage, a failed system call.
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

export class UsageError extends RuntimeError {
  readonly code = 'USAGE' as const;
  constructor(message: string, hint?: string) {
    super(message, hint === undefined ? {} : { hint });
  }
}

export class SystemCallError extends RuntimeError {
  readonly code = 'SYSCALL' as const;
  constructor(
    readonly syscall: string,
    readonly errno: number,
    detail: string,
    options: RuntimeErrorOptions = {},
  ) {
    super(`${syscall}(${detail}) failed: ${errnoName(errno)} (errno ${errno})`, options);
  }
}

const errnoNames: Readonly<Record<number, string>> = {
  1: 'EPERM',
  2: 'ENOENT',
  3: 'ESRCH',
  4: 'EINTR',
  9: 'EBADF',
  10: 'ECHILD',
  11: 'EAGAIN',
  12: 'ENOMEM',
  13: 'EACCES',
  16: 'EBUSY',
  17: 'EEXIST',
  19: 'ENODEV',
  20: 'ENOTDIR',
  22: 'EINVAL',
  24: 'EMFILE',
  28: 'ENOSPC',
  38: 'ENOSYS',
  95: 'EOPNOTSUPP',
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
