import test from 'ava';
import { MS_REMOUNT, splitMountOptions } from '../../src/rootfs/mount-options.js';
import { MS_BIND, MS_NODEV, MS_NOSUID, MS_RDONLY, MS_REC } from '../../src/system/libc.js';

test('flag words become flags, the rest stays data in order', (t) => {
  t.deepEqual(splitMountOptions(['lowerdir=/a:/b', 'nodev', 'upperdir=/u', 'nosuid', 'metacopy=on']), {
    flags: MS_NODEV | MS_NOSUID,
    data: 'lowerdir=/a:/b,upperdir=/u,metacopy=on',
  });
});

test('clearing words undo earlier ones; rbind is bind+rec; remount', (t) => {
  t.deepEqual(splitMountOptions(['ro', 'rw', 'rbind']), { flags: MS_BIND | MS_REC, data: '' });
  t.deepEqual(splitMountOptions(['remount', 'ro']), { flags: MS_REMOUNT | MS_RDONLY, data: '' });
  t.deepEqual(splitMountOptions(['append:/x=ro+wh', '']), { flags: 0, data: 'append:/x=ro+wh' });
});
