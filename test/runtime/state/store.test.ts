import test from 'ava';
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ContainerExistsError, ContainerNotFoundError, InvalidIdError } from '../../../src/runtime/errors.js';
import type { ContainerRecord, RunningRecord } from '../../../src/runtime/state/record.js';
import { ContainerStore, CorruptStateError, LockTimeoutError } from '../../../src/runtime/state/store.js';
import { tempDir } from '../fixtures.js';

function record(id: string, overrides: Partial<RunningRecord> = {}): RunningRecord {
  return {
    id,
    status: 'running',
    bundle: '/srv/bundles/web',
    rootfs: '/srv/bundles/web/rootfs',
    init: { pid: 4242, startTime: '987654321' },
    cgroupPath: `/runtime/${id}`,
    ociRuntime: 'runc',
    created: '2024-05-01T10:00:00.000Z',
    annotations: { 'org.example.tier': 'gold' },
    logPath: `/run/runtime/${id}/container.log`,
    restoreCount: 0,
    ...overrides,
  };
}

/** A state file as a runtime wrote it (the store itself writes only through create and commit). */
async function writeRecord(store: ContainerStore, value: ContainerRecord): Promise<void> {
  await writeFile(store.paths(value.id).stateFile, JSON.stringify(value));
}

async function newStore(t: Parameters<typeof tempDir>[0]): Promise<ContainerStore> {
  // A root that does not exist yet: reserve creates it.
  return new ContainerStore(join(await tempDir(t, 'store-'), 'state'));
}

test('paths are under the root, one directory per id', (t) => {
  const store = new ContainerStore('/run/runtime');
  t.deepEqual(store.paths('web1'), {
    dir: '/run/runtime/web1',
    stateFile: '/run/runtime/web1/state.json',
    lockFile: '/run/runtime/web1/lock',
    launchLockFile: '/run/runtime/web1/launch.lock',
    effectiveBundle: '/run/runtime/web1/bundle',
    ociRoot: '/run/runtime/web1/oci',
    ociLog: '/run/runtime/web1/oci.log',
    containerLog: '/run/runtime/web1/container.log',
    monitorLog: '/run/runtime/web1/monitor.log',
    criuRoot: '/run/runtime/web1/criu-root',
    controlSocket: '/run/runtime/web1/monitor.sock',
  });
});

test('paths refuses ids that would leave the root', (t) => {
  const store = new ContainerStore('/run/runtime');
  for (const id of ['..', '.', '../etc', 'a/b', '', 'a b']) {
    const error = t.throws(() => store.paths(id), { instanceOf: InvalidIdError }, id);
    t.is(error.id, id);
  }
});

test('reserve makes the directory once; twice is ContainerExistsError', async (t) => {
  const store = await newStore(t);
  const paths = await store.reserve('web1');
  t.true((await stat(paths.dir)).isDirectory());
  t.is((await stat(paths.dir)).mode & 0o777, 0o700);
  const error = await t.throwsAsync(store.reserve('web1'), { instanceOf: ContainerExistsError });
  t.is(error.code, 'CONTAINER_EXISTS');
  t.is(error.message, 'container "web1" already exists');
  t.is(error.hint, 'choose another id, or remove it first with `runtime delete -f web1`');
});

test('create, commit and load round trip; the write leaves no temporary file', async (t) => {
  const store = await newStore(t);
  await store.reserve('web1');
  const { init: _init, ...base } = record('web1');
  const created = {
    ...base,
    status: 'checkpointed' as const,
    lastCheckpoint: { imagePath: '/var/lib/cp/web1', time: '2024-05-01T10:05:00.000Z', leftRunning: false },
    restoreCount: 2,
  };
  await store.create(created);
  t.deepEqual(await store.load('web1'), created);
  t.deepEqual(await readdir(store.paths('web1').dir), ['state.json']);
  t.deepEqual(JSON.parse(await readFile(store.paths('web1').stateFile, 'utf8')), created);
  t.is((await stat(store.paths('web1').stateFile)).mode & 0o777, 0o600);
  t.true(await store.exists('web1'));

  const init = { pid: 4343, startTime: '987654999' };
  const updated = await store.commit(created, { kind: 'restored', init });
  t.deepEqual(updated, { ...created, status: 'running', init, restoreCount: 3 });
  t.deepEqual(await store.load('web1'), updated);

  const exit = { signal: 'SIGKILL', time: '2024-05-01T10:05:01.000Z' };
  const stopped = await store.commit(updated, { kind: 'exited', exit });
  // Stopped has an exit and no init any more.
  t.deepEqual(await store.load('web1'), { ...created, status: 'stopped', exit, restoreCount: 3 });
  t.deepEqual(stopped, await store.load('web1'));
});

test('a commit that cannot happen is refused and writes nothing', async (t) => {
  const store = await newStore(t);
  await store.reserve('web1');
  const { init: _init, ...base } = record('web1');
  const created = { ...base, status: 'checkpointed' as const };
  await store.create(created);
  await t.throwsAsync(store.commit(created, { kind: 'exited', exit: { code: 0, time: 'now' } }), { code: 'ILLEGAL_TRANSITION' } as never);
  t.deepEqual(await store.load('web1'), created);
});

test('load of an unknown id is ContainerNotFoundError naming the root', async (t) => {
  const store = await newStore(t);
  const error = await t.throwsAsync(store.load('ghost'), { instanceOf: ContainerNotFoundError });
  t.is(error.code, 'CONTAINER_NOT_FOUND');
  t.is(error.message, `container "ghost" does not exist in ${store.root}`);
  t.false(await store.exists('ghost'));
  // A reserved container without a state file does not exist yet either.
  await store.reserve('half');
  await t.throwsAsync(store.load('half'), { instanceOf: ContainerNotFoundError });
});

test('a corrupt state.json is CorruptStateError', async (t) => {
  const store = await newStore(t);
  const paths = await store.reserve('web1');
  await writeFile(paths.stateFile, '{"id": "web1", "status": ');
  const error = await t.throwsAsync(store.load('web1'), { instanceOf: CorruptStateError });
  t.is(error.code, 'CORRUPT_STATE');
  t.is(error.file, paths.stateFile);
  t.true(error.message.startsWith(`the state file ${paths.stateFile} is unreadable: `));

  await writeFile(paths.stateFile, JSON.stringify(record('web2')));
  const wrongId = await t.throwsAsync(store.load('web1'), { instanceOf: CorruptStateError });
  t.is(wrongId.message, `the state file ${paths.stateFile} is unreadable: id or status is missing or wrong`);

  await writeFile(paths.stateFile, JSON.stringify({ ...record('web1'), status: 'paused' }));
  await t.throwsAsync(store.load('web1'), { instanceOf: CorruptStateError });
});

test('ids are sorted and only those with a state file', async (t) => {
  const store = await newStore(t);
  t.deepEqual(await store.ids(), []); // the root does not exist yet
  for (const id of ['web2', 'db', 'web10', 'cache']) {
    await store.reserve(id);
    await writeRecord(store, record(id));
  }
  await store.reserve('reserved-only');
  await mkdir(join(store.root, 'not an id'));
  await writeFile(join(store.root, 'not an id', 'state.json'), '{}');
  await writeFile(join(store.root, 'stray-file'), '');
  t.deepEqual(await store.ids(), ['cache', 'db', 'web10', 'web2']);
});

test('remove deletes the container directory; removing again is fine', async (t) => {
  const store = await newStore(t);
  await store.reserve('web1');
  await writeRecord(store, record('web1'));
  await store.remove('web1');
  await t.throwsAsync(stat(store.paths('web1').dir), { code: 'ENOENT' });
  await t.notThrowsAsync(store.remove('web1'));
  t.deepEqual(await store.ids(), []);
  // The id is free again.
  await t.notThrowsAsync(store.reserve('web1'));
});

test("withLock returns fn's value and passes its error through", async (t) => {
  const store = await newStore(t);
  await store.reserve('web1');
  t.is(await store.withLock('web1', async () => 42), 42);
  await t.throwsAsync(
    store.withLock('web1', async () => {
      throw new RangeError('inside');
    }),
    { instanceOf: RangeError, message: 'inside' },
  );
  // The lock was released despite the error.
  t.is(await store.withLock('web1', async () => 'again', 100), 'again');
});

test('two withLock calls in one process serialize', async (t) => {
  const store = await newStore(t);
  await store.reserve('web1');
  const events: string[] = [];
  const critical = (name: string) => async () => {
    events.push(`enter ${name}`);
    await sleep(60);
    events.push(`exit ${name}`);
    return name;
  };
  const first = store.withLock('web1', critical('a'));
  await sleep(5);
  const second = store.withLock('web1', critical('b'));
  t.deepEqual(await Promise.all([first, second]), ['a', 'b']);
  t.deepEqual(events, ['enter a', 'exit a', 'enter b', 'exit b']);
});

test('many concurrent withLock calls never overlap', async (t) => {
  const store = await newStore(t);
  await store.reserve('web1');
  let inside = 0;
  let most = 0;
  await Promise.all(
    Array.from({ length: 6 }, () =>
      store.withLock('web1', async () => {
        inside++;
        most = Math.max(most, inside);
        await sleep(15);
        inside--;
      }),
    ),
  );
  t.is(most, 1);
});

test('locks of different containers do not block each other', async (t) => {
  const store = await newStore(t);
  await store.reserve('web1');
  await store.reserve('web2');
  const result = await store.withLock('web1', () => store.withLock('web2', async () => 'both', 200), 200);
  t.is(result, 'both');
});

test('a lock held too long is LockTimeoutError', async (t) => {
  const store = await newStore(t);
  await store.reserve('web1');
  const error = await t.throwsAsync(
    store.withLock('web1', () => store.withLock('web1', async () => 'never', 50)),
    { instanceOf: LockTimeoutError },
  );
  t.is(error.code, 'LOCK_TIMEOUT');
  t.regex(error.message, /^container "web1" is busy: another runtime command has held its lock for 0 s$/);
});

test('withLock on a container that does not exist is ContainerNotFoundError', async (t) => {
  const store = await newStore(t);
  await t.throwsAsync(
    store.withLock('ghost', async () => 1),
    { instanceOf: ContainerNotFoundError },
  );
  t.throws(() => store.paths('../x'), { instanceOf: InvalidIdError });
  await t.throwsAsync(
    store.withLock('../x', async () => 1),
    { instanceOf: InvalidIdError },
  );
});

test("reserve refuses an id whose monitor's socket path would not fit a socket address, saying how long one may be", async (t) => {
  const root = join(await tempDir(t), 'state');
  const store = new ContainerStore(root);
  // <root>/<id>/monitor.sock: 107 bytes at most.
  const most = 107 - Buffer.byteLength(`${root}//monitor.sock`);
  const fits = 'a'.repeat(most);
  t.is((await store.reserve(fits)).controlSocket.length, 107);
  const long = 'b'.repeat(most + 1);
  const error = await t.throwsAsync(store.reserve(long), { instanceOf: InvalidIdError });
  t.true(
    error.message.endsWith(`would be longer than the 107 bytes a socket address holds (with the state root ${root}, ids of at most ${most} characters)`),
    error.message,
  );
  t.deepEqual(await readdir(root), [fits], 'nothing was made for it');
});
