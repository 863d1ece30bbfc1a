/**
 * posix_spawn for `criu swrk`: the child has exactly the fds it is given, at the numbers given,
 * its signals as exec leaves them (not Node's ignored SIGPIPE), its exit reported once it is
 * reaped, and nothing of ours leaks when the program cannot be executed.
 */
import test from 'ava';
import { closeSync, readdirSync, readSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { spawnDirect, type DirectChild } from '../../src/system/direct-spawn.js';
import { isTrackedChild } from '../../src/system/spawned.js';
import { pipe } from '../../src/system/libc.js';

function output(child: DirectChild, fd: number): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    child.pipes
      .get(fd)!
      .setEncoding('utf8')
      .on('data', (chunk: string) => (text += chunk))
      .on('end', () => resolve(text));
  });
}

test('the child gets exactly the given fds, at their numbers, and everything else is closed', async (t) => {
  const [readEnd, writeEnd] = pipe();
  // fd 3 is our pipe's write end (a number well above 3 here): the child writes to it as fd 3.
  const child = spawnDirect('/bin/sh', ['-c', 'ls /proc/self/fd; echo three >&3'], { fds: ['ignore', 'pipe', 'ignore', writeEnd] });
  const listed = await output(child, 1);
  t.deepEqual(await child.exited, { code: 0, signal: null });
  // ls opens one more (its directory) while listing.
  t.deepEqual(listed.trim().split('\n').map(Number).slice(0, 4), [0, 1, 2, 3]);
  t.true(listed.trim().split('\n').length <= 5, listed);
  const buffer = Buffer.alloc(16);
  t.is(buffer.subarray(0, readSync(readEnd, buffer)).toString(), 'three\n');
  closeSync(readEnd);
  closeSync(writeEnd);
});

test('exit codes and signals are reported once the child is reaped; it is a child Node minds until then', async (t) => {
  const exiting = spawnDirect('/bin/sh', ['-c', 'exit 7'], { fds: ['ignore', 'ignore', 'ignore'] });
  t.deepEqual(await exiting.exited, { code: 7, signal: null });
  const sleeping = spawnDirect('/bin/sleep', ['30'], { fds: ['ignore', 'ignore', 'ignore'] });
  t.true(isTrackedChild(sleeping.pid), 'the stray reaper leaves it alone');
  sleeping.kill('SIGKILL');
  t.deepEqual(await sleeping.exited, { code: null, signal: 'SIGKILL' });
  t.false(isTrackedChild(sleeping.pid));
  // Reaped: no zombie left behind.
  await t.throwsAsync(readFile(`/proc/${sleeping.pid}/stat`, 'utf8').then((stat) => (stat.includes(') Z ') ? stat : Promise.reject(new Error('gone')))));
});

test('the child does not inherit Node’s ignored SIGPIPE, and blocks no signal', async (t) => {
  const child = spawnDirect('/bin/grep', ['-E', '^Sig(Ign|Blk)', '/proc/self/status'], { fds: ['ignore', 'pipe', 'ignore'] });
  const status = await output(child, 1);
  await child.exited;
  const mask = (name: string) => BigInt(`0x${/Sig(\w+):\s*([0-9a-f]+)/.exec(status.split('\n').find((line) => line.startsWith(name))!)![2]}`);
  const sigpipe = 1n << 12n;
  t.is(mask('SigIgn') & sigpipe, 0n, status);
  t.is(mask('SigBlk'), 0n, status);
});

test('a program that cannot be executed is an error, and no fd of ours is left open', (t) => {
  const before = readdirSync('/proc/self/fd').length;
  const error = t.throws(() => spawnDirect('/nonexistent/criu', ['swrk', '3'], { fds: ['ignore', 'pipe', 'pipe'] }));
  t.regex(error.message, /posix_spawn\(\/nonexistent\/criu\) failed: ENOENT/);
  t.is(readdirSync('/proc/self/fd').length, before);
});
