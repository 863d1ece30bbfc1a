import test from 'ava';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { Reaper } from '../../src/system/reaper.js';
import { trackChild } from '../../src/system/spawned.js';

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
