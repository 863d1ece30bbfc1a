import 'reflect-metadata';
import test from 'ava';
import { closeSync, fstatSync, openSync, readdirSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Supervisor } from '../../../src/runtime/monitor/supervisor.js';
import { fakeRuntime, runningContainer } from '../../helpers/fake-runtime.js';

// These tests count and reuse this process's file descriptors, so they run alone.

/** This process's open fds, once closes in flight (a log stream's) are done. */
async function openFds(): Promise<number> {
  await sleep(50);
  return readdirSync('/proc/self/fd').length;
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed (by the bug the test shows)
  }
}

test.serial('a supervisor whose init starts reaps it, records the exit, and closes what it opened', async (t) => {
  const rt = await fakeRuntime(t);
  const record = await runningContainer(rt);
  const before = await openFds();
  const supervisor = new Supervisor({ id: 'web1', store: rt.context.store, reaper: rt.fakes.reaper, foreground: false });

  t.is(await supervisor.startInit(async () => record.init.pid), record.init.pid);
  const exited = supervisor.superviseInit(record.init.pid);
  rt.fakes.processes.exit(record.init.pid, { kind: 'exited', code: 2 });
  t.deepEqual(await exited, { kind: 'exited', code: 2 });
  await supervisor.close();

  const stopped = await rt.context.store.load('web1');
  t.is(stopped.status === 'stopped' ? stopped.exit?.code : undefined, 2);
  t.is(await openFds(), before);
});

// Found by this test: when the start failed, the read ends of the stdout and stderr pipes were only
// closed by the output sockets, which never started: two fds leaked per failed start.
test.serial('a supervisor whose start fails closes every pipe it made', async (t) => {
  const rt = await fakeRuntime(t);
  await rt.context.store.reserve('web1');
  const before = await openFds();
  const supervisor = new Supervisor({ id: 'web1', store: rt.context.store, reaper: rt.fakes.reaper, foreground: false });
  await t.throwsAsync(
    supervisor.startInit(async () => Promise.reject(new Error('CRIU failed'))),
    { message: 'CRIU failed' },
  );
  t.is(await openFds(), before);
});

// Found by this test: Supervisor.close() was not idempotent: a second call closed the stdin write
// end's fd number again. Resetter.restoreInstance does exactly that (startInit closes the
// supervisor when the restore fails, then its catch closes it once more), so whatever took that
// fd number in between (another instance's pipe, a socket) was closed under its owner.
test.serial('closing a supervisor twice closes no fd it no longer owns', async (t) => {
  const rt = await fakeRuntime(t);
  await rt.context.store.reserve('web1');
  const supervisor = new Supervisor({ id: 'web1', store: rt.context.store, reaper: rt.fakes.reaper, foreground: false });
  await t.throwsAsync(supervisor.startInit(async () => Promise.reject(new Error('CRIU failed'))));
  // Others now open files: they get the lowest free numbers, the ones the supervisor freed.
  const others = Array.from({ length: 8 }, () => openSync('/dev/null', 'r'));
  t.teardown(() => others.forEach(closeQuietly));

  await supervisor.close();

  const closed = others.filter((fd) => {
    try {
      fstatSync(fd);
      return false;
    } catch {
      return true;
    }
  });
  t.deepEqual(closed, []);
});
