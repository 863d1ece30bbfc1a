/**
 * The lazy-pages daemon as the runtime runs it, with a fake criu binary (a script on disk) in
 * place of CRIU's: a daemon that ends by itself with an error is reported, one stopped is not.
 */
import test from 'ava';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { LazyPagesDaemon } from '../../src/criu/lazy-pages.js';
import { tempDir } from '../runtime/fixtures.js';

/**
 * A criu whose lazy-pages writes its pid and argv beside its socket and logs an error, then exits
 * with `code` after 0.2 s, or waits.
 */
async function fakeCriu(dir: string, code: number | 'wait'): Promise<string> {
  const script = path.join(dir, 'criu');
  await writeFile(
    script,
    [
      '#!/bin/sh',
      'for arg; do case "$previous" in --work-dir) work=$arg ;; -o) log=$arg ;; esac; previous=$arg; done',
      'echo "$$" > "$work/pid"',
      'echo "$*" > "$work/argv"',
      ': > "$work/lazy-pages.socket"',
      'echo "(00.100000) uffd: Error (criu/uffd.c:1): polling failed: Interrupted system call" > "$work/$log"',
      code === 'wait' ? 'exec sleep 60' : `sleep 0.2; exit ${code}`,
      '',
    ].join('\n'),
  );
  await chmod(script, 0o755);
  return script;
}

/** The state letter of /proc/PID/stat: T when stopped. */
async function processState(pid: number): Promise<string> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
}

test('on demand, the daemon is asked to copy only what is touched, and is never paused', async (t) => {
  const dir = await tempDir(t);
  const work = await mkdirIn(dir, 'work');
  const daemon = await LazyPagesDaemon.start(await fakeCriu(dir, 'wait'), path.join(dir, 'images'), work, { onDemand: true });
  t.teardown(() => daemon.stop());
  t.is(
    (await readFile(path.join(work, 'argv'), 'utf8')).trim(),
    `lazy-pages --no-lazy-pages-background --images-dir ${path.join(dir, 'images')} --work-dir ${work} -o lazy-pages.log -v4`,
  );
  const pid = Number(await readFile(path.join(work, 'pid'), 'utf8'));
  daemon.pause();
  await sleep(50);
  t.not(await processState(pid), 'T', 'a daemon on demand waits in epoll_wait, which a stop and continue would fail with EINTR');
});

test('in the background, the daemon is asked for nothing more, and a pause stops it until resumed', async (t) => {
  const dir = await tempDir(t);
  const work = await mkdirIn(dir, 'work');
  const daemon = await LazyPagesDaemon.start(await fakeCriu(dir, 'wait'), path.join(dir, 'images'), work, { onDemand: false });
  t.teardown(() => daemon.stop());
  t.false((await readFile(path.join(work, 'argv'), 'utf8')).includes('--no-lazy-pages-background'));
  const pid = Number(await readFile(path.join(work, 'pid'), 'utf8'));
  daemon.pause();
  await sleep(50);
  t.is(await processState(pid), 'T');
  daemon.resume();
  await sleep(50);
  t.not(await processState(pid), 'T');
});

test('a daemon that exits with an error before it is stopped is reported, with its log', async (t) => {
  const dir = await tempDir(t);
  const work = path.join(dir, 'work');
  await mkdir(work);
  const daemon = await LazyPagesDaemon.start(await fakeCriu(dir, 1), path.join(dir, 'images'), work, { onDemand: false });
  const reported = await new Promise<string>((resolve) => daemon.onFailure(resolve));
  t.regex(reported, /^the lazy-pages daemon exited with code 1 while it served the memory not yet copied/);
  t.true(reported.includes(path.join(work, 'lazy-pages.log')));
  t.regex(reported, /polling failed: Interrupted system call/);
});

test('a daemon that ends well, or that the runtime stops, is not reported', async (t) => {
  const dir = await tempDir(t);
  const reports: string[] = [];
  const done = path.join(dir, 'done');
  await mkdir(done);
  const finished = await LazyPagesDaemon.start(await fakeCriu(dir, 0), path.join(dir, 'images'), done, { onDemand: false });
  finished.onFailure((detail) => reports.push(detail));
  await finished.exited;

  const waiting = path.join(dir, 'waiting');
  await mkdir(waiting);
  const stopped = await LazyPagesDaemon.start(await fakeCriu(await mkdirIn(dir, 'second'), 'wait'), path.join(dir, 'images'), waiting, {
    onDemand: false,
  });
  stopped.onFailure((detail) => reports.push(detail));
  await stopped.stop();
  await stopped.exited;
  await sleep(50);
  t.deepEqual(reports, []);
});

async function mkdirIn(dir: string, name: string): Promise<string> {
  await mkdir(path.join(dir, name));
  return path.join(dir, name);
}

test('a criu that cannot be started is an error of the restore naming the cause, not an event that ends this process', async (t) => {
  const dir = await tempDir(t);
  const work = await mkdirIn(dir, 'work');
  const error = await t.throwsAsync(LazyPagesDaemon.start(path.join(dir, 'no-such-criu'), path.join(dir, 'images'), work, { onDemand: true }));
  t.regex(error!.message, /the lazy-pages daemon could not be started: spawn .*no-such-criu ENOENT/);
});
