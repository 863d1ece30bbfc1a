import 'reflect-metadata';
import test from 'ava';
import { DRIVER_NAMES, driverFor, planRootfs, planToJson } from '../../../src/rootfs/drivers/index.js';
import { UnknownDriverError } from '../../../src/rootfs/errors.js';
import { fakeDeps } from '../helpers/fakes.js';
import { buildDeviceMapper, buildOverlay, tempStorageRoot } from '../helpers/layouts.js';

test('every known name gives its driver', (t) => {
  for (const name of DRIVER_NAMES) t.is(driverFor(name, fakeDeps()).name, name);
});

test('an unknown name lists the known ones', (t) => {
  const error = t.throws(() => driverFor('zfs'), { instanceOf: UnknownDriverError });
  t.is(error!.code, 'ROOTFS_UNKNOWN_DRIVER');
  t.is(error!.message, 'unknown rootfs storage driver "zfs"');
  t.is(error!.hint, 'use one of: dir, overlay2, overlay, aufs, devicemapper, image');
});

test('plan JSON: type, source, target, options, steps first; cwd only for a relative mount', async (t) => {
  const root = await tempStorageRoot(t);
  const layout = await buildOverlay(root, 'overlay2', [{}, {}, {}]);
  const plan = await planRootfs({ driver: 'overlay2', storageRoot: root, layer: layout.top.id }, fakeDeps());
  const json = planToJson(plan);
  t.deepEqual(Object.keys(json), ['type', 'source', 'target', 'options', 'steps', 'rootfs', 'driver']);
  t.deepEqual(JSON.parse(JSON.stringify(json)), json);
});

test('devicemapper plan JSON lists the activation in steps', async (t) => {
  const root = await tempStorageRoot(t);
  const layout = await buildDeviceMapper(root, 1);
  const json = planToJson(await planRootfs({ driver: 'devicemapper', storageRoot: root, layer: layout.top }, fakeDeps()));
  const steps = json['steps'] as { argv: string[] }[];
  t.deepEqual(
    steps.map((s) => s.argv.slice(0, 2)),
    [
      ['dmsetup', 'create'],
      ['dmsetup', 'remove'],
    ],
  );
});
