import test from 'ava';
import path from 'node:path';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { execa } from 'execa';
import { DeviceMapperDriver, deviceMajorMinor } from '../../../src/rootfs/drivers/devicemapper.js';
import { BrokenLayoutError, DeviceStateError, KernelSupportError, LayerNotFoundError } from '../../../src/rootfs/errors.js';
import { ProcKernelSupport } from '../../../src/rootfs/kernel-support.js';
import { fakeDeps, fixturePath } from '../helpers/fakes.js';
import { buildDeviceMapper, tempStorageRoot } from '../helpers/layouts.js';

/** The prefix from coreutils' stat (%Hd/%Ld: major/minor of st_dev), independent of the driver's arithmetic. */
async function prefixOf(home: string): Promise<string> {
  const { stdout } = await execa('stat', ['-c', 'docker-%Hd:%Ld-%i', home]);
  return stdout.trim();
}

test('plan: thin device name, dmsetup table, mount of mnt/<id> with rootfs/ inside', async (t) => {
  const root = await tempStorageRoot(t);
  const layout = await buildDeviceMapper(root, 3, 'xfs');
  const prefix = await prefixOf(layout.home);
  const id = layout.top;
  const deviceId = layout.deviceIds.get(id)!;
  const plan = await new DeviceMapperDriver(fakeDeps()).plan(root, id);
  t.deepEqual(plan, {
    driver: 'devicemapper',
    type: 'xfs',
    source: `/dev/mapper/${prefix}-${id}`,
    target: path.join(layout.home, 'mnt', id),
    options: ['nouuid'],
    steps: [
      {
        kind: 'command',
        phase: 'before-mount',
        description: `activate thin device ${deviceId} (10737418240 bytes, transaction ${deviceId}) of pool ${prefix}-pool as ${prefix}-${id}`,
        argv: ['dmsetup', 'create', `${prefix}-${id}`, '--table', `0 20971520 thin /dev/mapper/${prefix}-pool ${deviceId}`],
        skipIfExists: `/dev/mapper/${prefix}-${id}`,
      },
      {
        kind: 'command',
        phase: 'after-unmount',
        description: `deactivate ${prefix}-${id}`,
        argv: ['dmsetup', 'remove', `${prefix}-${id}`],
        onlyIfExists: `/dev/mapper/${prefix}-${id}`,
      },
    ],
    rootfs: path.join(layout.home, 'mnt', id, 'rootfs'),
  });
});

test('ext4 has no nouuid; dm.mountopt and dm.thinpooldev are honoured', async (t) => {
  const root = await tempStorageRoot(t);
  const layout = await buildDeviceMapper(root, 1, 'ext4', 512 * 1000 + 100);
  const plan = await new DeviceMapperDriver(fakeDeps()).plan(root, layout.top, {
    mountOptions: ['discard'],
    thinPoolDevice: '/dev/mapper/docker-thinpool',
  });
  t.is(plan.type, 'ext4');
  t.deepEqual(plan.options, ['discard']);
  const create = plan.steps[0];
  t.is(create?.kind === 'command' ? create.argv[4] : '', `0 1000 thin /dev/mapper/docker-thinpool ${layout.deviceIds.get(layout.top)}`);
});

test('major/minor split of dev_t matches Go unix.Major/Minor', (t) => {
  t.deepEqual(deviceMajorMinor(0xfe00n), [254n, 0n]);
  t.deepEqual(deviceMajorMinor(0x10301n), [0x103n, 1n]);
  // glibc's encoding: major bits 12+ live in dev bits 44+, minor bits 8+ in dev bits 20-43
  t.deepEqual(deviceMajorMinor((1n << 44n) | (1n << 20n)), [4096n, 256n]);
});

test('the driver prefix agrees with stat(1) for the storage root itself', async (t) => {
  const root = await tempStorageRoot(t);
  const layout = await buildDeviceMapper(root, 1);
  const st = await stat(layout.home, { bigint: true });
  const [major, minor] = deviceMajorMinor(st.dev);
  t.is(`docker-${major}:${minor}-${st.ino}`, await prefixOf(layout.home));
});

test('broken metadata: not JSON, bad fields, id past 24 bits, size under a sector', async (t) => {
  const root = await tempStorageRoot(t);
  const layout = await buildDeviceMapper(root, 1);
  const file = path.join(layout.home, 'metadata', layout.top);
  const driver = new DeviceMapperDriver(fakeDeps());
  const cases: [string, RegExp][] = [
    ['{"device_id":', /is not JSON/],
    ['[1,2]', /not a JSON object/],
    ['{"size":1024,"transaction_id":1}', /"device_id" must be a non-negative integer, found undefined/],
    ['{"device_id":"7","size":1024,"transaction_id":1}', /"device_id" must be/],
    ['{"device_id":16777216,"size":1024,"transaction_id":1}', /above the pool's limit 16777215/],
    ['{"device_id":3,"size":100,"transaction_id":1}', /less than one sector/],
    ['{"device_id":3,"size":1024,"transaction_id":-1}', /"transaction_id"/],
    ['{"device_id":3,"size":1024,"transaction_id":1,"deleted":"no"}', /"deleted" must be true or false/],
  ];
  for (const [text, message] of cases) {
    await writeFile(file, text);
    const error = await t.throwsAsync(driver.plan(root, layout.top), { instanceOf: BrokenLayoutError });
    t.regex(error!.message, message, text);
    t.true(error!.message.includes(file));
  }
});

test('a device marked deleted is refused like MountDevice does', async (t) => {
  const root = await tempStorageRoot(t);
  const layout = await buildDeviceMapper(root, 1);
  await writeFile(path.join(layout.home, 'metadata', layout.top), '{"device_id":2,"size":1024,"transaction_id":2,"initialized":false,"deleted":true}');
  await t.throwsAsync(new DeviceMapperDriver(fakeDeps()).plan(root, layout.top), { instanceOf: DeviceStateError, message: /deferred deletion/ });
});

test('deviceset-metadata missing or without a known filesystem', async (t) => {
  const root = await tempStorageRoot(t);
  const layout = await buildDeviceMapper(root, 1);
  const setFile = path.join(layout.home, 'metadata', 'deviceset-metadata');
  const driver = new DeviceMapperDriver(fakeDeps());
  await writeFile(setFile, '{"next_device_id":2,"BaseDeviceUUID":"x","BaseDeviceFilesystem":"btrfs"}');
  await t.throwsAsync(driver.plan(root, layout.top), { instanceOf: BrokenLayoutError, message: /"btrfs", not "ext4" or "xfs"/ });
  await writeFile(setFile, '{"next_device_id":2}');
  await t.throwsAsync(driver.plan(root, layout.top), { instanceOf: BrokenLayoutError, message: /BaseDeviceFilesystem is undefined/ });
  await rm(setFile);
  const error = await t.throwsAsync(driver.plan(root, layout.top), { instanceOf: BrokenLayoutError, message: /is missing/ });
  t.regex(error!.hint!, /dockerd/);
});

test('a layer without metadata is not found', async (t) => {
  const root = await tempStorageRoot(t);
  await buildDeviceMapper(root, 1);
  const error = await t.throwsAsync(new DeviceMapperDriver(fakeDeps()).plan(root, 'a'.repeat(64)), { instanceOf: LayerNotFoundError });
  t.regex(error!.hint!, /DeviceName/);
});

test('refused at mount time without /dev/mapper/control, then without the thin target', async (t) => {
  const root = await tempStorageRoot(t);
  const layout = await buildDeviceMapper(root, 1);
  for (const [host, message, hint] of [
    ['overlay-only', /\/dev\/mapper\/control does not exist/, /modprobe dm_mod/],
    ['dm-no-thin', /"thin" target is not available/, /modprobe dm_thin_pool/],
  ] as const) {
    const deps = { ...fakeDeps(), kernel: new ProcKernelSupport({ root: fixturePath('hosts', host), pageSize: 4096 }) };
    const driver = new DeviceMapperDriver(deps);
    const plan = await driver.plan(root, layout.top);
    const error = await t.throwsAsync(driver.mount(plan), { instanceOf: KernelSupportError });
    t.regex(error!.message, message);
    t.regex(error!.hint!, hint);
    t.deepEqual(deps.commands.runs, [], 'nothing activated');
    t.deepEqual(deps.mounts.calls, [], 'nothing mounted');
  }
});

test('this machine refuses devicemapper mounts when it has no device-mapper', async (t) => {
  const host = new ProcKernelSupport();
  if (await host.pathExists('/dev/mapper/control')) {
    t.pass('this host has device-mapper; the refusal is covered by the fixture hosts');
    return;
  }
  const root = await tempStorageRoot(t);
  const layout = await buildDeviceMapper(root, 1);
  const deps = { ...fakeDeps(), kernel: host };
  const driver = new DeviceMapperDriver(deps);
  await t.throwsAsync(driver.mount(await driver.plan(root, layout.top)), { instanceOf: KernelSupportError, message: /\/dev\/mapper\/control/ });
  t.deepEqual(deps.mounts.calls, []);
});

test('refused when the thin pool is not active', async (t) => {
  const root = await tempStorageRoot(t);
  const layout = await buildDeviceMapper(root, 1);
  const deps = fakeDeps({ paths: ['/dev/mapper/control', '/sys/module/dm_thin_pool'] });
  const driver = new DeviceMapperDriver(deps);
  const plan = await driver.plan(root, layout.top);
  await t.throwsAsync(driver.mount(plan), { instanceOf: DeviceStateError, message: /thin pool \/dev\/mapper\/docker-.*-pool is not active/ });
  t.deepEqual(deps.commands.runs, []);
});

test('with device-mapper: activate, mount, make rootfs/ and id; unmount detached, then deactivate', async (t) => {
  const root = await tempStorageRoot(t);
  const layout = await buildDeviceMapper(root, 2);
  const prefix = await prefixOf(layout.home);
  const device = `/dev/mapper/${prefix}-${layout.top}`;
  const deps = fakeDeps({ paths: ['/dev/mapper/control', '/sys/module/dm_thin_pool', `/dev/mapper/${prefix}-pool`] });
  const driver = new DeviceMapperDriver(deps);
  const plan = await driver.plan(root, layout.top);
  t.true(await driver.mount(plan));
  t.deepEqual(deps.commands.runs, [
    ['dmsetup', 'create', `${prefix}-${layout.top}`, '--table', `0 20971520 thin /dev/mapper/${prefix}-pool ${layout.deviceIds.get(layout.top)}`],
  ]);
  t.deepEqual(deps.mounts.calls, [{ op: 'mount', source: device, target: plan.target, fsType: 'xfs', flags: 0, data: 'nouuid' }]);
  t.true((await stat(plan.rootfs)).isDirectory());
  t.is(await readFile(path.join(plan.target, 'id'), 'utf8'), layout.top);

  deps.kernel.paths.add(device); // dmsetup create made the node
  t.true(await driver.unmount(plan));
  t.deepEqual(deps.mounts.calls.at(-1), { op: 'unmount', target: plan.target, detach: true });
  t.deepEqual(deps.commands.runs.at(-1), ['dmsetup', 'remove', `${prefix}-${layout.top}`]);
});

test('an already active device is not activated again, and a failed mount leaves it active', async (t) => {
  const root = await tempStorageRoot(t);
  const layout = await buildDeviceMapper(root, 1);
  const prefix = await prefixOf(layout.home);
  const deps = fakeDeps({ paths: ['/dev/mapper/control', '/sys/module/dm_thin_pool', `/dev/mapper/${prefix}-${layout.top}`] });
  deps.mounts.failType = 'xfs';
  const driver = new DeviceMapperDriver(deps);
  await t.throwsAsync(driver.mount(await driver.plan(root, layout.top)), { message: /mounting the devicemapper rootfs/ });
  t.deepEqual(deps.commands.runs, []);
});
