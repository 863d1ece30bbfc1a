/**
 * markRoots and sharedRoots on real directories: a receiver finds the source's mark only in the
 * roots it shares; two settings naming one directory mark it once; the marks go when told.
 */
import test from 'ava';
import { mkdir, mkdtemp, readdir, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { markRoots, sharedRoots } from '../../../src/runtime/migration/shared-roots.js';

const token = '0123456789abcdef0123456789abcdef';

async function scratch(t: { teardown(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'roots-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('a receiver finds the mark only in the roots it shares with the source, and names them with their settings', async (t) => {
  const dir = await scratch(t);
  for (const name of ['state', 'checkpoints', 'images', 'b-state', 'b-images']) await mkdir(path.join(dir, name));
  const source = { stateRoot: path.join(dir, 'state'), checkpointRoot: path.join(dir, 'checkpoints'), imageRoot: path.join(dir, 'images') };
  const unmark = await markRoots(source, token);
  const receiver = { stateRoot: path.join(dir, 'b-state'), checkpointRoot: source.checkpointRoot, imageRoot: path.join(dir, 'b-images') };
  t.deepEqual(sharedRoots(receiver, token), [{ name: 'checkpoint root', setting: 'RUNTIME_CHECKPOINT_ROOT' }]);
  t.deepEqual(sharedRoots(receiver, 'f'.repeat(32)), [], "another migration's token finds nothing");
  await unmark();
  t.deepEqual(sharedRoots(receiver, token), []);
  t.deepEqual(await readdir(source.checkpointRoot), []);
});

test('two settings naming one directory (the same path, or a link to it) mark it once; a root that does not exist is passed over; the store an image container lives in is marked too', async (t) => {
  const dir = await scratch(t);
  await mkdir(path.join(dir, 'one'));
  await mkdir(path.join(dir, 'store'));
  await symlink(path.join(dir, 'one'), path.join(dir, 'link'));
  const source = { stateRoot: path.join(dir, 'one'), checkpointRoot: path.join(dir, 'link'), imageRoot: path.join(dir, 'missing') };
  const unmark = await markRoots(source, token, path.join(dir, 'store'));
  t.deepEqual(await readdir(path.join(dir, 'one')), [`.migration-${token}`]);
  t.deepEqual(sharedRoots({ stateRoot: path.join(dir, 'x'), checkpointRoot: path.join(dir, 'y'), imageRoot: path.join(dir, 'store') }, token), [
    { name: 'image root', setting: 'RUNTIME_IMAGE_ROOT (--image-root)' },
  ]);
  await unmark();
  t.deepEqual(await readdir(path.join(dir, 'one')), []);
  t.deepEqual(await readdir(path.join(dir, 'store')), []);
});

test('a mark that cannot be made takes the ones made before it', async (t) => {
  const dir = await scratch(t);
  await mkdir(path.join(dir, 'state'));
  await mkdir(path.join(dir, 'checkpoints'));
  // A mark of the same token already there: the second root cannot be marked.
  const first = await markRoots(
    { stateRoot: path.join(dir, 'checkpoints'), checkpointRoot: path.join(dir, 'nothing'), imageRoot: path.join(dir, 'nothing') },
    token,
  );
  await t.throwsAsync(
    markRoots({ stateRoot: path.join(dir, 'state'), checkpointRoot: path.join(dir, 'checkpoints'), imageRoot: path.join(dir, 'nothing') }, token),
    {
      code: 'EEXIST',
    },
  );
  t.deepEqual(await readdir(path.join(dir, 'state')), [], 'the state root mark made before went');
  await first();
});
