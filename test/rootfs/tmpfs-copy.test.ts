/**
 * The copy that fills a restore's tmpfs: every kind of entry tar keeps, with modes, owners and
 * times, hard links kept as links, sockets skipped; and the mount it makes (recording fake of the
 * mount service: flags kept but read-only, unmounted again when the copy fails). Device nodes
 * need root and are copied in the end-to-end tests; here a fifo goes through the same mknod.
 */
import test from 'ava';
import { createServer } from 'node:net';
import { chmod, link, lstat, mkdir, readdir, readFile, readlink, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { copyTree, mountCopiedTmpfs, tmpfsStagingDirectory } from '../../src/rootfs/tmpfs-copy.js';
import type { MountService } from '../../src/rootfs/mount-service.js';
import { tempDir } from '../runtime/fixtures.js';

async function sourceTree(t: Parameters<typeof tempDir>[0]): Promise<string> {
  const from = path.join(await tempDir(t), 'from');
  await mkdir(path.join(from, 'sub', 'deeper'), { recursive: true });
  await writeFile(path.join(from, 'file'), 'contents');
  await chmod(path.join(from, 'file'), 0o640);
  await link(path.join(from, 'file'), path.join(from, 'sub', 'hardlink'));
  await symlink('../file', path.join(from, 'sub', 'link'));
  await execa('mkfifo', ['-m', '0620', path.join(from, 'fifo')]);
  await writeFile(path.join(from, 'sub', 'deeper', 'empty'), '');
  await utimes(path.join(from, 'sub', 'deeper'), new Date('2026-01-02T03:04:05Z'), new Date('2026-01-02T03:04:05Z'));
  await chmod(path.join(from, 'sub', 'deeper'), 0o500);
  await chmod(from, 0o1777);
  return from;
}

test('copyTree: directories, files, hard links, symlinks and fifos with their modes and times; the root takes the source root’s mode', async (t) => {
  const from = await sourceTree(t);
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(path.join(from, 'socket'), resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const to = path.join(path.dirname(from), 'to');
  await mkdir(to);

  copyTree(from, to);

  t.deepEqual((await readdir(to)).sort(), ['fifo', 'file', 'sub']);
  t.is((await stat(to)).mode & 0o7777, 0o1777);
  t.is(await readFile(path.join(to, 'file'), 'utf8'), 'contents');
  t.is((await stat(path.join(to, 'file'))).mode & 0o777, 0o640);
  const [file, hardlink] = await Promise.all([stat(path.join(to, 'file')), stat(path.join(to, 'sub', 'hardlink'))]);
  t.is(hardlink.ino, file.ino, 'a hard link stays one');
  t.is(file.nlink, 2);
  t.is(await readlink(path.join(to, 'sub', 'link')), '../file');
  const fifo = await lstat(path.join(to, 'fifo'));
  t.true(fifo.isFIFO());
  t.is(fifo.mode & 0o777, 0o620);
  const deeper = await stat(path.join(to, 'sub', 'deeper'));
  t.is(deeper.mode & 0o777, 0o500, 'a read-only directory is filled before its mode is set');
  t.is(deeper.mtime.toISOString(), '2026-01-02T03:04:05.000Z');
  t.deepEqual(await readdir(path.join(to, 'sub', 'deeper')), ['empty']);
});

test('copyTree: owners go through the id translation (a user namespace’s archive holds its own ids)', async (t) => {
  const from = await sourceTree(t);
  const to = path.join(path.dirname(from), 'to');
  await mkdir(to);
  const asked: string[] = [];
  const uid = process.getuid!();
  const gid = process.getgid!();
  copyTree(from, to, (kind, id) => {
    asked.push(`${kind} ${id}`);
    return kind === 'uid' ? uid : gid;
  });
  t.true(asked.includes(`uid ${uid}`));
  t.true(asked.includes(`gid ${(await stat(from)).gid}`));
  t.is((await lstat(path.join(to, 'sub', 'link'))).uid, uid);
});

function recordingMounts(): { readonly calls: string[]; readonly mounts: MountService } {
  const calls: string[] = [];
  const mounts = {
    mount: async (source: string, target: string, fsType: string, flags: number, data: string) => {
      calls.push(`mount ${source} ${path.basename(target)} ${fsType} 0x${flags.toString(16)} ${data}`);
    },
    unmount: async (target: string, options?: { readonly detach?: boolean }) => {
      calls.push(`unmount ${path.basename(target)}${options?.detach ? ' detach' : ''}`);
    },
  } as unknown as MountService;
  return { calls, mounts };
}

test('mountCopiedTmpfs: mounts with the superblock options and the flags a bind may not change later, never read-only, then copies', async (t) => {
  const from = await sourceTree(t);
  const target = path.join(path.dirname(from), 'target');
  const { calls, mounts } = recordingMounts();
  // ro, nosuid, nodev, noexec, relatime: everything but ro.
  await mountCopiedTmpfs(mounts, { source: 'shm', options: 'size=65536k', flags: 0x20000f, content: from }, target);
  t.deepEqual(calls, ['mount shm target tmpfs 0x20000e size=65536k']);
  t.is(await readFile(path.join(target, 'file'), 'utf8'), 'contents');
  // /dev's strictatime and nosuid.
  calls.length = 0;
  await mountCopiedTmpfs(mounts, { source: 'tmpfs', options: 'mode=755', flags: 0x1000002, content: from }, `${target}2`);
  t.deepEqual(calls, ['mount tmpfs target2 tmpfs 0x1000002 mode=755']);
});

test('mountCopiedTmpfs: a copy that fails is unmounted again', async (t) => {
  const dir = await tempDir(t);
  const { calls, mounts } = recordingMounts();
  await t.throwsAsync(mountCopiedTmpfs(mounts, { source: 'tmpfs', options: '', flags: 0, content: path.join(dir, 'missing') }, path.join(dir, 'target')), {
    code: 'ENOENT',
  });
  t.deepEqual(calls, ['mount tmpfs target tmpfs 0x0 ', 'unmount target detach']);
});

test('tmpfsStagingDirectory: a new directory each time, root’s alone, or searchable by a user namespace’s root group only', async (t) => {
  const root = path.join(await tempDir(t), 'staging');
  const first = await tmpfsStagingDirectory('c1', undefined, root);
  const second = await tmpfsStagingDirectory('c1', undefined, root);
  t.not(first, second);
  t.regex(path.basename(first), /^c1-/);
  t.is((await stat(root)).mode & 0o777, 0o711, 'the root: searchable, not listable');
  t.is((await stat(first)).mode & 0o777, 0o700, 'each restore’s: no one else may reach the copies');
  const shared = await tmpfsStagingDirectory('c2', 100000, root);
  const info = await stat(shared);
  t.is(info.mode & 0o777, 0o710);
  t.is(info.gid, 100000);
});

test('copyTree: never writes through an entry planted at the target', async (t) => {
  const from = await sourceTree(t);
  const to = path.join(path.dirname(from), 'to');
  await mkdir(to);
  const victim = path.join(path.dirname(from), 'victim');
  await writeFile(victim, 'untouched');
  await symlink(victim, path.join(to, 'file'));
  t.throws(() => copyTree(from, to), { code: 'EEXIST' });
  t.is(await readFile(victim, 'utf8'), 'untouched');
});
