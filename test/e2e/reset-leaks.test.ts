/**
 * Reset under repetition and failure: 200 resets in a row leave no more mounts, cgroups,
 * processes, descriptors or disk than one; a reset that fails after the instance was stopped
 * leaves the snapshot byte for byte intact, and the next reset works.
 */
import test from 'ava';
import { DEFAULT_STANDBYS } from '../../src/runtime/reset.js';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { counterAbove, e2e, isAlive, parentOf, readCounter, sandbox, waitFor, type Sandbox } from './helpers.js';
import { describeTree, settledDescriptorKinds, median, settledCounts, withoutDisk } from './reset-helpers.js';

const serial = e2e(test);

/** The counter the snapshot holds: its rootfs layer has the loop's last write before the dump. */
async function snapshotCounter(snapshotDir: string): Promise<number> {
  return Number((await readFile(path.join(snapshotDir, 'rootfs/tmp/counter'), 'utf8')).trim());
}

/** Runs the counter container, snapshots it as "base", and resets to it once. */
async function snapshotAndReset(box: Sandbox, id: string, bundle: string) {
  await box.runtime.run({ id, bundle });
  await counterAbove(bundle, 2);
  const snapshotDir = path.dirname((await box.runtime.checkpoint({ id, name: 'base', leaveRunning: true })).imagePath);
  const atSnapshot = await snapshotCounter(snapshotDir);
  const snapshotFiles = await describeTree(snapshotDir);
  const firstPid = await box.runtime.reset({ id, name: 'base' });
  await counterAbove(bundle, atSnapshot);
  return { snapshotDir, atSnapshot, snapshotFiles, firstPid };
}

serial('200 resets in a row leave no mounts, cgroups, processes, descriptors or disk behind', async (t) => {
  t.timeout(420_000);
  const box = await sandbox(t);
  // Unique, so that cgroups (/runtime/<id>) are this test's alone even beside other test files.
  const id = `leaks${process.pid}`;
  const bundle = await box.bundle('counter');
  // A warm-up reset: the first one mounts the overlay and makes the reset's directories.
  const { snapshotDir, atSnapshot, snapshotFiles, firstPid } = await snapshotAndReset(box, id, bundle);
  let pid = firstPid;
  const before = await settledCounts(box, [id]);
  const monitorBefore = await settledDescriptorKinds((await parentOf(pid)).pid);
  const logBefore = (await readFile((await box.runtime.context.store.load(id)).logPath)).length;
  t.log('after one reset:', JSON.stringify(before));

  const times: number[] = [];
  const resets = 200;
  for (let round = 1; round <= resets; round++) {
    const started = performance.now();
    pid = await box.runtime.reset({ id, name: 'base' });
    times.push(performance.now() - started);
    if (round % 50 === 0) {
      // Back at the snapshot's count, and counting on from there.
      const now = await counterAbove(bundle, atSnapshot);
      if (!t.true(now < atSnapshot + 25, `round ${round}: the counter restarted from ${atSnapshot} (now ${now})`)) break;
    }
  }
  t.is(times.length, resets);
  await counterAbove(bundle, atSnapshot);

  const after = await settledCounts(box, [id], before);
  t.log(`after ${resets} more:`, JSON.stringify(after));
  t.deepEqual(withoutDisk(after), withoutDisk(before), 'the same mounts, cgroups, processes and descriptors');
  t.is(after.zombies, 0);
  t.true(after.diskBytes - before.diskBytes <= 16 * 1024, `disk grew by ${after.diskBytes - before.diskBytes} bytes (logs excepted)`);
  t.deepEqual(await settledDescriptorKinds((await parentOf(pid)).pid, monitorBefore), monitorBefore, 'the monitor holds the same descriptors');
  t.deepEqual(await describeTree(snapshotDir), snapshotFiles, 'the snapshot is byte for byte what it was');

  // It still works: one running instance under its monitor, counting.
  const state = await box.runtime.state(id);
  t.is(state.status, 'running');
  t.is(state.pid, pid);
  t.regex((await parentOf(pid)).cmdline, new RegExp(`runtime monitor ${id}$`));
  const now = (await readCounter(bundle))!;
  t.true((await counterAbove(bundle, now)) > now, 'the counter moves');
  t.is((await box.runtime.context.store.load(id)).restoreCount, resets + 1);
  const logAfter = (await readFile((await box.runtime.context.store.load(id)).logPath)).length;
  t.log(
    `reset of a busybox counter: median ${median(times).toFixed(0)} ms, max ${Math.max(...times).toFixed(0)} ms over ${resets}; container.log grew by ${logAfter - logBefore} bytes`,
  );
});

serial('a reset that fails leaves the container running as it was and the snapshot intact, and the next reset works', async (t) => {
  t.timeout(120_000);
  const box = await sandbox(t);
  const volume = path.join(box.dir, 'data-volume');
  await mkdir(volume);
  await writeFile(path.join(volume, 'seed'), 'from the host\n');
  const bundle = await box.bundle(
    'with-volume',
    ['sh', '-c', 'i=0; while true; do i=$((i+1)); echo $i >/tmp/counter; echo $i >>/data/log; sleep 0.2; done'],
    (spec) => {
      spec.mounts.push({ destination: '/data', type: 'bind', source: volume, options: ['rbind', 'rw'] });
    },
  );
  const id = 'failing';
  const { snapshotDir, atSnapshot, snapshotFiles, firstPid } = await snapshotAndReset(box, id, bundle);
  let pid = firstPid;
  const healthy = await settledCounts(box, [id]);

  // A snapshot that does not exist is refused before anything stops.
  await t.throwsAsync(box.runtime.reset({ id, name: 'no-such-snapshot' }), { code: 'SNAPSHOT_NOT_FOUND' });
  t.true(isAlive(pid));
  t.is((await box.runtime.state(id)).pid, pid);

  // The volume's source goes missing: CRIU cannot mount /data and the restore fails. The standbys
  // restored before (CRIU's leave_stopped, two by default) may still serve the first resets; every
  // one after them has to restore, and fails. A failed reset leaves the container running on the instance it had
  // (held still while the new one was tried), and the next reset starts from there.
  await rename(volume, `${volume}.away`);
  let failures = 0;
  let afterFailure: Awaited<ReturnType<typeof settledCounts>> | undefined;
  const attempts = DEFAULT_STANDBYS + 2;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    let error: unknown;
    const before = pid;
    try {
      pid = await box.runtime.reset({ id, name: 'base' });
    } catch (caught) {
      error = caught;
    }
    if (error === undefined) {
      t.true(attempt <= DEFAULT_STANDBYS && failures === 0, `attempt ${attempt} succeeded: only a standby restored before the sabotage may serve a reset`);
      t.log(`attempt ${attempt} was served by a standby (pid ${pid})`);
      continue;
    }
    failures++;
    t.is((error as { code?: string }).code, 'CRIU_FAILED', `attempt ${attempt}: ${String(error)}`);
    const logPath = (error as { failure?: { logPath?: string } }).failure?.logPath;
    t.true(logPath !== undefined && existsSync(logPath), `attempt ${attempt}: the CRIU log the error names is there (${logPath})`);
    t.true(isAlive(before), `attempt ${attempt}: the instance it had runs on`);
    const state = await box.runtime.state(id);
    t.is(state.status, 'running', `attempt ${attempt}: the container is ${state.status}`);
    t.is(state.pid, before);
    t.true((await counterAbove(bundle, (await readCounter(bundle)) ?? 0)) > 0, `attempt ${attempt}: and it goes on counting`);
    // Each failure leaves exactly what the first did.
    const counts = await settledCounts(box, [id], afterFailure);
    t.is(counts.zombies, 0);
    if (afterFailure) t.deepEqual(withoutDisk(counts), withoutDisk(afterFailure), `attempt ${attempt}: no half-restored tree, mount or cgroup is left`);
    afterFailure ??= counts;
    t.deepEqual(await describeTree(snapshotDir), snapshotFiles, `attempt ${attempt}: the snapshot is byte for byte intact`);
  }
  t.true(failures >= 2, `${failures} of ${attempts} resets failed`);

  await rename(`${volume}.away`, volume);
  pid = await box.runtime.reset({ id, name: 'base' });
  t.is((await box.runtime.state(id)).status, 'running');
  t.regex((await parentOf(pid)).cmdline, new RegExp(`runtime monitor ${id}$`));
  const resumed = await waitFor('the counter', () => readCounter(bundle));
  t.true(resumed >= atSnapshot && resumed < atSnapshot + 25, `the counter restarted from the snapshot's ${atSnapshot} (read ${resumed})`);
  t.true((await counterAbove(bundle, resumed)) > resumed, 'and moves');
  t.is(await readFile(path.join(volume, 'seed'), 'utf8'), 'from the host\n', 'the volume is the host directory again');
  t.deepEqual(await describeTree(snapshotDir), snapshotFiles);
  const recovered = await settledCounts(box, [id], healthy);
  t.deepEqual(withoutDisk(recovered), withoutDisk(healthy), 'no mount, cgroup, process or descriptor left by the failures');
});
