/**
 * Containers with a user namespace of their own (uid/gid mappings), as PostgreSQL needs here:
 * root on these machines lacks CAP_SYS_RESOURCE, so CRIU can dump a process of another uid only
 * inside a namespace root owns. The init runs as uid 1000 in the container (101000 on the host),
 * and keeps its state in memory: a token drawn at start and a counter, both written to
 * /tmp/counter. A restore must bring back the same token (the same process, not a new one) and
 * the counter where it was, in the same namespace mapping, under the runtime's monitor:
 * checkpoint and restore, resets served cold, by a standby, without one, and with lazy pages.
 */
import test, { type ExecutionContext } from 'ava';
import { chmod, readFile, readlink, stat } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { childrenOf, e2e, isAlive, parentOf, sandbox, waitFor, type Sandbox } from './helpers.js';
import { DEFAULT_STANDBYS } from '../../src/runtime/reset.js';

const serial = e2e(test);

/** Container ids 0..65535 are host ids 100000..165535. */
const HOST_ROOT = 100_000;
const MAPPING = `0 ${HOST_ROOT} 65536`;
const APP_UID = 1000;

/** A busybox bundle in its own user namespace, whose init runs as uid/gid 1000 inside it. */
async function usernsBundle(box: Sandbox, name: string): Promise<string> {
  // The counter loop keeps a token (two $RANDOMs drawn once) and a counter in the shell's memory.
  // Written aside and renamed into place: a snapshot frozen between a truncation and the write
  // would otherwise hold an empty file (it failed CI once).
  const loop =
    'sleep 1000000 & r=$RANDOM$RANDOM; i=0; while true; do i=$((i+1)); echo "$r $i" >/tmp/counter.new && mv /tmp/counter.new /tmp/counter; sleep 0.2; done';
  const bundle = await box.bundle(name, ['sh', '-c', loop], (spec) => {
    spec.linux.namespaces.push({ type: 'user' });
    spec.linux.uidMappings = [{ containerID: 0, hostID: HOST_ROOT, size: 65536 }];
    spec.linux.gidMappings = [{ containerID: 0, hostID: HOST_ROOT, size: 65536 }];
    spec.process.user = { uid: APP_UID, gid: APP_UID };
  });
  // The rootfs belongs to the container's root, and its /tmp is writable by everyone, as usual.
  await execa('chown', ['-R', `${HOST_ROOT}:${HOST_ROOT}`, path.join(bundle, 'rootfs')]);
  await chmod(path.join(bundle, 'rootfs/tmp'), 0o1777);
  return bundle;
}

/** A sandbox whose directory the container's root can pass through (mkdtemp makes it 0700). */
async function usernsSandbox(t: ExecutionContext): Promise<Sandbox> {
  const box = await sandbox(t);
  await chmod(box.dir, 0o711);
  return box;
}

interface Counter {
  readonly token: string;
  readonly value: number;
}

function parseCounter(text: string): Counter | undefined {
  const match = /^(\d+) (\d+)$/.exec(text.trim());
  return match ? { token: match[1]!, value: Number(match[2]) } : undefined;
}

/** The counter as the container sees it (its /tmp/counter, through the init's root). */
async function counterOf(pid: number): Promise<Counter | undefined> {
  return parseCounter(await readFile(`/proc/${pid}/root/tmp/counter`, 'utf8').catch(() => ''));
}

/** Waits until the container's counter has moved past `above`. */
function counterPast(pid: number, above: number): Promise<Counter> {
  return waitFor(`the counter of ${pid} to pass ${above}`, async () => {
    const counter = await counterOf(pid);
    return counter && counter.value > above ? counter : undefined;
  });
}

/** Checks the init runs in the mapped namespace, as uid 1000 there, under the runtime's monitor. */
async function expectNamespaced(t: ExecutionContext, pid: number, id: string, what: string): Promise<void> {
  t.is((await readFile(`/proc/${pid}/uid_map`, 'utf8')).trim().replace(/\s+/g, ' '), MAPPING, `${what}: uid_map`);
  t.is((await readFile(`/proc/${pid}/gid_map`, 'utf8')).trim().replace(/\s+/g, ' '), MAPPING, `${what}: gid_map`);
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const host = String(HOST_ROOT + APP_UID);
  t.deepEqual(/^Uid:\s+(.*)$/m.exec(status)![1]!.split(/\s+/), [host, host, host, host], `${what}: runs as uid ${APP_UID} of the container`);
  t.not(await readlink(`/proc/${pid}/ns/user`), await readlink('/proc/self/ns/user'), `${what}: a user namespace of its own`);
  t.regex((await parentOf(pid)).cmdline, new RegExp(`runtime monitor ${id}$`), `${what}: the runtime's monitor is the parent`);
  // The loop's child came back too, in the same namespace (right after a run, the loop may not
  // have forked it yet, nor between two of them).
  const commandsOfChildren = async () => Promise.all((await childrenOf(pid)).map((child) => readFile(`/proc/${child}/cmdline`, 'utf8').catch(() => '')));
  const sleeping = await waitFor(
    `${what}: the loop's sleep`,
    async () => ((await commandsOfChildren()).some((c) => c.startsWith('sleep\x001000000')) ? true : undefined),
    5_000,
  ).catch(() => false);
  t.true(sleeping, `${what}: children ${(await commandsOfChildren()).join(' | ')}`);
}

/**
 * Right after a restore, the counter carries the snapshot's token and continues from its value:
 * the very process came back, with its memory, not a new one counting from 1.
 */
async function expectContinues(t: ExecutionContext, pid: number, from: Counter, what: string): Promise<void> {
  const now = await waitFor(`the counter of ${pid}`, () => counterOf(pid));
  t.is(now.token, from.token, `${what}: the same process's memory (token)`);
  t.true(now.value >= from.value && now.value <= from.value + 5, `${what}: the counter went on from ${from.value}, it reads ${now.value}`);
  const later = await counterPast(pid, now.value);
  t.is(later.token, from.token, `${what}: and it keeps counting`);
}

/** The monitor's stopped children: standbys restored ahead with leave_stopped. */
async function standbysOf(pid: number): Promise<number[]> {
  const monitor = (await parentOf(pid)).pid;
  const stopped: number[] = [];
  for (const child of await childrenOf(monitor)) {
    if (child === pid) continue;
    const state = /^State:\s+(\w)/m.exec(await readFile(`/proc/${child}/status`, 'utf8').catch(() => ''))?.[1];
    if (state === 'T') stopped.push(child);
  }
  return stopped;
}

/** Waits until the monitor holds all its standbys (DEFAULT_STANDBYS), stopped. */
function allStandbys(pid: number, what: string): Promise<number[]> {
  return waitFor(
    what,
    async () => {
      const standbys = await standbysOf(pid);
      return standbys.length >= DEFAULT_STANDBYS ? standbys : undefined;
    },
    30_000,
  );
}

serial('a user-namespaced init running as uid 1000 checkpoints and restores with its memory and mapping', async (t) => {
  const box = await usernsSandbox(t);
  const bundle = await usernsBundle(box, 'userns');
  const id = 'userns-restore';
  const pid = await box.runtime.run({ id, bundle });
  await expectNamespaced(t, pid, id, 'run');
  await counterPast(pid, 3);

  const { imagePath } = await box.runtime.checkpoint({ id });
  t.false(isAlive(pid), 'the dumped init is gone');
  const frozen = parseCounter(await readFile(path.join(bundle, 'rootfs/tmp/counter'), 'utf8'))!;
  t.is((await box.runtime.state(id)).status, 'checkpointed');
  // Only what CRIU opens from inside the namespace changed: the images directory is searchable
  // by the container's root group, and stays root's.
  const images = await stat(imagePath);
  t.is(images.uid, 0);
  t.is(images.gid, HOST_ROOT);
  t.is(images.mode & 0o777, 0o710);

  const restored = await box.runtime.restore({ id });
  t.not(restored, pid);
  t.is((await box.runtime.state(id)).status, 'running');
  await expectNamespaced(t, restored, id, 'restore');
  await expectContinues(t, restored, frozen, 'restore');
  // Its tmpfs mounts were filled by the runtime from files unpacked beside the images (CRIU's
  // archive holds the namespace's own ids): their owners are the container's root again, as
  // the host sees it, and the container's own ids inside.
  for (const directory of ['dev', 'dev/shm', 'sys/fs/cgroup']) {
    const info = await stat(path.join(`/proc/${restored}/root`, directory));
    t.deepEqual([info.uid, info.gid], [HOST_ROOT, HOST_ROOT], `/${directory} is the container root's`);
  }
  const inside = await execa('nsenter', ['-t', String(restored), '-U', '-m', 'stat', '-c', '%u:%g %a', '/dev/shm']);
  t.is(inside.stdout, '0:0 1777');
});

serial('snapshot and reset a user-namespaced container: cold, three from standbys, without a standby, and with lazy pages', async (t) => {
  t.timeout(180_000);
  const box = await usernsSandbox(t);
  const bundle = await usernsBundle(box, 'userns');
  const id = 'userns-reset';
  let pid = await box.runtime.run({ id, bundle });
  await counterPast(pid, 3);

  const result = await box.runtime.checkpoint({ id, name: 'base', leaveRunning: true });
  t.true(isAlive(pid), 'the snapshot left the container running');
  const snapshotDir = path.dirname(result.imagePath);
  // The snapshot's rootfs layer was copied while the tree was frozen: its counter is the memory's.
  const snapshot = parseCounter(await readFile(path.join(snapshotDir, 'rootfs/tmp/counter'), 'utf8'))!;
  const images = await stat(result.imagePath);
  t.deepEqual(
    [images.uid, images.gid, images.mode & 0o777],
    [0, HOST_ROOT, 0o710],
    "the snapshot's images: root's, searchable by the container's root group",
  );
  t.is((await stat(snapshotDir)).mode & 0o777, 0o700, 'the snapshot itself stays root-only');

  /** Lets the container run past the snapshot, resets it, and checks it is back at the snapshot. */
  const resetAndCheck = async (what: string, options: { readonly standby?: boolean; readonly lazyPages?: boolean } = {}) => {
    const dirty = await counterPast(pid, snapshot.value + 10);
    t.is(dirty.token, snapshot.token);
    const previous = pid;
    pid = await box.runtime.reset({ id, name: 'base', ...options });
    t.not(pid, previous, `${what}: a new instance`);
    await waitFor(`${what}: the old instance to go`, async () => (isAlive(previous) ? undefined : true));
    const state = await box.runtime.state(id);
    t.is(state.status, 'running', what);
    t.is(state.pid, pid, what);
    await expectNamespaced(t, pid, id, what);
    await expectContinues(t, pid, snapshot, what);
    // The overlay's root is the container root's, as in the bundle: it can still write in "/".
    const root = await stat(`/proc/${pid}/root/`);
    t.deepEqual([root.uid, root.gid], [HOST_ROOT, HOST_ROOT], `${what}: "/" belongs to the container's root`);
    const touched = await execa(
      'nsenter',
      ['-t', String(pid), '-U', '-m', '-S', '0', '-G', '0', 'sh', '-c', 'touch /written-by-root && rm /written-by-root'],
      {
        reject: false,
      },
    );
    t.is(touched.exitCode, 0, `${what}: the container's root writes in "/": ${touched.stderr}`);
  };

  // The first reset restores cold (no standby yet); each after it is served by a standby the
  // monitor restored ahead, stopped: the new init is that very process.
  await resetAndCheck('reset 1 (cold)');
  for (let round = 2; round <= 4; round++) {
    const standbys = await allStandbys(pid, `the standbys after reset ${round - 1}`);
    await resetAndCheck(`reset ${round} (standby)`);
    t.true(standbys.includes(pid), `reset ${round}: a standby became the container`);
  }

  const standbys = await allStandbys(pid, 'the standbys before --no-standby');
  await resetAndCheck('reset --no-standby', { standby: false });
  t.false(standbys.includes(pid), '--no-standby restored afresh');
  await waitFor('the unused standbys to go', async () => (standbys.some(isAlive) ? undefined : true));

  // Lazy pages: CRIU opens each task's userfaultfd inside the namespace, which the kernel allows
  // only with vm.unprivileged_userfaultfd = 1. Without it the reset is refused before anything
  // stops; with it (set for this test, and put back after) it restores.
  const sysctl = '/proc/sys/vm/unprivileged_userfaultfd';
  const before = (await readFile(sysctl, 'utf8')).trim();
  t.teardown(() => execa('sysctl', ['-qw', `vm.unprivileged_userfaultfd=${before}`]).then(() => undefined));
  await execa('sysctl', ['-qw', 'vm.unprivileged_userfaultfd=0']);
  const running = pid;
  await t.throwsAsync(box.runtime.reset({ id, name: 'base', lazyPages: true }), { code: 'USERFAULTFD_RESTRICTED' });
  t.true(isAlive(running), 'a refused lazy reset leaves the container running');
  t.is((await box.runtime.state(id)).pid, running);

  await execa('sysctl', ['-qw', 'vm.unprivileged_userfaultfd=1']);
  await resetAndCheck('reset --lazy-pages', { lazyPages: true });
  const record = await box.runtime.context.store.load(id);
  const lazyLog = await readFile(
    path.join(box.runtime.context.store.paths(id).dir, 'instances', String(record.instance), 'criu-work/lazy-pages.log'),
    'utf8',
  );
  t.regex(lazyLog, /Received PID: \d+, uffd: \d+/, "the lazy-pages daemon got the restored tasks' userfaultfds");
  t.regex(lazyLog, /uffd_copy/, 'and served pages through them');
});
