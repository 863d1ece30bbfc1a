/**
 * migrate with the fake runtime: its refusals, each before anything stops and before any
 * connection is made (the destination address is one nothing listens on); and pre-copy's rounds
 * (which this kernel cannot run: no soft-dirty) against a real receiver on the loopback, both
 * hosts' CRIU and monitors recording.
 */
import 'reflect-metadata';
import test from 'ava';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, readlink, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { runDetached } from '../../../src/runtime/run.js';
import { migrate, MigrationFailedError } from '../../../src/runtime/migration/migrate.js';
import { fakeRuntime, runningContainer, type FakeRuntime } from '../../helpers/fake-runtime.js';
import { loopbackReceiver } from '../../helpers/receiver.js';
import { freePort } from '../../../src/system/free-port.js';
import { withPycriu } from '../inspection/helpers.js';

const tls = { cert: '/nonexistent/cert.pem', key: '/nonexistent/key.pem', ca: '/nonexistent/ca.pem' };
const to = { host: '127.0.0.1', port: 9 };

/** A runtime where a container (db unless named, with the ports it publishes) was run and its init started. */
async function running(
  t: Parameters<typeof fakeRuntime>[0],
  id = 'db',
  ports: Parameters<typeof runDetached>[1]['ports'] = undefined,
): Promise<FakeRuntime> {
  const runtime = await fakeRuntime(t);
  await runDetached(runtime.context, { id, bundle: runtime.bundleDir, ...(ports ? { ports } : {}) });
  const init = runtime.fakes.processes.spawn({ comm: 'postgres' });
  const { store } = runtime.context;
  await store.withLock(id, async () => store.commit(await store.load(id), { kind: 'started', init: { pid: init.pid, startTime: init.startTime } }));
  return runtime;
}

test('pre-copy without the kernel memory tracking is refused before anything stops', async (t) => {
  const runtime = await running(t);
  runtime.fakes.criu.setFeatures({ mem_track: false, lazy_pages: true });
  const error = await t.throwsAsync(migrate(runtime.context, { id: 'db', to, tls, preDump: 3 }));
  t.is((error as { code?: string }).code, 'MIGRATION_PRE_COPY_UNAVAILABLE');
  t.regex(error?.message ?? '', /soft-dirty/);
  t.deepEqual(runtime.fakes.criu.dumps, []);
  t.is((await runtime.context.store.load('db')).status, 'running');
});

test('post-copy and pre-copy together, a bad number of pre-dumps, and a container that does not run are refused', async (t) => {
  const runtime = await running(t);
  for (const [request, code] of [
    [{ lazy: true, preDump: 2 }, 'USAGE'],
    [{ preDump: 99 }, 'USAGE'],
  ] as const) {
    const error = await t.throwsAsync(migrate(runtime.context, { id: 'db', to, tls, ...request }));
    t.is((error as { code?: string }).code, code);
  }
  const missing = await t.throwsAsync(migrate(runtime.context, { id: 'nothing', to, tls }));
  t.is((missing as { code?: string }).code, 'CONTAINER_NOT_FOUND');
  t.deepEqual(runtime.fakes.criu.dumps, []);
});

/** A source with web1 running, a destination receiving on the loopback (its monitor answers as if it restored), and the source's TLS files. */
async function twoHosts(t: Parameters<typeof fakeRuntime>[0]) {
  const from = await fakeRuntime(t);
  await runningContainer(from, 'web1');
  const to = await fakeRuntime(t);
  to.fakes.monitors.launchMode = { kind: 'answer', pid: 777 };
  const { receiver, events, sourceTls } = await loopbackReceiver(t, to, from.root);
  const request = {
    id: 'web1',
    to: { host: '127.0.0.1', port: receiver.port },
    tls: sourceTls,
    sharedStorage: true,
    timeoutMs: 5_000,
  };
  return { from, to, events, request, home: path.join(to.context.config.checkpointRoot, 'web1') };
}

const preCopyTest = withPycriu(test, "pre-copy's rounds (the fake CRIU writes real statistics)");

preCopyTest(
  'pre-copy: rounds while the container runs, each into a page server of its own whose parent is the round before, until few pages are left; the final dump sends only what the last round left, and the container moves',
  async (t) => {
    const { from, to, request, home } = await twoHosts(t);
    from.fakes.criu.preDumpPages = [50_000, 9_000, 40];
    const progress: string[] = [];
    const result = await migrate(from.context, { ...request, preDump: 8, onProgress: (message) => progress.push(message) });
    t.is(result.mode, 'pre-copy');
    t.deepEqual(result.preDumpPages, [50_000, 9_000, 40]);
    t.true(progress.some((line) => /^3 pre-dumps \(few pages left\)/.test(line)));

    // Here: three pre-dumps (the tree left running, memory tracked), each into its round's page
    // server with the round before as parent, then the dump, whose parent is the last round.
    const dumps = from.fakes.criu.dumps.map(({ request: dump }) => ({
      preDump: dump.preDump === true,
      parent: dump.opts.parent_img,
      trackMem: dump.opts.track_mem,
      leaveRunning: dump.opts.leave_running,
      port: dump.opts.ps?.port,
    }));
    t.deepEqual(dumps, [
      { preDump: true, parent: undefined, trackMem: true, leaveRunning: true, port: 1 },
      { preDump: true, parent: '../1', trackMem: true, leaveRunning: true, port: 2 },
      { preDump: true, parent: '../2', trackMem: true, leaveRunning: true, port: 3 },
      { preDump: false, parent: '../pre-copy/3', trackMem: true, leaveRunning: false, port: 4 },
    ]);
    // There: a page server per round, chained, and the final one into the restore's images.
    const servers = to.fakes.criu.calls.flatMap((call) => (call.op === 'startPageServer' ? [call.request] : []));
    t.deepEqual(
      servers.map((server) => [path.relative(home, server.imagePath), server.opts.parent_img]),
      [
        ['pre-dump-1', undefined],
        ['pre-dump-2', '../pre-dump-1'],
        ['pre-dump-3', '../pre-dump-2'],
        ['incoming', '../pre-dump-3'],
      ],
    );
    // The source's own link to its round was not sent over the destination's.
    t.is(await readlink(path.join(home, 'incoming', 'parent')), '../pre-dump-3');
    t.like(to.fakes.monitors.launched[0], { kind: 'restore', id: 'web1', imagePath: path.join(home, 'incoming'), leaveStopped: true });
    const { cgroupPath } = await to.context.store.load('web1');
    t.is(to.fakes.cgroups.callsOf('signal').filter((call) => call.cgroupPath === cgroupPath && call.signal === 'SIGCONT').length, 1);
    // Nothing of it is left here, its rounds neither.
    t.false(await from.context.store.exists('web1'));
    t.false(existsSync(path.join(from.context.config.checkpointRoot, 'web1', 'pre-copy')));
  },
);

preCopyTest('pre-copy: a round that fails calls the migration off: the container runs on here, nothing of it is left there', async (t) => {
  const { from, to, events, request, home } = await twoHosts(t);
  from.fakes.criu.preDumpPages = [50_000, 9_000];
  const error = await t.throwsAsync(
    migrate(from.context, {
      ...request,
      preDump: 8,
      // The second round's CRIU fails.
      onProgress: (message) => /^pre-dump 1:/.test(message) && from.fakes.criu.failNextDump({ message: 'Connection reset by peer' }),
    }),
    { instanceOf: MigrationFailedError },
  );
  t.regex(error?.message ?? '', /Connection reset by peer/);
  // CRIU's log of the failed round is kept beside the state, where the error points.
  const log = path.join(from.context.store.paths('web1').dir, 'pre-copy', '2', 'pre-dump.log');
  t.regex(await readFile(log, 'utf8'), /Connection reset by peer/);
  t.is(from.fakes.criu.dumps.length, 2, 'no round and no dump after the failed one');
  const record = await from.context.store.load('web1');
  if (record.status !== 'running') return t.fail(`the source's record is ${record.status}`);
  t.true(await from.context.processes.isAlive(record.init));
  t.false(existsSync(path.join(from.context.config.checkpointRoot, 'web1', 'pre-copy')));
  await until(() => events.some((line) => /the migration of web1 failed/.test(line)) && !existsSync(home));
  t.false(await to.context.store.exists('web1'));
  t.deepEqual(to.fakes.monitors.launched, []);
});

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i++) await new Promise((r) => setTimeout(r, 25));
  if (!condition()) throw new Error('timed out');
}

test("a receiver that shares the source's checkpoint or state root (two hosts on one machine) refuses before it touches anything, naming the root and the setting; the source's checkpoints stay and its marks go", async (t) => {
  const from = await fakeRuntime(t);
  await runningContainer(from, 'web1');
  const kept = path.join(from.config.checkpointRoot, 'web1', 'pristine', 'kept');
  await mkdir(path.dirname(kept), { recursive: true });
  await writeFile(kept, 'a snapshot of the source');
  for (const [shared, name, setting] of [
    ['checkpointRoot', 'checkpoint root', /RUNTIME_CHECKPOINT_ROOT/],
    ['stateRoot', 'state root', /RUNTIME_ROOT/],
  ] as const) {
    const to = await fakeRuntime(t, { roots: { [shared]: from.config[shared] } });
    const { receiver, events, sourceTls } = await loopbackReceiver(t, to, to.root);
    const error = await t.throwsAsync(
      migrate(from.context, { id: 'web1', to: { host: '127.0.0.1', port: receiver.port }, tls: sourceTls, sharedStorage: true, timeoutMs: 5_000 }),
      { instanceOf: MigrationFailedError },
    );
    t.regex(error?.message ?? '', new RegExp(`shares its ${name} with the source`));
    t.regex((error as MigrationFailedError).hint ?? '', setting);
    t.true(
      events.some((event) => event.includes(`refused web1 from`) && event.includes(`shares its ${name}`)),
      events.join('\n'),
    );
    t.deepEqual(
      to.fakes.criu.calls.filter((call) => call.op !== 'requireVersion'),
      [],
      'nothing asked of CRIU there but its version',
    );
  }
  t.is(await readFile(kept, 'utf8'), 'a snapshot of the source');
  t.is((await from.context.store.load('web1')).status, 'running');
  t.deepEqual(from.fakes.criu.dumps, []);
  for (const root of [from.config.stateRoot, from.config.checkpointRoot])
    t.deepEqual(
      (await readdir(root)).filter((name) => name.startsWith('.migration-')),
      [],
    );
});

test("a receiver whose cgroup for the container already holds processes (the source's, on one machine) refuses before anything stops, naming RUNTIME_CGROUP_PARENT", async (t) => {
  const { from, to, request } = await twoHosts(t);
  to.fakes.processes.spawn({ comm: 'sh', cgroup: '/runtime/web1' });
  const error = await t.throwsAsync(migrate(from.context, request), { instanceOf: MigrationFailedError });
  t.regex(error?.message ?? '', /web1's cgroup here, \/runtime\/web1, already holds 1 process/);
  t.regex((error as MigrationFailedError).hint ?? '', /RUNTIME_CGROUP_PARENT/);
  t.deepEqual(from.fakes.criu.dumps, []);
  t.is((await from.context.store.load('web1')).status, 'running');
});

test('the host ports a container publishes are published on the destination too; a port the destination cannot publish is refused before anything stops', async (t) => {
  const hostPort = await freePort();
  const ports = [{ hostIp: '127.0.0.1', hostPort, containerPort: 80 }];
  const from = await running(t, 'web1', ports);
  const { store } = from.context;
  const to = await fakeRuntime(t);
  to.fakes.monitors.launchMode = { kind: 'answer', pid: 777 };
  const { receiver, sourceTls } = await loopbackReceiver(t, to, to.root);
  const request = { id: 'web1', to: { host: '127.0.0.1', port: receiver.port }, tls: sourceTls, sharedStorage: true, timeoutMs: 5_000 };

  // Something holds the port there: refused, the container runs on here.
  const holder = net.createServer();
  await new Promise<void>((resolve) => holder.listen(hostPort, '127.0.0.1', () => resolve()));
  const error = await t.throwsAsync(migrate(from.context, request), { instanceOf: MigrationFailedError });
  t.regex(error?.message ?? '', new RegExp(`web1 publishes 127\\.0\\.0\\.1:${hostPort}->80/tcp, which this host cannot \\(.*the host port is in use`));
  t.deepEqual(from.fakes.criu.dumps, []);
  t.is((await store.load('web1')).status, 'running');
  await new Promise<void>((resolve) => holder.close(() => resolve()));

  await migrate(from.context, request);
  t.deepEqual((await to.context.store.load('web1')).ports, ports);
  t.false(await store.exists('web1'));
});
