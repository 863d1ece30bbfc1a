/**
 * delete: what -f still uses of a state file it cannot read (cgroups and the monitor, plainly
 * named), and the container's lock, held against the commands that change it meanwhile.
 */
import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import { ContainerRunningError, deleteContainer, salvageRecord } from '../../src/runtime/delete.js';
import { creatingContainer, fakeRuntime, load, runningContainer } from '../helpers/fake-runtime.js';

test('salvageRecord: the cgroups and the monitor an unreadable record still names', (t) => {
  const record = {
    id: 'web1',
    status: 'exploded',
    cgroupPath: '/runtime/web1/3',
    cgroupBase: '/runtime/web1',
    monitor: { pid: 4242, startTime: '123456' },
  };
  t.deepEqual(salvageRecord(JSON.stringify(record)), { cgroups: ['/runtime/web1', '/runtime/web1/3'], monitor: { pid: 4242, startTime: '123456' } });
  t.deepEqual(salvageRecord(JSON.stringify({ ...record, cgroupBase: undefined })).cgroups, ['/runtime/web1/3']);
});

test('salvageRecord: nothing from text that is no JSON object, or fields of the wrong kind', (t) => {
  for (const text of ['', '{', 'null', '[]', '"x"']) t.deepEqual(salvageRecord(text), { cgroups: [] }, text);
  t.deepEqual(salvageRecord(JSON.stringify({ cgroupPath: 7, cgroupBase: '', monitor: { pid: 1, startTime: '5' } })), { cgroups: [] });
  t.deepEqual(salvageRecord(JSON.stringify({ monitor: { pid: 99, startTime: 5 } })), { cgroups: [] }, 'a start time is digits in a string');
});

test('delete waits for a command holding the lock, and refuses the container it left running', async (t) => {
  const rt = await fakeRuntime(t);
  await creatingContainer(rt);
  const { store } = rt.context;
  // A run in progress: the record says creating until the start is recorded under the lock.
  let started!: () => void;
  const holding = new Promise<void>((resolve) => (started = resolve));
  const run = store.withLock('web1', async () => {
    started();
    await sleep(200);
    const record = await store.load('web1');
    const init = rt.fakes.processes.spawn({ comm: 'sh', cgroup: record.cgroupPath });
    await store.commit(record, { kind: 'started', init: rt.fakes.processes.identity(init.pid) });
  });
  await holding;
  await t.throwsAsync(deleteContainer(rt.context, 'web1'), { instanceOf: ContainerRunningError });
  await run;
  t.is((await load(rt)).status, 'running');
});

test('delete -f of a container a command restarted between the kill and the removal keeps it', async (t) => {
  const rt = await fakeRuntime(t);
  const record = await runningContainer(rt);
  const { store } = rt.context;
  const { processes } = rt.fakes;
  // Right after the kill, while delete waits (out of the lock) for the init to be gone, a
  // restore (here, its record) brings the container back.
  const isAlive = processes.isAlive.bind(processes);
  let restored = false;
  processes.isAlive = async (identity) => {
    const alive = await isAlive(identity);
    if (!alive && identity.pid === record.init.pid && !restored) {
      restored = true;
      await store.withLock('web1', async () => {
        const stopped = await store.commit(await store.load('web1'), { kind: 'exited', exit: { signal: 'SIGKILL', time: new Date().toISOString() } });
        const init = processes.spawn({ comm: 'sh', cgroup: record.cgroupPath });
        await store.commit(stopped, { kind: 'restored', init: processes.identity(init.pid) });
      });
    }
    return alive;
  };
  await t.throwsAsync(deleteContainer(rt.context, 'web1', { force: true }), { instanceOf: ContainerRunningError });
  t.is((await load(rt)).status, 'running');
});
