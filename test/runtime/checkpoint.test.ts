import 'reflect-metadata';
import test from 'ava';
import { existsSync } from 'node:fs';
import { chmod, lstat, mkdir, readFile, readdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { checkpoint, ContainerNotRunningError, defaultImagePath, UnsafeImageDirectoryError } from '../../src/runtime/checkpoint.js';
import { NotRootError, UsageError } from '../../src/runtime/errors.js';
import type { CheckpointMetadata } from '../../src/runtime/checkpoint-metadata.js';
import { readCheckpoint } from '../../src/runtime/checkpoint-metadata.js';
import { CriuFeatureMissingError, CriuRequestError } from '../../src/criu/errors.js';
import { CgroupMode, NetworkLockMethod } from '../../src/criu/rpc/messages.js';
import { fakeRuntime, load, MARKER_TEXT, runningContainer } from '../helpers/fake-runtime.js';

const defaultDevices = ['/dev/null', '/dev/zero', '/dev/full', '/dev/random', '/dev/urandom', '/dev/tty'];

/** What the fake container's mount table and runc's spec make external: two cgroup binds and the devices. */
const expectedExtMnt = [
  { key: '/sys/fs/cgroup/freezer', val: '/sys/fs/cgroup/freezer' },
  { key: '/sys/fs/cgroup/memory', val: '/sys/fs/cgroup/memory' },
  ...defaultDevices.map((d) => ({ key: d, val: d })),
];

test('the network lock is nftables when CRIU has it, else iptables; --network-lock chooses', async (t) => {
  const rt = await fakeRuntime(t);
  await runningContainer(rt);
  await checkpoint(rt.context, { id: 'web1', leaveRunning: true });
  rt.fakes.criu.nftables = false;
  await checkpoint(rt.context, { id: 'web1', leaveRunning: true });
  await checkpoint(rt.context, { id: 'web1', leaveRunning: true, networkLock: 'skip' });
  t.deepEqual(
    rt.fakes.criu.dumps.map((d) => d.request.opts.network_lock),
    [NetworkLockMethod.NFTABLES, NetworkLockMethod.IPTABLES, NetworkLockMethod.SKIP],
  );
});

test("checkpoint dumps the init with runc's options into the managed directory, and the record becomes checkpointed", async (t) => {
  const rt = await fakeRuntime(t);
  const running = await runningContainer(rt);
  const managed = defaultImagePath(rt.context, 'web1');

  const result = await checkpoint(rt.context, { id: 'web1', tcpEstablished: true });

  const [dump, ...more] = rt.fakes.criu.dumps;
  t.is(more.length, 0);
  t.deepEqual(dump!.request.opts, {
    pid: running.init.pid,
    root: running.rootfs,
    log_level: 4,
    log_file: 'dump.log',
    notify_scripts: true,
    manage_cgroups: true,
    manage_cgroups_mode: CgroupMode.DEFAULT,
    ext_mnt: expectedExtMnt,
    leave_running: false,
    tcp_established: true,
    ext_unix_sk: false,
    shell_job: false,
    file_locks: false,
    auto_dedup: false,
    freeze_cgroup: '/sys/fs/cgroup/freezer/runtime/web1',
    network_lock: NetworkLockMethod.NFTABLES,
  });
  // CRIU writes beside the last checkpoint; the runtime's metadata is there before CRIU runs.
  t.is(dump!.request.imagePath, `${managed}.new`);
  t.false(dump!.request.preDump ?? false);
  t.deepEqual([...dump!.entriesAtStart].sort(), ['config.json', 'descriptors.json', 'runtime-checkpoint.json']);

  t.is(result.imagePath, managed);
  t.false(result.leftRunning);
  t.false(existsSync(`${managed}.new`));
  t.deepEqual((await readdir(managed)).sort(), [
    'checksums.sha256',
    'config.json',
    'descriptors.json',
    'dump.log',
    'inventory.img',
    'pagemap-1.img',
    'pages-1.img',
    'runtime-checkpoint.json',
    'stats-dump',
  ]);
  const { metadata, descriptors } = await readCheckpoint(managed);
  t.like(metadata, {
    id: 'web1',
    bundle: rt.bundleDir,
    rootfs: running.rootfs,
    cgroupPath: '/runtime/web1',
    criuVersion: '4.2.1',
    leftRunning: false,
  } satisfies Partial<CheckpointMetadata>);
  t.deepEqual(
    metadata.externalMounts.map((m) => [m.kind, m.mountPoint]),
    [['cgroup', '/sys/fs/cgroup/freezer'], ['cgroup', '/sys/fs/cgroup/memory'], ...defaultDevices.map((d) => ['device', d])],
  );
  t.deepEqual(descriptors, ['pipe:[1]', 'pipe:[2]', 'pipe:[3]']);
  t.is(
    await readFile(path.join(managed, 'config.json'), 'utf8'),
    await readFile(path.join(rt.context.store.paths('web1').effectiveBundle, 'config.json'), 'utf8'),
  );

  const record = await load(rt);
  t.is(record.status, 'checkpointed');
  t.false('init' in record);
  t.is(record.lastCheckpoint?.imagePath, managed);
  t.false(record.lastCheckpoint?.leftRunning);
  // CRIU killed the dumped tree.
  t.false(rt.fakes.processes.alive(running.init.pid));
});

test('with --leave-running the container stays running, and each checkpoint replaces the last one', async (t) => {
  const rt = await fakeRuntime(t);
  const running = await runningContainer(rt, 'web1', { monitor: true });
  const managed = defaultImagePath(rt.context, 'web1');

  await checkpoint(rt.context, { id: 'web1', leaveRunning: true });
  const first = await load(rt);
  t.is(first.status, 'running');
  t.deepEqual(first.status === 'running' ? [first.init, first.monitor] : [], [running.init, running.monitor]);
  t.deepEqual(first.lastCheckpoint && { imagePath: first.lastCheckpoint.imagePath, leftRunning: first.lastCheckpoint.leftRunning }, {
    imagePath: managed,
    leftRunning: true,
  });
  t.true(rt.fakes.criu.dumps[0]!.request.opts.leave_running);
  t.true(rt.fakes.processes.alive(running.init.pid));
  await writeFile(path.join(managed, 'stale'), 'from the first checkpoint');

  await new Promise((resolve) => setTimeout(resolve, 5));
  const result = await checkpoint(rt.context, { id: 'web1', leaveRunning: true });
  const second = await load(rt);
  t.true(result.leftRunning);
  t.is(second.status, 'running');
  t.true(second.lastCheckpoint!.time > first.lastCheckpoint!.time);
  t.false(existsSync(path.join(managed, 'stale')));
  t.is(rt.fakes.criu.dumps.length, 2);
  t.true(rt.fakes.processes.alive(running.init.pid));
});

test('--name makes a snapshot: images and the rootfs layer copied at post-dump, the bare checkpoint kept', async (t) => {
  const rt = await fakeRuntime(t);
  await runningContainer(rt);
  await checkpoint(rt.context, { id: 'web1', leaveRunning: true });
  const before = await load(rt);
  const { snapshots } = rt.context;
  const building = `${snapshots.paths('web1', 'base').dir}.new`;
  const copied: Record<string, boolean> = {};
  rt.fakes.criu.probe = (moment) => {
    copied[moment] = existsSync(path.join(building, 'rootfs', 'etc', 'marker'));
  };

  const result = await checkpoint(rt.context, { id: 'web1', name: 'base', leaveRunning: true });

  const dump = rt.fakes.criu.dumps[1]!;
  t.is(dump.request.imagePath, path.join(building, 'images'));
  t.deepEqual(dump.notified, ['post-dump']);
  // The layer is copied while CRIU holds the tree frozen: not before the dump, done at post-dump.
  t.deepEqual(copied, { start: false, 'after post-dump': true });

  const final = snapshots.paths('web1', 'base');
  t.is(result.imagePath, final.images);
  t.like(result.snapshot, { name: 'base', id: 'web1', layers: [final.rootfs], memoryBytes: rt.fakes.criu.pageBytes, leftRunning: true });
  t.deepEqual(await snapshots.read('web1', 'base'), result.snapshot!);
  t.is(await readFile(path.join(final.rootfs, 'etc', 'marker'), 'utf8'), MARKER_TEXT);
  t.true(existsSync(path.join(final.images, 'inventory.img')));
  t.false(existsSync(building));

  // A named snapshot is reached by name, never as the checkpoint a bare restore takes.
  const after = await load(rt);
  t.is(after.status, 'running');
  t.deepEqual(after.lastCheckpoint, before.lastCheckpoint);
});

test('--name without --leave-running checkpoints the container and keeps its last bare checkpoint', async (t) => {
  const rt = await fakeRuntime(t);
  const running = await runningContainer(rt);
  const result = await checkpoint(rt.context, { id: 'web1', name: 'base' });
  const record = await load(rt);
  t.is(record.status, 'checkpointed');
  t.is(record.lastCheckpoint, undefined);
  t.false(result.snapshot!.leftRunning);
  t.false(rt.fakes.processes.alive(running.init.pid));
});

test('a failed dump leaves the container running and its last checkpoint intact, and names a log that is there', async (t) => {
  const rt = await fakeRuntime(t);
  const running = await runningContainer(rt);
  const managed = defaultImagePath(rt.context, 'web1');
  await checkpoint(rt.context, { id: 'web1', leaveRunning: true });
  const before = await load(rt);
  const metadataBefore = await readFile(path.join(managed, 'runtime-checkpoint.json'), 'utf8');

  rt.fakes.criu.failNextDump({ at: 'post-dump', errno: 16, message: "Can't freeze the tree" });
  const error = await t.throwsAsync(checkpoint(rt.context, { id: 'web1' }), { instanceOf: CriuRequestError });

  t.is(error!.code, 'CRIU_FAILED');
  t.is(error!.failure.criuMessage, "Can't freeze the tree");
  t.regex(await readFile(error!.failure.logPath!, 'utf8'), /Error \(criu\/fake\.c:42\): Can't freeze the tree/);
  t.deepEqual(await load(rt), before);
  t.true(rt.fakes.processes.alive(running.init.pid));
  t.is(await readFile(path.join(managed, 'runtime-checkpoint.json'), 'utf8'), metadataBefore);
  t.true(existsSync(path.join(managed, 'inventory.img')));
});

// Found by this test: a failed managed dump used to leave <id>/checkpoint.new behind.
test("a failed dump leaves no checkpoint.new behind, and keeps CRIU's log beside the state", async (t) => {
  const rt = await fakeRuntime(t);
  await runningContainer(rt);
  rt.fakes.criu.failNextDump({ at: 'post-dump' });
  const error = await t.throwsAsync(checkpoint(rt.context, { id: 'web1' }), { instanceOf: CriuRequestError });
  t.false(existsSync(`${defaultImagePath(rt.context, 'web1')}.new`));
  t.is(error.failure.logPath, path.join(rt.context.store.paths('web1').dir, 'failed-dump.log'));
});

test("a failed snapshot dump abandons the snapshot and keeps CRIU's log as failed-dump.log", async (t) => {
  const rt = await fakeRuntime(t);
  await runningContainer(rt);
  const before = await load(rt);
  rt.fakes.criu.failNextDump({ at: 'post-dump', message: 'page-xfer failed' });

  const error = await t.throwsAsync(checkpoint(rt.context, { id: 'web1', name: 'base', leaveRunning: true }), { instanceOf: CriuRequestError });

  const kept = path.join(rt.context.store.paths('web1').dir, 'failed-dump.log');
  t.is(error!.failure.logPath, kept);
  t.true(error!.cause instanceof CriuRequestError);
  t.regex(await readFile(kept, 'utf8'), /page-xfer failed/);
  t.deepEqual(await readdir(rt.context.snapshots.root('web1')), []);
  t.deepEqual(await rt.context.snapshots.list('web1'), []);
  t.deepEqual(await load(rt), before);
});

test('a container that is not running: ContainerNotRunningError, and CRIU is not asked to dump', async (t) => {
  const rt = await fakeRuntime(t);
  const running = await runningContainer(rt);
  await checkpoint(rt.context, { id: 'web1' });
  const checkpointed = await t.throwsAsync(checkpoint(rt.context, { id: 'web1' }), { instanceOf: ContainerNotRunningError });
  t.regex(checkpointed!.message, /it is checkpointed/);
  t.regex(checkpointed!.hint ?? '', /runtime restore web1/);

  await runningContainer(rt, 'web2');
  const init = (await load(rt, 'web2')) as typeof running;
  rt.fakes.processes.exit(init.init.pid, { kind: 'exited', code: 1 });
  const ended = await t.throwsAsync(checkpoint(rt.context, { id: 'web2' }), { instanceOf: ContainerNotRunningError });
  t.regex(ended!.message, /it is stopped/);
  t.is(rt.fakes.criu.dumps.length, 1);
});

test('--auto-dedup with --name is refused before any dump, and nothing is written', async (t) => {
  const rt = await fakeRuntime(t);
  await runningContainer(rt);
  const error = await t.throwsAsync(checkpoint(rt.context, { id: 'web1', name: 'base', autoDedup: true }), { instanceOf: UsageError });
  t.regex(error!.message, /--auto-dedup cannot be used with --name/);
  t.deepEqual(rt.fakes.criu.dumps, []);
  t.false(existsSync(path.join(rt.config.checkpointRoot, 'web1')));
  t.is((await load(rt)).status, 'running');
});

test('--pre-dump without mem_track: CriuFeatureMissingError before anything is written or dumped', async (t) => {
  const rt = await fakeRuntime(t);
  await runningContainer(rt);
  const before = await load(rt);
  rt.fakes.criu.setFeatures({ mem_track: false, lazy_pages: true });

  const error = await t.throwsAsync(checkpoint(rt.context, { id: 'web1', preDump: true, imagePath: path.join(rt.root, 'pre') }), {
    instanceOf: CriuFeatureMissingError,
  });

  t.is(error!.code, 'CRIU_FEATURE_MISSING');
  t.is(error!.feature, 'mem_track');
  t.is(error!.neededFor, '--pre-dump');
  t.deepEqual(rt.fakes.criu.dumps, []);
  t.false(existsSync(path.join(rt.root, 'pre')));
  t.false(existsSync(path.join(rt.config.checkpointRoot, 'web1')));
  t.deepEqual(await load(rt), before);
});

test('--pre-dump into --image-path: a PRE_DUMP request, memory only, and the record does not change', async (t) => {
  const rt = await fakeRuntime(t);
  const running = await runningContainer(rt);
  const before = await load(rt);
  const pre = path.join(rt.root, 'pre');

  const result = await checkpoint(rt.context, { id: 'web1', preDump: true, imagePath: pre });

  const dump = rt.fakes.criu.dumps[0]!;
  t.true(dump.request.preDump);
  t.is(dump.request.imagePath, pre);
  t.like(dump.request.opts, { pid: running.init.pid, leave_running: true, track_mem: true, log_file: 'pre-dump.log' });
  t.deepEqual(dump.entriesAtStart, []);
  t.true(result.leftRunning);
  t.false(existsSync(path.join(pre, 'runtime-checkpoint.json')));
  t.deepEqual(await load(rt), before);
  t.true(rt.fakes.processes.alive(running.init.pid));
});

// Found by this test: without --image-path a pre-dump used to replace <checkpointRoot>/<id>/checkpoint
// (the last full checkpoint the record points at) with memory-only images; it has its own directory now.
test('--pre-dump without --image-path keeps the last full checkpoint restorable', async (t) => {
  const rt = await fakeRuntime(t);
  await runningContainer(rt);
  await checkpoint(rt.context, { id: 'web1', leaveRunning: true });
  await checkpoint(rt.context, { id: 'web1', preDump: true });
  const record = await load(rt);
  await t.notThrowsAsync(readCheckpoint(record.lastCheckpoint!.imagePath));
});

test('a network namespace joined by path is dumped as external, named by its inode', async (t) => {
  const rt = await fakeRuntime(t, {
    editSpec: (spec) => {
      const linux = spec.linux as { namespaces: { type: string; path?: string }[] };
      linux.namespaces = linux.namespaces.map((n) => (n.type === 'network' ? { ...n, path: '/var/run/netns/blue' } : n));
    },
  });
  const running = await runningContainer(rt);
  await checkpoint(rt.context, { id: 'web1', leaveRunning: true });
  const inode = await rt.fakes.processes.namespaceInode(running.init.pid, 'net');
  t.deepEqual(rt.fakes.criu.dumps[0]!.request.opts.external, [`net[${inode}]:extRootNetNS`]);
  t.deepEqual(rt.fakes.processes.namespaceLookups[0], { pid: running.init.pid, type: 'net' });
});

test('checkpoint needs root: NotRootError, and CRIU is never reached', async (t) => {
  const rt = await fakeRuntime(t);
  await runningContainer(rt);
  rt.fakes.processes.uid = 1000;
  await t.throwsAsync(checkpoint(rt.context, { id: 'web1' }), { instanceOf: NotRootError });
  t.deepEqual(rt.fakes.criu.calls, []);
});

test("the metadata beside the images is root's alone, and a symlink planted at its name is replaced, not written through", async (t) => {
  const rt = await fakeRuntime(t);
  await runningContainer(rt);
  const dir = path.join(rt.root, 'images');
  await mkdir(dir, { mode: 0o700 });
  const victim = path.join(rt.root, 'victim');
  await writeFile(victim, 'keep me\n');
  await symlink(victim, path.join(dir, 'config.json'));

  await checkpoint(rt.context, { id: 'web1', imagePath: dir });

  t.is(await readFile(victim, 'utf8'), 'keep me\n', 'nothing was written through the link');
  for (const name of ['runtime-checkpoint.json', 'descriptors.json', 'config.json']) {
    const info = await lstat(path.join(dir, name));
    t.true(info.isFile(), name);
    t.is(info.mode & 0o777, 0o600, `${name} is 0600`);
  }
});

test('an --image-path that others may write in, or that is a symlink, is refused before anything is dumped', async (t) => {
  const rt = await fakeRuntime(t);
  await runningContainer(rt);
  const open = path.join(rt.root, 'open');
  await mkdir(open);
  await chmod(open, 0o777);
  const error = await t.throwsAsync(checkpoint(rt.context, { id: 'web1', imagePath: open }), { instanceOf: UnsafeImageDirectoryError });
  t.is(error.message, `${open} cannot hold a checkpoint: others may write in it (mode 0777)`);
  await symlink(open, path.join(rt.root, 'link'));
  await chmod(open, 0o700);
  await t.throwsAsync(checkpoint(rt.context, { id: 'web1', imagePath: path.join(rt.root, 'link') }), {
    message: /it is not a directory \(a symbolic link\?\)/,
  });
  const shared = path.join(rt.root, 'shared');
  await mkdir(path.join(shared, 'images'), { recursive: true, mode: 0o700 });
  await chmod(shared, 0o777);
  await t.throwsAsync(checkpoint(rt.context, { id: 'web1', imagePath: path.join(shared, 'images') }), {
    message: new RegExp(`${shared} above it belongs to uid \\d+ or others may write in it`),
  });
  t.deepEqual(rt.fakes.criu.dumps, []);
  t.is((await load(rt)).status, 'running');
});
