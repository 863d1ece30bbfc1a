/**
 * The foreground form of run and restore: a signal to the CLI while the container is being started
 * (runc or CRIU at work) is not lost, nor does it end the CLI and leave the container parentless:
 * it reaches the init once the init is known.
 */
import 'reflect-metadata';
import test from 'ava';
import { PassThrough } from 'node:stream';
import { runInForeground } from '../../../src/runtime/monitor/foreground.js';
import { fakeRuntime, runningContainer } from '../../helpers/fake-runtime.js';

test.serial('a signal that comes while the container starts reaches its init once it runs', async (t) => {
  const rt = await fakeRuntime(t);
  const record = await runningContainer(rt);
  const listening = process.listenerCount('SIGTERM');
  const container = await runInForeground(
    rt.context,
    'web1',
    async () => {
      // What the kernel does on `kill -TERM <cli>` while the start is under way.
      t.true(process.listenerCount('SIGTERM') > listening, 'the handler is there before the start');
      process.emit('SIGTERM', 'SIGTERM');
      t.deepEqual(rt.fakes.processes.signals, [], 'nothing to signal yet');
      return record.init.pid;
    },
    { stdout: new PassThrough(), stderr: new PassThrough() },
  );
  t.is(container.pid, record.init.pid);
  t.deepEqual(
    rt.fakes.processes.signals.map(({ pid, signal, delivered }) => ({ pid, signal, delivered })),
    [{ pid: record.init.pid, signal: 'SIGTERM', delivered: true }],
  );
  t.like(await container.exited, { kind: 'signaled' });
  t.is(process.listenerCount('SIGTERM'), listening, 'the handlers go with the container');
});

test.serial('a start that fails removes the handlers it installed', async (t) => {
  const rt = await fakeRuntime(t);
  await runningContainer(rt);
  const listening = process.listenerCount('SIGINT');
  await t.throwsAsync(
    runInForeground(rt.context, 'web1', async () => Promise.reject(new Error('runc failed')), { stdout: new PassThrough(), stderr: new PassThrough() }),
    { message: 'runc failed' },
  );
  t.is(process.listenerCount('SIGINT'), listening);
});
