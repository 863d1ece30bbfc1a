/**
 * File locks (flock), taken by polling with LOCK_NB: a blocking flock through the FFI would
 * block Node's event loop, and so every other thing the process does while it waits. A holder
 * that dies releases its lock with its descriptor. Shared holders exclude an exclusive one.
 */
import { RuntimeError } from './errors.js';
import { tryLockExclusive, tryLockShared, unlock } from './libc.js';

export interface LockWait {
  /** Shared (readers among themselves) or exclusive (default). */
  readonly shared?: boolean;
  /** Give up after this long (default: wait for as long as it takes). */
  readonly timeoutMs?: number;
  /** The error thrown when the wait times out, given how long it waited. */
  readonly onTimeout?: (waitedMs: number) => Error;
  readonly pollMs?: number;
}

export class FlockTimeoutError extends RuntimeError {
  readonly code = 'LOCK_TIMEOUT' as const;
  constructor(readonly waitedMs: number) {
    super(`a lock was held by another process for more than ${waitedMs} ms`, {
      hint: 'another runtime command is working on the same thing; retry when it is done',
    });
  }
}

/** Runs fn while holding flock on the open descriptor fd; the lock is released after. */
export async function withFlock<T>(fd: number, fn: () => Promise<T>, wait: LockWait = {}): Promise<T> {
  const started = Date.now();
  const take = wait.shared ? tryLockShared : tryLockExclusive;
  while (!take(fd)) {
    const waited = Date.now() - started;
    if (wait.timeoutMs !== undefined && waited > wait.timeoutMs) throw wait.onTimeout ? wait.onTimeout(waited) : new FlockTimeoutError(waited);
    await new Promise((resolve) => setTimeout(resolve, wait.pollMs ?? 10));
  }
  try {
    return await fn();
  } finally {
    unlock(fd);
  }
}
