import test from 'ava';
import { once } from 'node:events';
import net from 'node:net';
import { controlSocketPath, sendControl, serveControl, type ControlRequest } from '../../../src/runtime/monitor/control.js';
import { rawControl, recordingControlServer } from '../../helpers/control.js';
import { tempDir } from '../fixtures.js';

const request: ControlRequest = { op: 'reset', reset: { name: 'warm', criu: {}, standby: true } };

test('a request reaches the handler and its answer comes back', async (t) => {
  const dir = await tempDir(t);
  const seen = await recordingControlServer(t, dir, () => ({ ok: true, pid: 42 }));
  t.deepEqual(await sendControl(dir, request), { ok: true, pid: 42 });
  t.deepEqual(seen, [request]);
});

test('errors travel back as data', async (t) => {
  const dir = await tempDir(t);
  const server = await serveControl(dir, async () => ({ ok: false, error: { code: 'SNAPSHOT_NOT_FOUND', message: 'no snapshot' } }));
  t.teardown(() => server.close());
  t.deepEqual(await sendControl(dir, request), { ok: false, error: { code: 'SNAPSHOT_NOT_FOUND', message: 'no snapshot' } });
});

test('no monitor listening is not an error: the caller starts one', async (t) => {
  t.is(await sendControl(await tempDir(t), request), undefined);
});

test('idle waits for answers still being worked on', async (t) => {
  const dir = await tempDir(t);
  let release!: () => void;
  const server = await serveControl(dir, () => new Promise((resolve) => (release = () => resolve({ ok: true, pid: 1 }))));
  const answer = sendControl(dir, request);
  while (!release) await new Promise((r) => setTimeout(r, 5));
  let idle = false;
  const waiting = server.idle().then(() => (idle = true));
  await new Promise((r) => setTimeout(r, 20));
  t.false(idle);
  release();
  await waiting;
  t.deepEqual(await answer, { ok: true, pid: 1 });
  server.close();
});

test('a malformed request is answered with the protocol error, its text included for a client that prints it', async (t) => {
  const dir = await tempDir(t);
  const seen = await recordingControlServer(t, dir, () => ({ ok: true, pid: 1 }));
  const answer = await rawControl(dir, '{"op":"launch"}\n');
  const parsed = JSON.parse(answer) as { ok: boolean; error: { code: string; message: string }; display: string };
  t.false(parsed.ok);
  t.is(parsed.error.code, 'MONITOR_PROTOCOL');
  t.regex(parsed.display, /^the control request was not understood: /);
  t.is(parsed.display, parsed.error.message);
  t.deepEqual(seen, []);
});

test('a monitor that closes without a word (it ended as it was asked) is no answer: the caller starts one', async (t) => {
  const dir = await tempDir(t);
  const server = net.createServer((socket) => socket.end()).listen(controlSocketPath(dir));
  t.teardown(() => void server.close());
  await once(server, 'listening');
  t.is(await sendControl(dir, request), undefined);
});
