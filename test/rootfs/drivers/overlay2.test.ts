import test from 'ava';
import path from 'node:path';
import { rm, unlink, writeFile, rmdir } from 'node:fs/promises';
import { Overlay2Driver } from '../../../src/rootfs/drivers/overlay2.js';
import {
  BrokenLayoutError,
  InvalidLayerIdError,
  KernelSupportError,
  LayerNotFoundError,
  MissingLayerError,
  MountDataTooLongError,
} from '../../../src/rootfs/errors.js';
import { ProcKernelSupport } from '../../../src/rootfs/kernel-support.js';
import { fakeDeps, fixturePath } from '../helpers/fakes.js';
import { buildOverlay, tempStorageRoot, type LayerSpec } from '../helpers/layouts.js';

const threeLayers: LayerSpec[] = [
  { files: { 'etc/os-release': 'base\n', 'bin/sh': '#!sh\n', 'tmp/gone': 'x' } },
  { files: { 'etc/os-release': 'middle\n' }, whiteouts: ['tmp/gone'] },
  { files: { 'app/state': 'running\n' } },
];

test('three layers: lowerdir from the short links, uppermost first; upperdir, workdir, merged', async (t) => {
  const root = await tempStorageRoot(t);
  const layout = await buildOverlay(root, 'overlay2', threeLayers);
  const [base, middle, top] = layout.layers;
  const plan = await new Overlay2Driver(fakeDeps()).plan(root, top!.id);
  t.deepEqual(plan, {
    driver: 'overlay2',
    type: 'overlay',
    source: 'overlay',
    target: path.join(top!.dir, 'merged'),
    options: [
      'index=off',
      `lowerdir=${layout.home}/l/${middle!.link}:${layout.home}/l/${base!.link}`,
      `upperdir=${top!.dir}/diff`,
      `workdir=${top!.dir}/work`,
    ],
    steps: [],
    rootfs: path.join(top!.dir, 'merged'),
  });
  t.is(top!.lower, `l/${middle!.link}:l/${base!.link}`);
});

test('no index parameter in the kernel: no index=off; in a user namespace: userxattr', async (t) => {
  const root = await tempStorageRoot(t);
  const layout = await buildOverlay(root, 'overlay2', threeLayers);
  const plain = await new Overlay2Driver(fakeDeps({ paths: [] })).plan(root, layout.top.id);
  t.true(plain.options[0]!.startsWith('lowerdir='));
  const userns = await new Overlay2Driver(fakeDeps({ initialUserNamespace: false })).plan(root, layout.top.id);
  t.deepEqual(userns.options.slice(0, 2), ['index=off', 'userxattr']);
});

test('a committed (parent) layer mounts read-only: lowerdir=<diff>:<lowers>', async (t) => {
  const root = await tempStorageRoot(t);
  const layout = await buildOverlay(root, 'overlay2', threeLayers);
  const middle = layout.layers[1]!;
  const plan = await new Overlay2Driver(fakeDeps()).plan(root, middle.id);
  t.deepEqual(plan.options, ['index=off', `lowerdir=${middle.dir}/diff:${layout.home}/l/${layout.layers[0]!.link}`]);
});

test('a bottom layer (no lower file) is its diff, bound onto itself', async (t) => {
  const root = await tempStorageRoot(t);
  const layout = await buildOverlay(root, 'overlay2', [{ files: { a: 'a' } }]);
  const plan = await new Overlay2Driver(fakeDeps()).plan(root, layout.top.id);
  t.like(plan, { type: 'bind', source: layout.top.diff, target: layout.top.diff, rootfs: layout.top.diff });
});

test('a chain too long for one page is mounted from the driver root with relative paths', async (t) => {
  // 100 layers under a 200-byte root: the absolute form is ~8 KiB, the relative one ~2.9 KiB.
  const root = await tempStorageRoot(t, 200);
  const layout = await buildOverlay(
    root,
    'overlay2',
    Array.from({ length: 100 }, (_, i) => ({ files: { [`f${i}`]: `${i}` } })),
  );
  const plan = await new Overlay2Driver(fakeDeps()).plan(root, layout.top.id);
  t.deepEqual(plan.options, ['index=off', `lowerdir=${layout.top.lower}`, `upperdir=${layout.top.id}/diff`, `workdir=${layout.top.id}/work`]);
  t.is(plan.cwd, layout.home);
  t.is(plan.target, path.join(layout.top.dir, 'merged'));
  t.true(Buffer.byteLength(plan.options.join(',')) <= 4095);
});

test('a chain too long even relative is refused with the length', async (t) => {
  const root = await tempStorageRoot(t);
  const layout = await buildOverlay(
    root,
    'overlay2',
    Array.from({ length: 150 }, () => ({})),
  );
  const error = await t.throwsAsync(new Overlay2Driver(fakeDeps()).plan(root, layout.top.id), { instanceOf: MountDataTooLongError });
  t.regex(error!.message, /at most 4095/);
  t.truthy(error!.hint);
});

test('a missing short link names the layer that owns it', async (t) => {
  const root = await tempStorageRoot(t);
  const layout = await buildOverlay(root, 'overlay2', threeLayers);
  const base = layout.layers[0]!;
  await unlink(path.join(layout.home, 'l', base.link));
  const error = await t.throwsAsync(new Overlay2Driver(fakeDeps()).plan(root, layout.top.id), { instanceOf: MissingLayerError });
  t.true(error!.message.includes(`l/${base.link}`));
  t.true(error!.message.includes(base.id));
  t.true(error!.hint!.includes(`ln -s ../${base.id}/diff`));
});

test('a lower layer that is gone (dangling link) is a missing layer', async (t) => {
  const root = await tempStorageRoot(t);
  const layout = await buildOverlay(root, 'overlay2', threeLayers);
  await rm(layout.layers[0]!.dir, { recursive: true });
  const error = await t.throwsAsync(new Overlay2Driver(fakeDeps()).plan(root, layout.top.id), { instanceOf: MissingLayerError });
  t.regex(error!.message, /not a directory/);
});

test('a lower file that is not l/<id> entries is a broken layout', async (t) => {
  const root = await tempStorageRoot(t);
  const layout = await buildOverlay(root, 'overlay2', threeLayers);
  await writeFile(path.join(layout.top.dir, 'lower'), 'l/ABC:../../etc');
  const error = await t.throwsAsync(new Overlay2Driver(fakeDeps()).plan(root, layout.top.id), { instanceOf: BrokenLayoutError });
  t.true(error!.message.includes('"../../etc"'));
});

test('missing work/ of a read-write layer is a broken layout', async (t) => {
  const root = await tempStorageRoot(t);
  const layout = await buildOverlay(root, 'overlay2', threeLayers);
  await rmdir(path.join(layout.top.dir, 'work'));
  await t.throwsAsync(new Overlay2Driver(fakeDeps()).plan(root, layout.top.id), { instanceOf: BrokenLayoutError, message: /work/ });
});

test('an unknown layer and an id that is a path are refused', async (t) => {
  const root = await tempStorageRoot(t);
  await buildOverlay(root, 'overlay2', threeLayers);
  const driver = new Overlay2Driver(fakeDeps());
  const error = await t.throwsAsync(driver.plan(root, 'f'.repeat(64)), { instanceOf: LayerNotFoundError });
  t.true(error!.message.includes(path.join(root, 'overlay2', 'f'.repeat(64))));
  await t.throwsAsync(driver.plan(root, '../overlay2'), { instanceOf: InvalidLayerIdError });
});

test('mount and unmount go through the mount service; unmount detaches like Put', async (t) => {
  const root = await tempStorageRoot(t);
  const layout = await buildOverlay(root, 'overlay2', threeLayers);
  const deps = fakeDeps();
  const driver = new Overlay2Driver(deps);
  const plan = await driver.plan(root, layout.top.id);
  t.false(await driver.isMounted(plan));
  t.true(await driver.mount(plan));
  t.true(await driver.isMounted(plan));
  t.false(await driver.mount(plan), 'a second mount is a no-op');
  t.true(await driver.unmount(plan));
  t.false(await driver.unmount(plan), 'a second unmount is a no-op');
  t.deepEqual(deps.mounts.calls, [
    { op: 'mount', source: 'overlay', target: plan.target, fsType: 'overlay', flags: 0, data: plan.options.join(',') },
    { op: 'unmount', target: plan.target, detach: true },
  ]);
});

test('a relative plan mounts from its directory', async (t) => {
  const root = await tempStorageRoot(t, 200);
  const layout = await buildOverlay(
    root,
    'overlay2',
    Array.from({ length: 100 }, () => ({})),
  );
  const deps = fakeDeps();
  const driver = new Overlay2Driver(deps);
  const plan = await driver.plan(root, layout.top.id);
  await driver.mount(plan);
  t.like(deps.mounts.calls[0], { op: 'mountFrom', cwd: layout.home, target: plan.target, data: plan.options.join(','), fds: [] });
});

test('mounting is refused on a kernel without overlay, before any mount', async (t) => {
  const root = await tempStorageRoot(t);
  const layout = await buildOverlay(root, 'overlay2', threeLayers);
  const deps = { ...fakeDeps(), kernel: new ProcKernelSupport({ root: fixturePath('hosts', 'no-overlay'), pageSize: 4096 }) };
  const driver = new Overlay2Driver(deps);
  const plan = await driver.plan(root, layout.top.id);
  const error = await t.throwsAsync(driver.mount(plan), { instanceOf: KernelSupportError });
  t.regex(error!.message, /overlay is not in \/proc\/filesystems/);
  t.regex(error!.hint!, /modprobe overlay/);
  t.deepEqual(deps.mounts.calls, []);
});
