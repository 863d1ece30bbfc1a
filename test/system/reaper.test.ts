import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { Reaper } from '../../src/system/reaper.js';
import { trackChild } from '../../src/system/spawned.js';
import { spawnDirect } from '../../src/system/direct-spawn.js';
import { posixSpawn } from '../../src/system/libc.js';

async function waitUntil(condition: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** Whether pid is this process's child and has exited, not yet reaped (a zombie). */
async function zombie(pid: number): Promise<boolean> {
  const { readFile } = await import('node:fs/promises');
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
}

test("reapStrays leaves Node's own children to Node: their 'exit' still comes", async (t) => {
  const reaper = new Reaper();
  const known = reaper.children();
  // A child spawned through Node (as criu swrk is), that exits while a stray sweep is under way.
  const child = trackChild(spawn('sh', ['-c', 'sleep 0.2']));
  const exited = once(child, 'exit');
  // It exits while this thread is busy (Node has not reaped it yet), then a sweep runs: untracked,
  // the sweep would reap it (waitpid), and Node would never see it end.
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 500);
  t.deepEqual(await reaper.reapStrays(known, 1_000), [], 'it is no stray');
  const [code] = await Promise.race([exited, sleep(5_000).then(() => ['no exit event'])]);
  t.is(code, 0, 'Node reaped it and reported its exit');
  t.false(await zombie(child.pid!));
});

test('children: every child of this process, as a scan of /proc finds them, however it was started', async (t) => {
  const reaper = new Reaper();
  const viaNode = trackChild(spawn('sleep', ['5']));
  const direct = spawnDirect('/bin/sleep', ['5'], { fds: ['ignore', 'ignore', 'ignore'] });
  t.teardown(() => {
    viaNode.kill('SIGKILL');
    direct.kill('SIGKILL');
  });
  await once(viaNode, 'spawn');
  const scanned = new Set(
    readdirSync('/proc')
      .filter((entry) => /^\d+$/.test(entry))
      .filter((entry) => {
        const stat = readFileSafe(`/proc/${entry}/stat`);
        return stat !== undefined && Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === process.pid;
      })
      .map(Number),
  );
  const listed = reaper.children();
  t.true(listed.has(viaNode.pid!));
  t.true(listed.has(direct.pid));
  t.deepEqual([...listed].sort(), [...scanned].sort());
});

function readFileSafe(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

test.serial('with reapEveryChild, a child no one waits for is reaped as it ends, and a wait that comes later still gets its exit', async (t) => {
  const reaper = new Reaper();
  reaper.install({ reapEveryChild: true });
  t.teardown(() => reaper.uninstall());
  // Started without Node and never registered: as a failed restore's stray task is.
  const pid = posixSpawn('/bin/sh', ['sh', '-c', 'exit 7'], [], []);
  await waitUntil(async () => !existsSync(`/proc/${pid}`), 'the stray child to be reaped');
  t.deepEqual(await reaper.wait(pid), { kind: 'exited', code: 7 });
});
