/**
 * A dump's own tmpfs mounts are taken out of CRIU's images: which ones (a plain private tmpfs
 * mounted whole, whose filesystem no other non-external mount uses, its archive present), and the
 * images after prepare, commit and discard. The mountpoints image is the one a real runc
 * container's dump holds (mount ids, devices, flags and options as CRIU 4.2.1 wrote them here);
 * the archive is unpacked by a recording fake (the real tar runs in the end-to-end tests).
 */
import test from 'ava';
import { readdir, readFile, stat, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { decodeImage, encodeImage, type ImageEntry } from '../../src/criu/images/index.js';
import {
  convertibleTmpfs,
  MAX_COPIED_BYTES,
  prepareTmpfsExternal,
  TMPFS_TREE,
  type ArchiveExtractor,
  type MountEntry,
} from '../../src/criu/tmpfs-images.js';
import { tempDir } from '../runtime/fixtures.js';

const tmpfs = 5;
const base = { parent_mnt_id: 71, shared_id: 0, master_id: 0, sb_flags: 0 };
/** A runc container's mounts (CRIU 4.2.1's dump of a busybox container here), the tmpfs ones and their neighbours. */
const entries: MountEntry[] = [
  {
    ...base,
    fstype: tmpfs,
    mnt_id: 55,
    root_dev: 49,
    flags: 0x200001,
    root: '/',
    mountpoint: '/sys/firmware',
    source: 'tmpfs',
    options: '',
    sb_flags: 1,
    ext_key: 'masked-directory',
  },
  {
    ...base,
    fstype: tmpfs,
    mnt_id: 54,
    root_dev: 42,
    flags: 0x1000002,
    root: '/null',
    mountpoint: '/proc/timer_list',
    source: 'tmpfs',
    options: 'size=65536k,mode=755',
    ext_key: '/dev/null',
  },
  {
    ...base,
    fstype: 12,
    mnt_id: 79,
    root_dev: 28,
    flags: 0x20000f,
    root: '/runtime/p1',
    mountpoint: '/sys/fs/cgroup/cpu',
    source: 'cgroup',
    options: 'cpu',
    ext_key: '/sys/fs/cgroup/cpu',
  },
  { ...base, fstype: tmpfs, mnt_id: 78, root_dev: 46, flags: 0x20000e, root: '/', mountpoint: '/sys/fs/cgroup', source: 'tmpfs', options: 'mode=755' },
  {
    ...base,
    fstype: 6,
    mnt_id: 74,
    root_dev: 43,
    flags: 0x20000a,
    root: '/',
    mountpoint: '/dev/pts',
    source: 'devpts',
    options: 'gid=5,mode=620,ptmxmode=666,newinstance',
  },
  { ...base, fstype: tmpfs, mnt_id: 75, root_dev: 44, flags: 0x20000e, root: '/', mountpoint: '/dev/shm', source: 'shm', options: 'size=65536k' },
  { ...base, fstype: tmpfs, mnt_id: 73, root_dev: 42, flags: 0x1000002, root: '/', mountpoint: '/dev', source: 'tmpfs', options: 'size=65536k,mode=755' },
  {
    ...base,
    fstype: 0,
    mnt_id: 71,
    root_dev: 266338304,
    parent_mnt_id: 47,
    flags: 0x200000,
    root: '/rootfs',
    mountpoint: '/',
    source: '/dev/vda',
    options: 'discard',
  },
];
const archives = new Set(['tmpfs-dev-42.tar.gz.img', 'tmpfs-dev-44.tar.gz.img', 'tmpfs-dev-46.tar.gz.img']);

test('convertibleTmpfs: /dev, /dev/shm and /sys/fs/cgroup of a runc container; the masked directory is external already', (t) => {
  t.deepEqual(
    convertibleTmpfs(entries, archives).map((e) => e.mountpoint),
    ['/sys/fs/cgroup', '/dev/shm', '/dev'],
  );
});

test('convertibleTmpfs: a shared, slave, read-only, partial or deleted tmpfs, or one without its archive, stays CRIU’s', (t) => {
  const shm = entries[5]!;
  const variants = [
    { ...shm, shared_id: 3 },
    { ...shm, master_id: 3 },
    { ...shm, sb_flags: 1 },
    { ...shm, root: '/sub' },
    { ...shm, deleted: true },
    { ...shm, with_plugin: true },
  ];
  for (const variant of variants) t.deepEqual(convertibleTmpfs([variant], archives), [], JSON.stringify(variant));
  t.deepEqual(convertibleTmpfs([shm], new Set()), []);
});

test('convertibleTmpfs: a tmpfs another mount binds from (not external) stays CRIU’s, since that mount is restored from it', (t) => {
  const dev = entries[6]!;
  const bindOfDev = { ...entries[1]!, ext_key: undefined, mountpoint: '/mnt/null' };
  t.deepEqual(convertibleTmpfs([dev, bindOfDev], archives), []);
  t.deepEqual(convertibleTmpfs([dev, entries[1]!], archives), [dev]);
});

/** An image directory with the mountpoints image and the three archives (their bytes never read: the extractor is fake). */
async function imageDir(t: Parameters<typeof tempDir>[0]): Promise<string> {
  const dir = await tempDir(t);
  await writeFile(path.join(dir, 'mountpoints-13.img'), encodeImage({ magic: 'MNTS', entries: entries as unknown as ImageEntry[] }));
  for (const archive of archives) await writeFile(path.join(dir, archive), `archive ${archive}`);
  return dir;
}

function recordingExtractor(): { readonly calls: [string, string][]; readonly extract: ArchiveExtractor } {
  const calls: [string, string][] = [];
  return {
    calls,
    extract: async (archive, directory) => {
      calls.push([path.basename(archive), path.relative(path.dirname(archive), directory)]);
      await writeFile(path.join(directory, 'file'), await readFile(archive));
    },
  };
}

test('prepareTmpfsExternal: unpacks each archive once into a directory of root’s, writes the new image aside, and commit swaps it in', async (t) => {
  const dir = await imageDir(t);
  const { calls, extract } = recordingExtractor();
  const prepared = await prepareTmpfsExternal(dir, extract);
  t.deepEqual(calls, [
    ['tmpfs-dev-46.tar.gz.img', `tmpfs-content-46/${TMPFS_TREE}`],
    ['tmpfs-dev-44.tar.gz.img', `tmpfs-content-44/${TMPFS_TREE}`],
    ['tmpfs-dev-42.tar.gz.img', `tmpfs-content-42/${TMPFS_TREE}`],
  ]);
  t.deepEqual(prepared.copied, [
    { key: 'runtime-tmpfs:46', mountPoint: '/sys/fs/cgroup', source: 'tmpfs', options: 'mode=755', flags: 0x20000e, content: 'tmpfs-content-46' },
    { key: 'runtime-tmpfs:44', mountPoint: '/dev/shm', source: 'shm', options: 'size=65536k', flags: 0x20000e, content: 'tmpfs-content-44' },
    { key: 'runtime-tmpfs:42', mountPoint: '/dev', source: 'tmpfs', options: 'size=65536k,mode=755', flags: 0x1000002, content: 'tmpfs-content-42' },
  ]);
  t.is((await stat(path.join(dir, 'tmpfs-content-42'))).mode & 0o777, 0o700);
  // Before the commit CRIU's images are untouched.
  t.deepEqual((await decodeImage(path.join(dir, 'mountpoints-13.img'))).entries, entries);
  t.true((await readdir(dir)).includes('tmpfs-dev-42.tar.gz.img'));

  await prepared.commit();
  const after = (await decodeImage(path.join(dir, 'mountpoints-13.img'))).entries as unknown as MountEntry[];
  t.deepEqual(
    after.map((e) => [e.mountpoint, e.ext_key]),
    entries.map((e) => [e.mountpoint, e.fstype === tmpfs && e.root === '/' && !e.ext_key ? `runtime-tmpfs:${e.root_dev}` : e.ext_key]),
  );
  // Nothing else in the entries changed.
  t.deepEqual(
    after.map(({ ext_key: _key, ...rest }) => rest),
    entries.map(({ ext_key: _key, ...rest }) => rest),
  );
  t.deepEqual((await readdir(dir)).sort(), ['mountpoints-13.img', 'tmpfs-content-42', 'tmpfs-content-44', 'tmpfs-content-46']);
  t.is(await readFile(path.join(dir, 'tmpfs-content-44', TMPFS_TREE, 'file'), 'utf8'), 'archive tmpfs-dev-44.tar.gz.img');
});

test('prepareTmpfsExternal: discard, or a failure to unpack, leaves the images as CRIU wrote them', async (t) => {
  const dir = await imageDir(t);
  const before = (await readdir(dir)).sort();
  const prepared = await prepareTmpfsExternal(dir, recordingExtractor().extract);
  await prepared.discard();
  t.deepEqual((await readdir(dir)).sort(), before);

  let calls = 0;
  const failing: ArchiveExtractor = async () => {
    if (++calls === 2) throw new Error('tar: Unexpected EOF in archive');
  };
  await t.throwsAsync(prepareTmpfsExternal(dir, failing), { message: 'tar: Unexpected EOF in archive' });
  t.deepEqual((await readdir(dir)).sort(), before);
  t.deepEqual((await decodeImage(path.join(dir, 'mountpoints-13.img'))).entries, entries);
});

test('prepareTmpfsExternal: images without a convertible tmpfs are left alone', async (t) => {
  const dir = await tempDir(t);
  await writeFile(path.join(dir, 'mountpoints-13.img'), encodeImage({ magic: 'MNTS', entries: entries.slice(0, 3) as unknown as ImageEntry[] }));
  const prepared = await prepareTmpfsExternal(dir, async () => t.fail('nothing to unpack'));
  t.deepEqual(prepared.copied, []);
  await prepared.commit();
  t.deepEqual(await readdir(dir), ['mountpoints-13.img']);
});

test('prepareTmpfsExternal: a tree with a sparse file, or more than it copies, stays CRIU’s to restore, its archive kept', async (t) => {
  const dir = await imageDir(t);
  const extract: ArchiveExtractor = async (archive, directory) => {
    // /dev/shm holds a sparse segment (tmpfs lets its size pass size=); /sys/fs/cgroup too much.
    if (archive.endsWith('tmpfs-dev-44.tar.gz.img')) {
      await writeFile(path.join(directory, 'segment'), '');
      await truncate(path.join(directory, 'segment'), 2 ** 30);
    }
    if (archive.endsWith('tmpfs-dev-46.tar.gz.img')) await writeFile(path.join(directory, 'big'), Buffer.alloc(MAX_COPIED_BYTES + 1, 1));
  };
  const prepared = await prepareTmpfsExternal(dir, extract);
  t.deepEqual(
    prepared.copied.map((c) => c.mountPoint),
    ['/dev'],
  );
  t.deepEqual(prepared.kept, ['/sys/fs/cgroup: it holds more than 16 MiB', '/dev/shm: segment is sparse']);
  await prepared.commit();
  t.deepEqual((await readdir(dir)).sort(), ['mountpoints-13.img', 'tmpfs-content-42', 'tmpfs-dev-44.tar.gz.img', 'tmpfs-dev-46.tar.gz.img']);
  const after = (await decodeImage(path.join(dir, 'mountpoints-13.img'))).entries as unknown as MountEntry[];
  t.deepEqual(
    after.filter((e) => e.ext_key?.startsWith('runtime-tmpfs:')).map((e) => e.mountpoint),
    ['/dev'],
  );
});

test('prepareTmpfsExternal: a dump of several mount namespaces is left alone', async (t) => {
  const dir = await imageDir(t);
  await writeFile(path.join(dir, 'mountpoints-14.img'), encodeImage({ magic: 'MNTS', entries: entries as unknown as ImageEntry[] }));
  const prepared = await prepareTmpfsExternal(dir, async () => t.fail('nothing to unpack'));
  t.deepEqual(prepared.copied, []);
});
