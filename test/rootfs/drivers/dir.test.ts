import test from 'ava';
import path from 'node:path';
import { mkdir, symlink } from 'node:fs/promises';
import { DirDriver } from '../../../src/rootfs/drivers/dir.js';
import { LayerNotFoundError, PlanMismatchError } from '../../../src/rootfs/errors.js';
import { Overlay2Driver } from '../../../src/rootfs/drivers/overlay2.js';
import { fakeDeps } from '../helpers/fakes.js';
import { tempStorageRoot } from '../helpers/layouts.js';

test('the bundle root as it is, bound onto itself at its real path', async (t) => {
  const bundle = await tempStorageRoot(t);
  await mkdir(path.join(bundle, 'rootfs-real'));
  await symlink('rootfs-real', path.join(bundle, 'rootfs'));
  const plan = await new DirDriver(fakeDeps()).plan(path.join(bundle, 'rootfs'), '');
  const real = path.join(bundle, 'rootfs-real');
  t.deepEqual(plan, { driver: 'dir', type: 'bind', source: real, target: real, options: ['rbind'], steps: [], rootfs: real });
});

test('a missing root.path is refused', async (t) => {
  const bundle = await tempStorageRoot(t);
  await t.throwsAsync(new DirDriver(fakeDeps()).plan(path.join(bundle, 'nope'), ''), { instanceOf: LayerNotFoundError, message: /nope does not exist/ });
});

test('bind when not a mount point; nothing when it already is one', async (t) => {
  const bundle = await tempStorageRoot(t);
  const deps = fakeDeps();
  const driver = new DirDriver(deps);
  const plan = await driver.plan(bundle, '');
  t.true(await driver.mount(plan));
  t.false(await driver.mount(plan));
  t.deepEqual(deps.mounts.calls, [{ op: 'bind', source: bundle, target: bundle }]);
  t.true(await driver.unmount(plan));
  t.deepEqual(deps.mounts.calls.at(-1), { op: 'unmount', target: bundle, detach: false });
});

test('a plan is only accepted by its own driver', async (t) => {
  const bundle = await tempStorageRoot(t);
  const plan = await new DirDriver(fakeDeps()).plan(bundle, '');
  await t.throwsAsync(new Overlay2Driver(fakeDeps()).mount(plan), { instanceOf: PlanMismatchError });
});
