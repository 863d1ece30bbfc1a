/**
 * The foreground form of run and restore: this process is the init's parent. Output is copied to
 * the given streams, input forwarded, and the usual terminating signals are passed to the init
 * (only while it is the very process that was started: pid and start time).
 */
import type { Readable, Writable } from 'node:stream';
import type { RuntimeContext } from '../context.js';
import type { WaitStatus } from '../../system/libc.js';
import { Supervisor } from './supervisor.js';
import { PortForwarder } from '../port-forwarder.js';

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

/** Starts the init with `start` (run or restore), this process as its parent. */
export async function runInForeground(
  context: RuntimeContext,
  id: string,
  start: (supervisor: Supervisor) => Promise<number>,
  stdio: ForegroundStdio,
): Promise<ForegroundContainer> {
  context.reaper.install();
  const supervisor = new Supervisor({
    id,
    store: context.store,
    reaper: context.reaper,
    foreground: true,
    echo: { stdout: stdio.stdout, stderr: stdio.stderr },
  });
  // Published ports are forwarded by the parent: here, this process.
  const forwarder = new PortForwarder((await context.store.load(id)).ports ?? [], context.logger);
  await forwarder.listen();
  let pid: number;
  try {
    pid = await supervisor.startInit(start);
  } catch (error) {
    await forwarder.close();
    throw error;
  }
  forwarder.switchTo(pid);
  const init = await context.processes.identify(pid);
  if (stdio.stdin) supervisor.forwardInput(stdio.stdin);
  const forward = (signal: NodeJS.Signals) => {
    if (init) void context.processes.signal(init, signal).catch(() => undefined);
  };
  for (const signal of forwardedSignals) process.on(signal, forward);
  const exited = supervisor.superviseInit(pid).finally(async () => {
    for (const signal of forwardedSignals) process.off(signal, forward);
    await forwarder.close();
    await supervisor.close();
  });
  return { pid, exited };
}
