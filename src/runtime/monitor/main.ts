/**
 * The monitor process: `node dist/src/runtime/monitor/main.js <id>`, started detached by `run -d`
 * and `restore -d`. It is the parent of the container's init for as long as the init lives.
 */
import { closeSync, writeSync } from 'node:fs';
import { composeRuntime, resolveContext } from '../composition-root.js';
import { describeError } from '../errors.js';
import { executeJob } from './execute.js';
import { MONITOR_JOB_VARIABLE, type MonitorEnvelope } from './launch.js';
import type { MonitorReport } from './job.js';
import { serializeError } from './report.js';
import { Supervisor } from './supervisor.js';

const REPORT_FD = 3;

function report(message: MonitorReport): void {
  try {
    writeSync(REPORT_FD, JSON.stringify(message));
    closeSync(REPORT_FD);
  } catch {
    // The launching command is gone; the state file still tells what happened.
  }
}

async function main(): Promise<number> {
  const raw = process.env[MONITOR_JOB_VARIABLE];
  if (!raw) {
    console.error(`the monitor expects its job in ${MONITOR_JOB_VARIABLE}`);
    return 2;
  }
  delete process.env[MONITOR_JOB_VARIABLE];
  const { config, job } = JSON.parse(raw) as MonitorEnvelope;
  process.title = `runtime monitor ${job.id}`;
  const context = resolveContext(composeRuntime(config));
  context.reaper.install();
  // Signals for the container go to it through `runtime kill`; the monitor itself ignores them.
  for (const signal of ['SIGINT', 'SIGHUP', 'SIGTERM', 'SIGPIPE'] as const) process.on(signal, () => undefined);

  const supervisor = new Supervisor({ id: job.id, store: context.store, reaper: context.reaper, foreground: false });
  let pid: number;
  try {
    pid = await executeJob(context, supervisor, job);
  } catch (error) {
    context.logger.error(`${job.kind} of ${job.id} failed`, { error: describeError(error) });
    report({ ok: false, error: serializeError(error) });
    await supervisor.close();
    return 1;
  }
  supervisor.startPumping();
  report({ ok: true, pid });
  context.logger.info(`supervising ${job.id}`, { pid });
  const status = await supervisor.superviseInit(pid);
  context.logger.info(`init of ${job.id} ended`, { pid, status });
  await supervisor.close();
  context.reaper.uninstall();
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(describeError(error));
    process.exit(1);
  },
);
