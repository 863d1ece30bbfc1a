import test from 'ava';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  InvalidSnapshotNameError,
  SnapshotExistsError,
  SnapshotInUseError,
  SnapshotNotFoundError,
  SnapshotStore,
  memoryBytes,
  validateSnapshotName,
  type SnapshotInfo,
} from '../../../src/runtime/snapshots/store.js';
import { tempDir } from '../fixtures.js';

function info(store: SnapshotStore, name: string, created: string, lowers: readonly string[] = []): SnapshotInfo {
  return {
    formatVersion: 1,
    name,
    id: 'c',
    created,
    layers: [store.paths('c', name).rootfs, ...lowers],
    memoryBytes: 0,
    rootfsBytes: 0,
    leftRunning: true,
  };
}

async function make(store: SnapshotStore, snapshot: SnapshotInfo): Promise<void> {
  const building = await store.begin('c', snapshot.name);
  await mkdir(building.rootfs, { recursive: true });
  await store.commit('c', building, snapshot);
}

test('snapshot names are validated', (t) => {
  t.is(validateSnapshotName('warm-1.2_x+y'), 'warm-1.2_x+y');
  for (const bad of ['', '.hidden', '../x', 'a/b', 'sp ace', 'x'.repeat(129)]) {
    t.throws(() => validateSnapshotName(bad), { instanceOf: InvalidSnapshotNameError }, bad);
  }
  t.is(validateSnapshotName('x.newer'), 'x.newer');
});

test('a name ending in ".new", where a snapshot is written before it is moved in place, is refused', async (t) => {
  const error = t.throws(() => validateSnapshotName('pristine.new'), { instanceOf: InvalidSnapshotNameError });
  t.is(error.message, 'invalid snapshot name "pristine.new": ".new" ends the name of a snapshot being written');
  // So a snapshot named X never has another one's work directory for its place.
  const store = new SnapshotStore(await tempDir(t));
  await t.throwsAsync(store.begin('c', 'pristine.new'), { instanceOf: InvalidSnapshotNameError });
  t.deepEqual(await store.list('c'), []);
});

test('begin/commit, read, list oldest first, latest', async (t) => {
  const store = new SnapshotStore(await tempDir(t));
  await make(store, info(store, 'b', '2026-01-02T00:00:00.000Z'));
  await make(store, info(store, 'a', '2026-01-01T00:00:00.000Z'));
  t.deepEqual(
    (await store.list('c')).map((s) => s.name),
    ['a', 'b'],
  );
  t.is((await store.latest('c')).name, 'b');
  t.is((await store.read('c', 'a')).created, '2026-01-01T00:00:00.000Z');
  await t.throwsAsync(store.begin('c', 'a'), { instanceOf: SnapshotExistsError });
});

test('an abandoned build leaves no snapshot behind', async (t) => {
  const store = new SnapshotStore(await tempDir(t));
  const building = await store.begin('c', 'x');
  await store.abandon(building);
  t.deepEqual(await store.list('c'), []);
  const error = await t.throwsAsync(store.latest('c'), { instanceOf: SnapshotNotFoundError });
  t.regex(error.message, /has no snapshots/);
});

test('a missing snapshot names the ones there are', async (t) => {
  const store = new SnapshotStore(await tempDir(t));
  await make(store, info(store, 'warm', '2026-01-01T00:00:00.000Z'));
  const error = await t.throwsAsync(store.read('c', 'cold'), { instanceOf: SnapshotNotFoundError });
  t.is(error.hint, 'its snapshots are: warm');
});

test('a snapshot under another one, or under a running container, is not removed', async (t) => {
  const store = new SnapshotStore(await tempDir(t));
  const base = info(store, 'base', '2026-01-01T00:00:00.000Z');
  await make(store, base);
  await make(store, info(store, 'top', '2026-01-02T00:00:00.000Z', base.layers));
  const underTop = await t.throwsAsync(store.remove('c', 'base', []), { instanceOf: SnapshotInUseError });
  t.deepEqual(underTop.users, ['snapshot top']);
  const inUse = await t.throwsAsync(store.remove('c', 'top', [{ user: 'container copy1', layers: [store.paths('c', 'top').rootfs] }]), {
    instanceOf: SnapshotInUseError,
  });
  t.deepEqual(inUse.users, ['container copy1']);
  await store.remove('c', 'top', []);
  await store.remove('c', 'base', []);
  t.deepEqual(await store.list('c'), []);
});

test('memoryBytes adds up the pages images only', async (t) => {
  const dir = await tempDir(t);
  await writeFile(path.join(dir, 'pages-1.img'), Buffer.alloc(8192));
  await writeFile(path.join(dir, 'pages-2.img'), Buffer.alloc(4096));
  await writeFile(path.join(dir, 'pagemap-1.img'), Buffer.alloc(100));
  t.is(await memoryBytes(dir), 12288);
});
