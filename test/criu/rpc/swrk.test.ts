/**
 * SwrkSession against fake criu scripts: a CRIU that dies is a closed connection naming the
 * request and how CRIU ended, whether the kernel reports the end as EOF or as a reset.
 */
import test from 'ava';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ReqType } from '../../../src/criu/rpc/messages.js';
import { SwrkConnectionClosedError, SwrkSession } from '../../../src/criu/rpc/swrk.js';
import { tempDir } from '../../runtime/fixtures.js';

async function fakeCriu(dir: string, body: string): Promise<string> {
  const script = path.join(dir, 'criu');
  await writeFile(script, `#!/bin/sh\n${body}\n`);
  await chmod(script, 0o755);
  return script;
}

for (const [what, body, exit] of [
  // The request stays unread in the dead CRIU's socket: the kernel resets the connection.
  ['dies with the request unread (a reset)', 'sleep 0.3; echo dying >&2; kill -9 $$', 'killed by SIGKILL'],
  ['reads the request and exits (an EOF)', 'dd bs=65536 count=1 <&3 >/dev/null 2>&1; echo dying >&2; exit 3', 'exit status 3'],
] as const) {
  test(`a CRIU that ${what} is SwrkConnectionClosedError naming the request and the exit`, async (t) => {
    const session = await SwrkSession.start({ binary: await fakeCriu(await tempDir(t), body) });
    const error = await t.throwsAsync(session.call({ type: ReqType.DUMP }), { instanceOf: SwrkConnectionClosedError });
    t.is(error?.request, 'DUMP');
    t.is(error?.exit, exit);
    t.regex(error?.message ?? '', /^criu swrk ended before answering DUMP \(.*\): dying$/);
    await session.close();
  });
}

test('a CRIU killed while a task it forked still holds its end of the socket is SwrkConnectionClosedError all the same', async (t) => {
  // As CRIU's restored tasks do when CRIU is killed mid-restore: the socket's other end stays open.
  const dir = await tempDir(t);
  const heldBy = path.join(dir, 'holder.pid');
  const session = await SwrkSession.start({
    binary: await fakeCriu(dir, `sleep 60 & echo $! > ${heldBy}; dd bs=65536 count=1 <&3 >/dev/null 2>&1; kill -9 $$`),
  });
  t.teardown(async () => {
    // A pid file not written (the fake ended first) would make this a kill(0): the test's own process group.
    const holder = Number(await readFile(heldBy, 'utf8').catch(() => ''));
    if (holder > 0) process.kill(holder, 'SIGKILL');
  });
  const error = await t.throwsAsync(session.call({ type: ReqType.RESTORE }), { instanceOf: SwrkConnectionClosedError });
  t.is(error?.exit, 'killed by SIGKILL');
  t.true(Number(await readFile(heldBy, 'utf8')) > 0);
  await session.close();
});
