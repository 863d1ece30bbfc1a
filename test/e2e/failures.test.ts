/**
 * The failure paths, end to end: each gives its clear error, and nothing is lost (a container
 * that cannot be dumped keeps running, unchanged).
 */
import test from 'ava';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { counterAbove, e2e, isAlive, readCounter, sandbox, cliPath, waitFor } from './helpers.js';
import { execa } from 'execa';

const serial = e2e(test);

serial('a wrong CRIU path is a clear error and the container keeps running', async (t) => {
  const box = await sandbox(t);
  const bundle = await box.bundle('c');
  const pid = await box.runtime.run({ id: 'c', bundle });
  const missing = await box.cli(['--criu', '/nonexistent/criu', 'checkpoint', 'c']);
  t.is(missing.exitCode, 1);
  t.regex(missing.stderr, /CRIU was not found \(\/nonexistent\/criu is not an executable file\)/);
  t.regex(missing.stderr, /install-criu\.sh/);
  const notCriu = await box.cli(['checkpoint', 'c'], { env: { RUNTIME_CRIU: '/bin/true' } });
  t.is(notCriu.exitCode, 1);
  t.regex(notCriu.stderr, /CRIU at \/bin\/true could not be used/);
  const tooOld = await box.cli(['checkpoint', 'c'], { env: { RUNTIME_MIN_CRIU_VERSION: '99.0' } });
  t.is(tooOld.exitCode, 1);
  t.regex(tooOld.stderr, /this runtime needs 99\.0\.0 or newer/);
  t.regex(tooOld.stderr, /install-criu\.sh/);
  t.true(isAlive(pid));
  t.is((await box.runtime.state('c')).status, 'running');
});

serial('a corrupt config.json names the file and the field', async (t) => {
  const box = await sandbox(t);
  const bundle = await box.bundle('bad');
  const config = path.join(bundle, 'config.json');
  await writeFile(config, (await readFile(config, 'utf8')).replace('"args": [', '"args": 5, "x": ['));
  const result = await box.cli(['run', '-d', '--bundle', bundle, 'bad']);
  t.is(result.exitCode, 1);
  t.true(result.stderr.includes(`invalid ${config}: process.args`), result.stderr);
  await writeFile(config, '{ "ociVersion": "1.0.2", ');
  const broken = await box.cli(['run', '-d', '--bundle', bundle, 'bad']);
  t.is(broken.exitCode, 1);
  t.true(broken.stderr.includes(config), broken.stderr);
  t.regex(broken.stderr, /JSON/);
  t.deepEqual(await box.runtime.list(), [], 'a failed run leaves no container behind');
});

serial('unknown and invalid ids are clear errors', async (t) => {
  const box = await sandbox(t);
  for (const command of [
    ['checkpoint', 'ghost'],
    ['restore', 'ghost'],
    ['state', 'ghost'],
    ['kill', 'ghost'],
    ['delete', 'ghost'],
  ]) {
    const result = await box.cli(command);
    t.is(result.exitCode, 1, command.join(' '));
    t.regex(result.stderr, command[0] === 'restore' ? /no checkpoint at .*ghost/ : /container "ghost" does not exist/, command.join(' '));
  }
  const invalid = await box.cli(['state', '../etc']);
  t.is(invalid.exitCode, 1);
  t.regex(invalid.stderr, /invalid container id "\.\.\/etc": it contains a path separator/);
});

serial('a missing image directory is a clear error and changes nothing', async (t) => {
  const box = await sandbox(t);
  const bundle = await box.bundle('m');
  await box.runtime.run({ id: 'm', bundle });
  await box.runtime.checkpoint({ id: 'm' });
  const missingDir = path.join(box.dir, 'no-such-images');
  const result = await box.cli(['restore', '-d', '--image-path', missingDir, 'm']);
  t.is(result.exitCode, 1);
  t.regex(result.stderr, new RegExp(`no checkpoint at ${missingDir}: the directory does not exist`));
  const images = (await box.runtime.context.store.load('m')).lastCheckpoint!.imagePath;
  await rm(path.join(images, 'inventory.img'));
  const corrupt = await box.cli(['restore', '-d', 'm']);
  t.regex(corrupt.stderr, /it holds no CRIU images \(inventory\.img is missing\)/);
  t.is((await box.runtime.state('m')).status, 'checkpointed');
});

serial('a container that cannot be dumped stays running with its state unchanged', async (t) => {
  const box = await sandbox(t);
  // An open, unlinked 4 MiB file is a ghost file over CRIU's 1 MiB ghost limit: the dump fails.
  const bundle = await box.bundle('ghost', [
    'sh',
    '-c',
    'dd if=/dev/zero of=/tmp/big bs=1M count=4 2>/dev/null; exec 3</tmp/big; rm /tmp/big; i=0; while true; do i=$((i+1)); echo $i >/tmp/counter; sleep 0.2; done',
  ]);
  const pid = await box.runtime.run({ id: 'g', bundle });
  await counterAbove(bundle, 1);
  const before = await box.runtime.context.store.load('g');
  const result = await box.cli(['checkpoint', 'g']);
  t.is(result.exitCode, 1);
  t.regex(result.stderr, /CRIU DUMP failed/);
  t.regex(result.stderr, /log: .*dump\.log/);
  t.regex(result.stderr, /Error \(criu\//, 'the last error lines of the CRIU log are shown');
  t.true(isAlive(pid), 'the container still runs');
  const after = await box.runtime.context.store.load('g');
  t.deepEqual(after, before, 'the state is unchanged');
  const counter = (await readCounter(bundle))!;
  t.true((await counterAbove(bundle, counter)) > counter, 'and it is not frozen');
});

serial('without root the commands refuse clearly', async (t) => {
  const box = await sandbox(t);
  await chmod(box.dir, 0o755);
  // A running container with a live monitor: the native front cannot reach its control socket
  // (the container's directory is root's alone) and the Node CLI refuses.
  await box.runtime.run({ id: 'x', bundle: await box.bundle('x') });
  for (const command of [
    ['checkpoint', 'x'],
    ['restore', 'x'],
    ['reset', 'x'],
    ['run', '--bundle', box.dir, 'y'],
  ]) {
    const result = await execa('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', cliPath, ...command], {
      reject: false,
      env: { RUNTIME_ROOT: path.join(box.dir, 'state') },
    });
    t.is(result.exitCode, 1, command.join(' '));
    t.regex(String(result.stderr), /needs root \(effective uid 0\); running as uid 65534/, command.join(' '));
    t.regex(String(result.stderr), /run it again as root/);
  }
});

serial("a bundle's cgroupsPath never reaches a host process: the root is refused, a populated cgroup too, and .. stays below the root", async (t) => {
  const box = await sandbox(t);
  const bundle = await box.bundle('cg');
  const config = path.join(bundle, 'config.json');
  const spec = JSON.parse(await readFile(config, 'utf8')) as { linux: Record<string, unknown> };
  const withCgroupsPath = async (cgroupsPath: string) => {
    spec.linux.cgroupsPath = cgroupsPath;
    await writeFile(config, JSON.stringify(spec));
  };

  // An unrelated host process in a cgroup below the one the bundle names.
  const name = `runtime-e2e-${process.pid}`;
  const other = path.join('/sys/fs/cgroup/pids', name, 'other');
  await mkdir(other, { recursive: true });
  const sleeper = execa('sleep', ['300']);
  t.teardown(async () => {
    sleeper.kill('SIGKILL');
    await sleeper.catch(() => undefined);
    await rm(other).catch(() => undefined);
    await rm(path.dirname(other)).catch(() => undefined);
  });
  await writeFile(path.join(other, 'cgroup.procs'), String(sleeper.pid));

  await withCgroupsPath(`/${name}`);
  const populated = await box.cli(['run', '-d', '--bundle', bundle, 'cg']);
  t.is(populated.exitCode, 1);
  t.regex(populated.stderr, new RegExp(`cgroup /${name} already holds 1 process\\(es\\) \\(${sleeper.pid}\\) that are not the container's`));
  t.true(isAlive(sleeper.pid!), 'the host process lives');
  t.is((await box.cli(['state', 'cg'])).exitCode, 1, 'nothing was recorded');

  for (const root of ['/', '/../..']) {
    await withCgroupsPath(root);
    const refused = await box.cli(['run', '-d', '--bundle', bundle, 'cg']);
    t.is(refused.exitCode, 1, root);
    t.regex(refused.stderr, /is the root of the cgroup hierarchies, where every process of the host is/);
  }

  // ".." climbs no higher than the root: the container's cgroup is /<name>-own, below the root.
  await withCgroupsPath(`/../../../${name}-own`);
  const pid = await box.runtime.run({ id: 'cg', bundle });
  t.is((await readFile(`/proc/${pid}/cgroup`, 'utf8')).match(/:pids:(.*)/)?.[1], `/${name}-own`);
  await box.runtime.delete('cg', { force: true });
  t.true(isAlive(sleeper.pid!), 'the host process still lives');
});

serial('delete -f removes a container whose state file is unreadable, stopping the processes of the cgroup it still names', async (t) => {
  const box = await sandbox(t);
  const bundle = await box.bundle('broken');
  const pid = await box.runtime.run({ id: 'broken', bundle });
  await box.runtime.checkpoint({ id: 'broken', leaveRunning: true });
  const stateFile = path.join(box.stateRoot, 'broken', 'state.json');
  const record = JSON.parse(await readFile(stateFile, 'utf8')) as Record<string, unknown>;
  // Valid JSON the record's schema refuses: its status is unknown, its cgroup still named.
  await writeFile(stateFile, JSON.stringify({ ...record, status: 'exploded' }));
  const state = await box.cli(['state', 'broken']);
  t.is(state.exitCode, 1);
  t.regex(state.stderr, /state file .* is unreadable/);
  t.regex(state.stderr, /runtime delete -f <id>/);
  const plain = await box.cli(['delete', 'broken']);
  t.is(plain.exitCode, 1, 'without -f the unreadable state is an error, as before');

  const forced = await box.cli(['delete', '-f', 'broken']);
  t.is(forced.exitCode, 0, forced.stderr);
  await waitFor('the init to be gone', async () => (isAlive(pid) ? undefined : true));
  t.is((await box.cli(['list', '-q'])).stdout, '');
  t.false(existsSync(path.join(box.stateRoot, 'broken')), 'its state directory is gone');
  t.false(existsSync(path.join(box.checkpointRoot, 'broken')), 'and its checkpoints');
  // The id can be used again.
  await box.runtime.run({ id: 'broken', bundle });
  t.is((await box.runtime.state('broken')).status, 'running');
});

serial('a restore under a new id that CRIU fails leaves no cgroup and no state for that id', async (t) => {
  const box = await sandbox(t);
  const bundle = await box.bundle('n');
  await box.runtime.run({ id: 'n', bundle });
  const images = path.join(box.dir, 'images-n');
  await mkdir(images, { mode: 0o700 });
  await box.runtime.checkpoint({ id: 'n', imagePath: images, leaveRunning: true });
  // CRIU starts (in the new container's cgroup) and fails at once: the process tree is missing.
  // The digests go too (as in a checkpoint of an older runtime): else the runtime refuses first.
  await rm(path.join(images, 'pstree.img'));
  await rm(path.join(images, 'checksums.sha256'));
  const failed = await box.cli(['restore', '-d', '--image-path', images, '--bundle', bundle, 'n2']);
  t.is(failed.exitCode, 1);
  t.regex(failed.stderr, /CRIU RESTORE failed/);
  const parent = box.runtime.context.config.cgroupParent;
  const hierarchies = await box.runtime.context.cgroups.hierarchies();
  t.true(hierarchies.length > 0);
  for (const hierarchy of hierarchies) {
    t.false(existsSync(path.join(hierarchy.mountPoint, parent, 'n2')), `no cgroup n2 in ${hierarchy.mountPoint}`);
  }
  t.deepEqual((await box.cli(['list', '-q'])).stdout.split('\n'), ['n']);
});
