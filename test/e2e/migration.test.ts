/**
 * Live migration between two hosts made of two network namespaces joined by a veth pair
 * (netns-hosts.ts), each running its own `runtime` with its own roots: `runtime receive` on one,
 * `runtime migrate` on the other, both channels over mutual TLS with certificates of a test CA
 * (test/helpers/certs.ts). Real runc and CRIU, as root.
 */
import test, { type ExecutionContext } from 'ava';
import { chmod, copyFile, mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { execa } from 'execa';
import { cliPath, counterNow, e2e, repoRoot, sandbox, waitFor, type Sandbox } from './helpers.js';
import { twoHosts, type Host, type TwoHosts } from './netns-hosts.js';
import { memhogBundle } from './reset-helpers.js';
import { redisTcpBundle } from './databases.js';
import { buildStatic, verifyMemory, waitReady } from '../../bench/workload.js';
import { buildTestImage } from './image-build.js';
import { makePki } from '../helpers/certs.js';
import type { TlsFiles } from '../../src/criu/options.js';
import { tlsOpts } from '../../src/criu/options.js';
import { hangUp } from '../../src/runtime/migration/migrate.js';

const serial = e2e(test);
const MIB = 256;
/** Post-copy needs CRIU's page server to splice through pipes this large (migrate.ts). */
const LAZY_PIPE_BYTES = 4_194_304;

interface World {
  readonly box: Sandbox;
  readonly hosts: TwoHosts;
  readonly certs: { readonly a: TlsFiles; readonly b: TlsFiles; readonly rogue: TlsFiles };
  /** The runtime of host a or b, with that host's roots, inside that host's network namespace. */
  cli(host: Host, args: readonly string[], options?: { timeoutMs?: number }): Promise<{ exitCode: number; stdout: string; stderr: string }>;
  /** Where a host keeps a container's received bundle. */
  bundleOn(host: Host, id: string): string;
  /** `runtime receive` on host, with that host's roots or those of rootsOfHost. */
  receiver(host: Host, tls?: TlsFiles, extra?: readonly string[], rootsOfHost?: Host): Promise<{ port: number; log(): string; process: ChildProcess }>;
}

function rootsOf(box: Sandbox, host: Host): Record<string, string> {
  const dir = path.join(box.dir, host.name);
  return {
    RUNTIME_ROOT: path.join(dir, 'state'),
    RUNTIME_CHECKPOINT_ROOT: path.join(dir, 'checkpoints'),
    RUNTIME_IMAGE_ROOT: path.join(dir, 'images'),
    RUNTIME_CGROUP_PARENT: cgroupParentOf(box, host.name.slice(-1)),
    RUNTIME_LOG_LEVEL: 'info',
  };
}

/** Each host's containers' cgroups go below one of its own, apart from the sandbox's. */
function cgroupParentOf(box: Sandbox, host: string): string {
  return `/runtime-test/${path.basename(box.dir)}-${host}`;
}

async function world(t: ExecutionContext, name: string): Promise<World> {
  const box = await sandbox(t);
  await chmod(box.dir, 0o711);
  // Registered before the hosts: it runs once their teardown has ended every process in them.
  t.teardown(async () => {
    for (const host of ['a', 'b']) {
      const left = await box.runtime.context.cgroups.removeTree(cgroupParentOf(box, host)).catch(() => []);
      if (left.length > 0) t.log(`cgroups left: ${left.join(', ')}`);
    }
  });
  const hosts = await twoHosts(t, name);
  const pkiDir = path.join(box.dir, 'pki');
  await mkdir(pkiDir);
  const pki = await makePki(pkiDir, 'cluster');
  const rogueCa = await makePki(pkiDir, 'rogue');
  const certs = {
    a: await pki.issue('host-a', { ip: hosts.a.address }),
    b: await pki.issue('host-b', { ip: hosts.b.address }),
    rogue: await rogueCa.issue('host-a', { ip: hosts.a.address }),
  };
  const cli: World['cli'] = (host, args, options = {}) =>
    host.exec([cliPath, ...args], { env: rootsOf(box, host), reject: false, timeoutMs: options.timeoutMs ?? 120_000 });
  // Registered after the hosts: it runs before their teardown, while the monitors still live.
  t.teardown(async () => {
    for (const host of [hosts.a, hosts.b]) {
      const ids = (await cli(host, ['list', '-q'])).stdout.split('\n').filter((l) => l !== '');
      for (const id of ids) await cli(host, ['delete', '-f', id]);
    }
  });
  return {
    box,
    hosts,
    certs,
    cli,
    bundleOn: (host, id) => path.join(rootsOf(box, host).RUNTIME_CHECKPOINT_ROOT!, id, 'bundle'),
    async receiver(host, tls, extra = [], rootsOfHost = host) {
      const files = tls ?? (host === hosts.a ? certs.a : certs.b);
      const argv = [cliPath, 'receive', '--listen', `${host.address}:0`, '--tls-cert', files.cert, '--tls-key', files.key, '--tls-ca', files.ca, ...extra];
      const child = host.spawn(argv, {
        env: rootsOf(box, rootsOfHost),
      });
      let out = '';
      child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
      child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
      const port = await waitFor(`the receiver on ${host.name}`, async () => Number(/listening on port (\d+)/.exec(out)?.[1]) || undefined, 20_000);
      return { port, log: () => out, process: child };
    },
  };
}

function migrateArgs(world: World, from: 'a' | 'b', id: string, port: number, extra: readonly string[] = []): string[] {
  const to = from === 'a' ? world.hosts.b : world.hosts.a;
  const files = world.certs[from];
  return ['migrate', id, '--to', `${to.address}:${port}`, '--tls-cert', files.cert, '--tls-key', files.key, '--tls-ca', files.ca, ...extra];
}

/** Raises fs.pipe-max-size for post-copy, and puts it back after the test. */
async function allowPostCopy(t: ExecutionContext): Promise<void> {
  const file = '/proc/sys/fs/pipe-max-size';
  const before = (await readFile(file, 'utf8')).trim();
  if (Number(before) >= LAZY_PIPE_BYTES) return;
  await writeFile(file, String(LAZY_PIPE_BYTES));
  t.teardown(() => writeFile(file, before));
}

/** The counter a container writes to file (/count unless given) in its rootfs. */
function counter(bundle: string, file = 'count'): Promise<number> {
  return counterNow(bundle, file);
}

async function counting(bundle: string, above: number, file = 'count'): Promise<number> {
  return waitFor(`the counter in ${bundle} to pass ${above}`, async () => {
    const now = await counter(bundle, file);
    return now > above ? now : undefined;
  });
}

/** The bundle of a container made from an image, in its place in host's image store. */
function imageBundle(w: World, host: Host, id: string): string {
  return path.join(rootsOf(w.box, host).RUNTIME_IMAGE_ROOT!, 'containers', id, 'bundle');
}

serial(
  'a counter container migrates to the other host and back (stop-and-copy, then post-copy) and keeps counting; nothing stays on the source',
  async (t) => {
    const w = await world(t, 'counter');
    await allowPostCopy(t);
    const { a, b } = w.hosts;
    const bundle = await w.box.bundle('counter', ['sh', '-c', 'i=0; while true; do i=$((i+1)); echo $i > /count; sleep 0.1; done']);
    t.is((await w.cli(a, ['run', '-d', '--bundle', bundle, 'c1'])).exitCode, 0);
    const before = await counting(bundle, 5);

    const onB = await w.receiver(b);
    // Pre-copy needs soft-dirty memory tracking, which this kernel lacks: refused before anything
    // stops, before any connection (the receiver hears nothing).
    const preCopy = await w.cli(a, migrateArgs(w, 'a', 'c1', onB.port, ['--pre-dump', '3']));
    t.is(preCopy.exitCode, 1, preCopy.stdout);
    t.regex(preCopy.stderr, /pre-copy needs the kernel's memory tracking \(soft-dirty\)/);
    t.is(JSON.parse((await w.cli(a, ['state', 'c1'])).stdout).status, 'running');
    t.notRegex(onB.log(), /accepting|refused/);

    const there = await w.cli(a, migrateArgs(w, 'a', 'c1', onB.port));
    t.is(there.exitCode, 0, there.stderr);
    const result = JSON.parse(there.stdout) as { mode: string; pid: number; downtimeMs: number };
    t.is(result.mode, 'stop-and-copy');
    const stateB = JSON.parse((await w.cli(b, ['state', 'c1'])).stdout) as { status: string; pid: number };
    t.like(stateB, { status: 'running', pid: result.pid });
    const arrived = await counting(w.bundleOn(b, 'c1'), before);
    t.true(arrived > before, `it counted on from ${before} to ${arrived}`);
    t.is((await w.cli(a, ['state', 'c1'])).exitCode, 1, 'nothing of it on the source');
    t.deepEqual(await readdir(rootsOf(w.box, a).RUNTIME_CHECKPOINT_ROOT!).catch(() => []), []);
    t.regex(onB.log(), /restored c1 \(pid \d+\)/);

    const onA = await w.receiver(a);
    const back = await w.cli(b, migrateArgs(w, 'b', 'c1', onA.port, ['--lazy']));
    t.is(back.exitCode, 0, back.stderr);
    t.is((JSON.parse(back.stdout) as { mode: string }).mode, 'post-copy');
    t.is(JSON.parse((await w.cli(a, ['state', 'c1'])).stdout).status, 'running');
    const home = await counter(w.bundleOn(a, 'c1'));
    t.true(home >= arrived, `it came back at ${home}, after ${arrived}`);
    await counting(w.bundleOn(a, 'c1'), home);
    t.is((await w.cli(b, ['state', 'c1'])).exitCode, 1);
  },
);

serial(`${MIB} MiB of known memory arrive byte-exact, stop-and-copy and post-copy`, async (t) => {
  const w = await world(t, 'memory');
  await allowPostCopy(t);
  const { a, b } = w.hosts;
  const bundle = await memhogBundle(w.box, MIB);
  t.is((await w.cli(a, ['run', '-d', '--bundle', bundle, 'hog'])).exitCode, 0);
  await waitReady(bundle, MIB);

  const onB = await w.receiver(b);
  const there = await w.cli(a, migrateArgs(w, 'a', 'hog', onB.port));
  t.is(there.exitCode, 0, there.stderr);
  const pidB = (JSON.parse(there.stdout) as { pid: number }).pid;
  await verifyMemory(w.bundleOn(b, 'hog'), pidB, MIB);

  const onA = await w.receiver(a);
  const back = await w.cli(b, migrateArgs(w, 'b', 'hog', onA.port, ['--lazy']));
  t.is(back.exitCode, 0, back.stderr);
  const pidA = (JSON.parse(back.stdout) as { pid: number }).pid;
  await verifyMemory(w.bundleOn(a, 'hog'), pidA, MIB);
  t.pass();
});

serial('a peer whose certificate another CA signed is refused on the command channel and on the page server, and the container runs on', async (t) => {
  const w = await world(t, 'rogue');
  const { a, b } = w.hosts;
  const bundle = await w.box.bundle('counter', ['sh', '-c', 'i=0; while true; do i=$((i+1)); echo $i > /count; sleep 0.1; done']);
  t.is((await w.cli(a, ['run', '-d', '--bundle', bundle, 'c1'])).exitCode, 0);
  const before = await counting(bundle, 3);

  // The source with a rogue certificate: the receiver refuses it.
  const onB = await w.receiver(b);
  const rogue = w.certs.rogue;
  const refused = await w.cli(a, [
    'migrate',
    'c1',
    '--to',
    `${b.address}:${onB.port}`,
    '--tls-cert',
    rogue.cert,
    '--tls-key',
    rogue.key,
    '--tls-ca',
    rogue.ca,
  ]);
  t.is(refused.exitCode, 1);
  t.regex(refused.stderr, /certificate/);
  await waitFor('the receiver to report the refusal', async () => (/refused a connection from/.test(onB.log()) ? true : undefined));
  // A receiver with a rogue certificate: the source refuses it.
  const rogueReceiver = await w.receiver(b, rogue);
  const wrongServer = await w.cli(a, migrateArgs(w, 'a', 'c1', rogueReceiver.port));
  t.is(wrongServer.exitCode, 1);
  t.regex(wrongServer.stderr, /certificate/);
  t.is(JSON.parse((await w.cli(a, ['state', 'c1'])).stdout).status, 'running');
  await counting(bundle, before);

  // The page server: CRIU's TLS refuses a dump whose certificate the CA did not sign.
  const incoming = path.join(w.box.dir, 'incoming');
  await mkdir(incoming, { mode: 0o700 });
  const server = await w.box.runtime.context.criu.startPageServer({
    imagePath: incoming,
    opts: { ps: { address: '127.0.0.1', port: 0 }, ...tlsOpts(w.certs.b), log_level: 4, log_file: 'page-server.log' },
  });
  // A page server its rogue client failed stays waiting: hung up on at the end.
  t.teardown(() => hangUp(server.port));
  const local = await w.box.bundle('local', ['sh', '-c', 'while true; do sleep 1; done']);
  await w.box.runtime.run({ id: 'local', bundle: local });
  const dump = await t.throwsAsync(w.box.runtime.checkpoint({ id: 'local', pageServer: `127.0.0.1:${server.port}`, tls: rogue }));
  t.regex(String(dump?.message), /CRIU DUMP failed|criu swrk ended/);
  t.is((await w.box.runtime.state('local')).status, 'running');
  await waitFor('the page server to log the refusal', async () => {
    const log = await readFile(path.join(incoming, 'page-server.log'), 'utf8').catch(() => '');
    return /NOT trusted|issuer is unknown/.test(log) ? true : undefined;
  });
  t.false(existsSync(path.join(incoming, 'pages-1.img')));
});

serial(
  'a link cut while the memory is on its way leaves the container running on the source, its memory whole, and nothing on the destination',
  async (t) => {
    const { w, b, bundle, onB } = await hogBehindSlowLink(t, 'cut', 10);
    const { a } = w.hosts;
    const migration = w.cli(a, migrateArgs(w, 'a', 'hog', onB.port, ['--timeout', '10']), { timeoutMs: 90_000 });
    await waitFor('the destination to accept', async () => (/accepting hog/.test(onB.log()) ? true : undefined), 30_000);
    await new Promise((r) => setTimeout(r, 1500));
    await w.hosts.cut();
    const result = await migration;
    t.is(result.exitCode, 1, result.stdout);
    t.regex(result.stderr, /migration of hog failed/);
    // CRIU undid its dump itself (its connection aborted): no network lock stays in the container.
    await runsOnWhole(t, w, bundle);
    await w.hosts.heal();
    await waitFor('the destination to give up', async () => (/the migration of hog failed/.test(onB.log()) ? true : undefined), 60_000);
    await nothingOfHogOn(t, w, b);
    t.is((await execa('pgrep', ['-f', `page-server --rpc --address ${b.address}`], { reject: false })).exitCode, 1, 'no page server left');
  },
);

serial(
  'an established TCP connection in the container (--tcp-established) and its open files move over shared storage, the stream going on without a gap',
  async (t) => {
    const w = await world(t, 'tcp');
    const { a, b } = w.hosts;
    // In the container's own network namespace: a server writing what it reads to a file, and a
    // client sending one number per line over an established connection to it.
    // (The server's stdin is held open: at its end busybox's nc would close the connection.)
    const script = 'sleep 1000000 | nc -l -p 9000 > /received & sleep 0.5; i=0; while true; do i=$((i+1)); echo $i; sleep 0.05; done | nc 127.0.0.1 9000';
    const bundle = await w.box.bundle('tcp', ['sh', '-c', script]);
    t.is((await w.cli(a, ['run', '-d', '--bundle', bundle, 'tcp'])).exitCode, 0);
    const lines = async () => (await readFile(path.join(bundle, 'rootfs/received'), 'utf8').catch(() => '')).split('\n').filter((l) => l !== '');
    await waitFor('numbers to arrive', async () => ((await lines()).length > 10 ? true : undefined));

    const onB = await w.receiver(b);
    const moved = await w.cli(a, migrateArgs(w, 'a', 'tcp', onB.port, ['--tcp-established', '--shared-storage']));
    t.is(moved.exitCode, 0, moved.stderr);
    t.is(JSON.parse((await w.cli(b, ['state', 'tcp'])).stdout).status, 'running');
    // Shared storage: the destination restored on the source's rootfs, and received none.
    t.false(existsSync(path.join(w.bundleOn(b, 'tcp'), 'rootfs/received')));
    const count = (await lines()).length;
    await waitFor('numbers to go on arriving after the move', async () => ((await lines()).length > count + 20 ? true : undefined));
    const numbers = (await lines()).map(Number);
    t.deepEqual(
      numbers,
      numbers.map((_, i) => i + 1),
      'every number once, in order: the connection carried on',
    );
  },
);

serial(
  "a connected unix socket in the container moves with it, the data in it whole; a destination that shares the source's roots, or already has the id, refuses, and the container runs on",
  async (t) => {
    const w = await world(t, 'unix');
    const { a, b } = w.hosts;
    const pair = await buildStatic(path.join(repoRoot, 'test/fixtures/migration/unix-pair.c'), path.join(repoRoot, 'node_modules/.cache/runtime-bench'));
    const bundle = await w.box.bundle('unix', ['/bin/unix-pair', '/tmp/pair.sock', '/received']);
    await copyFile(pair, path.join(bundle, 'rootfs/bin/unix-pair'));
    await chmod(path.join(bundle, 'rootfs/bin/unix-pair'), 0o755);
    t.is((await w.cli(a, ['run', '-d', '--bundle', bundle, 'pair'])).exitCode, 0);
    const lines = async (dir: string) => (await readFile(path.join(dir, 'rootfs/received'), 'utf8').catch(() => '')).split('\n').filter((l) => l !== '');
    await waitFor('numbers over the unix socket', async () => ((await lines(bundle)).length > 10 ? true : undefined));

    // A receiver on b with a's roots (two hosts on one machine, set up as one): refused, naming them.
    const sharing = await w.receiver(b, undefined, [], a);
    const shared = await w.cli(a, migrateArgs(w, 'a', 'pair', sharing.port));
    t.is(shared.exitCode, 1);
    // (a has made no image root: it runs no image.)
    t.regex(shared.stderr, /shares its state root and checkpoint root with the source/);
    t.regex(shared.stderr, /RUNTIME_ROOT \(--root\), RUNTIME_CHECKPOINT_ROOT; and RUNTIME_CGROUP_PARENT/);
    t.is(JSON.parse((await w.cli(a, ['state', 'pair'])).stdout).status, 'running');
    t.deepEqual(
      (await readdir(rootsOf(w.box, a).RUNTIME_ROOT!)).filter((name) => name.startsWith('.migration-')),
      [],
      'its marks gone',
    );
    sharing.process.kill('SIGTERM');

    // b already has a container of that id: the offer is refused, nothing stops here.
    const other = await w.box.bundle('other', ['sh', '-c', 'while true; do sleep 1; done']);
    t.is((await w.cli(b, ['run', '-d', '--bundle', other, 'pair'])).exitCode, 0);
    const onB = await w.receiver(b);
    const refused = await w.cli(a, migrateArgs(w, 'a', 'pair', onB.port));
    t.is(refused.exitCode, 1);
    t.regex(refused.stderr, /already exists/);
    const before = (await lines(bundle)).length;
    await waitFor('it to go on here', async () => ((await lines(bundle)).length > before + 5 ? true : undefined));
    t.is((await w.cli(b, ['delete', '-f', 'pair'])).exitCode, 0);

    const moved = await w.cli(a, migrateArgs(w, 'a', 'pair', onB.port));
    t.is(moved.exitCode, 0, moved.stderr);
    const there = w.bundleOn(b, 'pair');
    const count = (await lines(there)).length;
    await waitFor('numbers to go on arriving after the move', async () => ((await lines(there)).length > count + 20 ? true : undefined));
    const numbers = (await lines(there)).map(Number);
    t.deepEqual(
      numbers,
      numbers.map((_, i) => i + 1),
      'every number once, in order, across the move',
    );
  },
);

serial(
  'a Redis container reached through a published port (run -p), a client connected: refused without --tcp-established, then moves with it and its data, answers on the same port of the other host, and the client is told its connection ended; nothing is left on the source',
  async (t) => {
    const w = await world(t, 'redis');
    const { a, b } = w.hosts;
    const bundle = await redisTcpBundle(w.box, 'redis');
    const hostPort = 16379;
    t.is((await w.cli(a, ['run', '-d', '--bundle', bundle, '-p', `${hostPort}:6379`, 'redis-moving'])).exitCode, 0);
    const redis = (host: Host, ...command: string[]) => a.exec(['redis-cli', '-h', host.address, '-p', String(hostPort), ...command], { reject: false });
    await waitFor('redis through the published port on a', async () => ((await redis(a, 'PING')).stdout.trim() === 'PONG' ? true : undefined), 30_000);
    t.is((await redis(a, 'SET', 'greeting', 'written on a')).stdout.trim(), 'OK');
    // A client that stays connected, blocked on a list no one fills.
    const client = a.spawn(['redis-cli', '-h', a.address, '-p', String(hostPort), 'BLPOP', 'queue', '0']);
    const clientEnded = new Promise<void>((resolve) => client.once('exit', () => resolve()));
    await waitFor('the client to block', async () => (/blocked_clients:1/.test((await redis(a, 'INFO', 'clients')).stdout) ? true : undefined));

    const onB = await w.receiver(b);
    const refused = await w.cli(a, migrateArgs(w, 'a', 'redis-moving', onB.port));
    t.is(refused.exitCode, 1);
    t.regex(refused.stderr, /Connected TCP socket, consider using --tcp-established/);
    t.is((await redis(a, 'GET', 'greeting')).stdout.trim(), 'written on a', 'it runs on here');

    const moved = await w.cli(a, migrateArgs(w, 'a', 'redis-moving', onB.port, ['--tcp-established']));
    t.is(moved.exitCode, 0, moved.stderr);
    t.is((await redis(b, 'GET', 'greeting')).stdout.trim(), 'written on a', 'its data, through the port published on b');
    t.is((await redis(b, 'SET', 'greeting', 'written on b')).stdout.trim(), 'OK');
    t.is((await redis(b, 'GET', 'greeting')).stdout.trim(), 'written on b');
    // The source's monitor ends with the container, its connections with it: the client hears of it.
    await waitFor('the client to see its connection end', () => clientEnded.then(() => true), 10_000);
    t.not((await redis(a, 'PING')).exitCode, 0, 'nothing answers on the source any more');
    t.is((await execa('pgrep', ['-f', `runtime monitor redis-moving`], { reject: false })).stdout.trim().split('\n').length, 1, "only b's monitor");
    t.is(JSON.parse((await w.cli(b, ['state', 'redis-moving'])).stdout).status, 'running');
  },
);

/** `runtime migrate` as a process of its own on host, to stop and resume; its output and exit. */
function migrating(w: World, host: Host, args: readonly string[]): { pid: number; output(): string; exit: Promise<number | null> } {
  const child = host.spawn([cliPath, ...args], { env: rootsOf(w.box, host) });
  let out = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { pid: child.pid!, output: () => out, exit };
}

/** Host's side of the link slowed to 100 Mbit/s (tbf), so that a cut falls while the pages go. */
async function slowLink(host: Host): Promise<void> {
  await execa('nsenter', [
    `--net=${host.netns}`,
    'tc',
    'qdisc',
    'add',
    'dev',
    host.device,
    'root',
    'tbf',
    'rate',
    '100mbit',
    'burst',
    '32kbit',
    'latency',
    '400ms',
  ]);
}

/** "ok" when a TCP connection over the loopback of pid's network namespace goes through (no network lock left), else why not. */
async function loopback(pid: number): Promise<string> {
  const probe =
    "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(1); socket.create_connection(s.getsockname(), timeout=3); print('ok')";
  const result = await execa('nsenter', ['-t', String(pid), '-n', 'python3', '-c', probe], { reject: false });
  return result.stdout.trim() || result.stderr.trim();
}

/** Waits for a line of a receiver's or a migration's output. */
function logged(what: string, output: () => string, line: RegExp): Promise<true> {
  return waitFor(what, async () => (line.test(output()) ? true : undefined), 60_000);
}

/** A counter container c1 on host a, migrating to host b (steps of 5 s), once b has begun to restore it. */
async function migrationUnderWay(t: ExecutionContext, name: string) {
  const w = await world(t, name);
  const { a, b } = w.hosts;
  const bundle = await w.box.bundle('counter', ['sh', '-c', 'i=0; while true; do i=$((i+1)); echo $i > /count; sleep 0.1; done']);
  t.is((await w.cli(a, ['run', '-d', '--bundle', bundle, 'c1'])).exitCode, 0);
  await counting(bundle, 5);
  const onB = await w.receiver(b, undefined, ['--timeout', '5']);
  const migration = migrating(w, a, migrateArgs(w, 'a', 'c1', onB.port, ['--timeout', '5']));
  await logged('the destination to restore', onB.log, /restoring c1/);
  return { w, a, b, bundle, onB, migration };
}

/** The one-letter state of a process (R, S, T for stopped, ...). */
async function processState(pid: number): Promise<string> {
  return /^State:\s+(\S)/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '?';
}

serial(
  "the link cut after the destination restored and the source let go, before the destination heard it: the copy there waits stopped, and runs once the source's word comes over a new connection",
  async (t) => {
    const { w, a, b, onB, migration } = await migrationUnderWay(t, 'word-moved');
    // The source is stopped before `restored` reaches it, and the link cut once it has been sent:
    // the source reads it on resuming, lets go, and its `done` is lost.
    process.kill(migration.pid, 'SIGSTOP');
    await logged('the destination to have restored', onB.log, /restored c1/);
    await w.hosts.cut();
    process.kill(migration.pid, 'SIGCONT');

    await logged('the destination to wait for the word', onB.log, /c1 is held stopped here/);
    const held = JSON.parse((await w.cli(b, ['state', 'c1'])).stdout) as { status: string; pid: number };
    t.is(held.status, 'running');
    t.is(await processState(held.pid), 'T', 'held stopped');
    const stoppedAt = await counter(w.bundleOn(b, 'c1'));
    await new Promise((r) => setTimeout(r, 500));
    t.is(await counter(w.bundleOn(b, 'c1')), stoppedAt, 'it does not count while held');
    t.is((await w.cli(a, ['state', 'c1'])).exitCode, 1, 'the source let it go');

    await w.hosts.heal();
    t.is(await migration.exit, 0, migration.output());
    t.regex(onB.log(), /c1 runs here now: its source let it go \(said again over a new connection\)/);
    t.regex(migration.output(), /took this host's word: c1 runs there/);
    await counting(w.bundleOn(b, 'c1'), stoppedAt);
    t.not(await processState(held.pid), 'T');
  },
);

serial(
  "the link cut while the destination restores: the source keeps the container and runs on, the copy there waits stopped, and goes once the source's word comes over a new connection",
  async (t) => {
    const { w, a, b, bundle, onB, migration } = await migrationUnderWay(t, 'word-stays');
    await w.hosts.cut();

    // `restored` never came: the source decided the container stays, and it counts on there.
    await waitFor(
      'the source to say its word again',
      async () => (/saying it again over new connections/.test(migration.output()) ? true : undefined),
      60_000,
    );
    const stateA = JSON.parse((await w.cli(a, ['state', 'c1'])).stdout) as { status: string; pid: number };
    t.is(stateA.status, 'running');
    await counting(bundle, await counter(bundle));
    await logged('the destination to wait for the word', onB.log, /c1 is held stopped here/);
    const held = JSON.parse((await w.cli(b, ['state', 'c1'])).stdout) as { status: string; pid: number };
    t.is(await processState(held.pid), 'T', 'held stopped, never run');

    await w.hosts.heal();
    t.is(await migration.exit, 1, migration.output());
    t.regex(migration.output(), /migration of c1 failed/);
    t.regex(onB.log(), /c1 stays on its source \(said again over a new connection\): nothing of it is left here/);
    t.is((await w.cli(b, ['state', 'c1'])).exitCode, 1);
    t.false(existsSync(path.join(rootsOf(w.box, b).RUNTIME_CHECKPOINT_ROOT!, 'c1')));
    await counting(bundle, await counter(bundle));
  },
);

serial(
  'a link cut while a post-copy pulls the memory: the source aborts the transfer, runs on with its memory whole and its network unlocked, and the copy there goes once the link is back',
  (t) => cutPostCopy(t, 'cut-lazy', { waiting: false }),
);

serial(
  "a link cut while the source's page server waits for the destination's next request (its lazy-pages daemon held still): its probes (keepalive, or window probes when the daemon's buffer filled) go unanswered, and the source aborts as when its data does",
  (t) => cutPostCopy(t, 'cut-idle', { waiting: true }),
);

/**
 * A world whose host a runs hog (memhog holding MIB MiB, ready) behind a link slowed so that a cut
 * falls while the pages go, and whose host b receives with --timeout timeoutS.
 */
async function hogBehindSlowLink(t: ExecutionContext, name: string, timeoutS: number) {
  const w = await world(t, name);
  const { a, b } = w.hosts;
  const bundle = await memhogBundle(w.box, MIB);
  t.is((await w.cli(a, ['run', '-d', '--bundle', bundle, 'hog'])).exitCode, 0);
  await waitReady(bundle, MIB);
  await slowLink(a);
  const onB = await w.receiver(b, undefined, ['--timeout', String(timeoutS)]);
  return { w, b, bundle, onB };
}

/** hog runs on host a, its memory byte-exact and its network unlocked. */
async function runsOnWhole(t: ExecutionContext, w: World, bundle: string): Promise<void> {
  const state = JSON.parse((await w.cli(w.hosts.a, ['state', 'hog'])).stdout) as { status: string; pid: number };
  t.is(state.status, 'running');
  await verifyMemory(bundle, state.pid, MIB);
  t.is(await loopback(state.pid), 'ok', "the container's network works");
}

/** Nothing of hog on host: no container, no checkpoint directory. */
async function nothingOfHogOn(t: ExecutionContext, w: World, host: Host): Promise<void> {
  t.is((await w.cli(host, ['state', 'hog'])).exitCode, 1);
  t.false(existsSync(path.join(rootsOf(w.box, host).RUNTIME_CHECKPOINT_ROOT!, 'hog')));
}

/**
 * A 256 MiB container migrating post-copy over a slow link, the link cut once it runs on the
 * destination. waiting: the destination's lazy-pages daemon is stopped first, so that the source's
 * connection has nothing of its own in flight when the link goes (the daemon's requests stop,
 * what the source sent lands in its buffers): no retransmission would ever show the cut.
 */
async function cutPostCopy(t: ExecutionContext, name: string, options: { readonly waiting: boolean }): Promise<void> {
  await allowPostCopy(t);
  const { w, b, bundle, onB } = await hogBehindSlowLink(t, name, 5);
  const { a } = w.hosts;
  const migration = migrating(w, a, migrateArgs(w, 'a', 'hog', onB.port, ['--lazy', '--timeout', '5']));
  await logged('the copy to run on the destination', migration.output, /hog runs on the destination/);
  if (options.waiting) {
    const incoming = path.join(rootsOf(w.box, b).RUNTIME_CHECKPOINT_ROOT!, 'hog', 'incoming');
    const daemon = await execa('pgrep', ['-f', `lazy-pages .*--images-dir ${incoming}`], { reject: false });
    // Not a bare t.regex: a kill of Number('') would stop this test's whole process group.
    if (!/^\d+$/.test(daemon.stdout)) throw new Error(`not one lazy-pages daemon pulls the memory: pgrep said ${JSON.stringify(daemon.stdout)}`);
    process.kill(Number(daemon.stdout), 'SIGSTOP');
    // What is under way lands; then the connection carries nothing either way.
    await new Promise((r) => setTimeout(r, 1500));
  }
  await w.hosts.cut();

  await logged('the source to say its word again', migration.output, /saying it again over new connections/);
  t.regex(migration.output(), /aborting it, the container runs on here/);
  t.regex(migration.output(), /lifted the network lock CRIU left on hog/);
  await runsOnWhole(t, w, bundle);

  await w.hosts.heal();
  t.is(await migration.exit, 1, migration.output());
  await logged('the destination to drop its copy', onB.log, /hog stays on its source \(said again over a new connection\)/);
  await nothingOfHogOn(t, w, b);
  t.is(
    (await execa('pgrep', ['-f', 'lazy-pages .*--images-dir ' + path.join(rootsOf(w.box, b).RUNTIME_CHECKPOINT_ROOT!, 'hog')], { reject: false }))
      .exitCode,
    1,
    'no lazy-pages daemon left there',
  );
}

serial(
  "a container made from an image moves with its own writable layer (a file it deleted from the image's layers stays deleted) onto the same image in the other host's store, which refuses it until it has the image",
  async (t) => {
    const w = await world(t, 'image');
    const { a, b } = w.hosts;
    const image = await buildTestImage(path.join(w.box.dir, 'layout'), 'v1', {
      user: 'root',
      command: ['sh', '-c', 'rm /data/changed; echo written > /data/mine; i=0; while true; do i=$((i+1)); echo $i > /tmp/count; sleep 0.1; done'],
    });
    t.is((await w.cli(a, ['run', '-d', '--image', image.reference, 'c1'])).exitCode, 0);
    const rootfsOn = (host: Host) => path.join(imageBundle(w, host, 'c1'), 'rootfs');
    const passing = (host: Host, above: number) => counting(imageBundle(w, host, 'c1'), above, 'tmp/count');
    const before = await passing(a, 5);

    const onB = await w.receiver(b);
    const refused = await w.cli(a, migrateArgs(w, 'a', 'c1', onB.port));
    t.is(refused.exitCode, 1, refused.stdout);
    t.regex(refused.stderr, /no image oci:.*:v1 \(sha256:[0-9a-f]{64}\) in the store/);
    t.regex(refused.stderr, /runtime images add/);
    t.is(JSON.parse((await w.cli(a, ['state', 'c1'])).stdout).status, 'running');
    await passing(a, before);

    const added = await w.cli(b, ['images', 'add', image.reference]);
    t.is(added.exitCode, 0, added.stderr);
    const there = await w.cli(a, migrateArgs(w, 'a', 'c1', onB.port));
    t.is(there.exitCode, 0, there.stderr);
    t.is(JSON.parse((await w.cli(b, ['state', 'c1'])).stdout).status, 'running');
    const arrived = await passing(b, before);
    t.true(arrived > before, `it counted on from ${before} to ${arrived}`);
    // The writable layer came, the image's layers are the destination's own.
    t.is(await readFile(path.join(rootfsOn(b), 'data/mine'), 'utf8'), 'written\n');
    t.false(existsSync(path.join(rootfsOn(b), 'data/changed')), 'deleted from a lower layer: still deleted');
    t.is(await readFile(path.join(rootfsOn(b), 'data/new'), 'utf8'), 'added by layer 2\n');
    const images = JSON.parse((await w.cli(b, ['images', '--format', 'json'])).stdout) as { references: string[]; containers: string[] }[];
    t.deepEqual(
      images.map((i) => i.containers),
      [['c1']],
    );
    // Nothing of it is left on the source, its place in the image store neither.
    t.is((await w.cli(a, ['state', 'c1'])).exitCode, 1);
    t.false(existsSync(path.dirname(imageBundle(w, a, 'c1'))));
  },
);

serial(
  'a container made from an image in a user namespace (--uidmap) moves onto the image mapped the same way there, running as the namespace uid 1000 with its files owned as they were',
  async (t) => {
    const w = await world(t, 'image-userns');
    const { a, b } = w.hosts;
    const mapping = '0:200000:65536';
    // The image's user is app (uid 1000): a dump of another uid needs the user namespace here.
    const image = await buildTestImage(path.join(w.box.dir, 'layout'), 'v1', {
      command: ['sh', '-c', 'echo mine > /home/app/mine; i=0; while true; do i=$((i+1)); echo $i > /home/app/count; sleep 0.1; done'],
    });
    t.is((await w.cli(a, ['run', '-d', '--image', image.reference, '--uidmap', mapping, 'c2'])).exitCode, 0);
    const passing = (host: Host, above: number) => counting(imageBundle(w, host, 'c2'), above, 'home/app/count');
    const before = await passing(a, 5);

    const onB = await w.receiver(b);
    const added = await w.cli(b, ['images', 'add', image.reference, '--uidmap', mapping]);
    t.is(added.exitCode, 0, added.stderr);
    const there = await w.cli(a, migrateArgs(w, 'a', 'c2', onB.port));
    t.is(there.exitCode, 0, there.stderr);
    const { pid } = JSON.parse(there.stdout) as { pid: number };
    t.is((await readFile(`/proc/${pid}/uid_map`, 'utf8')).trim().replace(/\s+/g, ' '), '0 200000 65536');
    t.deepEqual(/^Uid:\s+(.*)$/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'))![1]!.split(/\s+/), ['201000', '201000', '201000', '201000']);
    const arrived = await passing(b, before);
    t.true(arrived > before, `it counted on from ${before} to ${arrived}`);
    t.like(await stat(path.join(imageBundle(w, b, 'c2'), 'rootfs/home/app/mine')), { uid: 201000, gid: 201000 });
    t.is((await w.cli(a, ['state', 'c2'])).exitCode, 1);
  },
);
