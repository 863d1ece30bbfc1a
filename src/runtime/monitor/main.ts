/**
 * The monitor process: `node dist/src/runtime/monitor/main.js <id>`, started detached by `run -d`,
 * `restore -d` and a reset with no monitor alive. Its job and configuration come in the
 * environment; its report goes out on fd 3. The work is in container-monitor.ts.
 */
import { closeSync, writeSync } from 'node:fs';
import { composeRuntime, resolveContext } from '../composition-root.js';
import { describeError } from '../errors.js';
import { MONITOR_JOB_VARIABLE } from './launch.js';
import { parseMonitorEnvelope, type MonitorReport } from './protocol.js';
import { superviseContainer } from './container-monitor.js';

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
  const { config, job } = parseMonitorEnvelope(raw);
  process.title = `runtime monitor ${job.id}`;
  const context = resolveContext(composeRuntime(config));
  // Every child the monitor starts is registered (spawned.ts): the stray tasks of a failed
  // restore, reparented here, are reaped as they end, however long the monitor lives.
  context.reaper.install({ reapEveryChild: true });
  // Signals for the container go to it through `runtime kill`; the monitor itself ignores them.
  for (const signal of ['SIGINT', 'SIGHUP', 'SIGTERM', 'SIGPIPE'] as const) process.on(signal, () => undefined);
  const code = await superviseContainer(context, job, report);
  context.reaper.uninstall();
  return code;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(describeError(error));
    process.exit(1);
  },
);
