/**
 * Pristine reset, end to end: a real redis-server from the host's Debian packages, loaded with
 * data and snapshotted, is written to and reset a hundred times and finds exactly the snapshot's
 * data and files each time; a process holding memory gets its exact bytes back; copies made from
 * the snapshot run side by side, each with its own data, rootfs, cgroup and monitor.
 */
import test, { type ExecutionContext } from 'ava';
import { chmod, mkdir, open, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { counterAbove, e2e, isAlive, parentOf, readCounter, sandbox, waitFor, type Sandbox } from './helpers.js';
import {
  describeTree,
  loadCommands,
  median,
  memhogBundle,
  redis,
  redisBundle,
  redisDigest,
  redisMissing,
  redisRunId,
  waitForRedis,
  valueOf,
  type RedisDigest,
} from './reset-helpers.js';
import { readyFileInContainer, residentMiB, waitReady } from '../../bench/workload.js';
import { buildNativeClient } from '../helpers/native-client.js';
import { execa } from 'execa';

const serial = e2e(test);

const missingRedis = redisMissing();
if (missingRedis && process.env.CI) serial('redis-server is installed', (t) => t.fail(`THE RESET TESTS CANNOT RUN: ${missingRedis}`));
else if (missingRedis) console.warn(`\n!!! REDIS RESET TESTS SKIPPED: ${missingRedis}. !!!\n`);
const withRedis = missingRedis ? (test.serial.skip as unknown as typeof serial) : serial;

/** The directories of the container whose files a reset must put back exactly. */
const watched = ['data', 'etc', 'root', 'tmp'];
const loadedKeys = 1000;

interface LoadedRedis {
  readonly pid: number;
  readonly bundle: string;
  readonly digest: RedisDigest;
  readonly runId: string;
  /** The watched directories as the snapshot has them. */
  readonly files: Record<string, string>;
  readonly snapshotDir: string;
}

/** Runs redis, loads keys and files, and snapshots it as "loaded" (left running). */
async function startLoadedRedis(t: ExecutionContext, box: Sandbox, id: string): Promise<LoadedRedis> {
  const bundle = await redisBundle(box, id);
  const pid = await box.runtime.run({ id, bundle });
  await waitForRedis(pid);
  const replies = (await redis(pid, [], loadCommands(loadedKeys))).split('\n');
  t.is(replies.length, loadedKeys + 4);
  // Files written by "the application" inside the container, of several kinds.
  const root = `/proc/${pid}/root`;
  await mkdir(path.join(root, 'data/keep'), { recursive: true });
  await writeFile(path.join(root, 'data/seed.txt'), 'seeded before the snapshot\n');
  await writeFile(path.join(root, 'data/keep/nested.txt'), 'nested\n');
  await writeFile(path.join(root, 'data/secret'), 'only for root\n', { mode: 0o600 });
  await symlink('seed.txt', path.join(root, 'data/link'));
  await writeFile(path.join(root, 'etc/app.conf'), 'mode=pristine\n');

  const digest = await redisDigest(pid);
  t.is(digest.keys, loadedKeys + 4);
  const runId = await redisRunId(pid);
  const files = await describeTree(root, watched);
  const result = await box.runtime.checkpoint({ id, name: 'loaded', leaveRunning: true });
  t.true(isAlive(pid), 'the snapshot left redis running');
  t.deepEqual(await redisDigest(pid), digest, 'and unchanged');
  return { pid, bundle, digest, runId, files, snapshotDir: path.dirname(result.imagePath) };
}

/** One round of writes: new, changed and deleted keys of every type; sometimes everything goes. */
function mutations(round: number): string {
  const key = (n: number) => `key:${String(n % loadedKeys).padStart(4, '0')}`;
  const lines = [
    ...Array.from({ length: 5 }, (_, j) => `SET extra:${round}:${j} written-in-round-${round}`),
    `DEL ${key(round * 7)} ${key(round * 13 + 1)} ${key(round * 31 + 2)}`,
    `SET ${key(round * 17 + 3)} changed-in-round-${round}`,
    `HSET profile:1 visits ${1000 + round}`,
    `LPUSH queue round${round}`,
    `SREM tags tag${round % 30}`,
    `ZINCRBY scores 1 player${round % 30}`,
  ];
  if (round % 10 === 0) lines.push('FLUSHALL');
  return `${lines.join('\n')}\n`;
}

/** One round of file changes, through the host path of the rootfs and through the container's root. */
async function mutateFiles(rootfs: string, pid: number, round: number): Promise<void> {
  const root = `/proc/${pid}/root`;
  await writeFile(path.join(rootfs, `tmp/host-${round}.txt`), `from the host, round ${round}\n`);
  await writeFile(path.join(root, `etc/container-${round}.conf`), `round ${round}\n`);
  await writeFile(path.join(root, 'data/seed.txt'), `overwritten in round ${round}\n`);
  await mkdir(path.join(root, `root/made-in-${round}`));
  switch (round % 4) {
    case 0:
      await rm(path.join(root, 'data/keep'), { recursive: true });
      break;
    case 1:
      await rm(path.join(root, 'data/keep/nested.txt'));
      break;
    case 2:
      await chmod(path.join(root, 'data/secret'), 0o644);
      await rm(path.join(root, 'data/link'));
      break;
    default:
      await rm(path.join(root, 'etc/app.conf'));
      await writeFile(path.join(root, 'data/keep/nested.txt'), 'replaced\n');
  }
}

withRedis("redis: 100 rounds of writes and a reset, each back to exactly the snapshot's data and files", async (t) => {
  t.timeout(300_000);
  const box = await sandbox(t);
  const loaded = await startLoadedRedis(t, box, 'redis');
  const snapshotBefore = await describeTree(loaded.snapshotDir);
  const { rootfs } = await box.runtime.context.store.load('redis');
  let pid = loaded.pid;
  const times: number[] = [];

  for (let round = 1; round <= 100; round++) {
    await redis(pid, [], mutations(round));
    await mutateFiles(rootfs, pid, round);
    // The writes happened, so the reset has something to undo.
    const dirty = await redisDigest(pid);
    if (!t.not(dirty.sha1, loaded.digest.sha1, `round ${round}: the writes changed the data`)) break;
    if (!t.true(existsSync(`/proc/${pid}/root/tmp/host-${round}.txt`), `round ${round}: the host path is the container's rootfs`)) break;

    const started = performance.now();
    pid = await box.runtime.reset({ id: 'redis', name: 'loaded' });
    times.push(performance.now() - started);

    const ok =
      t.is(await redis(pid, ['PING']), 'PONG', `round ${round}: the server answers`) &&
      t.deepEqual(await redisDigest(pid), loaded.digest, `round ${round}: exactly the snapshot's data`) &&
      t.is(await redisRunId(pid), loaded.runId, `round ${round}: the same server, restored, not restarted`) &&
      t.deepEqual(await describeTree(`/proc/${pid}/root`, watched), loaded.files, `round ${round}: the container sees the snapshot's files`) &&
      t.deepEqual(await describeTree(rootfs, watched), loaded.files, `round ${round}: and so does the host path of its rootfs`) &&
      t.regex((await parentOf(pid)).cmdline, /runtime monitor redis$/, `round ${round}: a runtime monitor is the parent`);
    if (!ok) break;
  }
  t.is(times.length, 100);
  // The server works after the last reset: it takes and serves new data.
  t.is(await redis(pid, ['SET', 'after', 'the-last-reset']), 'OK');
  t.is(await redis(pid, ['GET', 'after']), 'the-last-reset');
  t.is(await redis(pid, ['GET', 'key:0999']), valueOf(999));
  t.deepEqual(await describeTree(loaded.snapshotDir), snapshotBefore, "the snapshot's files are byte for byte what they were");
  const state = await box.runtime.state('redis');
  t.is(state.status, 'running');
  t.is(state.pid, pid);
  t.is((await box.runtime.context.store.load('redis')).restoreCount, 100);
  t.log(
    `reset of a redis with ${loaded.digest.keys} keys: median ${median(times).toFixed(0)} ms, max ${Math.max(...times).toFixed(0)} ms over ${times.length}`,
  );
});

/** The anonymous mapping of exactly `bytes` that memhog fills. */
async function memhogRegion(pid: number, bytes: number): Promise<number> {
  for (const line of (await readFile(`/proc/${pid}/maps`, 'utf8')).split('\n')) {
    const match = /^([0-9a-f]+)-([0-9a-f]+) rw-p 00000000 00:00 0\s*$/.exec(line);
    if (match && parseInt(match[2]!, 16) - parseInt(match[1]!, 16) === bytes) return parseInt(match[1]!, 16);
  }
  throw new Error(`memhog (pid ${pid}) has no ${bytes}-byte anonymous mapping`);
}

/**
 * memhog's own check of every byte (SIGUSR1): "ok <mib>" or "bad byte ...". When it does not
 * answer, the error says whether memhog still lives and what its lazy-pages daemon and the
 * monitor last wrote.
 */
async function memhogVerdict(box: Sandbox, id: string, bundle: string, pid: number): Promise<string> {
  const file = path.join(bundle, 'rootfs', `${readyFileInContainer}.verified`);
  await rm(file, { force: true });
  process.kill(pid, 'SIGUSR1');
  try {
    return await waitFor(`memhog (pid ${pid}) to check its memory`, async () => (await readFile(file, 'utf8')).trim(), 30_000);
  } catch (error) {
    const dir = box.runtime.context.store.paths(id).dir;
    const record = await box.runtime.context.store.load(id);
    const tail = async (file: string) => (await readFile(file, 'utf8').catch((e: unknown) => String(e))).split('\n').slice(-15).join('\n');
    const status = await readFile(`/proc/${pid}/status`, 'utf8').then(
      (text) =>
        text
          .split('\n')
          .filter((line) => /^(State|VmRSS)/.test(line))
          .join(', '),
      () => 'gone',
    );
    throw new Error(
      `${(error as Error).message}; memhog: ${status}\n` +
        `lazy-pages.log of instance ${record.instance}:\n${await tail(path.join(dir, 'instances', String(record.instance), 'criu-work/lazy-pages.log'))}\n` +
        `monitor.log:\n${await tail(path.join(dir, 'monitor.log'))}`,
      { cause: error },
    );
  }
}

serial('a process holding 64 MiB gets exactly its bytes back on every reset, even after they were overwritten', async (t) => {
  const box = await sandbox(t);
  const mib = 64;
  const bundle = await memhogBundle(box, mib);
  let pid = await box.runtime.run({ id: 'hog', bundle });
  await waitReady(bundle, mib);
  t.is(await memhogVerdict(box, 'hog', bundle, pid), `ok ${mib}`);
  await box.runtime.checkpoint({ id: 'hog', name: 'full', leaveRunning: true });

  for (let round = 1; round <= 4; round++) {
    // Overwrite a page in the middle of the memory from outside: the checker must see it...
    const start = await memhogRegion(pid, mib << 20);
    const mem = await open(`/proc/${pid}/mem`, 'r+');
    try {
      await mem.write(Buffer.alloc(4096, 0), 0, 4096, start + ((round * 997) % (mib * 256)) * 4096);
    } finally {
      await mem.close();
    }
    t.regex(await memhogVerdict(box, 'hog', bundle, pid), /^bad byte \d+: 0x00/, `round ${round}: the overwrite is seen`);
    // ...and the reset brings back every byte (every other round through the CLI).
    if (round % 2 === 0) {
      const reset = await box.cli(['reset', 'hog', 'full']);
      t.is(reset.exitCode, 0, reset.stderr);
      pid = (await box.runtime.state('hog')).pid!;
    } else {
      pid = await box.runtime.reset({ id: 'hog', name: 'full' });
    }
    t.is(await memhogVerdict(box, 'hog', bundle, pid), `ok ${mib}`, `round ${round}`);
    t.true((await residentMiB(pid)) >= mib, `round ${round}: the memory is resident`);
    t.regex((await parentOf(pid)).cmdline, /runtime monitor hog$/);
  }
});

serial('a lazy reset copies in only what is touched, and a snapshot taken then still holds the whole memory', async (t) => {
  const box = await sandbox(t);
  const mib = 64;
  const bundle = await memhogBundle(box, mib);
  await box.runtime.run({ id: 'hog', bundle });
  await waitReady(bundle, mib);
  await box.runtime.checkpoint({ id: 'hog', name: 'full', leaveRunning: true });

  // 64 MiB is restored lazily by default, and memhog touches nothing while it waits for a signal.
  let pid = await box.runtime.reset({ id: 'hog', name: 'full' });
  await sleep(500);
  t.true((await residentMiB(pid)) < mib / 4, `memhog holds ${await residentMiB(pid)} MiB: only what it touched was copied in`);
  // The kernel reads /proc/<pid>/cmdline from memory without waiting for the daemon: the reset copied those pages in.
  t.is((await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0')[0], '/bin/memhog', 'ps can read the restored command line');

  // CRIU dumps only the pages a task holds: the checkpoint has the lazy-pages daemon copy the rest in first.
  const taken = await box.runtime.checkpoint({ id: 'hog', name: 'after-reset', leaveRunning: true });
  t.true((taken.snapshot?.memoryBytes ?? 0) >= mib * 2 ** 20, `the snapshot holds ${taken.snapshot?.memoryBytes} bytes of memory`);
  t.log(`checkpoint of a lazily reset ${mib} MiB memhog, its memory copied in first: ${taken.durationMs} ms`);
  t.true((await residentMiB(pid)) >= mib, 'the running instance now holds it all');
  t.is(await memhogVerdict(box, 'hog', bundle, pid), `ok ${mib}`, 'the instance that was checkpointed still has every byte');

  pid = await box.runtime.reset({ id: 'hog', name: 'after-reset' });
  t.is(await memhogVerdict(box, 'hog', bundle, pid), `ok ${mib}`, 'the snapshot taken after the lazy reset brings back every byte');
});

serial('the native front resets and reads the state through the monitor itself, without Node', async (t) => {
  const box = await sandbox(t);
  // A build of the front whose hand-over to the Node CLI cannot run: only its own path answers.
  const client = await buildNativeClient({
    output: path.join(box.dir, 'pkg/dist/bin/runtime'),
    nodeBinary: '/nonexistent/node',
    defaultStateRoot: path.join(box.dir, 'nowhere'),
  });
  const bundle = await box.bundle('counter');
  const first = await box.runtime.run({ id: 'c', bundle });
  await counterAbove(bundle, 1);
  await box.runtime.checkpoint({ id: 'c', name: 'base', leaveRunning: true });
  const env = { RUNTIME_ROOT: box.stateRoot, PATH: '/usr/bin:/bin' };

  const reset = await execa(client, ['reset', 'c', 'base'], { env, reject: false });
  t.is(reset.exitCode, 0, reset.stderr);
  const pid = (await box.runtime.state('c')).pid!;
  t.not(pid, first);
  t.regex(reset.stderr, new RegExp(`^reset c to base: init pid ${pid} \\(\\d+ ms\\)$`));
  t.regex((await parentOf(pid)).cmdline, /runtime monitor c$/);

  const state = await execa(client, ['state', 'c'], { env, reject: false });
  t.is(state.exitCode, 0, state.stderr);
  t.is(state.stdout, JSON.stringify(await box.runtime.state('c'), null, 2));

  // An error comes back as the Node CLI prints it, and the container runs on.
  const refused = await execa(client, ['reset', 'c', 'nope'], { env, reject: false });
  t.is(refused.exitCode, 1);
  t.is(refused.stderr, 'runtime: container "c" has no snapshot "nope"\n  hint: its snapshots are: base');
  t.true(isAlive(pid));
});

serial("a bind mount whose host source is a symlink (as Debian's /lib is) comes back with the reset", async (t) => {
  const box = await sandbox(t);
  const real = path.join(box.dir, 'real-lib');
  await mkdir(real);
  await writeFile(path.join(real, 'lib.txt'), 'shared\n');
  const link = path.join(box.dir, 'lib-link');
  await symlink(real, link);
  const bundle = await box.bundle('symlinked', ['sh', '-c', 'i=0; while true; do i=$((i+1)); echo $i >/tmp/counter; sleep 0.2; done'], (spec) => {
    spec.mounts.push({ destination: '/hostlib', type: 'bind', source: link, options: ['rbind', 'ro'] });
  });
  const first = await box.runtime.run({ id: 'sym', bundle });
  t.is(await readFile(`/proc/${first}/root/hostlib/lib.txt`, 'utf8'), 'shared\n', "run mounts the symlink's target");
  await counterAbove(bundle, 1);
  await box.runtime.checkpoint({ id: 'sym', name: 'base', leaveRunning: true });
  const pid = await box.runtime.reset({ id: 'sym', name: 'base' });
  t.is(await readFile(`/proc/${pid}/root/hostlib/lib.txt`, 'utf8'), 'shared\n');
  const now = (await readCounter(bundle))!;
  t.true((await counterAbove(bundle, now)) > now);
});

withRedis('copies from a snapshot run side by side with the original, each with its own data, rootfs, cgroup and monitor', async (t) => {
  t.timeout(120_000);
  const box = await sandbox(t);
  const loaded = await startLoadedRedis(t, box, 'redis');
  const ids = ['redis', 'copy1', 'copy2'] as const;
  // Copies go before the container whose snapshot they use.
  t.teardown(async () => {
    for (const id of ['copy1', 'copy2']) await box.runtime.delete(id, { force: true }).catch(() => undefined);
  });
  const pids: Record<string, number> = { redis: loaded.pid };
  for (const copy of ['copy1', 'copy2']) pids[copy] = await box.runtime.reset({ id: copy, name: 'loaded', from: 'redis' });

  const records = await Promise.all(ids.map((id) => box.runtime.context.store.load(id)));
  t.is(new Set(records.map((r) => r.cgroupPath)).size, 3, 'three cgroups');
  t.is(new Set(records.map((r) => r.rootfs)).size, 3, 'three rootfs');
  const monitors = new Set<number>();
  for (const [index, id] of ids.entries()) {
    const pid = pids[id]!;
    const state = await box.runtime.state(id);
    t.is(state.status, 'running', id);
    t.is(state.pid, pid, id);
    const parent = await parentOf(pid);
    t.regex(parent.cmdline, new RegExp(`runtime monitor ${id}$`), `${id}'s init is its monitor's child`);
    monitors.add(parent.pid);
    t.true(
      (await readFile(`/proc/${pid}/cgroup`, 'utf8')).split('\n').some((line) => line.endsWith(`:${records[index]!.cgroupPath}`)),
      `${id} runs in its cgroup`,
    );
    t.deepEqual(await redisDigest(pid), loaded.digest, `${id} starts with the snapshot's data`);
    t.is(await redisRunId(pid), loaded.runId);
    t.deepEqual(await describeTree(`/proc/${pid}/root`, watched), loaded.files, `${id} starts with the snapshot's files`);
  }
  t.is(monitors.size, 3, 'one monitor each');
  const netns = await Promise.all(ids.map((id) => readlink(`/proc/${pids[id]}/ns/net`)));
  t.is(new Set(netns).size, 3, 'one network namespace each');

  // All three at once, each written to differently.
  await Promise.all(
    ids.map(async (id) => {
      await redis(pids[id]!, [], `SET owner ${id}\nSET only:${id} 1\nDEL key:0000\n`);
      await writeFile(`/proc/${pids[id]}/root/tmp/owner`, `${id}\n`);
    }),
  );
  const expectIsolated = async (id: string) => {
    const pid = pids[id]!;
    t.is(await redis(pid, ['GET', 'owner']), id);
    t.is(await redis(pid, ['EXISTS', ...ids.filter((other) => other !== id).map((other) => `only:${other}`)]), '0', `${id} sees no other's keys`);
    t.is(Number(await redis(pid, ['DBSIZE'])), loaded.digest.keys + 1);
    const record = await box.runtime.context.store.load(id);
    t.is(await readFile(path.join(record.rootfs, 'tmp/owner'), 'utf8'), `${id}\n`, `${id}'s rootfs holds its own file`);
  };
  for (const id of ids) await expectIsolated(id);

  // Resetting one copy, then the original, leaves the others as they were.
  const before = { ...pids };
  pids.copy1 = await box.runtime.reset({ id: 'copy1', name: 'loaded', from: 'redis' });
  t.deepEqual(await redisDigest(pids.copy1), loaded.digest, 'copy1 is back to the snapshot');
  t.false(existsSync(`/proc/${pids.copy1}/root/tmp/owner`));
  t.true(isAlive(before.redis!) && isAlive(before.copy2!), 'the others kept running');
  await expectIsolated('redis');
  await expectIsolated('copy2');
  pids.redis = await box.runtime.reset({ id: 'redis', name: 'loaded' });
  t.deepEqual(await redisDigest(pids.redis), loaded.digest, 'the original is back to the snapshot');
  t.is(pids.copy2, before.copy2);
  await expectIsolated('copy2');
  t.deepEqual(await redisDigest(pids.copy1), loaded.digest, "copy1 untouched by the original's reset");

  // The original cannot go while copies use its snapshot.
  await t.throwsAsync(box.runtime.delete('redis', { force: true }), { code: 'SNAPSHOT_IN_USE' });
  t.is((await box.runtime.state('redis')).status, 'running');
  for (const copy of ['copy1', 'copy2']) await box.runtime.delete(copy, { force: true });
  await box.runtime.delete('redis', { force: true });
  t.deepEqual(await box.runtime.list(), []);
  for (const id of ids) t.false(isAlive(pids[id]!), `${id} is gone`);
});
