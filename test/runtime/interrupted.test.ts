/**
 * What a checkpoint or restore whose process died, or a dead monitor, leaves, and what the next
 * command to take the container's lock makes of it (interrupted.ts), with recording fakes.
 */
import 'reflect-metadata';
import test from 'ava';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { checkpoint } from '../../src/runtime/checkpoint.js';
import { recoverInterrupted } from '../../src/runtime/interrupted.js';
import type { ContainerRecord } from '../../src/runtime/state/record.js';
import { fakeRuntime, load, runningContainer, type FakeRuntime } from '../helpers/fake-runtime.js';

/** The identity of a process that has ended (a command killed half-way). */
function deadProcess(rt: FakeRuntime) {
  const gone = rt.fakes.processes.spawn({ comm: 'node' });
  rt.fakes.processes.exit(gone.pid, { kind: 'signaled', signal: 9 });
  return { pid: gone.pid, startTime: gone.startTime };
}

async function writeNote(rt: FakeRuntime, note: Record<string, unknown>): Promise<string> {
  const file = path.join(rt.context.store.paths('web1').dir, 'operation.json');
  await writeFile(file, JSON.stringify({ holder: deadProcess(rt), started: new Date(Date.now() - 2000).toISOString(), ...note }));
  return file;
}

function recover(rt: FakeRuntime): Promise<ContainerRecord> {
  return rt.context.store.withLock('web1', async () => recoverInterrupted(rt.context, await load(rt)));
}

/** A container with a managed checkpoint taken while it ran on, and a second dump written aside. */
async function withDumpAside(rt: FakeRuntime, finished: boolean) {
  const running = await runningContainer(rt, 'web1', { monitor: true });
  await checkpoint(rt.context, { id: 'web1', leaveRunning: true });
  const finalPath = path.join(rt.config.checkpointRoot, 'web1', 'checkpoint');
  const writePath = `${finalPath}.new`;
  await mkdir(writePath, { recursive: true });
  await writeFile(path.join(writePath, 'pages-1.img'), 'the newer dump');
  if (finished) await writeFile(path.join(writePath, 'stats-dump'), '');
  return { running, finalPath, writePath };
}

test('a checkpoint whose command died after CRIU finished: the dump is moved into place and recorded, the tree thawed', async (t) => {
  const rt = await fakeRuntime(t);
  const { running, finalPath, writePath } = await withDumpAside(rt, true);
  // CRIU killed the tree, and the monitor recorded the exit.
  rt.fakes.processes.exit(running.init.pid, { kind: 'signaled', signal: 9 });
  await rt.context.store.withLock('web1', async () => rt.context.store.commit(await load(rt), { kind: 'exited', exit: { signal: 'SIGKILL', time: '' } }));
  const note = await writeNote(rt, { kind: 'checkpoint', target: 'managed', writePath, finalPath, cgroupPath: running.cgroupPath, criu: deadProcess(rt) });

  const record = await recover(rt);

  t.like(record, { status: 'checkpointed', lastCheckpoint: { imagePath: finalPath, leftRunning: false } });
  t.like(await load(rt), { status: 'checkpointed' });
  t.is(await readFile(path.join(finalPath, 'pages-1.img'), 'utf8'), 'the newer dump');
  t.false(existsSync(writePath));
  t.false(existsSync(note));
  t.deepEqual(rt.fakes.cgroups.callsOf('setFrozen'), [{ op: 'setFrozen', cgroupPath: running.cgroupPath, frozen: false }]);
});

test('a checkpoint whose command died before CRIU finished: the unfinished dump goes, the last good one stays, the container runs on', async (t) => {
  const rt = await fakeRuntime(t);
  const { running, finalPath, writePath } = await withDumpAside(rt, false);
  const before = await load(rt);
  const previous = await readFile(path.join(finalPath, 'pages-1.img'));
  await writeNote(rt, { kind: 'checkpoint', target: 'managed', writePath, finalPath, cgroupPath: running.cgroupPath });

  const record = await recover(rt);

  t.deepEqual(record, before);
  t.deepEqual(await readFile(path.join(finalPath, 'pages-1.img')), previous);
  t.false(existsSync(writePath));
  t.true(rt.fakes.processes.alive(running.init.pid));
});

test('the CRIU of a checkpoint whose command died is waited for before anything is touched', async (t) => {
  const rt = await fakeRuntime(t);
  const { running, finalPath, writePath } = await withDumpAside(rt, false);
  const criu = rt.fakes.processes.spawn({ comm: 'criu' });
  await writeNote(rt, {
    kind: 'checkpoint',
    target: 'managed',
    writePath,
    finalPath,
    cgroupPath: running.cgroupPath,
    criu: { pid: criu.pid, startTime: criu.startTime },
  });
  // CRIU finishes the dump (leaving the tree running) a moment later.
  setTimeout(() => {
    void writeFile(path.join(writePath, 'stats-dump'), '').then(() => rt.fakes.processes.exit(criu.pid));
  }, 300);

  const started = Date.now();
  const record = await recover(rt);

  t.true(Date.now() - started >= 300);
  t.like(record, { status: 'running', lastCheckpoint: { imagePath: finalPath, leftRunning: true } });
  t.is(await readFile(path.join(finalPath, 'pages-1.img'), 'utf8'), 'the newer dump');
});

test('a note whose command still lives is no interruption: the container is busy', async (t) => {
  const rt = await fakeRuntime(t);
  const { running, finalPath, writePath } = await withDumpAside(rt, false);
  const file = await writeNote(rt, { kind: 'checkpoint', target: 'managed', writePath, finalPath, cgroupPath: running.cgroupPath });
  const note = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  const holder = rt.fakes.processes.spawn({ comm: 'node' });
  await writeFile(file, JSON.stringify({ ...note, holder: { pid: holder.pid, startTime: holder.startTime } }));

  await t.throwsAsync(recover(rt), { code: 'CONTAINER_BUSY' });
  t.true(existsSync(writePath));
  t.true(existsSync(file));
});

test('a restore whose command died: its half-restored tasks are killed and its root unmounted; the container stays checkpointed', async (t) => {
  const rt = await fakeRuntime(t);
  const running = await runningContainer(rt);
  await checkpoint(rt.context, { id: 'web1' });
  const criuRoot = rt.context.store.paths('web1').criuRoot;
  await mkdir(criuRoot, { recursive: true });
  await rt.fakes.mounts.bind(running.rootfs, criuRoot);
  const task = rt.fakes.processes.spawn({ comm: 'sh', cgroup: running.cgroupPath });
  const note = await writeNote(rt, { kind: 'restore', cgroupPath: running.cgroupPath, criuRoot });

  const record = await recover(rt);

  t.is(record.status, 'checkpointed');
  t.false(rt.fakes.processes.alive(task.pid));
  t.deepEqual(rt.fakes.cgroups.callsOf('killTree'), [{ op: 'killTree', cgroupPath: running.cgroupPath }]);
  t.false((await rt.fakes.mounts.mounts()).some((m) => m.mountPoint === criuRoot));
  t.false(existsSync(criuRoot));
  t.false(existsSync(note));
});

test('a dead monitor: its standbys go, and an init that ended is recorded stopped, its last checkpoint kept', async (t) => {
  const rt = await fakeRuntime(t);
  await runningContainer(rt);
  await checkpoint(rt.context, { id: 'web1', leaveRunning: true });
  const { store } = rt.context;
  const base = (await load(rt)).cgroupPath;
  // A reset instance 2 is current; 3 is a standby, stopped in a cgroup of its own.
  const current = rt.fakes.processes.spawn({ comm: 'sh', cgroup: `${base}/2` });
  const standby = rt.fakes.processes.spawn({ comm: 'sh', cgroup: `${base}/3`, stopped: true });
  const instances = path.join(store.paths('web1').dir, 'instances');
  await mkdir(path.join(instances, '2'), { recursive: true });
  await mkdir(path.join(instances, '3'), { recursive: true });
  await store.withLock('web1', async () => {
    const layers = { lowers: [], upper: '/u', work: '/w', target: path.join(instances, '2', 'rootfs') };
    const reset = {
      kind: 'reset',
      init: rt.fakes.processes.identity(current.pid),
      monitor: deadProcess(rt),
      cgroupPath: `${base}/2`,
      layers,
      instance: 2,
      snapshot: 's',
    } as const;
    await store.commit(await load(rt), reset);
  });
  rt.fakes.processes.exit(current.pid);

  const record = await recover(rt);

  t.like(record, { status: 'stopped', lastCheckpoint: { imagePath: path.join(rt.config.checkpointRoot, 'web1', 'checkpoint') } });
  t.false(rt.fakes.processes.alive(standby.pid));
  t.false(existsSync(path.join(instances, '3')));
  t.true(existsSync(path.join(instances, '2')));
});

test('a dead monitor whose init lives: the container runs on, recorded as it was', async (t) => {
  const rt = await fakeRuntime(t);
  const running = await runningContainer(rt);
  await writeFile(rt.context.store.paths('web1').stateFile, JSON.stringify({ ...running, monitor: deadProcess(rt) }));
  const before = await load(rt);

  t.deepEqual(await recover(rt), before);
  t.true(rt.fakes.processes.alive(running.init.pid));
});

test('a recovery that fails never blocks the next commands: the note is put aside and logged', async (t) => {
  const rt = await fakeRuntime(t);
  const { running, finalPath, writePath } = await withDumpAside(rt, true);
  const note = await writeNote(rt, { kind: 'checkpoint', target: 'managed', writePath, finalPath, cgroupPath: running.cgroupPath });
  // The effective bundle is gone: finishing the dump needs its spec, and fails.
  await rm(rt.context.store.paths('web1').effectiveBundle, { recursive: true, force: true });

  const record = await recover(rt);

  t.is(record.status, 'running');
  t.false(existsSync(note));
  t.true(existsSync(`${note}.failed`));
  t.deepEqual(await recover(rt), record, 'the next command goes on as if nothing were left');
});

test('a snapshot CRIU finished after its command died is kept: its rootfs copy was made before CRIU went on', async (t) => {
  const rt = await fakeRuntime(t);
  const running = await runningContainer(rt, 'web1', { monitor: true });
  const building = path.join(rt.config.checkpointRoot, 'web1', 'snapshots', 's1.new');
  await mkdir(path.join(building, 'images'), { recursive: true });
  await mkdir(path.join(building, 'rootfs', 'etc'), { recursive: true });
  await writeFile(path.join(building, 'images', 'pages-1.img'), Buffer.alloc(8192));
  await writeFile(path.join(building, 'images', 'stats-dump'), '');
  rt.fakes.processes.exit(running.init.pid, { kind: 'signaled', signal: 9 });
  const finalPath = path.join(rt.config.checkpointRoot, 'web1', 'snapshots', 's1', 'images');
  await writeNote(rt, {
    kind: 'checkpoint',
    target: 'snapshot',
    writePath: path.join(building, 'images'),
    finalPath,
    cgroupPath: running.cgroupPath,
    snapshot: { name: 's1', lowers: ['/lower'] },
  });

  const record = await recover(rt);

  t.is(record.status, 'checkpointed');
  const snapshot = await rt.context.snapshots.read('web1', 's1');
  t.like(snapshot, { name: 's1', leftRunning: false, memoryBytes: 8192 });
  t.deepEqual(snapshot.layers, [rt.context.snapshots.paths('web1', 's1').rootfs, '/lower']);
  t.false(existsSync(building));
});

test('a dump CRIU finished whose record could not be written is not thrown away: the next command records it', async (t) => {
  const rt = await fakeRuntime(t);
  await runningContainer(rt);
  const { store } = rt.context;
  const commit = store.commit.bind(store);
  let failed = false;
  store.commit = async (current, event) => {
    if (event.kind === 'checkpointed' && !failed) {
      failed = true;
      throw new Error('the disk is full');
    }
    return commit(current, event);
  };
  await t.throwsAsync(checkpoint(rt.context, { id: 'web1' }), { message: 'the disk is full' });
  t.true(existsSync(path.join(store.paths('web1').dir, 'operation.json')));

  const record = await recover(rt);

  t.like(record, { status: 'checkpointed', lastCheckpoint: { imagePath: path.join(rt.config.checkpointRoot, 'web1', 'checkpoint') } });
});
