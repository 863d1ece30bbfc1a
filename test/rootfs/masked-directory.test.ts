/**
 * The host's source for masked directories, with the recording fake mount service: mounted once as
 * an empty read-only tmpfs, and left as it is once one is there.
 */
import 'reflect-metadata';
import test from 'ava';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { prepareMaskedDirectorySource } from '../../src/rootfs/masked-directory.js';
import { MS_RDONLY } from '../../src/system/libc.js';
import { FakeMounts } from '../helpers/fakes.js';
import { tempDir } from '../runtime/fixtures.js';

test('a read-only tmpfs is mounted there once, then found', async (t) => {
  const dir = path.join(await tempDir(t), 'masked');
  const mounts = new FakeMounts();
  t.is(await prepareMaskedDirectorySource(mounts, dir), dir);
  t.is((await stat(dir)).mode & 0o777, 0o555);
  t.is(await prepareMaskedDirectorySource(mounts, dir), dir);
  t.deepEqual(mounts.callsOf('mount'), [
    {
      op: 'mount',
      source: 'runtime-masked',
      target: dir,
      fsType: 'tmpfs',
      flags: MS_RDONLY,
      data: 'size=4k,mode=0555',
    },
  ]);
});

test('a mount there that is writable, or nosuid (which a user namespace could not drop), does not do: one goes over it', async (t) => {
  const dir = path.join(await tempDir(t), 'masked');
  const mounts = new FakeMounts();
  await prepareMaskedDirectorySource(mounts, dir);
  await mounts.unmount(dir);
  await mounts.mount('other', dir, 'tmpfs', 0, '');
  await prepareMaskedDirectorySource(mounts, dir);
  t.deepEqual(
    mounts.table.filter((m) => m.mountPoint === dir).map((m) => `${m.source} ${m.superOptions.join(',')}`),
    ['other rw', 'runtime-masked ro'],
  );
  const nosuid = mounts.table.at(-1)!;
  mounts.table[mounts.table.length - 1] = { ...nosuid, mountOptions: ['ro', 'nosuid'] };
  await prepareMaskedDirectorySource(mounts, dir);
  t.is(mounts.table.filter((m) => m.mountPoint === dir).length, 3);
});
