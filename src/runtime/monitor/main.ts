/**
 * The monitor process: `node dist/src/runtime/monitor/main.js <id>`, started detached by `run -d`
 * and `restore -d`. It is the parent of the container's init for as long as the init lives.
 */
import { closeSync, writeSync } from 'node:fs';
import { composeRuntime, resolveContext } from '../composition-root.js';
import { describeError } from '../errors.js';
import { startFirstInstance } from './execute.js';
import { MONITOR_JOB_VARIABLE, type MonitorEnvelope } from './launch.js';
import type { MonitorReport } from './job.js';
import { serializeError } from './report.js';
import { Supervisor } from './supervisor.js';
import { ContainerMonitor } from './container-monitor.js';
import { writeFile } from 'node:fs/promises';

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

  const monitor = new ContainerMonitor(context, job.id);
  let pid: number;
  try {
    if (job.kind === 'reset') {
      pid = await monitor.resetFirst(job.reset);
    } else {
      const supervisor = new Supervisor({ id: job.id, store: context.store, reaper: context.reaper, foreground: false });
      pid = await startFirstInstance(context, supervisor, job);
      await monitor.adopt(pid, supervisor);
    }
    if (job.kind === 'reset' && job.pidFile) await writeFile(job.pidFile, String(pid));
  } catch (error) {
    context.logger.error(`${job.kind} of ${job.id} failed`, { error: describeError(error) });
    report({ ok: false, error: serializeError(error) });
    await monitor.shutdown().catch(() => undefined);
    return 1;
  }
  report({ ok: true, pid });
  context.logger.info(`supervising ${job.id}`, { pid });
  const status = await monitor.untilEnded();
  context.logger.info(`${job.id} ended`, { status });
  await monitor.shutdown();
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
