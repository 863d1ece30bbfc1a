/**
 * The monitor's control socket from a test's side: a recording server in place of a monitor, and
 * a raw client that sends one line as it is (for answers Node clients do not parse, and requests
 * they never send).
 */
import net from 'node:net';
import { controlSocketPath, serveControl, type ControlRequest, type ControlResponse } from '../../src/runtime/monitor/control.js';

/** Serves dir's control socket until the test ends; returns the requests, in order, as they come. */
export async function recordingControlServer(
  t: { teardown(fn: () => void): void },
  dir: string,
  answer: (request: ControlRequest) => ControlResponse,
): Promise<ControlRequest[]> {
  const seen: ControlRequest[] = [];
  const server = await serveControl(dir, async (request) => {
    seen.push(request);
    return answer(request);
  });
  t.teardown(() => server.close());
  return seen;
}

/** Sends one raw line to dir's control socket and returns the whole answer. */
export function rawControl(dir: string, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const socket = net.connect(controlSocketPath(dir), () => socket.write(line));
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (text += chunk));
    socket.once('error', reject);
    socket.once('close', () => resolve(text));
  });
}
