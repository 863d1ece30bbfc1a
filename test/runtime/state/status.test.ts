import test from 'ava';
import {
  IllegalTransitionError,
  assertCanHappen,
  canHappen,
  statuses,
  transition,
  type ContainerStatus,
  type RecordEvent,
  type RecordEventKind,
} from '../../../src/runtime/state/status.js';
import type { ContainerRecord, RecordBase } from '../../../src/runtime/state/record.js';

const init = { pid: 4242, startTime: '987654321' };
const monitor = { pid: 4200, startTime: '987654000' };
const layers = { lowers: ['/snap/rootfs'], upper: '/i/2/upper', work: '/i/2/work', target: '/i/2/rootfs' };

const events: Readonly<Record<RecordEventKind, RecordEvent>> = {
  started: { kind: 'started', init, monitor },
  restored: { kind: 'restored', init },
  reset: { kind: 'reset', init, monitor, cgroupPath: '/runtime/web1/2', layers, instance: 2, snapshot: 'warm' },
  exited: { kind: 'exited', exit: { code: 0, time: '2024-05-01T10:06:00.000Z' } },
  checkpointed: { kind: 'checkpointed', lastCheckpoint: { imagePath: '/cp', time: '2024-05-01T10:05:00.000Z', leftRunning: false } },
  amended: { kind: 'amended', changes: { bundle: '/srv/other' } },
};

/** Which events may happen in which status, and the status they lead to. */
const allowed: Readonly<Record<RecordEventKind, { from: readonly ContainerStatus[]; to?: ContainerStatus }>> = {
  started: { from: ['creating'], to: 'running' },
  restored: { from: ['checkpointed', 'stopped'], to: 'running' },
  reset: { from: ['running', 'stopped', 'checkpointed'], to: 'running' },
  exited: { from: ['running', 'creating'], to: 'stopped' },
  checkpointed: { from: ['running', 'stopped'], to: 'checkpointed' },
  amended: { from: ['creating', 'running', 'stopped', 'checkpointed'] },
};

const base: RecordBase = {
  id: 'web1',
  bundle: '/srv/bundles/web',
  rootfs: '/srv/bundles/web/rootfs',
  cgroupPath: '/runtime/web1',
  ociRuntime: 'runc',
  created: '2024-05-01T10:00:00.000Z',
  annotations: {},
  logPath: '/run/runtime/web1/container.log',
  restoreCount: 1,
};

function recordIn(status: ContainerStatus): ContainerRecord {
  switch (status) {
    case 'running':
      return { ...base, status, init: { pid: 1000, startTime: '1' }, monitor };
    case 'stopped':
      return { ...base, status, exit: { signal: 'SIGKILL', time: '2024-05-01T10:01:00.000Z' } };
    default:
      return { ...base, status };
  }
}

test('the statuses', (t) => {
  t.deepEqual([...statuses], ['creating', 'running', 'stopped', 'checkpointed']);
});

for (const kind of Object.keys(events) as RecordEventKind[]) {
  for (const from of statuses) {
    const ok = allowed[kind].from.includes(from);
    test(`${kind} in ${from} is ${ok ? 'allowed' : 'forbidden'}`, (t) => {
      t.is(canHappen(from, kind), ok);
      const record = recordIn(from);
      if (ok) {
        t.notThrows(() => assertCanHappen(record, kind));
        t.is(transition(record, events[kind]).status, allowed[kind].to ?? from);
        return;
      }
      const error = t.throws(() => transition(record, events[kind]), { instanceOf: IllegalTransitionError });
      t.is(error.code, 'ILLEGAL_TRANSITION');
      t.is(error.from, from);
      t.is(error.to, allowed[kind].to ?? from);
      t.is(error.id, 'web1');
      t.regex(error.message, new RegExp(`^cannot .+ container "web1": it is ${from}, and a ${from} container cannot become ${error.to}$`));
      t.truthy(error.hint);
    });
  }
}

test('every pair is covered: 14 allowed of 24', (t) => {
  let count = 0;
  for (const kind of Object.keys(events) as RecordEventKind[]) for (const from of statuses) if (canHappen(from, kind)) count++;
  t.is(count, 14);
});

test('a transition drops what the new status does not have, and keeps the rest', (t) => {
  const running = recordIn('running');
  const stopped = transition(running, events.exited);
  t.deepEqual(stopped, { ...base, status: 'stopped', exit: { code: 0, time: '2024-05-01T10:06:00.000Z' } });
  t.false('init' in stopped);
  t.false('monitor' in stopped);

  const restored = transition(stopped, { kind: 'restored', init, mountedRootfs: true });
  t.deepEqual(restored, { ...base, status: 'running', init, restoreCount: 2, rootfsMountedByRuntime: true });
  t.false('exit' in restored);

  const checkpointed = transition(restored, events.checkpointed);
  t.deepEqual(checkpointed, {
    ...base,
    status: 'checkpointed',
    restoreCount: 2,
    rootfsMountedByRuntime: true,
    lastCheckpoint: { imagePath: '/cp', time: '2024-05-01T10:05:00.000Z', leftRunning: false },
  });

  const reset = transition(checkpointed, events.reset);
  t.like(reset, {
    status: 'running',
    init,
    monitor,
    cgroupBase: '/runtime/web1',
    cgroupPath: '/runtime/web1/2',
    instance: 2,
    snapshot: 'warm',
    restoreCount: 3,
  });
  // A second reset keeps the container's own cgroup as the base.
  t.like(transition(reset, { ...events.reset, cgroupPath: '/runtime/web1/3', instance: 3 } as RecordEvent), {
    cgroupBase: '/runtime/web1',
    cgroupPath: '/runtime/web1/3',
  });

  const amended = transition(reset, events.amended);
  t.deepEqual(amended, { ...reset, bundle: '/srv/other' });
});

test('the hint says what to do next, per state', (t) => {
  const hint = (from: ContainerStatus, to: ContainerStatus, operation: string) => new IllegalTransitionError('web1', from, to, operation).hint;
  t.is(hint('checkpointed', 'checkpointed', 'checkpoint'), 'restore it first with `runtime restore web1`');
  t.is(hint('stopped', 'checkpointed', 'checkpoint'), 'remove it with `runtime delete web1`, or restore a checkpoint of it');
  t.is(hint('stopped', 'stopped', 'restore'), 'it has no checkpoint to restore; remove it with `runtime delete web1`');
  t.is(hint('running', 'running', 'restore'), 'it is running; checkpoint it or stop it with `runtime kill web1`');
  t.is(hint('creating', 'checkpointed', 'checkpoint'), 'wait for it to start, or remove it with `runtime delete -f`');
});
