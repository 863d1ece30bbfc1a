/**
 * Interrupted and concurrent operations, end to end with real runc and CRIU: the checkpoint's
 * command killed (SIGKILL) or interrupted (SIGINT) while CRIU dumps, CRIU itself killed, a monitor
 * killed while it restores and while the container runs, and many commands on one container at
 * once. After each, the container is running or checkpointed with its newest good images,
 * nothing stays frozen, no CRIU is left, and the next command carries on from there.
 */
import test, { type ExecutionContext } from 'ava';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, symlink } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa, type ResultPromise } from 'execa';
import { cliPath, counterAbove, e2e, isAlive, readCounter, sandbox, waitFor, type Sandbox } from './helpers.js';
import { memhogBundle, settledCounts, withoutDisk } from './reset-helpers.js';
import { verifyMemory, waitReady } from '../../bench/workload.js';

const serial = e2e(test);
const MIB = 256;

/** The CLI with the sandbox's roots, not awaited: the test interrupts it. */
function startCli(box: Sandbox, args: readonly string[]): ResultPromise {
  return execa(cliPath, args, {
    reject: false,
    env: {
      RUNTIME_ROOT: box.stateRoot,
      RUNTIME_CHECKPOINT_ROOT: box.checkpointRoot,
      RUNTIME_CGROUP_PARENT: box.runtime.config.cgroupParent,
      RUNTIME_LOG_LEVEL: 'warn',
    },
    stdin: 'ignore',
  });
}

/** The note of the operation at work on the container, once it says what `until` asks. */
async function noteOnce(box: Sandbox, id: string, until: (note: Record<string, any>) => boolean): Promise<Record<string, any>> {
  const file = path.join(box.runtime.context.store.paths(id).dir, 'operation.json');
  const deadline = Date.now() + 30_000;
  for (;;) {
    const note = await readFile(file, 'utf8').then(
      (text) => JSON.parse(text) as Record<string, any>,
      () => undefined,
    );
    if (note && until(note)) return note;
    if (Date.now() > deadline) throw new Error(`no operation note of ${id} as expected`);
    await sleep(2);
  }
}

/**
 * Waits until CRIU holds the container's init (ptrace): it is dumping it. (CRIU freezes the
 * cgroup only until it has seized every task, then thaws it; the tasks stay stopped under it.)
 */
async function seizedByCriu(pid: number, criuPid: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
    if (Number(/^TracerPid:\s+(\d+)/m.exec(status)?.[1]) === criuPid) return;
    if (Date.now() > deadline) throw new Error(`CRIU (pid ${criuPid}) never seized pid ${pid}`);
    await sleep(1);
  }
}

async function freezerState(box: Sandbox, id: string): Promise<string> {
  const record = await box.runtime.context.store.load(id);
  return (await readFile(path.join('/sys/fs/cgroup/freezer', record.cgroupPath, 'freezer.state'), 'utf8')).trim();
}

/** Pids of CRIU processes started for this sandbox's images (their cwd or arguments name it). */
async function criuProcesses(box: Sandbox): Promise<number[]> {
  const { stdout } = await execa('pgrep', ['-x', 'criu'], { reject: false });
  const pids = String(stdout).split('\n').filter(Boolean).map(Number);
  const ours: number[] = [];
  for (const pid of pids) {
    const fds = await execa('ls', ['-l', `/proc/${pid}/fd`], { reject: false });
    if (String(fds.stdout).includes(box.dir)) ours.push(pid);
  }
  return ours;
}

/** A counter container with a snapshot "base", reset once (its monitor keeps standbys), and its settled counts. */
async function resetOnce(t: ExecutionContext) {
  const box = await sandbox(t);
  const bundle = await box.bundle('c');
  await box.runtime.run({ id: 'c', bundle });
  await counterAbove(bundle, 1);
  t.is((await box.cli(['checkpoint', '--leave-running', '--name', 'base', 'c'])).exitCode, 0);
  t.is((await box.cli(['reset', 'c'])).exitCode, 0);
  return { box, bundle, settled: await settledCounts(box, ['c']) };
}

async function monitorPid(box: Sandbox, id: string): Promise<number> {
  const record = await box.runtime.context.store.load(id);
  if (record.status !== 'running' || !record.monitor) throw new Error(`${id} has no monitor recorded`);
  return record.monitor.pid;
}

async function memhog(box: Sandbox, id: string): Promise<{ bundle: string; pid: number }> {
  const bundle = await memhogBundle(box, MIB);
  const pid = await box.runtime.run({ id, bundle });
  await waitReady(bundle, MIB);
  return { bundle, pid };
}

async function restoredPid(box: Sandbox, id: string): Promise<number> {
  const restored = await box.cli(['restore', '-d', id]);
  if (restored.exitCode !== 0) throw new Error(`restore of ${id} failed: ${restored.stderr}`);
  const record = await box.runtime.context.store.load(id);
  if (record.status !== 'running') throw new Error(`${id} is ${record.status} after its restore`);
  return record.init.pid;
}

serial(
  "the checkpoint's command killed (SIGKILL) while CRIU dumps: CRIU gives up at its next notification, the container runs on unchanged, and the next checkpoint works",
  async (t) => {
    const box = await sandbox(t);
    const { bundle, pid } = await memhog(box, 'hog');
    const command = startCli(box, ['checkpoint', 'hog']);
    const note = await noteOnce(box, 'hog', (n) => n.criu !== undefined);
    await seizedByCriu(pid, note.criu.pid);
    command.kill('SIGKILL');
    await command;
    await waitFor('the orphaned CRIU to end', async () => (isAlive(note.criu.pid) ? undefined : true), 60_000);

    // CRIU could not tell its caller the dump was done (its post-dump notification): it resumed the tree.
    t.true(isAlive(pid));
    t.regex(await readFile(`/proc/${pid}/status`, 'utf8'), /^TracerPid:\s+0$/m);
    t.is(await freezerState(box, 'hog'), 'THAWED');
    await verifyMemory(bundle, pid, MIB);
    t.deepEqual(await criuProcesses(box), []);
    // The next command puts away what the dead one left, and checkpoints.
    t.is((await box.cli(['checkpoint', 'hog'])).exitCode, 0);
    t.false(existsSync(path.join(box.checkpointRoot, 'hog', 'checkpoint.new')));
    t.false(existsSync(path.join(box.runtime.context.store.paths('hog').dir, 'operation.json')));
    await verifyMemory(bundle, await restoredPid(box, 'hog'), MIB);
  },
);

serial("the checkpoint's command interrupted (SIGINT) while CRIU dumps finishes the checkpoint, then exits 130", async (t) => {
  const box = await sandbox(t);
  const { bundle, pid } = await memhog(box, 'hog');
  const command = startCli(box, ['checkpoint', 'hog']);
  const note = await noteOnce(box, 'hog', (n) => n.criu !== undefined);
  await seizedByCriu(pid, note.criu.pid);
  command.kill('SIGINT');
  const result = await command;

  t.is(result.exitCode, 130, String(result.stderr));
  t.regex(String(result.stderr), /SIGINT received; the checkpoint of hog finishes first/);
  t.regex(String(result.stderr), /checkpointed hog/);
  t.is((await box.runtime.state('hog')).status, 'checkpointed');
  await verifyMemory(bundle, await restoredPid(box, 'hog'), MIB);
});

serial('CRIU killed while it dumps: the checkpoint fails, the container is thawed and runs on, the last good checkpoint stays', async (t) => {
  const box = await sandbox(t);
  const { bundle, pid } = await memhog(box, 'hog');
  t.is((await box.cli(['checkpoint', '--leave-running', 'hog'])).exitCode, 0);
  const good = await readFile(path.join(box.checkpointRoot, 'hog', 'checkpoint', 'inventory.img'));
  const command = startCli(box, ['checkpoint', 'hog']);
  const note = await noteOnce(box, 'hog', (n) => n.criu !== undefined);
  await seizedByCriu(pid, note.criu.pid);
  process.kill(note.criu.pid, 'SIGKILL');
  const result = await command;

  t.is(result.exitCode, 1);
  t.regex(String(result.stderr), /criu|CRIU/);
  t.is(await freezerState(box, 'hog'), 'THAWED');
  t.deepEqual(await readFile(path.join(box.checkpointRoot, 'hog', 'checkpoint', 'inventory.img')), good);
  t.false(existsSync(path.join(box.checkpointRoot, 'hog', 'checkpoint.new')));
  t.deepEqual(await criuProcesses(box), []);
  // CRIU may have died with its code inside the tree (which then ends) or before: the container
  // runs on with its memory, or is recorded stopped and its last checkpoint restores it.
  const state = await box.runtime.state('hog');
  const now = state.status === 'running' && isAlive(state.pid!) ? state.pid! : await restoredPid(box, 'hog');
  t.log(`after CRIU was killed the container ${now === pid ? 'ran on' : 'had ended and was restored'}`);
  await verifyMemory(bundle, now, MIB);
});

serial('the monitor killed while it restores: the restore fails, the container stays checkpointed, and the next restore works', async (t) => {
  const box = await sandbox(t);
  const { bundle } = await memhog(box, 'hog');
  t.is((await box.cli(['checkpoint', 'hog'])).exitCode, 0);
  const command = startCli(box, ['restore', '-d', 'hog']);
  const note = await noteOnce(box, 'hog', (n) => n.kind === 'restore');
  process.kill(note.holder.pid, 'SIGKILL');
  const result = await command;

  t.is(result.exitCode, 1);
  t.regex(String(result.stderr), /monitor of hog ended without reporting/);
  await verifyMemory(bundle, await restoredPid(box, 'hog'), MIB);
  t.is((await box.runtime.context.store.load('hog')).restoreCount, 1);
  const mounts = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').filter((line) => line.includes(box.stateRoot));
  t.deepEqual(mounts, [], 'no restore root is left mounted');
  t.deepEqual(await criuProcesses(box), []);
});

serial(
  'a dead monitor: checkpoint and restore give the container a new one; once its init has ended too, restore brings back the last checkpoint',
  async (t) => {
    const box = await sandbox(t);
    // A counter that writes nothing to its stdout, whose reader was the monitor (a write there
    // would end it with SIGPIPE once the monitor is gone).
    const bundle = await box.bundle('c', [
      'sh',
      '-c',
      'i=0; while true; do i=$((i+1)); echo $i >/tmp/counter.new; mv /tmp/counter.new /tmp/counter; sleep 0.2; done',
    ]);
    await box.runtime.run({ id: 'c', bundle });
    await counterAbove(bundle, 2);
    process.kill(await monitorPid(box, 'c'), 'SIGKILL');

    // The init runs on, parentless: it is dumped, and restored under a new monitor.
    t.is((await box.cli(['checkpoint', 'c'])).exitCode, 0);
    const dumped = (await readCounter(bundle))!;
    const first = await restoredPid(box, 'c');
    t.regex((await readFile(`/proc/${await monitorPid(box, 'c')}/cmdline`, 'utf8')).replace(/\0/g, ' '), /monitor/);
    await counterAbove(bundle, dumped + 1);

    // Now the monitor dies, then the init: the record still says running.
    process.kill(await monitorPid(box, 'c'), 'SIGKILL');
    process.kill(first, 'SIGKILL');
    await waitFor('the init to end', async () => (isAlive(first) ? undefined : true));
    const second = await restoredPid(box, 'c');
    t.not(second, first);
    await counterAbove(bundle, dumped + 1);
    t.is((await box.runtime.context.store.load('c')).restoreCount, 2);
  },
);

serial('many commands on one container at once serialize or say it is busy; the container runs on and nothing leaks', async (t) => {
  const { box, bundle, settled } = await resetOnce(t);

  const commands = [
    ['checkpoint', '--leave-running', 'c'],
    ['reset', 'c'],
    ['reset', 'c'],
    ['checkpoint', '--leave-running', '--name', 'second', 'c'],
    ['kill', 'c', 'SIGCONT'],
    ['delete', 'c'],
    ['restore', '-d', 'c'],
    ['reset', '--standbys', '0', 'c'],
    ['reset', 'c'],
  ];
  const results = await Promise.all(commands.map((args) => box.cli(args)));
  // The standbys are as the last reset asked; one more puts them back to the default, from the
  // snapshot the counts were first taken with: each instance holds the processes its snapshot
  // caught (the counter's shell, and its `sleep` unless the dump fell between two), and "second"
  // may have caught one more or one fewer than "base".
  t.is((await box.cli(['reset', 'c', 'base'])).exitCode, 0);

  for (const [index, args] of commands.entries()) {
    const result = results[index]!;
    const expected = args[0] === 'delete' ? /is running/ : args[0] === 'restore' ? /it is running/ : undefined;
    if (expected) {
      t.is(result.exitCode, 1, args.join(' '));
      t.regex(result.stderr, expected, args.join(' '));
    } else {
      t.is(result.exitCode, 0, `${args.join(' ')}: ${result.stderr}`);
    }
  }
  const state = await box.runtime.state('c');
  t.is(state.status, 'running');
  const now = (await readCounter(bundle))!;
  await counterAbove(bundle, now);
  t.deepEqual((await box.runtime.snapshots('c')).map((s) => s.name).sort(), ['base', 'second']);
  // The standbys the monitor keeps are restored again; then everything is as before.
  t.deepEqual(withoutDisk(await settledCounts(box, ['c'], settled)), withoutDisk(settled));
});

serial('two resets at once with no monitor alive start one monitor: the second asks the monitor the first started', async (t) => {
  const box = await sandbox(t);
  const id = `two-resets-${process.pid}`;
  const bundle = await box.bundle(id);
  await box.runtime.run({ id: id, bundle });
  await counterAbove(bundle, 1);
  t.is((await box.cli(['checkpoint', '--name', 'base', id])).exitCode, 0);

  const results = await Promise.all([box.cli(['reset', id]), box.cli(['reset', id])]);

  t.deepEqual(
    results.map((r) => r.exitCode),
    [0, 0],
    results.map((r) => r.stderr).join('\n'),
  );
  // The id is this test's alone: monitors of other test files run meanwhile.
  const monitors = String((await execa('pgrep', ['-f', '-x', `runtime monitor ${id}`], { reject: false })).stdout)
    .split('\n')
    .filter(Boolean);
  t.is(monitors.length, 1, `monitors: ${monitors.join(', ')}`);
  const record = await box.runtime.context.store.load(id);
  t.is(record.status, 'running');
  t.is(record.restoreCount, 2);
  await counterAbove(bundle, (await readCounter(bundle))!);
});

serial(
  'a state root and a bundle reached through symbolic links: delete never removes through a mount left below the state, and resets stack no binds',
  async (t) => {
    const box = await sandbox(t);
    const link = path.join(box.dir, 'state-link');
    await symlink(box.stateRoot, link);
    const bundle = await box.bundle('b');
    const bundleLink = path.join(box.dir, 'bundle-link');
    await symlink(bundle, bundleLink);
    const viaLink = async (args: readonly string[]): Promise<void> => {
      const result = await box.cli(args, { env: { RUNTIME_ROOT: link } });
      t.is(result.exitCode, 0, `${args.join(' ')}: ${result.stderr}`);
    };
    await viaLink(['run', '-d', '--bundle', bundleLink, 'c']);
    await counterAbove(bundle, 1);
    await viaLink(['checkpoint', '--leave-running', '--name', 'base', 'c']);
    for (let i = 0; i < 3; i++) await viaLink(['reset', 'c']);
    const rootfs = path.join(bundle, 'rootfs');
    const onRootfs = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').filter((line) => line.split(' ')[4] === rootfs);
    t.is(onRootfs.length, 1, 'one overlay on the rootfs, however many resets');

    // What an interrupted restore could leave: the bundle's rootfs bound below the state directory.
    const criuRoot = path.join(link, 'c', 'criu-root');
    await mkdir(criuRoot, { recursive: true });
    await execa('mount', ['--bind', rootfs, criuRoot]);
    await viaLink(['delete', '-f', 'c']);

    t.true(existsSync(path.join(rootfs, 'bin', 'busybox')), "the bundle's files are all there");
    t.false((await readFile('/proc/self/mountinfo', 'utf8')).includes(box.stateRoot));
  },
);

serial(
  "a snapshot's command killed while it copies the rootfs: the dump is given up, the container runs on, no copy goes on, and the next snapshot works",
  async (t) => {
    const box = await sandbox(t);
    const bundle = await box.bundle('c');
    // A rootfs that takes a while to copy.
    await execa('dd', ['if=/dev/urandom', `of=${path.join(bundle, 'rootfs', 'big')}`, 'bs=1M', 'count=400', 'status=none']);
    const pid = await box.runtime.run({ id: 'c', bundle });
    await counterAbove(bundle, 1);
    const command = startCli(box, ['checkpoint', '--leave-running', '--name', 'base', 'c']);
    const note = await noteOnce(box, 'c', (n) => n.criu !== undefined);
    const copy = path.join(box.checkpointRoot, 'c', 'snapshots', 'base.new', 'rootfs');
    await waitFor('the rootfs copy to start', async () => (existsSync(path.join(copy, 'bin')) ? true : undefined));
    command.kill('SIGKILL');
    await command;
    await waitFor('CRIU to end', async () => (isAlive(note.criu.pid) ? undefined : true), 60_000);

    t.true(isAlive(pid));
    t.regex(await readFile(`/proc/${pid}/status`, 'utf8'), /^TracerPid:\s+0$/m);
    await counterAbove(bundle, (await readCounter(bundle))!);
    const copying = await execa('pgrep', ['-f', copy], { reject: false });
    t.is(String(copying.stdout), '', 'no cp is left copying');
    t.deepEqual(await box.runtime.snapshots('c'), []);
    t.is((await box.cli(['checkpoint', '--leave-running', '--name', 'base', 'c'])).exitCode, 0);
    t.false(existsSync(path.dirname(copy)));
    t.is((await box.cli(['reset', 'c'])).exitCode, 0);
  },
);

serial('the monitor killed while it resets: the reset goes on through a new monitor, and nothing of the dead one is left', async (t) => {
  const { box, bundle, settled } = await resetOnce(t);

  const monitor = await monitorPid(box, 'c');
  // Without standbys, the reset restores a new instance while the caller waits: the monitor is
  // killed once that instance's directory appears.
  const instances = path.join(box.runtime.context.store.paths('c').dir, 'instances');
  const before = new Set(await readdir(instances));
  const command = startCli(box, ['reset', '--standbys', '0', 'c']);
  await waitFor('the new instance', async () => ((await readdir(instances)).some((n) => !before.has(n)) ? true : undefined));
  process.kill(monitor, 'SIGKILL');
  const result = await command;
  // The command saw its monitor end without an answer, and reset through a new one.
  t.is(result.exitCode, 0, String(result.stderr));

  const again = await box.cli(['reset', 'c']);
  t.is(again.exitCode, 0, again.stderr);
  t.not(await monitorPid(box, 'c'), monitor);
  await counterAbove(bundle, (await readCounter(bundle))!);
  // The new monitor's standbys are restored again; then everything is as before.
  t.deepEqual(withoutDisk(await settledCounts(box, ['c'], settled)), withoutDisk(settled));
});

serial("the checkpoint's command killed before CRIU starts: the container runs on, and the next checkpoint works", async (t) => {
  const box = await sandbox(t);
  const { bundle, pid } = await memhog(box, 'hog');
  const command = startCli(box, ['checkpoint', 'hog']);
  await noteOnce(box, 'hog', (n) => n.kind === 'checkpoint');
  command.kill('SIGKILL');
  await command;

  t.true(isAlive(pid));
  t.is((await box.runtime.state('hog')).status, 'running');
  t.is((await box.cli(['checkpoint', 'hog'])).exitCode, 0);
  await verifyMemory(bundle, await restoredPid(box, 'hog'), MIB);
});

serial("the checkpoint's command killed after CRIU finished the dump: the next command records it, and restore brings it back", async (t) => {
  const box = await sandbox(t);
  const { bundle, pid } = await memhog(box, 'hog');
  const command = startCli(box, ['checkpoint', 'hog']);
  const finished = path.join(box.checkpointRoot, 'hog', 'checkpoint.new', 'stats-dump');
  await waitFor('CRIU to finish the dump', async () => (existsSync(finished) ? true : undefined), 60_000);
  // The command is still at its work after the dump (the images' digests, the record).
  command.kill('SIGKILL');
  await command;
  t.false(isAlive(pid), 'CRIU ended the tree');
  t.true(existsSync(path.join(box.runtime.context.store.paths('hog').dir, 'operation.json')));

  const restored = await restoredPid(box, 'hog');

  await verifyMemory(bundle, restored, MIB);
  const record = await box.runtime.context.store.load('hog');
  t.is(record.lastCheckpoint?.imagePath, path.join(box.checkpointRoot, 'hog', 'checkpoint'));
  t.false(existsSync(path.join(box.checkpointRoot, 'hog', 'checkpoint.new')));
  t.is((await execa('sha256sum', ['-c', '--quiet', 'checksums.sha256'], { cwd: record.lastCheckpoint!.imagePath, reject: false })).exitCode, 0);
});

serial('a foreground restore killed while CRIU restores: the container stays checkpointed, and the next restore works', async (t) => {
  const box = await sandbox(t);
  const { bundle } = await memhog(box, 'hog');
  t.is((await box.cli(['checkpoint', 'hog'])).exitCode, 0);
  const command = startCli(box, ['restore', 'hog']);
  await noteOnce(box, 'hog', (n) => n.kind === 'restore');
  command.kill('SIGKILL');
  await command;

  await verifyMemory(bundle, await restoredPid(box, 'hog'), MIB);
  t.is((await box.runtime.context.store.load('hog')).restoreCount, 1);
  t.deepEqual(await criuProcesses(box), []);
});

serial("the reset's command killed (SIGKILL, SIGINT) while the monitor resets: the monitor finishes the reset, and the next one works", async (t) => {
  const { box, bundle, settled } = await resetOnce(t);
  const instances = path.join(box.runtime.context.store.paths('c').dir, 'instances');
  for (const signal of ['SIGKILL', 'SIGINT'] as const) {
    const before = new Set(await readdir(instances));
    const restores = (await box.runtime.context.store.load('c')).restoreCount;
    const command = startCli(box, ['reset', '--standbys', '0', 'c']);
    await waitFor('the new instance', async () => ((await readdir(instances)).some((n) => !before.has(n)) ? true : undefined));
    command.kill(signal);
    await command;
    await waitFor(`the reset the command was killed in (${signal}) to be recorded`, async () =>
      (await box.runtime.context.store.load('c')).restoreCount > restores ? true : undefined,
    );
    t.is((await box.runtime.state('c')).status, 'running', signal);
  }
  t.is((await box.cli(['reset', 'c'])).exitCode, 0);
  await counterAbove(bundle, (await readCounter(bundle))!);
  t.deepEqual(withoutDisk(await settledCounts(box, ['c'], settled)), withoutDisk(settled));
});

serial(
  'CRIU killed while it restores: the restore fails, nothing of it is left, the container stays checkpointed and the next restore works',
  async (t) => {
    const box = await sandbox(t);
    const { bundle } = await memhog(box, 'hog');
    t.is((await box.cli(['checkpoint', 'hog'])).exitCode, 0);
    const cgroupPath = (await box.runtime.context.store.load('hog')).cgroupPath;
    const command = startCli(box, ['restore', '-d', 'hog']);
    // CRIU is put into the container's cgroup before it restores.
    const criu = await waitFor('CRIU in the container cgroup', async () => {
      for (const pid of await box.runtime.context.cgroups.occupants(cgroupPath)) {
        if ((await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '')).trim() === 'criu') return pid;
      }
      return undefined;
    });
    process.kill(criu, 'SIGKILL');
    const result = await command;

    t.is(result.exitCode, 1, String(result.stdout));
    t.is((await box.runtime.state('hog')).status, 'checkpointed');
    await waitFor('the failed restore to be cleared', async () =>
      (await box.runtime.context.cgroups.occupants(cgroupPath)).length === 0 ? true : undefined,
    );
    // Nor the restore root, nor the cgroup yard CRIU mounts in the images directory as it restores.
    const mounts = (await readFile('/proc/self/mountinfo', 'utf8'))
      .split('\n')
      .filter((line) => line.includes(box.stateRoot) || line.includes(box.checkpointRoot));
    t.deepEqual(mounts, []);
    await verifyMemory(bundle, await restoredPid(box, 'hog'), MIB);
  },
);
