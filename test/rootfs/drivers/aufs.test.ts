import test from 'ava';
import path from 'node:path';
import { rm, writeFile } from 'node:fs/promises';
import { AufsDriver } from '../../../src/rootfs/drivers/aufs.js';
import { BrokenLayoutError, KernelSupportError, LayerNotFoundError, MissingLayerError } from '../../../src/rootfs/errors.js';
import { ProcKernelSupport } from '../../../src/rootfs/kernel-support.js';
import { fakeDeps, fixturePath } from '../helpers/fakes.js';
import { buildAufs, tempStorageRoot, type LayerSpec } from '../helpers/layouts.js';

const threeLayers: LayerSpec[] = [
  { files: { 'etc/os-release': 'base\n', 'tmp/gone': 'x' } },
  { files: { 'etc/os-release': 'middle\n' }, whiteouts: ['tmp/gone'] },
  { files: { 'app/state': 'running\n' } },
];

test('three layers: br: with the rw branch first, parents =ro+wh nearest first, dio and xino', async (t) => {
  const root = await tempStorageRoot(t);
  const layout = await buildAufs(root, threeLayers);
  const [base, middle, top] = layout.ids;
  const diff = (id: string): string => path.join(layout.home, 'diff', id);
  const plan = await new AufsDriver(fakeDeps()).plan(root, top!);
  t.deepEqual(plan, {
    driver: 'aufs',
    type: 'aufs',
    source: 'none',
    target: path.join(layout.home, 'mnt', top!),
    options: [`br:${diff(top!)}=rw:${diff(middle!)}=ro+wh:${diff(base!)}=ro+wh`, 'dio', 'xino=/dev/shm/aufs.xino'],
    steps: [],
    rootfs: path.join(layout.home, 'mnt', top!),
  });
});

test('dirperm1 is added when a scratch aufs mount takes it, as moby probes', async (t) => {
  const root = await tempStorageRoot(t);
  const layout = await buildAufs(root, threeLayers);
  const deps = fakeDeps({ filesystems: ['ext4', 'aufs'] });
  const plan = await new AufsDriver(deps).plan(root, layout.top);
  t.deepEqual(plan.options.slice(1), ['dio', 'xino=/dev/shm/aufs.xino', 'dirperm1']);
  const probe = deps.mounts.calls[0];
  t.like(probe, { op: 'mount', source: 'none', fsType: 'aufs', flags: 0 });
  t.regex(probe?.op === 'mount' ? probe.data : '', /^br:.*runtime-aufs-base.*,dirperm1,xino=\/dev\/shm\/aufs\.xino$/);
  t.is(deps.mounts.table.length, 0, 'the probe mount is gone');
});

test('no dirperm1 when the scratch mount refuses it', async (t) => {
  const root = await tempStorageRoot(t);
  const layout = await buildAufs(root, threeLayers);
  const deps = fakeDeps({ filesystems: ['ext4', 'aufs'] });
  deps.mounts.failType = 'aufs';
  const plan = await new AufsDriver(deps).plan(root, layout.top);
  t.deepEqual(plan.options.slice(1), ['dio', 'xino=/dev/shm/aufs.xino']);
});

test('branches past the page budget are appended by remounts in batches (small page, exact)', async (t) => {
  const root = await tempStorageRoot(t);
  const layout = await buildAufs(
    root,
    Array.from({ length: 6 }, () => ({})),
  );
  const diff = (id: string): string => path.join(layout.home, 'diff', id);
  const [top, ...parents] = [...layout.ids].reverse();
  // Each branch is ~120 bytes here; budget = 600 - 54 = 546: br + 3 parents fit, then batches of 3 and 2... computed below.
  const pageSize = 600;
  const budget = pageSize - 54;
  let br = `br:${diff(top!)}=rw`;
  let i = 0;
  while (i < parents.length && br.length + `:${diff(parents[i]!)}=ro+wh`.length <= budget) br += `:${diff(parents[i++]!)}=ro+wh`;
  const batches: string[][] = [];
  while (i < parents.length) {
    const batch: string[] = [];
    let used = 0;
    while (i < parents.length && used + `append:${diff(parents[i]!)}=ro+wh,`.length <= budget) {
      batch.push(`append:${diff(parents[i]!)}=ro+wh`);
      used += batch.at(-1)!.length + 1;
      i += 1;
    }
    batches.push(batch);
  }
  t.true(batches.length >= 1, 'the fixture needs remounts');
  const plan = await new AufsDriver(fakeDeps({ pageSize })).plan(root, top!);
  t.deepEqual(plan.options, [br, 'dio', 'xino=/dev/shm/aufs.xino']);
  t.deepEqual(
    plan.steps.map((s) => (s.kind === 'remount' ? [s.phase, s.fsType, s.target, s.options] : s)),
    batches.map((b) => ['after-mount', 'aufs', plan.target, b]),
  );
});

test('a long chain at 4 KiB: every branch once, in order, each data within the page', async (t) => {
  const root = await tempStorageRoot(t, 100);
  const layout = await buildAufs(
    root,
    Array.from({ length: 60 }, () => ({})),
  );
  const diff = (id: string): string => path.join(layout.home, 'diff', id);
  const plan = await new AufsDriver(fakeDeps()).plan(root, layout.top);
  const branches = [
    ...plan.options[0]!.slice('br:'.length).split(':'),
    ...plan.steps.flatMap((s) => (s.kind === 'remount' ? s.options.map((o) => o.slice('append:'.length)) : [])),
  ];
  t.deepEqual(branches, [
    `${diff(layout.top)}=rw`,
    ...[...layout.ids]
      .reverse()
      .slice(1)
      .map((id) => `${diff(id)}=ro+wh`),
  ]);
  t.true(plan.steps.length >= 1);
  t.true(plan.options.join(',').length <= 4095);
  for (const step of plan.steps) if (step.kind === 'remount') t.true(step.options.join(',').length + 1 <= 4096 - 54);
});

test('a layer without parents is its diff, bound onto itself', async (t) => {
  const root = await tempStorageRoot(t);
  const layout = await buildAufs(root, [{}]);
  const plan = await new AufsDriver(fakeDeps()).plan(root, layout.top);
  t.like(plan, { type: 'bind', source: path.join(layout.home, 'diff', layout.top) });
});

test('missing parent layer, missing layers file, bad parent line', async (t) => {
  const root = await tempStorageRoot(t);
  const layout = await buildAufs(root, threeLayers);
  const driver = new AufsDriver(fakeDeps());
  await rm(path.join(layout.home, 'diff', layout.ids[0]!), { recursive: true });
  const missing = await t.throwsAsync(driver.plan(root, layout.top), { instanceOf: MissingLayerError });
  t.true(missing!.message.includes(layout.ids[0]!));
  await rm(path.join(layout.home, 'layers', layout.ids[1]!));
  await t.throwsAsync(driver.plan(root, layout.ids[1]!), { instanceOf: LayerNotFoundError });
  await writeFile(path.join(layout.home, 'layers', layout.top), '../../etc\n');
  await t.throwsAsync(driver.plan(root, layout.top), { instanceOf: BrokenLayoutError });
});

test('on this kernel (no aufs) the mount is refused clearly and nothing is mounted', async (t) => {
  const root = await tempStorageRoot(t);
  const layout = await buildAufs(root, threeLayers);
  const deps = { ...fakeDeps(), kernel: new ProcKernelSupport({ root: fixturePath('hosts', 'overlay-only'), pageSize: 4096 }) };
  const driver = new AufsDriver(deps);
  const plan = await driver.plan(root, layout.top);
  const error = await t.throwsAsync(driver.mount(plan), { instanceOf: KernelSupportError });
  t.is(error!.message, 'the aufs driver cannot mount on this kernel: aufs is not in /proc/filesystems');
  t.regex(error!.hint!, /aufs is not in mainline Linux.*modprobe aufs.*overlay2/);
  t.deepEqual(deps.mounts.calls, []);
});

test('in a user namespace aufs is refused even when the kernel has it', async (t) => {
  const deps = { ...fakeDeps(), kernel: new ProcKernelSupport({ root: fixturePath('hosts', 'aufs-userns'), pageSize: 4096 }) };
  await t.throwsAsync(new AufsDriver(deps).checkKernel(), { instanceOf: KernelSupportError, message: /user namespace/ });
});

test('with aufs: mount, remount the appended branches, unmount after auplink flush', async (t) => {
  const root = await tempStorageRoot(t);
  const layout = await buildAufs(
    root,
    Array.from({ length: 6 }, () => ({})),
  );
  const deps = fakeDeps({ filesystems: ['aufs'], pageSize: 600 });
  const driver = new AufsDriver(deps);
  const plan = await driver.plan(root, layout.top);
  deps.mounts.calls.length = 0;
  deps.mounts.table.length = 0;
  t.true(await driver.mount(plan));
  t.true(await driver.isMounted(plan));
  t.true(await driver.unmount(plan));
  const ops = deps.mounts.calls.map((c) => (c.op === 'mount' ? `${c.op}:${c.flags}` : c.op === 'unmount' ? `unmount:${c.detach}` : c.op));
  t.deepEqual(ops, ['mount:0', ...plan.steps.map(() => 'mount:32'), 'unmount:false']);
  t.deepEqual(deps.commands.runs, [['auplink', plan.target, 'flush']]);
});
