/**
 * The system's OCI runtime (runc by default, crun selectable), used for one thing: creating the
 * namespaces and the container's init. Everything after start belongs to this runtime.
 */
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { RuntimeError } from './errors.js';
import type { OciRuntimeName } from './config.js';
import { trackChild } from '../system/spawned.js';

export class OciRuntimeError extends RuntimeError {
  readonly code = 'OCI_RUNTIME_FAILED' as const;
  constructor(
    readonly runtime: string,
    readonly operation: string,
    detail: string,
    logPath: string,
  ) {
    super(`${runtime} ${operation} failed: ${detail}`, { hint: `read ${logPath}, and check the bundle's config.json` });
  }
}

export interface OciStartRequest {
  readonly id: string;
  /** The effective bundle (config.json with an absolute root.path). */
  readonly bundle: string;
  /** The runtime's --root for this container. */
  readonly root: string;
  readonly logPath: string;
  /** The init's fds 0-2: runc and crun pass their own stdio through in detached mode. */
  readonly stdio: readonly [number, number, number];
}

export interface OciRuntime {
  /** Creates and starts the container detached; returns the init's pid. */
  start(request: OciStartRequest): Promise<number>;
  /** Forgets the container in the OCI runtime's own state (the runtime keeps its own). */
  forget(request: Pick<OciStartRequest, 'id' | 'root'>): Promise<void>;
}

export const OCI_RUNTIME = Symbol('OciRuntime');

export class CommandOciRuntime implements OciRuntime {
  constructor(private readonly name: OciRuntimeName) {}

  async start(request: OciStartRequest): Promise<number> {
    const pidFile = path.join(path.dirname(request.logPath), 'init.pid');
    const args = [
      '--root',
      request.root,
      '--log',
      request.logPath,
      '--log-format',
      'json',
      'run',
      '--detach',
      '--pid-file',
      pidFile,
      '--bundle',
      request.bundle,
      request.id,
    ];
    // The fds go to the init as they are (runc and crun pass their stdio through when detached).
    const exit = await new Promise<{ code: number | null; error?: Error }>((resolve) => {
      const child = trackChild(spawn(this.name, args, { stdio: [...request.stdio] }));
      child.once('error', (error) => resolve({ code: null, error }));
      child.once('exit', (code) => resolve({ code }));
    });
    if (exit.code !== 0) {
      const fallback = exit.error ? exit.error.message : `exit status ${exit.code}`;
      throw new OciRuntimeError(this.name, 'run', await this.lastLogError(request.logPath, fallback), request.logPath);
    }
    const pid = Number((await readFile(pidFile, 'utf8')).trim());
    await rm(pidFile, { force: true });
    return pid;
  }

  async forget(request: Pick<OciStartRequest, 'id' | 'root'>): Promise<void> {
    await rm(path.join(request.root, request.id), { recursive: true, force: true });
  }

  private async lastLogError(logPath: string, fallback: string): Promise<string> {
    const text = await readFile(logPath, 'utf8').catch(() => '');
    const messages = text
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => {
        try {
          const entry = JSON.parse(line) as { level?: string; msg?: string };
          return entry.level === 'error' ? entry.msg : undefined;
        } catch {
          return undefined;
        }
      })
      .filter((m): m is string => m !== undefined);
    return messages.at(-1) ?? fallback;
  }
}
