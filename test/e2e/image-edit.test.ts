/**
 * Editing a checkpoint: a busybox shell holds /data/a.txt open on fd 3; after the checkpoint the
 * file is renamed in the rootfs and, through `runtime image decode` → edit → `runtime image
 * encode`, in files.img (CRIU 4 keeps regular files there; older versions had reg-files.img).
 * The restore opens the new name, and the restored shell's fd 3 points at it.
 */
import test from 'ava';
import { mkdir, readFile, readlink, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { formatImageJson, parseImageJson } from '../../src/criu/images/index.js';
import type { CritJsonObject } from '../../src/criu/images/index.js';
import type { ExecutionContext } from 'ava';
import { e2e, sandbox, waitFor, type Sandbox } from './helpers.js';

const serial = e2e(test);

/** Container "ed" whose shell holds /data/a.txt open on fd 3, running and checked. */
async function runHoldingFile(t: ExecutionContext): Promise<{ box: Sandbox; bundle: string }> {
  const box = await sandbox(t);
  const bundle = await box.bundle('editor', ['sh', '-c', 'exec 3</data/a.txt; while true; do sleep 1; done']);
  await mkdir(path.join(bundle, 'rootfs/data'));
  await writeFile(path.join(bundle, 'rootfs/data/a.txt'), 'hello\n');
  t.is((await box.cli(['run', '-d', '--bundle', bundle, 'ed'])).exitCode, 0);
  const started = JSON.parse((await box.cli(['state', 'ed'])).stdout) as { pid: number };
  await waitFor('fd 3 to be open', async () => ((await readlink(`/proc/${started.pid}/fd/3`).catch(() => '')) === '/data/a.txt' ? true : undefined));
  return { box, bundle };
}

serial('decode, rename a file in files.img, encode, restore: the restored fd points at the new name', async (t) => {
  const { box, bundle } = await runHoldingFile(t);

  const checkpoint = await box.cli(['checkpoint', 'ed']);
  t.is(checkpoint.exitCode, 0, checkpoint.stderr);
  const images = path.join(box.checkpointRoot, 'ed', 'checkpoint');

  // Decode, as `crit decode --pretty` would.
  const json = path.join(box.dir, 'files.json');
  const decoded = await box.cli(['image', 'decode', '--pretty', '-i', path.join(images, 'files.img'), '-o', json]);
  t.is(decoded.exitCode, 0, decoded.stderr);
  // Edit: the regular file entry of /data/a.txt gets the new name.
  const image = parseImageJson(await readFile(json, 'utf8'));
  const entries = image.entries.filter((e) => e.type === 'REG' && (e.reg as CritJsonObject).name === '/data/a.txt');
  t.is(entries.length, 1);
  (entries[0]!.reg as CritJsonObject).name = '/data/b.txt';
  await writeFile(json, formatImageJson(image, { pretty: true }));
  // Encode over the original, and move the file itself.
  const encoded = await box.cli(['image', 'encode', '-i', json, '-o', path.join(images, 'files.img')]);
  t.is(encoded.exitCode, 0, encoded.stderr);
  await rename(path.join(bundle, 'rootfs/data/a.txt'), path.join(bundle, 'rootfs/data/b.txt'));
  t.regex((await box.cli(['image', 'x', images, 'fds'])).stdout, /3: \/data\/b\.txt/);

  const restore = await box.cli(['restore', '-d', 'ed']);
  t.is(restore.exitCode, 0, restore.stderr);
  const restored = JSON.parse((await box.cli(['state', 'ed'])).stdout) as { status: string; pid: number };
  t.is(restored.status, 'running');
  t.is(await readlink(`/proc/${restored.pid}/fd/3`), '/data/b.txt');
  t.is(await readFile(`/proc/${restored.pid}/fd/3`, 'utf8'), 'hello\n');
});

serial('without the edit the restore fails, naming the missing file', async (t) => {
  const { box, bundle } = await runHoldingFile(t);
  t.is((await box.cli(['checkpoint', 'ed'])).exitCode, 0);
  await rename(path.join(bundle, 'rootfs/data/a.txt'), path.join(bundle, 'rootfs/data/b.txt'));
  const restore = await box.cli(['restore', '-d', 'ed']);
  t.not(restore.exitCode, 0);
  t.regex(restore.stderr, /a\.txt/);
});
