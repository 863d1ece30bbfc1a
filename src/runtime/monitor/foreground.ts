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
import type { ProcessIdentity } from '../../system/processes.js';

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
  // The handlers are there before anything starts: a Ctrl-C while runc or CRIU is at work would
  // otherwise end this process and leave the container running with no parent of the runtime's.
  // A signal that comes before the init is known is passed on as soon as it is.
  let init: ProcessIdentity | undefined;
  const pending: NodeJS.Signals[] = [];
  // Under the container's lock, as `runtime kill`: a signal that came while CRIU's code runs in
  // the init (a checkpoint at work) would make CRIU give the dump up. One that has waited out the
  // lock's timeout goes all the same: the user asked for it.
  const deliver = (target: ProcessIdentity, signal: NodeJS.Signals) =>
    void context.store
      .withLock(id, () => context.processes.signal(target, signal))
      .catch(() => context.processes.signal(target, signal))
      .catch(() => undefined);
  const forward = (signal: NodeJS.Signals) => {
    if (init) deliver(init, signal);
    else pending.push(signal);
  };
  for (const signal of forwardedSignals) process.on(signal, forward);
  const stopForwarding = () => {
    for (const signal of forwardedSignals) process.off(signal, forward);
  };
  const supervisor = new Supervisor({
    id,
    store: context.store,
    reaper: context.reaper,
    foreground: true,
    echo: { stdout: stdio.stdout, stderr: stdio.stderr },
  });
  let forwarder: PortForwarder | undefined;
  let pid: number;
  try {
    // Published ports are forwarded by the parent: here, this process.
    forwarder = new PortForwarder((await context.store.load(id)).ports ?? [], context.logger);
    await forwarder.listen();
    pid = await supervisor.startInit(start);
  } catch (error) {
    stopForwarding();
    await forwarder?.close();
    throw error;
  }
  const ports = forwarder;
  ports.switchTo(pid);
  init = await context.processes.identify(pid);
  for (const signal of pending.splice(0)) forward(signal);
  if (stdio.stdin) supervisor.forwardInput(stdio.stdin);
  const exited = supervisor.superviseInit(pid).finally(async () => {
    stopForwarding();
    await ports.close();
    await supervisor.close();
  });
  return { pid, exited };
}
