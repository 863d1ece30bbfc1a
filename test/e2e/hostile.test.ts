/**
 * Damaged images, a full disk and hostile bundles, end to end: a restore of images that are not
 * as CRIU dumped them names the image and leaves the container checkpointed; a dump that fills
 * the disk fails, and the container runs on with its previous checkpoint intact; a bundle's bad
 * rlimits or mount destinations are clear errors, and a link out of the rootfs stays inside it.
 */
import test from 'ava';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { counterAbove, e2e, readCounter, sandbox } from './helpers.js';
import { memhogBundle } from './reset-helpers.js';
import { verifyMemory, waitReady } from '../../bench/workload.js';

const serial = e2e(test);

serial('a flipped bit or a truncated image: restore and inspect name the image, nothing runs, and the intact images still restore', async (t) => {
  const box = await sandbox(t);
  const bundle = await box.bundle('c');
  await box.runtime.run({ id: 'c', bundle });
  await counterAbove(bundle, 2);
  t.is((await box.cli(['checkpoint', 'c'])).exitCode, 0);
  const images = path.join(box.checkpointRoot, 'c', 'checkpoint');
  const pages = path.join(images, 'pages-1.img');
  const core = path.join(images, 'core-1.img');
  const original = await readFile(pages);

  const flipped = Buffer.from(original);
  flipped[flipped.length >> 1]! ^= 0x10;
  await writeFile(pages, flipped);
  const refused = await box.cli(['restore', '-d', 'c']);
  t.is(refused.exitCode, 1);
  t.regex(refused.stderr, /the checkpoint in .* is damaged: pages-1\.img differs from what was dumped/);
  const inspectedFlipped = await box.cli(['inspect', 'c']);
  t.is(inspectedFlipped.exitCode, 1);
  t.regex(inspectedFlipped.stderr, /pages-1\.img differs from what was dumped/);
  t.is((await box.runtime.state('c')).status, 'checkpointed');

  await writeFile(pages, original);
  await copyFile(core, `${core}.kept`);
  await truncate(core, 100);
  const truncated = await box.cli(['restore', '-d', 'c']);
  t.is(truncated.exitCode, 1);
  t.regex(truncated.stderr, /core-1\.img differs from what was dumped/);
  const inspected = await box.cli(['inspect', 'c']);
  t.is(inspected.exitCode, 1);
  t.regex(inspected.stderr, /core-1\.img/);
  t.is((await box.runtime.state('c')).status, 'checkpointed');
  t.deepEqual(await box.runtime.context.cgroups.occupants((await box.runtime.context.store.load('c')).cgroupPath), []);

  await copyFile(`${core}.kept`, core);
  const dumped = (await readCounter(bundle))!;
  t.is((await box.cli(['restore', '-d', 'c'])).exitCode, 0);
  await counterAbove(bundle, dumped);
});

serial('the disk fills up while dumping: the checkpoint fails, the container runs on, its previous checkpoint is intact', async (t) => {
  const box = await sandbox(t);
  const mib = 16;
  const bundle = await memhogBundle(box, mib);
  // A checkpoint root with room for one checkpoint of the container, not for a second beside it.
  const small = path.join(box.dir, 'small');
  await mkdir(small);
  await execa('mount', ['-t', 'tmpfs', '-o', 'size=26m,mode=700', 'tmpfs', small]);
  t.teardown(() => execa('umount', ['-l', small], { reject: false }).then(() => undefined));
  const env = { RUNTIME_CHECKPOINT_ROOT: small };
  t.is((await box.cli(['run', '-d', '--bundle', bundle, 'hog'], { env })).exitCode, 0);
  await waitReady(bundle, mib);
  const pid = (await box.runtime.state('hog')).pid!;
  const first = await box.cli(['checkpoint', '--leave-running', 'hog'], { env });
  t.is(first.exitCode, 0, first.stderr);
  const images = path.join(small, 'hog', 'checkpoint');

  const full = await box.cli(['checkpoint', '--leave-running', 'hog'], { env });

  t.is(full.exitCode, 1);
  t.regex(full.stderr, /No space left on device|ENOSPC|CRIU/i);
  t.false(existsSync(`${images}.new`), 'the failed dump is removed');
  t.is(
    (await execa('sha256sum', ['-c', '--quiet', 'checksums.sha256'], { cwd: images, reject: false })).exitCode,
    0,
    'the previous checkpoint is as it was',
  );
  const state = await box.runtime.state('hog');
  t.is(state.status, 'running');
  t.is(state.pid, pid);
  await verifyMemory(bundle, pid, mib);
  // Once there is room again, the checkpoint works and restores.
  await execa('mount', ['-o', 'remount,size=64m', small]);
  t.is((await box.cli(['checkpoint', 'hog'], { env })).exitCode, 0);
  t.is((await box.cli(['restore', '-d', 'hog'], { env })).exitCode, 0);
  await verifyMemory(bundle, (await box.runtime.state('hog')).pid!, mib);
  t.is((await box.cli(['delete', '-f', 'hog'], { env })).exitCode, 0);
});

serial(
  'hostile bundles: each is a clear error naming what is wrong, or kept inside its rootfs; nothing is made outside, no container is left',
  async (t) => {
    const box = await sandbox(t);
    const refused: { readonly name: string; readonly edit: (spec: Record<string, any>) => void; readonly error: RegExp }[] = [
      { name: 'rlimit', edit: (s) => (s.process.rlimits = [{ type: 'RLIMIT_BOGUS', hard: 1, soft: 1 }]), error: /rlimit.*RLIMIT_BOGUS/ },
      { name: 'soft-above-hard', edit: (s) => (s.process.rlimits = [{ type: 'RLIMIT_NOFILE', hard: 1, soft: 5 }]), error: /rlimit/ },
      {
        name: 'relative',
        edit: (s) => s.mounts.push({ destination: '../../../../outside', type: 'tmpfs', source: 'tmpfs' }),
        error: /mounts\[\d+\]\.destination: must be an absolute path/,
      },
    ];
    for (const { name, edit, error } of refused) {
      const bundle = await box.bundle(name, [], edit);
      const result = await box.cli(['run', '-d', '--bundle', bundle, name]);
      t.is(result.exitCode, 1, name);
      t.regex(result.stderr, error, name);
    }
    t.deepEqual(await box.runtime.list(), []);

    // A mount destination through a link in the rootfs that points out of it: made inside, on run
    // (runc) and on restore (the runtime), never at the host path the link names.
    const outside = path.join(box.dir, 'outside');
    const bundle = await box.bundle('link', [], (s) => s.mounts.push({ destination: '/escape/data', type: 'tmpfs', source: 'tmpfs' }));
    await symlink(outside, path.join(bundle, 'rootfs', 'escape'));
    await box.runtime.run({ id: 'link', bundle });
    await counterAbove(bundle, 1);
    t.is((await box.cli(['checkpoint', 'link'])).exitCode, 0);
    await rm(path.join(bundle, 'rootfs', box.dir.slice(1)), { recursive: true, force: true });
    const restored = await box.cli(['restore', '-d', 'link']);
    t.is(restored.exitCode, 0, restored.stderr);
    t.false(existsSync(outside), 'nothing was made at the host path the link names');
    t.true(existsSync(path.join(bundle, 'rootfs', outside.slice(1), 'data')), 'the mountpoint was made inside the rootfs');
  },
);
