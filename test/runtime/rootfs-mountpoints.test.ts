// Tests for src/rootfs/mountpoints.ts (kept here, beside the core tests that use it).
import test from 'ava';
import { mkdir, readdir, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseSpec, type Mount, type Spec } from '../../src/runtime/oci/index.js';
import { ensureMountpoints } from '../../src/rootfs/mountpoints.js';
import { tempDir } from './fixtures.js';
import { Worker } from 'node:worker_threads';

function specWith(mounts: Mount[]): Spec {
  return parseSpec(
    JSON.stringify({ ociVersion: '1.0.2', process: { user: { uid: 0, gid: 0 }, args: ['sh'], cwd: '/' }, root: { path: 'rootfs' }, mounts }),
    '/b/config.json',
  );
}

async function bundle(t: Parameters<typeof tempDir>[0]): Promise<{ bundle: string; rootfs: string }> {
  const dir = await tempDir(t, 'mountpoints-');
  const rootfs = join(dir, 'rootfs');
  await mkdir(join(rootfs, 'proc'), { recursive: true });
  await mkdir(join(rootfs, 'var'));
  await mkdir(join(rootfs, 'run'));
  await symlink('../run', join(rootfs, 'var/run'));
  await mkdir(join(dir, 'volumes/data'), { recursive: true });
  await writeFile(join(dir, 'volumes/resolv.conf'), 'nameserver 10.0.0.1\n');
  return { bundle: dir, rootfs };
}

test('creates missing directories and a file for a bind of a file', async (t) => {
  const { bundle: dir, rootfs } = await bundle(t);
  const spec = specWith([
    { destination: '/proc', type: 'proc', source: 'proc' },
    { destination: '/data/deep', type: 'bind', source: 'volumes/data' },
    { destination: '/etc/resolv.conf', type: 'bind', source: 'volumes/resolv.conf', options: ['rbind', 'ro'] },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm' },
    { destination: '/var/run/app', type: 'none', source: join(dir, 'volumes/data'), options: ['bind'] },
    { destination: '/etc/hostname', type: 'none', source: join(dir, 'volumes/resolv.conf'), options: ['bind'] },
  ]);
  t.deepEqual(await ensureMountpoints(spec.mounts ?? [], rootfs, dir), ['/data/deep', '/etc/resolv.conf', '/dev/shm', '/run/app', '/etc/hostname']);
  t.true((await stat(join(rootfs, 'data/deep'))).isDirectory());
  t.is((await stat(join(rootfs, 'data/deep'))).mode & 0o777, 0o755);
  t.true((await stat(join(rootfs, 'etc/resolv.conf'))).isFile());
  t.is((await stat(join(rootfs, 'etc/resolv.conf'))).size, 0);
  t.true((await stat(join(rootfs, 'etc/hostname'))).isFile());
  t.true((await stat(join(rootfs, 'dev/shm'))).isDirectory());
  // Through the symlink, inside the rootfs.
  t.true((await stat(join(rootfs, 'run/app'))).isDirectory());
});

test('a second run creates nothing; existing entries are left as they are', async (t) => {
  const { bundle: dir, rootfs } = await bundle(t);
  await mkdir(join(rootfs, 'etc'));
  await writeFile(join(rootfs, 'etc/resolv.conf'), 'keep me');
  const spec = specWith([
    { destination: '/proc', type: 'proc', source: 'proc' },
    { destination: '/etc/resolv.conf', type: 'bind', source: 'volumes/resolv.conf' },
    { destination: '/var/run', type: 'bind', source: 'volumes/data' },
    { destination: '/data', type: 'bind', source: 'volumes/data' },
  ]);
  t.deepEqual(await ensureMountpoints(spec.mounts ?? [], rootfs, dir), ['/data']);
  t.deepEqual(await ensureMountpoints(spec.mounts ?? [], rootfs, dir), []);
  t.is((await stat(join(rootfs, 'etc/resolv.conf'))).size, 'keep me'.length);
});

test('skips cgroup mounts and mounts below a tmpfs destination', async (t) => {
  const { bundle: dir, rootfs } = await bundle(t);
  const spec = specWith([
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup' },
    { destination: '/sys/fs/cgroup2', type: 'cgroup2', source: 'cgroup2' },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs' },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts' },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue' },
    { destination: '/devices', type: 'bind', source: 'volumes/data' },
  ]);
  // /dev itself is made (the tmpfs mounts on it); /devices is not below /dev.
  t.deepEqual(await ensureMountpoints(spec.mounts ?? [], rootfs, dir), ['/dev', '/devices']);
  t.deepEqual((await readdir(rootfs)).sort(), ['dev', 'devices', 'proc', 'run', 'var']);
  t.deepEqual(await readdir(join(rootfs, 'dev')), []);
});

test('a bind whose source is missing gets a directory', async (t) => {
  const { bundle: dir, rootfs } = await bundle(t);
  const spec = specWith([{ destination: '/gone', type: 'bind', source: 'volumes/absent' }]);
  t.deepEqual(await ensureMountpoints(spec.mounts ?? [], rootfs, dir), ['/gone']);
  t.true((await stat(join(rootfs, 'gone'))).isDirectory());
});

test('a spec without mounts', async (t) => {
  const { bundle: dir, rootfs } = await bundle(t);
  const spec = specWith([]);
  delete (spec as { mounts?: unknown }).mounts;
  t.deepEqual(await ensureMountpoints(spec.mounts ?? [], rootfs, dir), []);
});

test('a component a container swaps for a link out of the rootfs meanwhile: nothing is ever made outside it', async (t) => {
  const { bundle: dir, rootfs } = await bundle(t);
  const outside = join(dir, 'outside');
  await mkdir(outside);
  await mkdir(join(rootfs, 'a'));
  // A thread of its own flips rootfs/a between a directory and a link to a host directory.
  const flipper = new Worker(
    `const fs = require('node:fs'); const { workerData: w } = require('node:worker_threads');
     const step = (f) => { try { f(); } catch {} };
     for (;;) { step(() => fs.renameSync(w.a, w.d)); step(() => fs.symlinkSync(w.outside, w.a)); step(() => fs.unlinkSync(w.a)); step(() => fs.renameSync(w.d, w.a)); }`,
    { eval: true, workerData: { a: join(rootfs, 'a'), d: join(rootfs, 'd'), outside } },
  );
  flipper.on('error', () => undefined);
  t.teardown(() => void flipper.terminate());
  const deadline = Date.now() + 1500;
  let rounds = 0;
  while (Date.now() < deadline) {
    const mount = { destination: `/a/made-${rounds++}/deeper`, type: 'bind', source: '/volumes/data', options: ['rbind'] };
    // A lookup may find neither the directory nor the link (between two renames): that may fail.
    await ensureMountpoints(specWith([mount]).mounts ?? [], rootfs, dir).catch(() => undefined);
  }
  await flipper.terminate();
  t.true(rounds > 20, `${rounds} rounds`);
  t.deepEqual(await readdir(outside), []);
});

test('a destination through a link to what does not exist yet is made where the link points, inside the rootfs', async (t) => {
  const { bundle: dir, rootfs } = await bundle(t);
  await symlink('/host/outside', join(rootfs, 'escape'));
  const mount = { destination: '/escape/data', type: 'tmpfs', source: 'tmpfs' };
  t.deepEqual(await ensureMountpoints(specWith([mount]).mounts ?? [], rootfs, dir), ['/host/outside/data']);
  t.true((await stat(join(rootfs, 'host/outside/data'))).isDirectory());
});
