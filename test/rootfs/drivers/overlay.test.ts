import test from 'ava';
import path from 'node:path';
import { mkdir, unlink, writeFile } from 'node:fs/promises';
import { ContainersOverlayDriver } from '../../../src/rootfs/drivers/overlay.js';
import { BrokenLayoutError, LayerNotFoundError, MissingLayerError, MountDataTooLongError, UnsupportedLayoutError } from '../../../src/rootfs/errors.js';
import { fakeDeps } from '../helpers/fakes.js';
import { buildOverlay, tempStorageRoot, type LayerSpec } from '../helpers/layouts.js';

const threeLayers: LayerSpec[] = [
  { files: { 'etc/os-release': 'base\n', 'tmp/gone': 'x' } },
  { files: { 'etc/os-release': 'middle\n' }, whiteouts: ['tmp/gone'] },
  { files: { 'app/state': 'running\n' } },
];

test('three layers: absolute short links uppermost first, then upperdir and workdir; no index=off', async (t) => {
  const root = await tempStorageRoot(t);
  const layout = await buildOverlay(root, 'overlay', threeLayers);
  const [base, middle, top] = layout.layers;
  const plan = await new ContainersOverlayDriver(fakeDeps()).plan(root, top!.id);
  t.deepEqual(plan, {
    driver: 'overlay',
    type: 'overlay',
    source: 'overlay',
    target: path.join(top!.dir, 'merged'),
    options: [`lowerdir=${layout.home}/l/${middle!.link}:${layout.home}/l/${base!.link}`, `upperdir=${top!.dir}/diff`, `workdir=${top!.dir}/work`],
    steps: [],
    rootfs: path.join(top!.dir, 'merged'),
  });
});

test('configured mountopt options follow, then userxattr when rootless', async (t) => {
  const root = await tempStorageRoot(t);
  const layout = await buildOverlay(root, 'overlay', threeLayers);
  const plan = await new ContainersOverlayDriver(fakeDeps({ initialUserNamespace: false })).plan(root, layout.top.id, {
    mountOptions: ['nodev', 'metacopy=on'],
  });
  t.deepEqual(plan.options.slice(3), ['nodev', 'metacopy=on', 'userxattr']);
});

test('a bottom layer mounts its empty/ as the only lower', async (t) => {
  const root = await tempStorageRoot(t);
  const layout = await buildOverlay(root, 'overlay', [{ files: { a: 'a' } }]);
  const plan = await new ContainersOverlayDriver(fakeDeps()).plan(root, layout.top.id);
  t.deepEqual(plan.options, [`lowerdir=${layout.top.dir}/empty`, `upperdir=${layout.top.dir}/diff`, `workdir=${layout.top.dir}/work`]);
});

test('extra diffN directories come after their layer, through the link, uncleaned', async (t) => {
  const root = await tempStorageRoot(t);
  const layout = await buildOverlay(root, 'overlay', threeLayers);
  const [base, middle, top] = layout.layers;
  await mkdir(path.join(top!.dir, 'diff1'));
  await mkdir(path.join(middle!.dir, 'diff1'));
  await mkdir(path.join(middle!.dir, 'diff2'));
  const plan = await new ContainersOverlayDriver(fakeDeps()).plan(root, top!.id);
  const m = `${layout.home}/l/${middle!.link}`;
  t.is(plan.options[0], `lowerdir=${top!.dir}/diff1:${m}:${m}/../diff1:${m}/../diff2:${layout.home}/l/${base!.link}`);
});

test('past the page size: upperdir and workdir relative to the driver root, lowers still absolute', async (t) => {
  // A 1 KiB page makes the window between the two forms easy to hit.
  const root = await tempStorageRoot(t, 150);
  const layout = await buildOverlay(
    root,
    'overlay',
    Array.from({ length: 4 }, () => ({})),
  );
  const plan = await new ContainersOverlayDriver(fakeDeps({ pageSize: 1024 })).plan(root, layout.top.id);
  const lowers = layout.layers
    .slice(0, -1)
    .reverse()
    .map((l) => `${layout.home}/l/${l.link}`);
  t.deepEqual(plan.options, [`lowerdir=${lowers.join(':')}`, `upperdir=${layout.top.id}/diff`, `workdir=${layout.top.id}/work`]);
  t.is(plan.cwd, layout.home);
  t.is(plan.fds, undefined);
  const absolute = [`lowerdir=${lowers.join(':')}`, `upperdir=${layout.top.dir}/diff`, `workdir=${layout.top.dir}/work`].join(',');
  t.true(absolute.length >= 1024 && plan.options.join(',').length < 1024);
});

test('still too long: lowers by descriptor from /proc/self/fd, upperdir first (storage-mountfrom)', async (t) => {
  const root = await tempStorageRoot(t, 150);
  const layout = await buildOverlay(
    root,
    'overlay',
    Array.from({ length: 200 }, () => ({})),
  );
  const plan = await new ContainersOverlayDriver(fakeDeps()).plan(root, layout.top.id, { mountOptions: ['nodev'] });
  const lowers = layout.layers
    .slice(0, -1)
    .reverse()
    .map((l) => `${layout.home}/l/${l.link}`);
  t.deepEqual(plan.options, [
    `upperdir=${layout.top.dir}/diff`,
    `workdir=${layout.top.dir}/work`,
    `lowerdir=${lowers.map((_, i) => i + 3).join(':')}`,
    'nodev',
  ]);
  t.is(plan.cwd, '/proc/self/fd');
  t.deepEqual(plan.fds, lowers);
});

test('more than 500 lowers is "max depth exceeded"', async (t) => {
  const root = await tempStorageRoot(t);
  const layout = await buildOverlay(root, 'overlay', threeLayers);
  await writeFile(path.join(layout.top.dir, 'lower'), Array.from({ length: 501 }, () => 'l/AAAAAAAAAAAAAAAAAAAAAAAAAA').join(':'));
  await t.throwsAsync(new ContainersOverlayDriver(fakeDeps()).plan(root, layout.top.id), { instanceOf: BrokenLayoutError, message: /max depth exceeded/ });
});

test('past what even descriptors can carry is refused', async (t) => {
  const root = await tempStorageRoot(t);
  const layout = await buildOverlay(
    root,
    'overlay',
    Array.from({ length: 40 }, () => ({})),
  );
  await t.throwsAsync(new ContainersOverlayDriver(fakeDeps({ pageSize: 256 })).plan(root, layout.top.id), { instanceOf: MountDataTooLongError });
});

test('a composefs layer is refused as unsupported', async (t) => {
  const root = await tempStorageRoot(t);
  const layout = await buildOverlay(root, 'overlay', threeLayers);
  await writeFile(path.join(layout.layers[0]!.dir, 'composefs-data'), '');
  await t.throwsAsync(new ContainersOverlayDriver(fakeDeps()).plan(root, layout.top.id), { instanceOf: UnsupportedLayoutError, message: /composefs/ });
});

test('missing links and layers give clear errors', async (t) => {
  const root = await tempStorageRoot(t);
  const layout = await buildOverlay(root, 'overlay', threeLayers);
  const driver = new ContainersOverlayDriver(fakeDeps());
  await t.throwsAsync(driver.plan(root, layerIdNotThere()), { instanceOf: LayerNotFoundError });
  await unlink(path.join(layout.home, 'l', layout.layers[1]!.link));
  const error = await t.throwsAsync(driver.plan(root, layout.top.id), { instanceOf: MissingLayerError });
  t.true(error!.hint!.includes('containers/storage does this itself'));
});

test('a descriptor plan hands its directories to mountFrom', async (t) => {
  const root = await tempStorageRoot(t, 150);
  const layout = await buildOverlay(
    root,
    'overlay',
    Array.from({ length: 200 }, () => ({})),
  );
  const deps = fakeDeps();
  const driver = new ContainersOverlayDriver(deps);
  const plan = await driver.plan(root, layout.top.id, { mountOptions: ['nodev'] });
  t.true(await driver.mount(plan));
  t.deepEqual(deps.mounts.calls, [
    {
      op: 'mountFrom',
      cwd: '/proc/self/fd',
      source: 'overlay',
      target: plan.target,
      fsType: 'overlay',
      flags: 0x4,
      data: plan.options.filter((o) => o !== 'nodev').join(','),
      fds: plan.fds!,
    },
  ]);
});

function layerIdNotThere(): string {
  return '0'.repeat(64);
}
