import test from 'ava';
import {
  ProcKernelSupport,
  checkAufsSupport,
  checkDeviceMapperSupport,
  checkOverlaySupport,
  parseFilesystems,
  readFilesystems,
  systemPageSize,
} from '../../src/rootfs/kernel-support.js';
import { KernelSupportError } from '../../src/rootfs/errors.js';
import { FakeKernel, fixturePath } from './helpers/fakes.js';

const host = (name: string): ProcKernelSupport => new ProcKernelSupport({ root: fixturePath('hosts', name), pageSize: 4096 });

test('parseFilesystems takes the name field of each line', (t) => {
  t.deepEqual(parseFilesystems('nodev\tsysfs\n\text4\nnodev\toverlay\n\n'), ['sysfs', 'ext4', 'overlay']);
});

test('readFilesystems reads a fixture file', async (t) => {
  const names = await readFilesystems(fixturePath('hosts', 'aufs', 'proc', 'filesystems'));
  t.true(names.includes('aufs'));
  t.true(names.includes('overlay'));
});

test('the fixture hosts', async (t) => {
  t.true(await host('overlay-only').pathExists('/sys/module/overlay/parameters/index'));
  t.false(await host('overlay-only').pathExists('/dev/mapper/control'));
  t.true(await host('overlay-only').inInitialUserNamespace());
  t.false(await host('aufs-userns').inInitialUserNamespace());
  t.is(await host('devicemapper').deviceMapperTargets(), undefined, 'a fixture tree has no dmsetup to ask');
});

test('overlay: accepted where listed, refused with what to do where not', async (t) => {
  await t.notThrowsAsync(checkOverlaySupport(host('overlay-only'), 'overlay2'));
  const error = await t.throwsAsync(checkOverlaySupport(host('no-overlay'), 'overlay2'), { instanceOf: KernelSupportError });
  t.is(error!.code, 'ROOTFS_KERNEL_UNSUPPORTED');
  t.is(error!.message, 'the overlay2 driver cannot mount on this kernel: overlay is not in /proc/filesystems');
  t.regex(error!.hint!, /modprobe overlay/);
});

test('aufs: needs the filesystem and the initial user namespace', async (t) => {
  await t.notThrowsAsync(checkAufsSupport(host('aufs')));
  await t.throwsAsync(checkAufsSupport(host('overlay-only')), { message: /aufs is not in \/proc\/filesystems/ });
  await t.throwsAsync(checkAufsSupport(host('aufs-userns')), { message: /user namespace/ });
});

test('devicemapper: the control node, then the thin target (module or dmsetup targets)', async (t) => {
  await t.notThrowsAsync(checkDeviceMapperSupport(host('devicemapper')));
  await t.throwsAsync(checkDeviceMapperSupport(host('overlay-only')), { message: /\/dev\/mapper\/control does not exist/ });
  await t.throwsAsync(checkDeviceMapperSupport(host('dm-no-thin')), { message: /"thin" target/ });
  await t.notThrowsAsync(checkDeviceMapperSupport(new FakeKernel({ paths: ['/dev/mapper/control'], dmTargets: ['striped', 'thin', 'thin-pool'] })));
});

test('this machine: the page size from libc', (t) => {
  const size = systemPageSize();
  t.true(size >= 4096 && (size & (size - 1)) === 0);
  t.is(new ProcKernelSupport().pageSize(), size);
});

test('this machine has overlay (the e2e mount depends on it)', async (t) => {
  const names = await new ProcKernelSupport().filesystems();
  if (!names.includes('overlay')) t.log('WARNING: no overlay in /proc/filesystems here; the root mount tests will fail');
  t.true(names.length > 0);
});
