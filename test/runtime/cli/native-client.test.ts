/**
 * The native front (src/runtime/cli/native/client.c), compiled here with a recording fake in place
 * of node and a fake monitor (the real control server, a recording handler) in place of the
 * container's: what it asks, what it prints, and that everything else reaches the Node CLI
 * unchanged.
 */
import test from 'ava';
import { execa } from 'execa';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { controlSocketPath, type ControlRequest, type ControlResponse } from '../../../src/runtime/monitor/control.js';
import { resetByMonitor, type ResetRequest } from '../../../src/runtime/reset-by-monitor.js';
import type { MonitorResetServices } from '../../../src/runtime/reset-by-monitor.js';
import { tempDir } from '../fixtures.js';
import { buildNativeClient } from '../../helpers/native-client.js';
import { recordingControlServer } from '../../helpers/control.js';

interface Built {
  readonly dir: string;
  readonly binary: string;
  readonly defaultRoot: string;
}

let built: Built;

test.before(async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'runtime-native-'));
  const binary = path.join(dir, 'pkg/dist/bin/runtime');
  const fakeNode = path.join(dir, 'fake-node');
  await mkdir(path.dirname(binary), { recursive: true });
  // The fake node records its arguments, one per line, in $FAKE_NODE_RECORD and exits 42.
  await writeFile(fakeNode, `#!/bin/sh\nprintf '%s\\n' "$@" > "$FAKE_NODE_RECORD"\nexit 42\n`);
  await chmod(fakeNode, 0o755);
  const defaultRoot = path.join(dir, 'default-root');
  await buildNativeClient({ output: binary, nodeBinary: fakeNode, defaultStateRoot: defaultRoot, answerTimeoutMs: 600 });
  built = { dir, binary, defaultRoot };
});

test.after.always(async () => {
  if (built) await rm(built.dir, { recursive: true, force: true });
});

interface Run {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
  /** The arguments the Node CLI was given, when the front handed over. */
  readonly handedOver?: string[];
}

let runs = 0;

async function run(args: readonly string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  const record = path.join(built.dir, `node-argv-${++runs}`);
  const result = await execa(built.binary, args, {
    reject: false,
    stripFinalNewline: false,
    env: { RUNTIME_CONFIG: undefined, ...env, FAKE_NODE_RECORD: record },
  });
  const recorded = await readFile(record, 'utf8').catch(() => undefined);
  return {
    exitCode: result.exitCode ?? -1,
    stdout: String(result.stdout),
    stderr: String(result.stderr),
    ...(recorded !== undefined ? { handedOver: recorded.split('\n').slice(0, -1) } : {}),
  };
}

/** A fake monitor for container `id` under root: records the requests, answers with `answer`. */
async function fakeMonitor(
  t: { teardown(fn: () => void): void },
  root: string,
  id: string,
  answer: (request: ControlRequest) => ControlResponse,
): Promise<ControlRequest[]> {
  const dir = path.join(root, id);
  await mkdir(dir, { recursive: true });
  return recordingControlServer(t, dir, answer);
}

/** What the Node CLI sends for the same request (reset-by-monitor.ts), through a recording client. */
async function nodeAsk(request: ResetRequest): Promise<unknown> {
  let asked: unknown;
  const services = {
    store: { load: async (id: string) => ({ id, status: 'running', monitor: { pid: 1, startTime: 1 } }) },
    processes: { isAlive: async () => true },
    monitors: {
      ask: async (_id: string, control: unknown) => {
        asked = control;
        return 7;
      },
    },
  } as unknown as MonitorResetServices;
  await resetByMonitor(services, request);
  return asked;
}

const ok = (pid: number): ControlResponse => ({ ok: true, pid });

test('a plain reset: the request the Node CLI sends, the line it prints, and the pid file', async (t) => {
  const root = await tempDir(t);
  const seen = await fakeMonitor(t, root, 'db', () => ok(4321));
  const pidFile = path.join(root, 'pid');
  const result = await run(['reset', '--pid-file', pidFile, 'db', 'pristine'], { RUNTIME_ROOT: root });
  t.is(result.exitCode, 0, result.stderr);
  t.is(result.handedOver, undefined);
  t.deepEqual(seen, [await nodeAsk({ id: 'db', name: 'pristine' })]);
  t.regex(result.stderr, /^reset db to pristine: init pid 4321 \(\d+ ms\)\n$/);
  t.is(result.stdout, '');
  t.is(await readFile(pidFile, 'utf8'), '4321');
});

test('reset flags become the fields the Node CLI sets, and only those', async (t) => {
  const root = await tempDir(t);
  const seen = await fakeMonitor(t, root, 'db', () => ok(5));
  const cases: { readonly args: string[]; readonly request: ResetRequest }[] = [
    { args: ['db'], request: { id: 'db' } },
    { args: ['--no-standby', 'db', 'base'], request: { id: 'db', name: 'base', standby: false } },
    { args: ['db', '--standbys', '007'], request: { id: 'db', standbys: 7 } },
    { args: ['--no-lazy-pages', 'db'], request: { id: 'db', lazyPages: false } },
    { args: ['--lazy-pages', '--tcp-established', 'db'], request: { id: 'db', lazyPages: true, tcpEstablished: true } },
    {
      args: ['--ext-unix-sk', '--shell-job', '--file-locks', 'db', 'a "quoted" \\ name'],
      request: { id: 'db', name: 'a "quoted" \\ name', extUnixSk: true, shellJob: true, fileLocks: true },
    },
  ];
  for (const { args, request } of cases) {
    const result = await run(['reset', ...args], { RUNTIME_ROOT: root });
    t.is(result.exitCode, 0, `${args.join(' ')}: ${result.stderr}`);
    t.deepEqual(seen.pop(), await nodeAsk(request), args.join(' '));
  }
});

test('--root before the command, and the default state root when neither it nor RUNTIME_ROOT is given', async (t) => {
  const root = await tempDir(t);
  const seen = await fakeMonitor(t, root, 'db', () => ok(9));
  const result = await run(['--root', root, 'reset', 'db'], { RUNTIME_ROOT: '/nonexistent' });
  t.is(result.exitCode, 0, result.stderr);
  t.is(seen.length, 1);

  const fallback = await fakeMonitor(t, built.defaultRoot, 'dflt', () => ok(10));
  const viaDefault = await run(['reset', 'dflt'], { RUNTIME_ROOT: undefined });
  t.is(viaDefault.exitCode, 0, viaDefault.stderr);
  t.is(fallback.length, 1);
});

test("a failed reset prints the monitor's rendering of the error, exactly, and exits 1", async (t) => {
  const root = await tempDir(t);
  const display = 'no snapshot named "nope" of db — ünïcødé 🐘\n  hint: run `runtime snapshots db`';
  await fakeMonitor(t, root, 'db', () => ({ ok: false, error: { code: 'SNAPSHOT_NOT_FOUND', message: 'no snapshot' }, display }));
  const result = await run(['reset', 'db', 'nope'], { RUNTIME_ROOT: root });
  t.is(result.exitCode, 1);
  t.is(result.stderr, `runtime: ${display}\n`);
  t.is(result.handedOver, undefined, 'a reset is never asked twice');
});

test("state prints the monitor's rendering of the state on stdout", async (t) => {
  const root = await tempDir(t);
  const display = JSON.stringify({ ociVersion: '1.0.2', id: 'db', status: 'running', pid: 77, bundle: '/b', annotations: {} }, null, 2);
  const seen = await fakeMonitor(t, root, 'db', () => ({ ok: true, display }));
  const result = await run(['state', 'db'], { RUNTIME_ROOT: root });
  t.is(result.exitCode, 0, result.stderr);
  t.is(result.stdout, `${display}\n`);
  t.deepEqual(seen, [{ op: 'state' }]);
});

test('a monitor that does not know state requests (an older one): the Node CLI answers', async (t) => {
  const root = await tempDir(t);
  await fakeMonitor(t, root, 'db', () => ({ ok: false, error: { code: 'MONITOR_PROTOCOL', message: 'the control request was not understood' } }));
  const result = await run(['state', 'db'], { RUNTIME_ROOT: root });
  t.is(result.exitCode, 42);
  t.deepEqual(result.handedOver, [path.join(built.dir, 'pkg/bin/runtime.js'), 'state', 'db']);
});

test('everything else goes to the Node CLI with the same arguments', async (t) => {
  const root = await tempDir(t);
  const seen = await fakeMonitor(t, root, 'db', () => ok(1));
  const script = path.join(built.dir, 'pkg/bin/runtime.js');
  const handedOver: { readonly args: string[]; readonly env?: Record<string, string | undefined> }[] = [
    { args: [] },
    { args: ['--help'] },
    { args: ['list'] },
    { args: ['checkpoint', 'db'] },
    { args: ['reset', '--help', 'db'] },
    { args: ['reset', '--manage-cgroups-mode', 'soft', 'db'] },
    { args: ['reset', '--standbys=2', 'db'] },
    { args: ['reset', '--standbys', 'many', 'db'] },
    { args: ['reset', '--lazy-pages', '--no-lazy-pages', 'db'] },
    { args: ['reset', '--no-standby', '--no-standby', 'db'] },
    { args: ['reset', 'db', 'base', 'extra'] },
    { args: ['reset', '../etc', 'base'] },
    { args: ['reset', 'db', 'bad\tname'] },
    { args: ['state', 'db', 'more'] },
    { args: ['state', '--json', 'db'] },
    { args: ['--debug', 'reset', 'db'] },
    { args: ['reset', 'db'], env: { RUNTIME_ROOT: '' } },
    { args: ['reset', 'db'], env: { RUNTIME_ROOT: undefined, RUNTIME_CONFIG: '/some/config.json' } },
    // No monitor listens for this one: a stopped or checkpointed container is the Node CLI's.
    { args: ['reset', 'other'] },
  ];
  for (const { args, env } of handedOver) {
    const result = await run(args, { RUNTIME_ROOT: root, ...env });
    t.is(result.exitCode, 42, args.join(' '));
    t.deepEqual(result.handedOver, [script, ...args], args.join(' '));
  }
  t.deepEqual(seen, [], 'the monitor was never asked');
});

test('a monitor that never answers is an error; one that closes without a word (it ended as it was asked) leaves the reset to the Node CLI', async (t) => {
  const root = await tempDir(t);
  await mkdir(path.join(root, 'mute'), { recursive: true });
  await mkdir(path.join(root, 'gone'), { recursive: true });
  const mute = net.createServer(() => undefined).listen(controlSocketPath(path.join(root, 'mute')));
  const gone = net.createServer((socket) => socket.end()).listen(controlSocketPath(path.join(root, 'gone')));
  t.teardown(() => {
    mute.close();
    gone.close();
  });
  const silent = await run(['reset', 'mute'], { RUNTIME_ROOT: root });
  t.is(silent.exitCode, 1);
  t.is(silent.stderr, `runtime: the monitor did not answer within 0.6 s\n  hint: read ${path.join(root, 'mute')}/monitor.log\n`);
  // The Node CLI asks again, and starts a new monitor if that one is gone: the container is
  // reset to its snapshot either way.
  const closed = await run(['reset', 'gone'], { RUNTIME_ROOT: root });
  t.is(closed.exitCode, 42);
  t.deepEqual(closed.handedOver, [path.join(built.dir, 'pkg/bin/runtime.js'), 'reset', 'gone']);
  // A reset answered without a pid is an error too, never asked again.
  await fakeMonitor(t, root, 'nopid', () => ({ ok: true }) as unknown as ControlResponse);
  const noPid = await run(['reset', 'nopid'], { RUNTIME_ROOT: root });
  t.is(noPid.exitCode, 1);
  t.is(noPid.stderr, `runtime: the monitor's answer was not understood: no pid in {"ok":true}\n`);
  t.is(noPid.handedOver, undefined);
});
