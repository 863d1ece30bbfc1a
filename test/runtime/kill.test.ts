/**
 * `kill` without a signal sends what the container's config asks for (an image's StopSignal,
 * kept as an annotation), else SIGTERM. With the fake runtime.
 */
import 'reflect-metadata';
import test, { type ExecutionContext } from 'ava';
import { constants } from 'node:os';
import { runDetached } from '../../src/runtime/run.js';
import { kill } from '../../src/runtime/kill.js';
import { fakeRuntime } from '../helpers/fake-runtime.js';

type FakeRuntime = Awaited<ReturnType<typeof fakeRuntime>>;

/** Records db running with init, as its monitor would once it started it. */
async function recordStarted(runtime: FakeRuntime, init: { readonly pid: number; readonly startTime: string }): Promise<void> {
  const { store } = runtime.context;
  await store.withLock('db', async () => store.commit(await store.load('db'), { kind: 'started', init: { pid: init.pid, startTime: init.startTime } }));
}

/** A fake runtime whose db runs, with a postgres init recorded. */
async function runningDb(t: ExecutionContext, options: Parameters<typeof fakeRuntime>[1] = {}) {
  const runtime = await fakeRuntime(t, options);
  await runDetached(runtime.context, { id: 'db', bundle: runtime.bundleDir });
  // The init the monitor would have started, recorded running.
  const init = runtime.fakes.processes.spawn({ comm: 'postgres' });
  await recordStarted(runtime, init);
  return { runtime, init, store: runtime.context.store };
}

for (const [annotations, expected] of [
  [{ 'org.opencontainers.image.stopSignal': 'SIGINT' }, constants.signals.SIGINT],
  [{}, constants.signals.SIGTERM],
] as const) {
  test(`kill without a signal sends ${expected === constants.signals.SIGINT ? "the image's SIGINT" : 'SIGTERM'}`, async (t) => {
    const { runtime } = await runningDb(t, { editSpec: (spec) => (spec.annotations = annotations) });
    await kill(runtime.context, 'db');
    t.deepEqual(
      runtime.fakes.processes.signals.map((s) => s.signal),
      [expected],
    );
  });
}

test("kill --all signals every process in the container's cgroup (stopped ones resumed by CONT)", async (t) => {
  const runtime = await fakeRuntime(t);
  await runDetached(runtime.context, { id: 'db', bundle: runtime.bundleDir });
  const { store } = runtime.context;
  const record = await store.load('db');
  const init = runtime.fakes.processes.spawn({ comm: 'postgres', cgroup: record.cgroupPath, stopped: true });
  const worker = runtime.fakes.processes.spawn({ comm: 'postgres', cgroup: record.cgroupPath, stopped: true });
  await recordStarted(runtime, init);
  await kill(runtime.context, 'db', constants.signals.SIGCONT, { all: true });
  t.deepEqual(runtime.fakes.cgroups.callsOf('signal'), [{ op: 'signal', cgroupPath: record.cgroupPath, signal: 'SIGCONT', reached: 2 }]);
  t.deepEqual([init.state, worker.state], ['running', 'running']);
  t.deepEqual(runtime.fakes.processes.signals, [], 'not the init alone');
});

test('kill waits for the command at work on the container (a signal in the middle of a dump makes CRIU give it up), then signals', async (t) => {
  const { runtime, init, store } = await runningDb(t);
  let release!: () => void;
  const working = store.withLock('db', () => new Promise<void>((resolve) => (release = resolve)));
  const killing = kill(runtime.context, 'db', constants.signals.SIGUSR1);
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.deepEqual(runtime.fakes.processes.signals, [], 'nothing while the lock is held');
  release();
  await working;
  await killing;
  t.deepEqual(
    runtime.fakes.processes.signals.map((s) => ({ pid: s.pid, signal: s.signal })),
    [{ pid: init.pid, signal: constants.signals.SIGUSR1 }],
  );
});

test('SIGKILL does not wait for the command at work: the container is to end, and a dump stuck on a dead peer must not keep it alive', async (t) => {
  const { runtime, init, store } = await runningDb(t);
  await store.withLock('db', () => kill(runtime.context, 'db', constants.signals.SIGKILL));
  t.deepEqual(
    runtime.fakes.processes.signals.map((s) => ({ pid: s.pid, signal: s.signal })),
    [{ pid: init.pid, signal: constants.signals.SIGKILL }],
  );
});
