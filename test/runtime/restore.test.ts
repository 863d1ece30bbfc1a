import 'reflect-metadata';
import test from 'ava';
import { existsSync } from 'node:fs';
import { chmod, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { checkpoint, defaultImagePath } from '../../src/runtime/checkpoint.js';
import { restoreDetached, restoreForeground } from '../../src/runtime/restore.js';
import { IllegalTransitionError } from '../../src/runtime/state/status.js';
import { CheckpointNotFoundError } from '../../src/runtime/checkpoint-metadata.js';
import { MonitorDiedError } from '../../src/runtime/monitor/launch.js';
import { CriuFeatureMissingError, CriuRequestError } from '../../src/criu/errors.js';
import { CgroupMode } from '../../src/criu/rpc/messages.js';
import { fakeRuntime, load, runningContainer, type FakeRuntime } from '../helpers/fake-runtime.js';

const defaultDevices = ['/dev/null', '/dev/zero', '/dev/full', '/dev/random', '/dev/urandom', '/dev/tty'];

function stdio() {
  return { stdout: new PassThrough(), stderr: new PassThrough() };
}

/** A container run, then checkpointed (its init killed by the dump). */
async function checkpointed(rt: FakeRuntime, id = 'web1') {
  await runningContainer(rt, id);
  await checkpoint(rt.context, { id });
  return load(rt, id);
}

test("restoreForeground restores the last checkpoint with the runtime as parent, into the container's cgroup", async (t) => {
  const rt = await fakeRuntime(t);
  const before = await checkpointed(rt);
  const { criuRoot } = rt.context.store.paths('web1');

  const restored = await restoreForeground(rt.context, { id: 'web1', tcpEstablished: true }, stdio());

  const [call, ...more] = rt.fakes.criu.restores;
  t.is(more.length, 0);
  t.is(call!.request.imagePath, defaultImagePath(rt.context, 'web1'));
  t.is(call!.request.workPath, undefined);
  t.deepEqual(call!.request.opts, {
    root: criuRoot,
    log_level: 4,
    log_file: 'restore.log',
    notify_scripts: false,
    rst_sibling: true,
    evasive_devices: true,
    manage_cgroups: true,
    manage_cgroups_mode: CgroupMode.DEFAULT,
    // The cgroup binds the dump named are the restored container's own cgroup directories.
    ext_mnt: [
      { key: '/sys/fs/cgroup/freezer', val: '/sys/fs/cgroup/freezer/runtime/web1' },
      { key: '/sys/fs/cgroup/memory', val: '/sys/fs/cgroup/memory/runtime/web1' },
      ...defaultDevices.map((d) => ({ key: d, val: d })),
    ],
    // runc's convention: each stdio fd that was a pipe is reconnected to the new pipe at that fd.
    inherit_fd: [
      { key: 'pipe:[1]', fd: 0 },
      { key: 'pipe:[2]', fd: 1 },
      { key: 'pipe:[3]', fd: 2 },
    ],
    tcp_established: true,
    ext_unix_sk: false,
    shell_job: false,
    file_locks: false,
    auto_dedup: false,
  });
  t.false('leave_stopped' in call!.request.opts);
  t.deepEqual(call!.request.inheritFiles, []);
  t.is(call!.request.stdio.length, 3);
  t.true(call!.request.stdio.every((fd) => typeof fd === 'number'));

  // CRIU was put into the container's cgroup before it restored, and told its roots.
  t.deepEqual(rt.fakes.cgroups.callsOf('enter'), [{ op: 'enter', cgroupPath: '/runtime/web1', pid: call!.criuPid }]);
  t.deepEqual(call!.cgroupRoots, [
    { ctrl: 'freezer', path: '/runtime/web1' },
    { ctrl: 'memory', path: '/runtime/web1' },
  ]);
  t.is(rt.fakes.processes.process(restored.pid).cgroup, '/runtime/web1');

  // The rootfs was bound on the restore root for CRIU, and nothing stays mounted.
  t.deepEqual(rt.fakes.mounts.calls, [
    { op: 'bind', source: before.rootfs, target: criuRoot },
    { op: 'unmount', target: criuRoot, detach: true },
  ]);
  t.deepEqual(rt.fakes.mounts.table, []);
  t.false(existsSync(criuRoot));

  const record = await load(rt);
  t.is(call!.pid, restored.pid);
  t.is(record.status, 'running');
  t.deepEqual(record.status === 'running' ? record.init : undefined, rt.fakes.processes.identity(restored.pid));
  t.false('monitor' in record, 'a foreground restore has no monitor');
  t.is(record.restoreCount, before.restoreCount + 1);
  t.deepEqual(record.lastCheckpoint, before.lastCheckpoint);
  t.is(rt.fakes.reaper.installs, 1);
  t.deepEqual(rt.fakes.reaper.waits, [restored.pid]);

  // This process reaps the init and records its exit.
  rt.fakes.processes.exit(restored.pid, { kind: 'exited', code: 3 });
  t.deepEqual(await restored.exited, { kind: 'exited', code: 3 });
  const stopped = await load(rt);
  t.is(stopped.status, 'stopped');
  t.is(stopped.status === 'stopped' ? stopped.exit?.code : undefined, 3);
});

test('restoreDetached: the monitor restores (run here in-process), records itself, and each restore counts', async (t) => {
  const rt = await fakeRuntime(t);
  await checkpointed(rt);
  rt.fakes.monitors.launchMode = { kind: 'supervise' };
  const pidFile = path.join(rt.root, 'init.pid');

  const pid = await restoreDetached(rt.context, { id: 'web1', pidFile });

  t.deepEqual(rt.fakes.monitors.launched, [{ kind: 'restore', id: 'web1', imagePath: defaultImagePath(rt.context, 'web1'), criu: {}, pidFile }]);
  t.deepEqual(rt.fakes.monitors.reports, [{ ok: true, pid }]);
  t.is(await readFile(pidFile, 'utf8'), String(pid));
  const record = await load(rt);
  t.is(record.status, 'running');
  t.deepEqual(record.status === 'running' ? record.monitor : undefined, await rt.fakes.processes.self());
  t.is(record.restoreCount, 1);

  // Checkpointed and restored again: the count goes on.
  await checkpoint(rt.context, { id: 'web1' });
  // The dump ended the init: the first monitor ends with it.
  t.is(await rt.fakes.monitors.monitors[0], 0);
  const again = await restoreDetached(rt.context, { id: 'web1' });
  t.not(again, pid);
  t.is((await load(rt)).restoreCount, 2);
  rt.fakes.processes.exit(again, { kind: 'exited', code: 0 });
  t.is(await rt.fakes.monitors.monitors[1], 0);
  t.is((await load(rt)).status, 'stopped');
});

test('a failed restore leaves the container checkpointed, with the restore root unmounted and removed', async (t) => {
  const rt = await fakeRuntime(t);
  const before = await checkpointed(rt);
  const { criuRoot } = rt.context.store.paths('web1');
  rt.fakes.criu.failNextRestore({ at: 'prepared', errno: 17, message: "Can't mount at ./proc" });

  const error = await t.throwsAsync(restoreForeground(rt.context, { id: 'web1' }, stdio()), { instanceOf: CriuRequestError });

  t.is(error!.failure.request, 'RESTORE');
  t.is(error!.failure.logPath, path.join(defaultImagePath(rt.context, 'web1'), 'restore.log'));
  t.deepEqual(error!.failure.logTail, ["(00.050000) Error (criu/fake.c:42): Can't mount at ./proc"]);
  t.deepEqual(await load(rt), before);
  t.deepEqual(rt.fakes.mounts.calls, [
    { op: 'bind', source: before.rootfs, target: criuRoot },
    { op: 'unmount', target: criuRoot, detach: true },
  ]);
  t.deepEqual(rt.fakes.mounts.table, []);
  t.false(existsSync(criuRoot));
  t.deepEqual(rt.fakes.reaper.waits, [], 'no init to reap');
  // What the failed restore left of the tree is reaped (its tasks are our children): one sweep,
  // which leaves alone the children this process had before.
  t.is(rt.fakes.reaper.sweeps.length, 1);
  // The last checkpoint is still there to try again.
  t.true(existsSync(path.join(defaultImagePath(rt.context, 'web1'), 'inventory.img')));
});

test('restore under a new id records a container from the checkpoint, and removes it again when the monitor fails', async (t) => {
  const rt = await fakeRuntime(t);
  await checkpointed(rt);
  const imagePath = defaultImagePath(rt.context, 'web1');
  const { store } = rt.context;

  rt.fakes.monitors.launchMode = { kind: 'throw', error: new MonitorDiedError('web2', 'status 1', store.paths('web2').monitorLog) };
  await t.throwsAsync(restoreDetached(rt.context, { id: 'web2', imagePath }), { instanceOf: MonitorDiedError });
  t.deepEqual(rt.fakes.monitors.launched, [{ kind: 'restore', id: 'web2', imagePath, criu: { imagePath } }]);
  t.false(await store.exists('web2'));
  t.false(existsSync(store.paths('web2').dir));

  // The same restore with a monitor that answers: the new container is recorded, checkpointed,
  // with the checkpoint's bundle and its own cgroup.
  rt.fakes.monitors.launchMode = { kind: 'answer', pid: 777 };
  t.is(await restoreDetached(rt.context, { id: 'web2', imagePath }), 777);
  const record = await load(rt, 'web2');
  t.like(record, { id: 'web2', status: 'checkpointed', bundle: rt.bundleDir, cgroupPath: '/runtime/web2', restoreCount: 0 });
  t.is(record.lastCheckpoint?.imagePath, imagePath);
  t.true(existsSync(path.join(store.paths('web2').effectiveBundle, 'config.json')));
});

test('restore under a new id into a cgroup that already holds a process is refused, as run refuses it, and records nothing', async (t) => {
  const rt = await fakeRuntime(t);
  await checkpointed(rt);
  const imagePath = defaultImagePath(rt.context, 'web1');
  const other = rt.fakes.processes.spawn({ comm: 'unrelated', cgroup: '/runtime/web2/inner' });
  const error = await t.throwsAsync(restoreDetached(rt.context, { id: 'web2', imagePath }));
  t.is((error as { code?: string }).code, 'CGROUP_IN_USE');
  t.true(rt.fakes.processes.alive(other.pid));
  t.deepEqual(rt.fakes.monitors.launched, []);
  t.false(await rt.context.store.exists('web2'));
  t.false(existsSync(rt.context.store.paths('web2').dir));
});

test('restoring a running container: IllegalTransitionError, and CRIU is never asked', async (t) => {
  const rt = await fakeRuntime(t);
  await runningContainer(rt);
  const before = await load(rt);

  const error = await t.throwsAsync(restoreForeground(rt.context, { id: 'web1' }, stdio()), { instanceOf: IllegalTransitionError });

  t.is(error!.from, 'running');
  t.is(error!.to, 'running');
  t.regex(error!.message, /cannot restore container "web1": it is running/);
  t.deepEqual(rt.fakes.criu.calls, []);
  t.deepEqual(rt.fakes.mounts.calls, []);
  t.deepEqual(await load(rt), before);
});

test('a stopped container that was never checkpointed: CheckpointNotFoundError before CRIU is asked', async (t) => {
  const rt = await fakeRuntime(t);
  const running = await runningContainer(rt);
  await rt.context.store.withLock('web1', async () =>
    rt.context.store.commit(await load(rt), { kind: 'exited', exit: { code: 0, time: new Date().toISOString() } }),
  );
  rt.fakes.processes.exit(running.init.pid);

  const error = await t.throwsAsync(restoreForeground(rt.context, { id: 'web1' }, stdio()), { instanceOf: CheckpointNotFoundError });
  t.regex(error!.message, /was never checkpointed/);
  t.deepEqual(rt.fakes.criu.calls, []);
});

test('--lazy-pages: the lazy-pages daemon serves the images while the tree runs, and stops with it', async (t) => {
  const rt = await fakeRuntime(t);
  await checkpointed(rt);
  const imagePath = defaultImagePath(rt.context, 'web1');
  const workPath = path.join(rt.root, 'work');

  const restored = await restoreForeground(rt.context, { id: 'web1', lazyPages: true, workPath }, stdio());

  const [call] = rt.fakes.criu.restores;
  t.true(call!.request.opts.lazy_pages);
  t.is(call!.request.workPath, workPath);
  t.true(existsSync(path.join(workPath, 'restore.log')), "CRIU's log goes to the work directory");
  t.deepEqual(
    rt.fakes.criu.calls.filter((c) => c.op === 'requireFeature' || c.op === 'startLazyPages' || c.op === 'stopLazyPages'),
    [
      { op: 'requireFeature', feature: 'lazy_pages', neededFor: '--lazy-pages' },
      { op: 'startLazyPages', imagePath, workPath },
    ],
  );
  rt.fakes.processes.exit(restored.pid);
  await restored.exited;
  t.deepEqual(rt.fakes.criu.calls.at(-1), { op: 'stopLazyPages', imagePath, workPath });
});

test('--lazy-pages without userfaultfd: CriuFeatureMissingError, and nothing is restored', async (t) => {
  const rt = await fakeRuntime(t);
  const before = await checkpointed(rt);
  rt.fakes.criu.setFeatures({ mem_track: true, lazy_pages: false });

  const error = await t.throwsAsync(restoreForeground(rt.context, { id: 'web1', lazyPages: true, workPath: path.join(rt.root, 'work') }, stdio()), {
    instanceOf: CriuFeatureMissingError,
  });

  t.is(error!.feature, 'lazy_pages');
  t.deepEqual(rt.fakes.criu.restores, []);
  t.deepEqual(rt.fakes.mounts.calls, []);
  t.deepEqual(await load(rt), before);
});

test('images in a directory someone else may write in are not restored from: the metadata says what runs', async (t) => {
  const rt = await fakeRuntime(t);
  await checkpointed(rt);
  const imagePath = defaultImagePath(rt.context, 'web1');
  await chmod(imagePath, 0o777);

  await t.throwsAsync(restoreDetached(rt.context, { id: 'web2', imagePath }), {
    code: 'UNSAFE_IMAGE_DIRECTORY',
    message: `${imagePath} cannot be restored from: others may write in it (mode 0777)`,
  });
  await t.throwsAsync(restoreDetached(rt.context, { id: 'web1' }), { code: 'UNSAFE_IMAGE_DIRECTORY' });
  t.deepEqual(rt.fakes.monitors.launched, []);
  t.false(await rt.context.store.exists('web2'));
  t.is((await load(rt)).status, 'checkpointed');
});

test('a checkpoint whose images are not as dumped is not restored: the error names the image', async (t) => {
  const rt = await fakeRuntime(t);
  await checkpointed(rt);
  const pages = path.join(defaultImagePath(rt.context, 'web1'), 'pages-1.img');
  const bytes = await readFile(pages);
  bytes[0] ^= 0x80;
  await writeFile(pages, bytes);

  await t.throwsAsync(restoreDetached(rt.context, { id: 'web1' }), { code: 'CORRUPT_CHECKPOINT', message: /pages-1\.img differs from what was dumped/ });
  t.deepEqual(rt.fakes.monitors.launched, []);
  t.is((await load(rt)).status, 'checkpointed');
});

test("images below a link of root's to a trusted directory (/var/run to /run) are restored", async (t) => {
  const rt = await fakeRuntime(t);
  await checkpointed(rt);
  const real = defaultImagePath(rt.context, 'web1');
  const link = path.join(rt.root, 'linked');
  await symlink(path.dirname(real), link);

  rt.fakes.monitors.launchMode = { kind: 'answer', pid: 778 };
  t.is(await restoreDetached(rt.context, { id: 'web2', imagePath: path.join(link, 'checkpoint') }), 778);
});
