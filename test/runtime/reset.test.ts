import 'reflect-metadata';
import test from 'ava';
import { existsSync } from 'node:fs';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { checkpoint } from '../../src/runtime/checkpoint.js';
import { LAZY_FROM_BYTES, reset, resetAsked, Resetter, type ResetRequest } from '../../src/runtime/reset.js';
import { criuBinaryFor } from '../../src/runtime/restore.js';
import type { ResetSpec } from '../../src/runtime/monitor/protocol.js';
import { UsageError } from '../../src/runtime/errors.js';
import { CriuRequestError } from '../../src/criu/errors.js';
import { fakeRuntime, load, runningContainer, until, type FakeRuntime } from '../helpers/fake-runtime.js';

const base: ResetSpec = { sourceId: 'web1', name: 'base', standbys: 0, criu: {} };

/** A running container with a snapshot "base"; left running, or checkpointed by the snapshot. */
async function snapshotted(rt: FakeRuntime, options: { readonly leaveRunning?: boolean; readonly monitor?: boolean } = {}) {
  const running = await runningContainer(rt, 'web1', { monitor: options.monitor ?? false });
  await checkpoint(rt.context, { id: 'web1', name: 'base', ...(options.leaveRunning ? { leaveRunning: true } : {}) });
  return running;
}

/**
 * A resetter, shut down once when the test ends (or when the test calls shutdown): a second
 * shutdown would close the same supervisors again (see the double close in supervisor.test.ts).
 */
function resetterFor(t: { teardown(fn: () => Promise<void>): void }, rt: FakeRuntime): { resetter: Resetter; shutdown: () => Promise<void> } {
  const resetter = new Resetter(rt.context, 'web1');
  let done: Promise<void> | undefined;
  const shutdown = () => (done ??= resetter.shutdown());
  t.teardown(() => shutdown().catch(() => undefined));
  return { resetter, shutdown };
}

function instanceDir(rt: FakeRuntime, n: number): string {
  return path.join(rt.context.store.paths('web1').dir, 'instances', String(n));
}

test('a reset restores the snapshot as a new instance: its own overlay, read-only images and cgroup', async (t) => {
  const rt = await fakeRuntime(t);
  await snapshotted(rt);
  const before = await load(rt);
  const snapshot = rt.context.snapshots.paths('web1', 'base');
  const imagesBefore = (await readdir(snapshot.images)).sort();
  const dir = instanceDir(rt, 1);
  const { resetter } = resetterFor(t, rt);

  const pid = await resetter.reset(base);

  const layers = { lowers: [snapshot.rootfs], upper: path.join(dir, 'upper'), work: path.join(dir, 'work'), target: path.join(dir, 'rootfs') };
  t.deepEqual(rt.fakes.mounts.calls, [
    {
      op: 'mount',
      source: 'overlay',
      target: layers.target,
      fsType: 'overlay',
      flags: 0,
      data: `lowerdir=${snapshot.rootfs},upperdir=${layers.upper},workdir=${layers.work}`,
    },
    { op: 'bindReadOnly', source: snapshot.images, target: path.join(dir, 'images') },
    { op: 'bind', source: layers.target, target: path.join(dir, 'criu-root') },
    { op: 'unmount', target: path.join(dir, 'criu-root'), detach: true },
    // The container's rootfs path shows the new instance's rootfs.
    { op: 'bind', source: layers.target, target: before.rootfs },
  ]);

  const [restore, ...more] = rt.fakes.criu.restores;
  t.is(more.length, 0);
  t.is(restore!.request.imagePath, path.join(dir, 'images'));
  t.is(restore!.request.workPath, path.join(dir, 'criu-work'));
  t.is(restore!.request.opts.root, path.join(dir, 'criu-root'));
  t.false('leave_stopped' in restore!.request.opts);
  t.deepEqual(restore!.request.opts.ext_mnt?.slice(0, 2), [
    { key: '/sys/fs/cgroup/freezer', val: '/sys/fs/cgroup/freezer/runtime/web1/1' },
    { key: '/sys/fs/cgroup/memory', val: '/sys/fs/cgroup/memory/runtime/web1/1' },
  ]);
  t.deepEqual(rt.fakes.cgroups.callsOf('enter'), [{ op: 'enter', cgroupPath: '/runtime/web1/1', pid: restore!.criuPid }]);
  t.is(restore!.pid, pid);
  t.is(rt.fakes.processes.process(pid).cgroup, '/runtime/web1/1');
  // CRIU's log went to the instance's work directory, never into the snapshot's images.
  t.true(existsSync(path.join(dir, 'criu-work', 'restore.log')));
  t.deepEqual((await readdir(snapshot.images)).sort(), imagesBefore);

  const record = await load(rt);
  t.is(record.status, 'running');
  t.like(record, {
    cgroupPath: '/runtime/web1/1',
    cgroupBase: '/runtime/web1',
    instance: 1,
    snapshot: 'base',
    layers,
    restoreCount: before.restoreCount + 1,
  });
  t.deepEqual(record.status === 'running' ? [record.init, record.monitor] : [], [rt.fakes.processes.identity(pid), await rt.fakes.processes.self()]);
});

test('with standby, a stopped instance is restored ahead (leave_stopped), and the next reset only thaws it', async (t) => {
  const rt = await fakeRuntime(t);
  await snapshotted(rt);
  const { resetter, shutdown } = resetterFor(t, rt);
  const spec: ResetSpec = { ...base, standbys: 1 };
  const { criu, cgroups, processes, mounts } = rt.fakes;

  const first = await resetter.reset(spec);
  t.is(criu.restores.length, 1);
  await until(() => criu.restores[1]?.pid !== undefined, 'the standby to be restored');
  const standby = criu.restores[1]!;
  t.true(standby.request.opts.leave_stopped);
  t.is(standby.request.imagePath, path.join(instanceDir(rt, 2), 'images'));
  t.deepEqual(cgroups.callsOf('enter')[1], { op: 'enter', cgroupPath: '/runtime/web1/2', pid: standby.criuPid });
  t.is(processes.process(standby.pid!).state, 'stopped');
  t.is((await load(rt)).instance, 1, 'the standby is not the container yet');

  const second = await resetter.reset(spec);

  t.is(standby.pid, second);
  t.is(criu.restores.length, 2, 'no restore: the standby is taken');
  // The old instance is held still while the switch is made, the standby let go, and when the
  // reset returns the old instance is gone.
  t.deepEqual(cgroups.callsOf('signal'), [
    { op: 'signal', cgroupPath: '/runtime/web1/1', signal: 'SIGSTOP', reached: 1 },
    { op: 'signal', cgroupPath: '/runtime/web1/2', signal: 'SIGCONT', reached: 1 },
  ]);
  t.is(processes.process(second).state, 'running');
  t.false(processes.alive(first));
  t.deepEqual(cgroups.callsOf('kill')[0], { op: 'kill', cgroupPath: '/runtime/web1/1' });
  const record = await load(rt);
  t.like(record, { instance: 2, cgroupPath: '/runtime/web1/2', cgroupBase: '/runtime/web1', restoreCount: 2 });
  t.is(record.status === 'running' ? record.init.pid : undefined, second);
  t.deepEqual(mounts.callsOf('bind').at(-1), { op: 'bind', source: path.join(instanceDir(rt, 2), 'rootfs'), target: record.rootfs });

  // After the answer: the replaced instance's directory and cgroup are removed, and the next standby restored.
  await until(() => cgroups.callsOf('removeTree').some((c) => c.cgroupPath === '/runtime/web1/1') && !existsSync(instanceDir(rt, 1)), 'instance 1 to go');
  t.deepEqual(mounts.mountedUnder(instanceDir(rt, 1)), []);
  await until(() => criu.restores[2]?.pid !== undefined, 'the next standby');
  t.true(criu.restores[2]!.request.opts.leave_stopped);
  t.is(criu.restores[2]!.request.imagePath, path.join(instanceDir(rt, 3), 'images'));

  // Shut down, the standby goes with its cgroup.
  await shutdown();
  t.false(processes.alive(criu.restores[2]!.pid!));
  t.true(cgroups.callsOf('removeTree').some((c) => c.cgroupPath === '/runtime/web1/3'));
});

test('with two standbys, both are restored side by side; resets take them in turn, and another snapshot discards them', async (t) => {
  const rt = await fakeRuntime(t);
  await snapshotted(rt);
  const { resetter, shutdown } = resetterFor(t, rt);
  const spec: ResetSpec = { ...base, standbys: 2 };
  const { criu, processes } = rt.fakes;

  await resetter.reset(spec);
  await until(() => criu.restores[1]?.pid !== undefined && criu.restores[2]?.pid !== undefined, 'two standbys');
  const [first, second] = [criu.restores[1]!, criu.restores[2]!];
  t.true(first.request.opts.leave_stopped && second.request.opts.leave_stopped);
  t.not(first.request.imagePath, second.request.imagePath, 'each has its own instance directory');

  const standbys = [first.pid!, second.pid!];
  const taken = await resetter.reset(spec);
  t.true(standbys.includes(taken), 'a standby is taken');
  t.is(criu.restores.length, 3, 'no restore: a standby was taken');
  await until(() => criu.restores[3]?.pid !== undefined, 'the standbys topped up');
  t.is(
    await resetter.reset(spec),
    standbys.find((pid) => pid !== taken)!,
    'then the other one',
  );
  await until(() => criu.restores[4]?.pid !== undefined, 'the standbys topped up again');

  // A reset to another snapshot cannot use them: they are discarded, and it restores its own.
  await checkpoint(rt.context, { id: 'web1', name: 'other', leaveRunning: true });
  const waiting = [criu.restores[3]!.pid!, criu.restores[4]!.pid!];
  const other = await resetter.reset({ ...spec, name: 'other' });
  t.is(criu.restores[5]!.pid, other);
  await until(() => waiting.every((pid) => !processes.alive(pid)), 'the discarded standbys to be killed');
  await shutdown();
});

test('a snapshot of 64 MiB or more is reset lazily unless asked otherwise; small ones, or where the kernel forbids it, eagerly', async (t) => {
  const rt = await fakeRuntime(t);
  rt.fakes.criu.pageBytes = LAZY_FROM_BYTES;
  await snapshotted(rt, { leaveRunning: true });
  const launchedCriu = async (request: Omit<Parameters<typeof reset>[1], 'id'>) => {
    rt.fakes.monitors.launchMode = { kind: 'answer', pid: 700 + rt.fakes.monitors.launched.length };
    await reset(rt.context, { id: 'web1', name: 'base', ...request });
    const job = rt.fakes.monitors.launched.at(-1)!;
    return job.kind === 'reset' ? job.reset.criu : undefined;
  };

  t.deepEqual(await launchedCriu({}), { lazyPages: true }, 'large: lazy by default');
  t.deepEqual(await launchedCriu({ lazyPages: false }), {}, '--no-lazy-pages: eager');
  rt.fakes.criu.setFeatures({ mem_track: true, lazy_pages: false });
  t.deepEqual(await launchedCriu({}), {}, 'no lazy pages in this kernel: eager');

  const small = await fakeRuntime(t);
  await snapshotted(small, { leaveRunning: true });
  small.fakes.monitors.launchMode = { kind: 'answer', pid: 800 };
  await reset(small.context, { id: 'web1', name: 'base' });
  const job = small.fakes.monitors.launched[0]!;
  t.deepEqual(job.kind === 'reset' ? job.reset.criu : undefined, {}, 'small: eager');
});

test('a reset asked of the monitor takes the standbys it asks for: none with standbys 0', async (t) => {
  const rt = await fakeRuntime(t);
  await snapshotted(rt);
  const { resetter, shutdown } = resetterFor(t, rt);
  await resetAsked(rt.context, resetter, 'web1', { name: 'base', standbys: 0, criu: {} });
  await resetAsked(rt.context, resetter, 'web1', { name: 'base', standbys: 1, criu: {} });
  await until(() => rt.fakes.criu.restores.length === 3, 'one standby');
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.deepEqual(
    rt.fakes.criu.restores.map((r) => r.request.opts.leave_stopped === true),
    [false, false, true],
    'no standby after the first, one after the second',
  );
  await shutdown();
});

// The tests where an instance's restore fails run alone: on that path Resetter closes the new
// instance's supervisor twice, and the second close can close an fd another test in this process
// has just opened (a known bug, shown in monitor/supervisor.test.ts).
test.serial("a failed restore removes the new instance's directory, mounts and cgroup, and the record stays as it was", async (t) => {
  const rt = await fakeRuntime(t);
  await snapshotted(rt);
  const before = await load(rt);
  const snapshot = rt.context.snapshots.paths('web1', 'base');
  const imagesBefore = (await readdir(snapshot.images)).sort();
  const { resetter } = resetterFor(t, rt);
  rt.fakes.criu.failNextRestore({ at: 'prepared', message: "Can't restore the mount namespace" });

  const error = await t.throwsAsync(resetter.reset(base), { instanceOf: CriuRequestError });

  // CRIU's log went with the instance directory; a copy is kept beside the state.
  const kept = path.join(rt.context.store.paths('web1').dir, 'reset-failed.log');
  t.is(error!.failure.logPath, kept);
  t.regex(await readFile(kept, 'utf8'), /Can't restore the mount namespace/);
  t.false(existsSync(instanceDir(rt, 1)));
  t.deepEqual(
    rt.fakes.cgroups.callsOf('enter').map((c) => c.cgroupPath),
    ['/runtime/web1/1'],
  );
  t.deepEqual(rt.fakes.cgroups.callsOf('removeTree'), [{ op: 'removeTree', cgroupPath: '/runtime/web1/1' }]);
  t.deepEqual([...rt.fakes.cgroups.existing], []);
  t.deepEqual(rt.fakes.mounts.table, [], 'overlay, images and restore root all unmounted');
  t.deepEqual(await load(rt), before);
  t.deepEqual((await readdir(snapshot.images)).sort(), imagesBefore);

  // The resetter is still usable: the next reset gets a new instance.
  const pid = await resetter.reset(base);
  t.like(await load(rt), { status: 'running', instance: 2, cgroupPath: '/runtime/web1/2' });
  t.true(rt.fakes.processes.alive(pid));
});

test.serial('a failed reset leaves the container running on its old instance, which was only held still meanwhile', async (t) => {
  const rt = await fakeRuntime(t);
  await snapshotted(rt);
  const { resetter } = resetterFor(t, rt);
  const first = await resetter.reset(base);
  rt.fakes.criu.failNextRestore({ at: 'prepared' });

  await t.throwsAsync(resetter.reset(base), { instanceOf: CriuRequestError });

  // The old instance was stopped (SIGSTOP) while the new one was tried, then let go again.
  t.deepEqual(
    rt.fakes.cgroups.callsOf('signal').map((c) => [c.cgroupPath, c.signal]),
    [
      ['/runtime/web1/1', 'SIGSTOP'],
      ['/runtime/web1/1', 'SIGCONT'],
    ],
  );
  t.true(rt.fakes.processes.alive(first));
  t.is(rt.fakes.processes.process(first).state, 'running');
  t.deepEqual(rt.fakes.cgroups.callsOf('kill'), []);
  // What the failed instance had is gone; the record still names the old instance.
  t.true(rt.fakes.cgroups.callsOf('removeTree').some((c) => c.cgroupPath === '/runtime/web1/2'));
  t.false(existsSync(instanceDir(rt, 2)));
  t.like(await load(rt), { status: 'running', instance: 1, cgroupPath: '/runtime/web1/1' });
  // And the next reset works.
  const third = await resetter.reset(base);
  t.false(rt.fakes.processes.alive(first));
  t.like(await load(rt), { status: 'running', instance: 3 });
  t.true(rt.fakes.processes.alive(third));
});

test.serial('a standby that fails to restore is only logged; the next reset restores afresh', async (t) => {
  const rt = await fakeRuntime(t, { logLevel: 'warn' });
  await snapshotted(rt);
  const { resetter } = resetterFor(t, rt);
  const spec: ResetSpec = { ...base, standbys: 1 };
  const { criu, cgroups } = rt.fakes;

  const first = await resetter.reset(spec);
  criu.failNextRestore({ at: 'prepared' });
  await until(() => cgroups.callsOf('removeTree').some((c) => c.cgroupPath === '/runtime/web1/2'), 'the failed standby to be removed');
  t.is(criu.restores.length, 2);
  t.false(existsSync(instanceDir(rt, 2)));
  t.regex(await rt.log(), /no standby for web1 .*fake restore failure/);

  const second = await resetter.reset(spec);
  t.is(criu.restores.length, 3);
  t.is(criu.restores[2]!.pid, second);
  t.false(criu.restores[2]!.request.opts.leave_stopped ?? false);
  t.false(rt.fakes.processes.alive(first));
  t.like(await load(rt), { status: 'running', instance: 3, cgroupPath: '/runtime/web1/3' });
  await until(() => criu.restores[3]?.pid !== undefined, 'the next standby');
});

test('reset: a live monitor is asked as the caller asked, with the reset subset of the CRIU options; it finds the snapshot', async (t) => {
  const rt = await fakeRuntime(t);
  await snapshotted(rt, { leaveRunning: true, monitor: true });
  rt.fakes.monitors.askAnswer = 999;
  const pidFile = path.join(rt.root, 'reset.pid');
  const versionChecks = rt.fakes.criu.calls.filter((c) => c.op === 'requireVersion').length;

  const pid = await reset(rt.context, { id: 'web1', tcpEstablished: true, shellJob: true, fileLocks: false, pidFile });

  t.is(pid, 999);
  t.deepEqual(rt.fakes.monitors.asked, [{ id: 'web1', request: { op: 'reset', reset: { criu: { tcpEstablished: true, shellJob: true } } } }]);
  t.deepEqual(rt.fakes.monitors.launched, []);
  t.is(await readFile(pidFile, 'utf8'), '999');
  t.deepEqual(rt.fakes.processes.signals, [], 'the monitor replaces the instance itself');
  t.is(rt.fakes.criu.calls.filter((c) => c.op === 'requireVersion').length, versionChecks, 'the monitor checked CRIU when it started');
});

test('reset without a monitor: the running instance is killed, and a monitor is launched with a reset job', async (t) => {
  const rt = await fakeRuntime(t);
  const running = await snapshotted(rt, { leaveRunning: true });
  rt.fakes.monitors.launchMode = { kind: 'answer', pid: 555 };

  const pid = await reset(rt.context, { id: 'web1', name: 'base', standby: false });

  t.is(pid, 555);
  t.deepEqual(rt.fakes.monitors.asked, []);
  t.deepEqual(rt.fakes.processes.signals, [{ pid: running.init.pid, signal: 'SIGKILL', delivered: true }]);
  t.deepEqual(rt.fakes.cgroups.callsOf('killTree'), [{ op: 'killTree', cgroupPath: '/runtime/web1' }]);
  t.deepEqual(rt.fakes.monitors.launched, [{ kind: 'reset', id: 'web1', reset: base }]);
});

test('reset with a monitor that does not answer: asked again for a while, then taken for hung and replaced by a new one', async (t) => {
  const rt = await fakeRuntime(t);
  const running = await snapshotted(rt, { leaveRunning: true, monitor: true });
  // The old monitor still reaps its init and records the exit.
  rt.fakes.processes.onExit(running.init.pid, (status) => {
    void rt.context.store.withLock('web1', async () =>
      rt.context.store.commit(await load(rt), {
        kind: 'exited',
        exit: { signal: status.kind === 'signaled' ? 'SIGKILL' : undefined, time: new Date().toISOString() },
      }),
    );
  });
  rt.fakes.monitors.askAnswer = undefined;
  rt.fakes.monitors.launchMode = { kind: 'answer', pid: 556 };

  const started = Date.now();
  t.is(await reset(rt.context, { id: 'web1', standby: false }), 556);

  t.true(Date.now() - started >= 2000);
  t.true(rt.fakes.monitors.asked.length > 1);
  t.deepEqual(rt.fakes.monitors.launched, [{ kind: 'reset', id: 'web1', reset: base }]);
  // The old monitor records the exit once the lock is free (the new one's reset replaces it).
  await until(async () => (await load(rt)).status === 'stopped', 'the exit recorded');
});

test("reset --from makes a copy: a new container of the source's snapshot, reset by its own monitor", async (t) => {
  const rt = await fakeRuntime(t);
  await snapshotted(rt, { leaveRunning: true });

  await reset(rt.context, { id: 'web2', from: 'web1', name: 'base' });

  const copy = await load(rt, 'web2');
  t.like(copy, {
    status: 'checkpointed',
    snapshotOf: 'web1',
    snapshot: 'base',
    rootfs: path.join(rt.context.store.paths('web2').dir, 'rootfs'),
    cgroupPath: '/runtime/web2',
  });
  t.deepEqual(rt.fakes.monitors.launched, [{ kind: 'reset', id: 'web2', reset: { ...base, standbys: 2 } }]);
});

test('reset refuses --auto-dedup before asking or launching anything', async (t) => {
  const rt = await fakeRuntime(t);
  await snapshotted(rt, { leaveRunning: true, monitor: true });
  const request = { id: 'web1', autoDedup: true } as ResetRequest;
  await t.throwsAsync(reset(rt.context, request), { instanceOf: UsageError, message: /--auto-dedup/ });
  t.deepEqual(rt.fakes.monitors.asked, []);
  t.deepEqual(rt.fakes.monitors.launched, []);
});

test('a monitor launched for a reset uses the CRIU the container was made with, unless one is configured now', async (t) => {
  const rt = await fakeRuntime(t);
  await snapshotted(rt, { leaveRunning: true });
  // The container was made by a runtime configured with its own criu (run --criu).
  const stateFile = rt.context.store.paths('web1').stateFile;
  await writeFile(stateFile, JSON.stringify({ ...JSON.parse(await readFile(stateFile, 'utf8')), criu: '/opt/criu-a/sbin/criu' }));
  rt.fakes.monitors.launchMode = { kind: 'answer', pid: 555 };

  await reset(rt.context, { id: 'web1', name: 'base', standby: false });

  t.like(rt.fakes.monitors.launched[0], { kind: 'reset', id: 'web1', criuBinary: '/opt/criu-a/sbin/criu' });
  const record = await load(rt);
  t.deepEqual(criuBinaryFor(rt.context, record), { criuBinary: '/opt/criu-a/sbin/criu' });
  t.deepEqual(criuBinaryFor({ ...rt.context, config: { ...rt.context.config, criu: '/opt/criu-b/sbin/criu' } }, record), {
    criuBinary: '/opt/criu-b/sbin/criu',
  });
  t.deepEqual(criuBinaryFor(rt.context, undefined), {});
});

test("a monitor's reset waits for the container's lock, and refuses an instance another command started meanwhile", async (t) => {
  const rt = await fakeRuntime(t);
  await snapshotted(rt);
  const { store } = rt.context;
  const { resetter } = resetterFor(t, rt);
  // A restore by another command holds the lock, and leaves the container running.
  let holding!: () => void;
  const held = new Promise<void>((resolve) => (holding = resolve));
  const restore = store.withLock('web1', async () => {
    holding();
    await new Promise((resolve) => setTimeout(resolve, 200));
    const init = rt.fakes.processes.spawn({ comm: 'sh', cgroup: '/runtime/web1' });
    await store.commit(await load(rt), { kind: 'restored', init: rt.fakes.processes.identity(init.pid) });
  });
  await held;

  await t.throwsAsync(resetter.reset(base), { code: 'CONTAINER_BUSY', message: /started by another command/ });
  await restore;

  t.deepEqual(rt.fakes.cgroups.callsOf('signal'), [], 'the running instance was never stopped');
  t.deepEqual(
    rt.fakes.criu.calls.filter((c) => c.op === 'restore'),
    [],
  );
  t.is((await load(rt)).status, 'running');
});
