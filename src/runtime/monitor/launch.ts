/**
 * Reaching a container's monitor process (an injection token, so a test can record it): start
 * one, detached (new session, no terminal), which becomes the init's parent, reports once the
 * init runs, and stays to reap it; or ask a running one for a reset over its control socket. The
 * job and the configuration travel in the environment; the report comes back on the monitor's
 * fd 3.
 */
import { spawn } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RuntimeConfig } from '../config.js';
import { RuntimeError } from '../errors.js';
import type { ContainerStore } from '../state/store.js';
import { sendControl } from './control.js';
import { deserializeError, parseMonitorReport, type ResetControlRequest, type MonitorEnvelope, type MonitorJob } from './protocol.js';

export const MONITOR_JOB_VARIABLE = 'RUNTIME_MONITOR_JOB';
const monitorScript = path.join(path.dirname(fileURLToPath(import.meta.url)), 'main.js');

export class MonitorDiedError extends RuntimeError {
  readonly code = 'MONITOR_DIED' as const;
  constructor(id: string, how: string, logPath: string) {
    super(`the monitor of ${id} ended without reporting (${how})`, { hint: `read ${logPath}` });
  }
}

export class MonitorStartError extends RuntimeError {
  readonly code = 'MONITOR_START_FAILED' as const;
  constructor(id: string, cause: Error | undefined) {
    super(`the monitor of ${id} could not be started: ${cause?.message ?? 'no channel to it'}`, {
      hint: 'the system may be out of processes or file descriptors; try again once fewer run',
    });
  }
}

export interface MonitorClient {
  /** Starts a monitor for the job; resolves with the init's pid once it runs, or throws what it reported. */
  launch(job: MonitorJob): Promise<number>;
  /**
   * Asks the container's running monitor; resolves with its new init's pid, undefined when no
   * monitor listens (the caller then starts one), or throws the error it answered with.
   */
  ask(id: string, request: ResetControlRequest): Promise<number | undefined>;
}

export class ProcessMonitorClient implements MonitorClient {
  constructor(
    private readonly config: RuntimeConfig,
    private readonly store: ContainerStore,
  ) {}

  async launch(job: MonitorJob): Promise<number> {
    const logPath = this.store.paths(job.id).monitorLog;
    const logFd = openSync(logPath, 'a', 0o600);
    // The monitor uses the container's own CRIU when the job names one.
    const envelope: MonitorEnvelope = { config: job.criuBinary ? { ...this.config, criu: job.criuBinary } : this.config, job };
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
    // A monitor that could not be started (no process to be had: EAGAIN) is told by an 'error'
    // event, which unheard would end the caller's whole process.
    let failed: Error | undefined;
    const started = new Promise<void>((resolve) =>
      child.on('error', (error) => {
        failed ??= error;
        resolve();
      }),
    );
    // Out of descriptors (EMFILE, ENFILE), Node gives the child no stdio at all.
    const channel = child.stdio?.[3] as NodeJS.ReadableStream | null | undefined;
    if (!channel) throw new MonitorStartError(job.id, await started.then(() => failed));
    let text = '';
    channel.setEncoding('utf8');
    channel.on('data', (chunk: string) => (text += chunk));
    const exited = new Promise<string>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? `status ${code}`)));
    await Promise.race([
      started,
      new Promise<void>((resolve) => {
        channel.once('end', resolve);
        channel.once('error', () => resolve());
      }),
    ]);
    if (failed) throw new MonitorStartError(job.id, failed);
    (channel as unknown as { destroy?: () => void }).destroy?.();
    child.unref();
    if (text.trim() === '') {
      const how = await Promise.race([exited, new Promise<string>((r) => setTimeout(r, 1000, 'still running'))]);
      throw new MonitorDiedError(job.id, how, logPath);
    }
    const report = parseMonitorReport(text);
    if (!report.ok) throw deserializeError(report.error, logPath);
    return report.pid;
  }

  async ask(id: string, request: ResetControlRequest): Promise<number | undefined> {
    const paths = this.store.paths(id);
    const response = await sendControl(paths.dir, request);
    if (!response) return undefined;
    if (!response.ok) throw deserializeError(response.error, paths.monitorLog);
    return response.pid;
  }
}
