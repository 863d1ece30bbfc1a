/**
 * The foreground form of a job: this process is the init's parent. Output is copied to the
 * given streams, input forwarded, and the usual terminating signals are passed to the init.
 */
import type { Readable, Writable } from 'node:stream';
import type { RuntimeContext } from '../context.js';
import type { WaitStatus } from '../../system/libc.js';
import { startFirstInstance } from './execute.js';
import type { RestoreJob, RunJob } from './job.js';
import { Supervisor } from './supervisor.js';

export interface ForegroundStdio {
  readonly stdin?: Readable;
  readonly stdout: Writable;
  readonly stderr: Writable;
}

export interface ForegroundContainer {
  readonly pid: number;
  /** Settles when the init has been reaped and its exit recorded. */
  readonly exited: Promise<WaitStatus>;
}

const forwardedSignals = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'] as const;

export async function runInForeground(context: RuntimeContext, job: RunJob | RestoreJob, stdio: ForegroundStdio): Promise<ForegroundContainer> {
  context.reaper.install();
  const supervisor = new Supervisor({
    id: job.id,
    store: context.store,
    reaper: context.reaper,
    foreground: true,
    echo: { stdout: stdio.stdout, stderr: stdio.stderr },
  });
  const pid = await startFirstInstance(context, supervisor, job);
  if (stdio.stdin) supervisor.forwardInput(stdio.stdin);
  const forward = (signal: NodeJS.Signals) => {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  };
  for (const signal of forwardedSignals) process.on(signal, forward);
  const exited = supervisor.superviseInit(pid).finally(async () => {
    for (const signal of forwardedSignals) process.off(signal, forward);
    await supervisor.close();
  });
  return { pid, exited };
}
