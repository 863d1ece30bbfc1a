/**
 * `runtime inspect` and `--print-stats` on real checkpoints: the tree names the commands, the open
 * file, the memory and CRIU's statistics; the statistics print as podman prints them.
 */
import test from 'ava';
import { mkdir, readlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { CheckpointInspection } from '../../src/runtime/inspection/model.js';
import { e2e, sandbox, waitFor, type Sandbox } from './helpers.js';

const serial = e2e(test);

async function start(box: Sandbox, id: string): Promise<number> {
  const bundle = await box.bundle(id, ['sh', '-c', 'exec 3</data/a.txt; sleep 1000000 & while true; do sleep 1; done']);
  await mkdir(path.join(bundle, 'rootfs/data'));
  await writeFile(path.join(bundle, 'rootfs/data/a.txt'), 'hello\n');
  const run = await box.cli(['run', '-d', '--bundle', bundle, id]);
  if (run.exitCode !== 0) throw new Error(run.stderr);
  const { pid } = JSON.parse((await box.cli(['state', id])).stdout) as { pid: number };
  await waitFor('fd 3 to be open', async () => ((await readlink(`/proc/${pid}/fd/3`).catch(() => '')) === '/data/a.txt' ? true : undefined));
  return pid;
}

const checkpointKeys = ['freezing_time', 'frozen_time', 'memdump_time', 'memwrite_time', 'pages_scanned', 'pages_written'];
const restoreKeys = ['pages_compared', 'pages_skipped_cow', 'forking_time', 'restore_time', 'pages_restored'];

serial("checkpoint and restore --print-stats print podman's JSON", async (t) => {
  const box = await sandbox(t);
  await start(box, 's1');
  const checkpoint = await box.cli(['checkpoint', '--print-stats', 's1']);
  t.is(checkpoint.exitCode, 0, checkpoint.stderr);
  const dump = JSON.parse(checkpoint.stdout) as { runtime_checkpoint_duration: number; criu_statistics: Record<string, number> };
  t.deepEqual(Object.keys(dump), ['runtime_checkpoint_duration', 'criu_statistics']);
  t.deepEqual(Object.keys(dump.criu_statistics), checkpointKeys);
  t.true(dump.runtime_checkpoint_duration > dump.criu_statistics.frozen_time!, 'the whole checkpoint takes longer than the freeze');
  t.true(dump.criu_statistics.pages_written! > 0);

  const restore = await box.cli(['restore', '-d', '--print-stats', 's1']);
  t.is(restore.exitCode, 0, restore.stderr);
  const stats = JSON.parse(restore.stdout) as { runtime_restore_duration: number; criu_statistics: Record<string, number> };
  t.deepEqual(Object.keys(stats), ['runtime_restore_duration', 'criu_statistics']);
  t.deepEqual(Object.keys(stats.criu_statistics), restoreKeys);
  t.true(stats.runtime_restore_duration > stats.criu_statistics.restore_time!);
  t.true(stats.criu_statistics.pages_restored! > 0);

  // With a work directory CRIU writes its statistics there.
  const work = path.join(box.dir, 'work');
  const second = await box.cli(['checkpoint', '--print-stats', '--work-path', work, 's1']);
  t.is(second.exitCode, 0, second.stderr);
  t.deepEqual(Object.keys((JSON.parse(second.stdout) as { criu_statistics: object }).criu_statistics), checkpointKeys);
});

serial('inspect <id> shows the process tree with commands, files, memory and statistics; --format json the same', async (t) => {
  const box = await sandbox(t);
  await start(box, 'i1');
  t.is((await box.cli(['checkpoint', 'i1'])).exitCode, 0);

  const tree = await box.cli(['inspect', 'i1']);
  t.is(tree.exitCode, 0, tree.stderr);
  for (const part of [
    /^Checkpoint .*\/i1\/checkpoint\n├── Container: i1\n/,
    /├── Process tree\n│   └── \[1\]  sh/,
    /\n│       ├── \[\d+\]  sleep/,
    /\[REG 3\]  \/data\/a\.txt/,
    /├── Memory \(pages in the checkpoint: [\d.]+ KiB/,
    /\[1\]  sh  [\d.]+ KiB \(\d+ pages\) of [\d.]+ MiB mapped in \d+ VMAs/,
    /├── CRIU dump statistics\n│   ├── Freezing time: [\d.]+(µs|ms|s)\n│   ├── Frozen time: /,
    /│   ├── Pages written: \d+\n/,
    /└── Mounts\n/,
    /\/proc\n +│   ├── Type: proc/,
  ]) {
    t.regex(tree.stdout, part);
  }
  t.false(tree.stdout.includes('CRIU restore statistics'), 'not restored yet');

  t.is((await box.cli(['restore', '-d', 'i1'])).exitCode, 0);
  const json = await box.cli(['inspect', '--format', 'json', 'i1']);
  t.is(json.exitCode, 0, json.stderr);
  const inspection = JSON.parse(json.stdout) as CheckpointInspection;
  t.is(inspection.processTree!.comm, 'sh');
  t.true(inspection.processTree!.children.some((c) => c.comm === 'sleep'));
  t.true(inspection.files[0]!.files.some((f) => f.fd === 3 && f.path === '/data/a.txt'));
  const pages = inspection.memory.reduce((sum, m) => sum + m.pagesPresent, 0);
  t.is(pages, inspection.dumpStatistics!.pages_written, 'the present pages are the pages CRIU wrote');
  t.true(inspection.memory.every((m) => m.presentBytes === m.pagesPresent * 4096));
  t.true(inspection.restoreStatistics!.restore_time > 0);
  t.true(inspection.restoreStatistics!.pages_restored! > 0);

  // The image directory itself, and the tree of a directory, say the same.
  const byDir = await box.cli(['inspect', '--format', 'json', inspection.imagePath]);
  t.deepEqual(JSON.parse(byDir.stdout), inspection);
});

serial('inspect --snapshot NAME reads a named snapshot; an unknown one is an error naming the known ones', async (t) => {
  const box = await sandbox(t);
  await start(box, 'n1');
  const named = await box.cli(['checkpoint', '--name', 'warm', '--leave-running', 'n1']);
  t.is(named.exitCode, 0, named.stderr);
  const tree = await box.cli(['inspect', '--snapshot', 'warm', 'n1']);
  t.is(tree.exitCode, 0, tree.stderr);
  t.true(tree.stdout.startsWith(`Checkpoint ${path.join(box.checkpointRoot, 'n1', 'snapshots', 'warm', 'images')}\n`));
  t.regex(tree.stdout, /\[1\]  sh/);
  t.regex(tree.stdout, /Left running: yes/);
  const unknown = await box.cli(['inspect', '--snapshot', 'cold', 'n1']);
  t.is(unknown.exitCode, 1);
  t.regex(unknown.stderr, /no snapshot "cold"[\s\S]*warm/);
  const never = await box.cli(['inspect', 'n1']);
  t.is(never.exitCode, 1, 'a named snapshot is not the last checkpoint');
  t.regex(never.stderr, /never checkpointed/);
});
