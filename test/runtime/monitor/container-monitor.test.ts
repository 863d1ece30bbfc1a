import 'reflect-metadata';
import test from 'ava';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { superviseContainer } from '../../../src/runtime/monitor/container-monitor.js';
import { controlSocketPath, sendControl } from '../../../src/runtime/monitor/control.js';
import { deserializeError, type MonitorReport, type SerializedError } from '../../../src/runtime/monitor/protocol.js';
import { describeError } from '../../../src/runtime/errors.js';
import { formatState, state } from '../../../src/runtime/state.js';
import { checkpoint, defaultImagePath } from '../../../src/runtime/checkpoint.js';
import { restoreDetached } from '../../../src/runtime/restore.js';
import { OciRuntimeError } from '../../../src/runtime/oci-runtime.js';
import { CriuRequestError } from '../../../src/criu/errors.js';
import { rawControl } from '../../helpers/control.js';
import { creatingContainer, fakeRuntime, load, runningContainer, until } from '../../helpers/fake-runtime.js';

function reports(): { readonly list: MonitorReport[]; readonly report: (message: MonitorReport) => void } {
  const list: MonitorReport[] = [];
  return { list, report: (message) => list.push(message) };
}

test('a run job: reports the init, answers resets on its control socket, and ends with the container', async (t) => {
  const rt = await fakeRuntime(t);
  await creatingContainer(rt);
  const paths = rt.context.store.paths('web1');
  const { list, report } = reports();

  const done = superviseContainer(rt.context, { kind: 'run', id: 'web1' }, report);
  await until(() => list.length > 0, 'the report');

  const [start] = rt.fakes.ociRuntime.starts;
  const first = (list[0] as { pid: number }).pid;
  t.deepEqual(list, [{ ok: true, pid: first }]);
  t.like(start, { id: 'web1', bundle: paths.effectiveBundle, root: paths.ociRoot, logPath: paths.ociLog });
  t.is(start!.stdio.length, 3);
  t.deepEqual(rt.fakes.ociRuntime.forgets, [{ id: 'web1', root: paths.ociRoot }]);
  const running = await load(rt);
  t.is(running.status, 'running');
  t.deepEqual(running.status === 'running' ? [running.init, running.monitor] : [], [rt.fakes.processes.identity(first), await rt.fakes.processes.self()]);
  t.is(rt.fakes.processes.process(first).cgroup, '/runtime/web1');
  t.deepEqual(rt.fakes.reaper.waits, [first]);
  await until(() => existsSync(controlSocketPath(paths.dir)), 'the control socket');

  // A snapshot of the running container, then a reset asked over the socket.
  await checkpoint(rt.context, { id: 'web1', name: 'base', leaveRunning: true });
  const answer = await sendControl(paths.dir, { op: 'reset', reset: { name: 'base', criu: {}, standby: false } });
  const second = answer?.ok ? answer.pid : undefined;
  t.truthy(second);
  t.not(second, first);
  t.false(rt.fakes.processes.alive(first));
  t.like(await load(rt), { status: 'running', instance: 1, cgroupPath: '/runtime/web1/1', snapshot: 'base' });

  // A reset that cannot be done is answered with its error, as data; the container goes on.
  const refused = await sendControl(paths.dir, { op: 'reset', reset: { name: 'nope', criu: {}, standby: false } });
  t.like(refused, { ok: false, error: { code: 'SNAPSHOT_NOT_FOUND' } });
  t.true(rt.fakes.processes.alive(second!));
  // With the text the CLI prints for it, for the native front to print as it is (Node clients
  // rebuild the error from its fields and drop it).
  const raw = JSON.parse(await rawControl(paths.dir, `${JSON.stringify({ op: 'reset', reset: { name: 'nope', criu: {}, standby: false } })}\n`)) as {
    error: SerializedError;
    display: string;
  };
  t.is(raw.display, describeError(deserializeError(raw.error, paths.monitorLog)));
  t.is(raw.display, 'container "web1" has no snapshot "nope"\n  hint: its snapshots are: base');

  // The state, rendered as `runtime state` prints it.
  const stateAnswer = JSON.parse(await rawControl(paths.dir, '{"op":"state"}\n')) as { ok: boolean; display: string };
  t.deepEqual(stateAnswer, { ok: true, display: formatState(await state(rt.context, 'web1')) });
  t.like(JSON.parse(stateAnswer.display), { id: 'web1', status: 'running', pid: second });

  // The init exits by itself: the monitor records it and ends.
  rt.fakes.processes.exit(second!, { kind: 'exited', code: 0 });
  t.is(await done, 0);
  const stopped = await load(rt);
  t.is(stopped.status, 'stopped');
  t.is(stopped.status === 'stopped' ? stopped.exit?.code : undefined, 0);
  t.false(existsSync(controlSocketPath(paths.dir)));
  t.is(list.length, 1);
});

test('a run job that fails reports the error with its code and hint, and returns 1', async (t) => {
  const rt = await fakeRuntime(t);
  await creatingContainer(rt);
  const paths = rt.context.store.paths('web1');
  const failure = new OciRuntimeError('runc', 'run', 'container_linux.go:380: starting container process caused: exec: "sh": not found', paths.ociLog);
  rt.fakes.ociRuntime.failNext = failure;
  const { list, report } = reports();

  t.is(await superviseContainer(rt.context, { kind: 'run', id: 'web1' }, report), 1);

  t.deepEqual(list, [{ ok: false, error: { code: 'OCI_RUNTIME_FAILED', message: failure.message, hint: failure.hint! } }]);
  t.regex(await rt.log(), /error run of web1 failed/);
  t.regex(failure.hint!, /oci\.log/);
  t.is((await load(rt)).status, 'creating');
  t.false(existsSync(controlSocketPath(paths.dir)));
  t.deepEqual(rt.fakes.reaper.waits, []);
});

test("a reset job: the first reset is the monitor's job, and the pid file is written", async (t) => {
  const rt = await fakeRuntime(t);
  await runningContainer(rt);
  await checkpoint(rt.context, { id: 'web1', name: 'base' });
  const pidFile = path.join(rt.root, 'reset.pid');
  const { list, report } = reports();

  const done = superviseContainer(
    rt.context,
    { kind: 'reset', id: 'web1', reset: { sourceId: 'web1', name: 'base', criu: {}, standbys: 0 }, pidFile },
    report,
  );
  await until(() => list.length > 0, 'the report');

  const pid = (list[0] as { pid: number }).pid;
  t.deepEqual(list, [{ ok: true, pid }]);
  t.is(await readFile(pidFile, 'utf8'), String(pid));
  t.like(await load(rt), { status: 'running', instance: 1, snapshot: 'base' });
  rt.fakes.processes.exit(pid, { kind: 'signaled', signal: 15 });
  t.is(await done, 0);
  const stopped = await load(rt);
  t.is(stopped.status === 'stopped' ? stopped.exit?.signal : undefined, 'SIGTERM');
});

test("a restore job whose CRIU fails: the launcher gets CRIU's failure back, and the new record is removed", async (t) => {
  const rt = await fakeRuntime(t);
  await runningContainer(rt);
  await checkpoint(rt.context, { id: 'web1' });
  const imagePath = defaultImagePath(rt.context, 'web1');
  rt.fakes.monitors.launchMode = { kind: 'supervise' };
  rt.fakes.criu.failNextRestore({ at: 'prepared', errno: 13, message: "Can't open /proc/self/ns" });

  const error = await t.throwsAsync(restoreDetached(rt.context, { id: 'web2', imagePath }), { instanceOf: CriuRequestError });

  // The error crossed the monitor's report as data and was rebuilt with CRIU's details.
  t.is(error!.code, 'CRIU_FAILED');
  t.like(error!.failure, { request: 'RESTORE', errno: 13, criuMessage: "Can't open /proc/self/ns", logPath: path.join(imagePath, 'restore.log') });
  t.like(rt.fakes.monitors.reports[0], { ok: false, error: { code: 'CRIU_FAILED' } });
  t.is(await rt.fakes.monitors.monitors[0], 1);
  t.false(await rt.context.store.exists('web2'));
  t.deepEqual(rt.fakes.mounts.table, []);
});
