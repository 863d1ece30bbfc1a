/**
 * The front of `reset`: asking the container's monitor, which does the whole reset. It loads next
 * to nothing (the record, the control socket), so that `runtime reset` from a test suite costs
 * little more than Node's start; `reset` (reset.ts) falls back to the rest when no monitor is alive.
 */
import { writeFile } from 'node:fs/promises';
import { validateId } from './id.js';
import { pickResetCriuOptions, type ResetAsk, type ResetCriuOptions } from './monitor/protocol.js';
import type { MonitorClient } from './monitor/launch.js';
import type { PublishedPort } from './ports.js';
import { monitorOf } from './state/record.js';
import type { ContainerStore } from './state/store.js';
import type { ProcessService } from '../system/processes.js';

export interface ResetRequest extends ResetCriuOptions {
  readonly id: string;
  /** The snapshot; the newest one when unset. */
  readonly name?: string;
  /** Restore another container's snapshot as this (new) container: a copy. */
  readonly from?: string;
  /** For a copy: host ports to forward into it (`-p`); a container keeps its own otherwise. */
  readonly ports?: readonly PublishedPort[];
  readonly pidFile?: string;
  /**
   * Keep stopped standbys of the snapshot ready (default), so the next reset only switches to
   * one. Each costs the snapshot's memory once more while it waits (little when restored lazily).
   */
  readonly standby?: boolean;
  /** How many standbys (default 2); 0 is standby: false. */
  readonly standbys?: number;
}

export interface MonitorResetServices {
  readonly store: ContainerStore;
  readonly processes: ProcessService;
  readonly monitors: MonitorClient;
}

/**
 * Asks the container's monitor for the reset when one is alive, and returns the new init's pid
 * (written to the pid file); undefined when none is alive to ask.
 */
export async function resetByMonitor(services: MonitorResetServices, request: ResetRequest): Promise<number | undefined> {
  const record = await services.store.load(validateId(request.id));
  const monitor = monitorOf(record);
  if (!monitor || !(await services.processes.isAlive(monitor))) return undefined;
  const ask: ResetAsk = {
    ...(request.name !== undefined ? { name: request.name } : {}),
    ...(request.standby !== undefined ? { standby: request.standby } : {}),
    ...(request.standbys !== undefined ? { standbys: request.standbys } : {}),
    criu: pickResetCriuOptions(request),
  };
  const pid = await services.monitors.ask(record.id, { op: 'reset', reset: ask });
  if (pid !== undefined && request.pidFile) await writeFile(request.pidFile, String(pid));
  return pid;
}
