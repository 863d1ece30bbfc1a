/**
 * A container whose rootfs is a Docker overlay2 layout of three layers: it runs, writes a file,
 * is checkpointed, its rootfs is unmounted, and a restore mounts it again; the file and the
 * process state are there, and delete unmounts what the runtime mounted.
 */
import test from 'ava';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { e2e, sandbox, waitFor, type Sandbox } from './helpers.js';
import { buildOverlay } from '../rootfs/helpers/layouts.js';
import { parseMountInfo } from '../../src/rootfs/mountinfo.js';

const serial = e2e(test);

async function isMounted(target: string): Promise<boolean> {
  return parseMountInfo(await readFile('/proc/self/mountinfo', 'utf8')).some((m) => m.mountPoint === target);
}

async function counter(merged: string): Promise<number | undefined> {
  const text = (await readFile(path.join(merged, 'tmp/counter'), 'utf8').catch(() => '')).trim();
  return text === '' ? undefined : Number(text);
}

/**
 * An overlay2 layout of the given layers in the sandbox, its bottom layer the bundle's busybox
 * rootfs, and `run -d` of the bundle on its top layer through the CLI.
 */
async function overlayOf(box: Sandbox, bundle: string, layers: Parameters<typeof buildOverlay>[2]) {
  const storageRoot = path.join(box.dir, 'docker');
  const layout = await buildOverlay(storageRoot, 'overlay2', layers);
  await execa('cp', ['-a', `${path.join(bundle, 'rootfs')}/.`, layout.layers[0]!.diff]);
  const run = (id: string) =>
    box.cli(['run', '-d', '--bundle', bundle, '--storage-driver', 'overlay2', '--storage-root', storageRoot, '--layer', layout.top.id, id]);
  return { layout, merged: path.join(layout.top.dir, 'merged'), run };
}

serial('overlay2 rootfs of three layers: run, write, checkpoint, unmount, restore remounts it', async (t) => {
  const box = await sandbox(t);
  // The counter is written aside and renamed: a checkpoint between a truncation and the write
  // would leave an empty file to read (it did, once, in CI).
  const bundle = await box.bundle('overlay', [
    'sh',
    '-c',
    'cat /etc/from-layer-2 >/tmp/seen; echo written-before-checkpoint >/tmp/file; i=0; while true; do i=$((i+1)); echo $i >/tmp/counter.new; mv /tmp/counter.new /tmp/counter; sleep 0.2; done',
  ]);
  const { layout, merged, run: runOn } = await overlayOf(box, bundle, [{}, { files: { 'etc/from-layer-2': 'layer two\n' } }, {}]);
  const run = await runOn('ov');
  t.is(run.exitCode, 0, run.stderr);
  t.true(await isMounted(merged), 'run mounted the overlay');
  const before = await waitFor('the counter', async () => (((await counter(merged)) ?? 0) > 2 ? counter(merged) : undefined));
  t.is(await readFile(path.join(merged, 'tmp/seen'), 'utf8'), 'layer two\n');
  // Writes land in the top (read-write) layer.
  t.is(await readFile(path.join(layout.top.diff, 'tmp/file'), 'utf8'), 'written-before-checkpoint\n');

  const checkpoint = await box.cli(['checkpoint', 'ov']);
  t.is(checkpoint.exitCode, 0, checkpoint.stderr);
  const frozen = (await counter(merged))!;
  t.true(frozen >= before!);
  await execa('umount', [merged]);
  t.false(await isMounted(merged));

  const restore = await box.cli(['restore', '-d', 'ov']);
  t.is(restore.exitCode, 0, restore.stderr);
  t.true(await isMounted(merged), 'restore mounted the overlay again');
  t.is(await readFile(path.join(merged, 'tmp/file'), 'utf8'), 'written-before-checkpoint\n');
  const after = await waitFor('the counter to go on', async () => {
    const value = await counter(merged);
    return value !== undefined && value > frozen ? value : undefined;
  });
  t.true(after < frozen + 100, `the counter continued from ${frozen} (now ${after})`);
  t.true((await box.runtime.context.store.load('ov')).rootfsMountedByRuntime === true);

  const removed = await box.cli(['delete', '-f', 'ov']);
  t.is(removed.exitCode, 0, removed.stderr);
  t.false(await isMounted(merged), 'delete unmounted what the runtime mounted');
});

serial('rootfs plan prints the overlay2 mount without mounting', async (t) => {
  const box = await sandbox(t);
  const storageRoot = path.join(box.dir, 'docker');
  const layout = await buildOverlay(storageRoot, 'overlay2', [{}, {}, {}]);
  const result = await box.cli(['rootfs', 'plan', '--driver', 'overlay2', '--storage-root', storageRoot, '--layer', layout.top.id]);
  t.is(result.exitCode, 0, result.stderr);
  const plan = JSON.parse(result.stdout) as { type: string; source: string; target: string; options: string[]; steps: unknown[] };
  t.is(plan.type, 'overlay');
  t.is(plan.target, path.join(layout.top.dir, 'merged'));
  const lowerdir = plan.options.find((o) => o.startsWith('lowerdir='))!;
  t.is(lowerdir, `lowerdir=${path.join(layout.home, 'l', layout.layers[1]!.link)}:${path.join(layout.home, 'l', layout.layers[0]!.link)}`);
  t.true(plan.options.includes(`upperdir=${layout.top.diff}`));
  t.false(await isMounted(plan.target));
});

serial('a failed restore leaves nothing mounted and the container checkpointed', async (t) => {
  const box = await sandbox(t);
  const bundle = await box.bundle('overlay-fail');
  const storageRoot = path.join(box.dir, 'docker');
  const layout = await buildOverlay(storageRoot, 'overlay2', [{}, {}, {}]);
  await execa('cp', ['-a', `${path.join(bundle, 'rootfs')}/.`, layout.layers[0]!.diff]);
  const merged = path.join(layout.top.dir, 'merged');
  await box.runtime.run({ id: 'f', bundle, storage: { driver: 'overlay2', storageRoot, layer: layout.top.id } });
  const { imagePath } = await box.runtime.checkpoint({ id: 'f' });
  await execa('umount', [merged]);
  // A checkpoint whose process tree image is gone cannot be restored (its digests go too, as in
  // a checkpoint of an older runtime: else the runtime refuses it before CRIU fails).
  await execa('rm', [path.join(imagePath, 'pstree.img'), path.join(imagePath, 'checksums.sha256')]);
  const restore = await box.cli(['restore', '-d', 'f']);
  t.is(restore.exitCode, 1);
  t.regex(restore.stderr, /CRIU RESTORE failed/);
  t.false(await isMounted(merged), 'the overlay the restore mounted was unmounted again');
  t.false(await isMounted(path.join(box.stateRoot, 'f', 'criu-root')));
  t.is((await box.runtime.state('f')).status, 'checkpointed');
});

serial('a run that fails to start unmounts the overlay it mounted and leaves no state', async (t) => {
  const box = await sandbox(t);
  // runc cannot start it: the command does not exist in the rootfs.
  const bundle = await box.bundle('overlay-fails', ['/no/such/command']);
  const { merged, run: runOn } = await overlayOf(box, bundle, [{}]);
  const run = await runOn('bad');
  t.not(run.exitCode, 0);
  t.false(await isMounted(merged), 'the overlay the run mounted is unmounted again');
  t.is((await box.cli(['list', '-q'])).stdout, '', 'no state is left');
});
