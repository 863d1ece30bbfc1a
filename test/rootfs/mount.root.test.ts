/**
 * Real mounts on this kernel, as root: the drivers mount engine layouts built in a temporary folder
 * and unmount them again. Every mount under the folder is taken down even when a test fails.
 */
import 'reflect-metadata';
import { type ExecutionContext } from 'ava';
import path from 'node:path';
import os from 'node:os';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { SystemCallError } from '../../src/runtime/errors.js';
import { driverFor } from '../../src/rootfs/drivers/index.js';
import { LinuxMountService } from '../../src/rootfs/mount-service.js';
import { readMountInfo } from '../../src/rootfs/mountinfo.js';
import { KernelSupportError } from '../../src/rootfs/errors.js';
import { ProcKernelSupport } from '../../src/rootfs/kernel-support.js';
import { rootTest } from './helpers/root.js';
import { buildAufs, buildDeviceMapper, buildOverlay, type LayerSpec } from './helpers/layouts.js';

/** A temporary folder whose mounts are unmounted (deepest first) and which is removed at the end. */
async function scratch(t: ExecutionContext, pad = 0): Promise<string> {
  const base = await mkdtemp(path.join(os.tmpdir(), 'runtime-rootfs-mount-'));
  t.teardown(async () => {
    const mounts = new LinuxMountService();
    const under = (await readMountInfo()).filter((m) => m.mountPoint === base || m.mountPoint.startsWith(`${base}/`));
    for (const m of under.reverse()) await mounts.unmount(m.mountPoint, { detach: true }).catch((e: unknown) => t.log(`cleanup: ${String(e)}`));
    await rm(base, { recursive: true, force: true });
  });
  // One long component (at most 255 bytes) makes the absolute layer paths long.
  return pad === 0 ? base : path.join(base, 'p'.repeat(Math.min(pad, 250)));
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

const threeLayers: LayerSpec[] = [
  { files: { 'etc/os-release': 'base\n', 'bin/sh': '#!base\n', 'tmp/gone': 'hidden by the middle layer' } },
  { files: { 'etc/os-release': 'middle\n' }, whiteouts: ['tmp/gone'] },
  { files: { 'app/state': 'running\n' } },
];

rootTest('overlay2: three layers are really mounted, merged as Docker would, and unmounted', async (t) => {
  const root = await scratch(t);
  const layout = await buildOverlay(root, 'overlay2', threeLayers);
  const driver = driverFor('overlay2');
  const plan = await driver.plan(root, layout.top.id);
  t.is(plan.cwd, undefined);

  t.false(await driver.isMounted(plan));
  t.true(await driver.mount(plan));
  t.true(await driver.isMounted(plan));
  const merged = plan.rootfs;
  t.is(await readFile(path.join(merged, 'etc/os-release'), 'utf8'), 'middle\n');
  t.is(await readFile(path.join(merged, 'bin/sh'), 'utf8'), '#!base\n');
  t.is(await readFile(path.join(merged, 'app/state'), 'utf8'), 'running\n');
  t.false(await exists(path.join(merged, 'tmp/gone')), 'the whiteout hides the base file');
  await writeFile(path.join(merged, 'app/new'), 'written after restore\n');
  t.is(await readFile(path.join(layout.top.diff, 'app/new'), 'utf8'), 'written after restore\n', 'writes land in the upper layer');

  const info = (await readMountInfo()).filter((m) => m.mountPoint === plan.target).pop();
  t.is(info?.fsType, 'overlay');
  t.true(info?.superOptions.includes(`upperdir=${layout.top.diff}`));
  t.true(info?.superOptions.includes(`lowerdir=${layout.home}/l/${layout.layers[1]!.link}:${layout.home}/l/${layout.layers[0]!.link}`));

  t.false(await driver.mount(plan), 'mounting again is a no-op');
  t.true(await driver.unmount(plan));
  t.false(await driver.isMounted(plan));
  t.deepEqual(await readdir(merged), []);
});

rootTest('overlay2: a chain past the page size is mounted from the driver root (mountFrom child)', async (t) => {
  const root = await scratch(t, 200);
  const specs: LayerSpec[] = Array.from({ length: 100 }, (_, i) => ({ files: { [`layer${i}`]: `${i}\n` } }));
  const layout = await buildOverlay(root, 'overlay2', specs);
  const driver = driverFor('overlay2');
  const plan = await driver.plan(root, layout.top.id);
  t.is(plan.cwd, layout.home);
  t.true(await driver.mount(plan));
  t.is(await readFile(path.join(plan.rootfs, 'layer0'), 'utf8'), '0\n');
  t.is(await readFile(path.join(plan.rootfs, 'layer99'), 'utf8'), '99\n');
  t.true(await driver.unmount(plan));
  t.false(await driver.isMounted(plan));
});

rootTest('overlay (containers/storage): three layers, then 200 layers by descriptor', async (t) => {
  const root = await scratch(t, 150);
  const small = await buildOverlay(path.join(root, 'small'), 'overlay', threeLayers);
  const driver = driverFor('overlay');
  const plan = await driver.plan(small.storageRoot, small.top.id);
  t.true(await driver.mount(plan));
  t.is(await readFile(path.join(plan.rootfs, 'etc/os-release'), 'utf8'), 'middle\n');
  t.false(await exists(path.join(plan.rootfs, 'tmp/gone')));
  t.true(await driver.unmount(plan));

  const big = await buildOverlay(
    path.join(root, 'big'),
    'overlay',
    Array.from({ length: 200 }, (_, i) => ({ files: { [`layer${i}`]: `${i}\n` } })),
  );
  const fdPlan = await driver.plan(big.storageRoot, big.top.id);
  t.is(fdPlan.cwd, '/proc/self/fd');
  t.is(fdPlan.fds?.length, 199);
  t.true(await driver.mount(fdPlan));
  t.is(await readFile(path.join(fdPlan.rootfs, 'layer0'), 'utf8'), '0\n');
  t.is(await readFile(path.join(fdPlan.rootfs, 'layer150'), 'utf8'), '150\n');
  t.true(await driver.unmount(fdPlan));
  t.false(await driver.isMounted(fdPlan));
});

rootTest('dir: a root that is not a mount point is bound onto itself and released', async (t) => {
  const root = await scratch(t);
  await writeFile(path.join(root, 'marker'), 'x');
  const driver = driverFor('dir');
  const plan = await driver.plan(root, '');
  t.true(await driver.mount(plan));
  t.true((await readMountInfo()).some((m) => m.mountPoint === plan.target));
  t.false(await driver.mount(plan));
  t.true(await driver.unmount(plan));
  t.false(await driver.isMounted(plan));
});

rootTest('aufs and devicemapper: planned here, refused at mount time by this kernel', async (t) => {
  const root = await scratch(t);
  const kernel = new ProcKernelSupport();
  const aufs = await buildAufs(root, threeLayers);
  const dm = await buildDeviceMapper(root, 2);
  // Only mounts under the scratch folder count: other tests mount containers meanwhile.
  const ours = async () => (await readMountInfo()).filter((m) => m.mountPoint === root || m.mountPoint.startsWith(`${root}/`));
  const before = await ours();
  if (!(await kernel.filesystems()).includes('aufs')) {
    const driver = driverFor('aufs');
    const error = await t.throwsAsync(driver.mount(await driver.plan(root, aufs.top)), { instanceOf: KernelSupportError });
    t.log(`aufs: ${error!.message}\n  hint: ${error!.hint}`);
  }
  if (!(await kernel.pathExists('/dev/mapper/control'))) {
    const driver = driverFor('devicemapper');
    const error = await t.throwsAsync(driver.mount(await driver.plan(root, dm.top)), { instanceOf: KernelSupportError });
    t.log(`devicemapper: ${error!.message}\n  hint: ${error!.hint}`);
  }
  t.deepEqual(await ours(), before, 'nothing was mounted');
});

rootTest("mountFrom passes the child's errno back as a SystemCallError", async (t) => {
  const root = await scratch(t);
  const target = path.join(root, 'merged');
  await mkdir(target);
  const error = await t.throwsAsync(new LinuxMountService().mountFrom(root, 'overlay', target, 'overlay', 0, 'lowerdir=no-such-layer'), {
    instanceOf: SystemCallError,
  });
  t.is(error!.syscall, 'mount');
  t.is(error!.errno, 2);
  t.regex(error!.message, /ENOENT/);
  await t.throwsAsync(new LinuxMountService().mountFrom(path.join(root, 'absent'), 'overlay', target, 'overlay', 0, ''), { message: /chdir/ });
});
