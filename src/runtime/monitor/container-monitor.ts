/**
 * The life of a monitor process, the parent of one container's init for as long as the
 * container lives, across resets: it does its job (start, restore, or a first reset), reports the
 * outcome to the command that launched it, serves resets on the container's control socket, and
 * ends once the container has ended on its own.
 */
import { rm, writeFile } from 'node:fs/promises';
import type { RuntimeContext } from '../context.js';
import { describeError } from '../errors.js';
import { startContainer } from '../run.js';
import { restoreContainer } from '../restore.js';
import { Resetter, resetAsked } from '../reset.js';
import { formatState, state } from '../state.js';
import { serveControl, type ControlServer } from './control.js';
import { deserializeError, serializeError, type ControlRequest, type ControlResponse, type MonitorJob, type MonitorReport } from './protocol.js';
import { Supervisor } from './supervisor.js';
import { PortForwarder } from '../port-forwarder.js';

/** Runs the job and supervises the container until it ends; returns the process's exit code. */
export async function superviseContainer(context: RuntimeContext, job: MonitorJob, report: (message: MonitorReport) => void): Promise<number> {
  // Published ports follow the container's current instance, across resets.
  const forwarder = new PortForwarder((await context.store.load(job.id).catch(() => undefined))?.ports ?? [], context.logger);
  const resetter = new Resetter(context, job.id, (pid) => forwarder.switchTo(pid));
  const socket = context.store.paths(job.id).controlSocket;
  let server: ControlServer | undefined;
  const shutdown = async (): Promise<void> => {
    server?.close();
    await server?.idle();
    await rm(socket, { force: true });
    await forwarder.close();
    await resetter.shutdown();
  };

  let pid: number;
  try {
    // The host ports are taken before anything starts: a port in use fails the job at once.
    await forwarder.listen();
    if (job.kind === 'reset') {
      pid = await resetter.reset(job.reset);
      if (job.pidFile) await writeFile(job.pidFile, String(pid));
    } else {
      const supervisor = new Supervisor({ id: job.id, store: context.store, reaper: context.reaper, foreground: false });
      pid = await supervisor.startInit((s) => (job.kind === 'run' ? startContainer(context, s, job) : restoreContainer(context, s, job)));
      await resetter.adopt(pid, supervisor);
    }
    await rm(socket, { force: true });
    server = await serveControl(context.store.paths(job.id).dir, (request) => answer(context, job.id, resetter, request));
  } catch (error) {
    context.logger.error(`${job.kind} of ${job.id} failed`, { error: describeError(error) });
    report({ ok: false, error: serializeError(error) });
    await shutdown().catch(() => undefined);
    return 1;
  }
  report({ ok: true, pid });
  context.logger.info(`supervising ${job.id}`, { pid });
  const status = await resetter.untilEnded();
  context.logger.info(`${job.id} ended`, { status });
  await shutdown();
  return 0;
}

async function answer(context: RuntimeContext, id: string, resetter: Resetter, request: ControlRequest): Promise<ControlResponse> {
  const what = request.op === 'reset' ? 'reset' : 'state';
  try {
    if (request.op === 'state') return { ok: true, display: formatState(await state(context, id)) };
    return { ok: true, pid: await resetAsked(context, resetter, id, request.reset) };
  } catch (error) {
    context.logger.error(`${what} of ${id} failed`, { error: describeError(error) });
    const serialized = serializeError(error);
    // The text the Node CLI would print for the error it rebuilds from `serialized`.
    return { ok: false, error: serialized, display: describeError(deserializeError(serialized, context.store.paths(id).monitorLog)) };
  }
}
