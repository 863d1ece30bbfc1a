/**
 * Starting a detached monitor: a runtime process of its own (new session, no terminal) that
 * becomes the init's parent, reports once the init runs, and stays to reap it. The job and the
 * configuration travel in the environment; the report comes back on the monitor's fd 3.
 */
import { spawn } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RuntimeContext } from '../context.js';
import type { MonitorJob, MonitorReport } from './job.js';
import { deserializeError, MonitorFailedError } from './report.js';

export const MONITOR_JOB_VARIABLE = 'RUNTIME_MONITOR_JOB';
const monitorScript = path.join(path.dirname(fileURLToPath(import.meta.url)), 'main.js');

export interface MonitorEnvelope {
  readonly config: RuntimeContext['config'];
  readonly job: MonitorJob;
}

/** Returns the init's pid once the monitor reports it running; throws what the monitor reported. */
export async function launchMonitor(context: RuntimeContext, job: MonitorJob): Promise<number> {
  const logPath = context.store.paths(job.id).monitorLog;
  const logFd = openSync(logPath, 'a', 0o600);
  const envelope: MonitorEnvelope = { config: context.config, job };
  let child;
  try {
    child = spawn(process.execPath, [monitorScript, job.id], {
      detached: true,
      stdio: ['ignore', logFd, logFd, 'pipe'],
      env: { ...process.env, [MONITOR_JOB_VARIABLE]: JSON.stringify(envelope) },
    });
  } finally {
    closeSync(logFd);
  }
  const channel = child.stdio[3] as NodeJS.ReadableStream;
  let text = '';
  channel.setEncoding('utf8');
  channel.on('data', (chunk: string) => (text += chunk));
  const exited = new Promise<string>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? `status ${code}`)));
  await new Promise<void>((resolve) => {
    channel.once('end', resolve);
    channel.once('error', () => resolve());
  });
  (channel as unknown as { destroy?: () => void }).destroy?.();
  child.unref();
  if (text.trim() === '') {
    const how = await Promise.race([exited, new Promise<string>((r) => setTimeout(r, 1000, 'still running'))]);
    throw new MonitorFailedError('MONITOR_DIED', `the monitor of ${job.id} ended without reporting (${how})`, undefined, logPath);
  }
  const report = JSON.parse(text) as MonitorReport;
  if (!report.ok) throw deserializeError(report.error, logPath);
  return report.pid;
}
