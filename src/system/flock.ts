/**
 * Exclusive file locks (flock), taken by polling with LOCK_NB: a blocking flock through the FFI
 * would block Node's event loop, and so every other thing the process does while it waits. A
 * holder that dies releases its lock with its descriptor.
 */
import { tryLockExclusive, unlock } from './libc.js';

export interface LockWait {
  /** Give up after this long (default: wait for as long as it takes). */
  readonly timeoutMs?: number;
  /** The error thrown when the wait times out, given how long it waited. */
  readonly onTimeout?: (waitedMs: number) => Error;
  readonly pollMs?: number;
}

/** Runs fn while holding flock(LOCK_EX) on the open descriptor fd; the lock is released after. */
export async function withFlock<T>(fd: number, fn: () => Promise<T>, wait: LockWait = {}): Promise<T> {
  const started = Date.now();
  while (!tryLockExclusive(fd)) {
    const waited = Date.now() - started;
    if (wait.timeoutMs !== undefined && waited > wait.timeoutMs) throw (wait.onTimeout ?? lockTimeout)(waited);
    await new Promise((resolve) => setTimeout(resolve, wait.pollMs ?? 10));
  }
  try {
    return await fn();
  } finally {
    unlock(fd);
  }
}

function lockTimeout(waitedMs: number): Error {
  return new Error(`a lock was held for more than ${waitedMs} ms`);
}
