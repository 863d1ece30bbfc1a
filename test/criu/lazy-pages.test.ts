/**
 * The lazy-pages daemon as the runtime runs it, with a fake criu binary (a script on disk) in
 * place of CRIU's: a daemon that ends by itself with an error is reported, one stopped is not.
 */
import test from 'ava';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { LazyPagesDaemon } from '../../src/criu/lazy-pages.js';
import { tempDir } from '../runtime/fixtures.js';

/** A criu whose lazy-pages makes its socket and logs an error, then exits with `code` after 0.2 s, or waits. */
async function fakeCriu(dir: string, code: number | 'wait'): Promise<string> {
  const script = path.join(dir, 'criu');
  // argv: lazy-pages --images-dir I --work-dir W -o LOG -v4
  await writeFile(
    script,
    [
      '#!/bin/sh',
      'work="$5"',
      ': > "$work/lazy-pages.socket"',
      'echo "(00.100000) uffd: Error (criu/uffd.c:1): polling failed: Interrupted system call" > "$work/$7"',
      code === 'wait' ? 'exec sleep 60' : `sleep 0.2; exit ${code}`,
      '',
    ].join('\n'),
  );
  await chmod(script, 0o755);
  return script;
}

test('a daemon that exits with an error before it is stopped is reported, with its log', async (t) => {
  const dir = await tempDir(t);
  const work = path.join(dir, 'work');
  await mkdir(work);
  const daemon = await LazyPagesDaemon.start(await fakeCriu(dir, 1), path.join(dir, 'images'), work);
  const reported = await new Promise<string>((resolve) => daemon.onFailure(resolve));
  t.regex(reported, /^the lazy-pages daemon exited with code 1 before it filled in all the memory/);
  t.true(reported.includes(path.join(work, 'lazy-pages.log')));
  t.regex(reported, /polling failed: Interrupted system call/);
});

test('a daemon that ends well, or that the runtime stops, is not reported', async (t) => {
  const dir = await tempDir(t);
  const reports: string[] = [];
  const done = path.join(dir, 'done');
  await mkdir(done);
  const finished = await LazyPagesDaemon.start(await fakeCriu(dir, 0), path.join(dir, 'images'), done);
  finished.onFailure((detail) => reports.push(detail));
  await finished.exited;

  const waiting = path.join(dir, 'waiting');
  await mkdir(waiting);
  const stopped = await LazyPagesDaemon.start(await fakeCriu(await mkdirIn(dir, 'second'), 'wait'), path.join(dir, 'images'), waiting);
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
