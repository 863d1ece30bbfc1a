// Tests for src/rootfs/mountinfo.ts (kept here, beside the core tests that use it).
import test from 'ava';
import { parseMountInfo } from '../../src/rootfs/mountinfo.js';
import { readCoreFixture } from './fixtures.js';

test('the proc(5) example line', (t) => {
  t.deepEqual(parseMountInfo(readCoreFixture('mountinfo-escapes.txt'))[0], {
    id: 36,
    parentId: 35,
    device: '98:0',
    root: '/mnt1',
    mountPoint: '/mnt2',
    mountOptions: ['rw', 'noatime'],
    optionalFields: ['master:1'],
    fsType: 'ext3',
    source: '/dev/root',
    superOptions: ['rw', 'errors=continue'],
  });
});

test('octal escapes, several optional fields, a subtype', (t) => {
  t.deepEqual(parseMountInfo(readCoreFixture('mountinfo-escapes.txt'))[1], {
    id: 40,
    parentId: 28,
    device: '0:50',
    root: '/my dir',
    mountPoint: '/mnt/with space\ttab',
    mountOptions: ['rw', 'relatime'],
    optionalFields: ['shared:3', 'master:2', 'propagate_from:1', 'unbindable'],
    fsType: 'fuse.sshfs',
    source: 'user@host:/a\\b',
    superOptions: ['rw', 'user_id=0', 'group_id=0'],
  });
});

test('no optional fields and no super options', (t) => {
  const mount = parseMountInfo(readCoreFixture('mountinfo-escapes.txt'))[2]!;
  t.deepEqual(mount.optionalFields, []);
  t.is(mount.fsType, 'tmpfs');
  t.is(mount.source, 'none');
  t.deepEqual(mount.superOptions, []);
});

test('a whole table: blank lines skipped, order kept', (t) => {
  const mounts = parseMountInfo(`\n${readCoreFixture('mountinfo-container.txt')}\n\n`);
  t.is(mounts.length, 15);
  t.deepEqual(mounts.map((m) => m.id).slice(0, 3), [600, 601, 602]);
  t.deepEqual(
    mounts.filter((m) => m.fsType === 'cgroup').map((m) => [m.root, m.mountPoint, m.superOptions.join(',')]),
    [
      ['/runtime/web1', '/sys/fs/cgroup/systemd', 'rw,xattr,name=systemd'],
      ['/runtime/web1', '/sys/fs/cgroup/cpu,cpuacct', 'rw,cpu,cpuacct'],
      ['/runtime/web1', '/sys/fs/cgroup/freezer', 'rw,freezer'],
    ],
  );
  t.deepEqual(mounts[0]!.superOptions, ['rw', 'lowerdir=/var/lib/l/1:/var/lib/l/2', 'upperdir=/var/lib/u', 'workdir=/var/lib/w']);
});

test('a line without the "-" separator is malformed', (t) => {
  t.throws(() => parseMountInfo('36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 ext3 /dev/root rw'), {
    message: 'malformed mountinfo line: 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 ext3 /dev/root rw',
  });
  t.throws(() => parseMountInfo('36 35 98:0 /mnt1 /mnt2 rw - ext3'), { message: /^malformed mountinfo line/ });
});
