/**
 * A command that must not be cut short by a Ctrl-C or a kill: a checkpoint holds the container
 * frozen while CRIU dumps it, and CRIU (in a process group of its own) finishes anyway. SIGINT,
 * SIGTERM and SIGHUP are held back while the work runs: the first is acknowledged on stderr, and
 * once the work is over the command exits as the signal asked (128 + its number). SIGKILL cannot
 * be held; what it leaves the next command puts right (interrupted.ts).
 */
import { constants } from 'node:os';
import type { Writable } from 'node:stream';

const HELD = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

export interface HeldOutcome<T> {
  readonly value: T;
  /** The first signal that came while the work ran. */
  readonly signal?: NodeJS.Signals;
}

export async function holdingSignals<T>(what: string, stderr: Writable, work: () => Promise<T>): Promise<HeldOutcome<T>> {
  let received: NodeJS.Signals | undefined;
  // A terminal gone (SIGHUP) or a reader gone makes the acknowledgement fail: that must not end
  // the command half-way either.
  const ignore = (): void => undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (received) return;
    received = signal;
    try {
      stderr.write(`runtime: ${signal} received; ${what} finishes first (stopping it half-way could leave the container frozen)\n`);
    } catch {
      // as above
    }
  };
  stderr.on('error', ignore);
  for (const signal of HELD) process.on(signal, onSignal);
  try {
    return { value: await work(), ...(received ? { signal: received } : {}) };
  } finally {
    for (const signal of HELD) process.off(signal, onSignal);
    stderr.off('error', ignore);
  }
}

/** The exit code of a command ended by a held signal, as a shell reports one killed by it. */
export function exitCodeFor(signal: NodeJS.Signals): number {
  return 128 + (constants.signals[signal] ?? 0);
}
