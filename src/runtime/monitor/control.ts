/**
 * The monitor's control socket (<stateRoot>/<id>/monitor.sock): a reset is asked of the process
 * that is the container's parent, which keeps its modules loaded, its CRIU checked, and a
 * standby instance ready. One JSON line each way per connection.
 */
import net from 'node:net';
import path from 'node:path';
import { RuntimeError } from '../errors.js';
import { CONTROL_SOCKET_NAME } from '../state/store.js';
import {
  parseControlRequest,
  parseControlResponse,
  ProtocolError,
  type ControlRequest,
  type ControlResponse,
  type ResetAnswer,
  type ResetControlRequest,
} from './protocol.js';

export class MonitorTimeoutError extends RuntimeError {
  readonly code = 'MONITOR_TIMEOUT' as const;
  constructor(stateDir: string, timeoutMs: number) {
    super(`the monitor did not answer within ${timeoutMs / 1000} s`, { hint: `read ${path.join(stateDir, 'monitor.log')}` });
  }
}

export type { ControlRequest, ControlResponse, ResetAnswer } from './protocol.js';

export function controlSocketPath(stateDir: string): string {
  return path.join(stateDir, CONTROL_SOCKET_NAME);
}

/**
 * Asks a container's monitor for a reset; undefined when no monitor listens there (none runs,
 * or it is an older one) or it ended before it answered, so the caller falls back to starting a
 * monitor of its own.
 */
export function sendControl(stateDir: string, request: ResetControlRequest, timeoutMs = 120_000): Promise<ResetAnswer | undefined> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(controlSocketPath(stateDir));
    let text = '';
    let connected = false;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new MonitorTimeoutError(stateDir, timeoutMs));
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.once('connect', () => {
      connected = true;
      socket.write(`${JSON.stringify(request)}\n`);
    });
    socket.on('data', (chunk: string) => (text += chunk));
    socket.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (!connected && (error.code === 'ENOENT' || error.code === 'ECONNREFUSED')) resolve(undefined);
      else reject(error);
    });
    socket.once('close', () => {
      clearTimeout(timer);
      if (!connected) return;
      // Closed without a word: the monitor ended before it answered (killed as it was asked).
      if (text === '') return resolve(undefined);
      try {
        resolve(parseControlResponse(text));
      } catch (error) {
        reject(error);
      }
    });
  });
}

export interface ControlServer {
  close(): void;
  /** Resolves once every answer being worked on has been sent. */
  idle(): Promise<void>;
}

/** Serves requests; `handle` may take as long as it needs. */
export function serveControl(stateDir: string, handle: (request: ControlRequest) => Promise<ControlResponse>): Promise<ControlServer> {
  const pending = new Set<Promise<void>>();
  const server = net.createServer((socket) => {
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      text += chunk;
      const newline = text.indexOf('\n');
      if (newline < 0) return;
      const line = text.slice(0, newline);
      text = '';
      let request: ControlRequest;
      try {
        request = parseControlRequest(line);
      } catch (error) {
        const message = error instanceof ProtocolError ? error.message : 'malformed control request';
        socket.end(JSON.stringify({ ok: false, error: { code: 'MONITOR_PROTOCOL', message }, display: message }));
        return;
      }
      const answered: Promise<void> = handle(request)
        .then((response) => new Promise<void>((resolve) => socket.end(JSON.stringify(response), resolve)))
        .finally(() => pending.delete(answered));
      pending.add(answered);
    });
    socket.on('error', () => undefined);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(controlSocketPath(stateDir), () =>
      resolve({
        close: () => server.close(),
        idle: async () => {
          while (pending.size > 0) await Promise.allSettled([...pending]);
        },
      }),
    );
  });
}
