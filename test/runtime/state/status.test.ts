import test from 'ava';
import { IllegalTransitionError, assertTransition, canTransition, statuses, type ContainerStatus } from '../../../src/runtime/state/status.js';

const allowed: ReadonlySet<string> = new Set([
  'creating→running',
  'creating→stopped',
  'running→stopped',
  'running→checkpointed',
  'checkpointed→running',
  'stopped→running',
]);

test('the statuses', (t) => {
  t.deepEqual([...statuses], ['creating', 'running', 'stopped', 'checkpointed']);
});

for (const from of statuses) {
  for (const to of statuses) {
    const ok = allowed.has(`${from}→${to}`);
    test(`${from} → ${to} is ${ok ? 'allowed' : 'forbidden'}`, (t) => {
      t.is(canTransition(from, to), ok);
      if (ok) {
        t.notThrows(() => assertTransition('web1', from, to, 'move'));
        return;
      }
      const error = t.throws(() => assertTransition('web1', from, to, 'move'), { instanceOf: IllegalTransitionError });
      t.is(error.code, 'ILLEGAL_TRANSITION');
      t.is(error.from, from);
      t.is(error.to, to);
      t.is(error.id, 'web1');
      t.is(error.operation, 'move');
      t.is(error.message, `cannot move container "web1": it is ${from}, and a ${from} container cannot become ${to}`);
      t.truthy(error.hint);
    });
  }
}

test('every pair is covered: 6 allowed of 16', (t) => {
  let count = 0;
  for (const from of statuses) for (const to of statuses) if (canTransition(from, to)) count++;
  t.is(count, 6);
});

test('the hint says what to do next, per state', (t) => {
  const hint = (from: ContainerStatus, to: ContainerStatus, operation: string) =>
    new IllegalTransitionError('web1', from, to, operation).hint;
  t.is(hint('checkpointed', 'checkpointed', 'checkpoint'), 'restore it first with `runtime restore web1`');
  t.is(hint('stopped', 'checkpointed', 'checkpoint'), 'remove it with `runtime delete web1`, or restore a checkpoint of it');
  t.is(hint('stopped', 'stopped', 'restore'), 'it has no checkpoint to restore; remove it with `runtime delete web1`');
  t.is(hint('running', 'running', 'restore'), 'it is running; checkpoint it or stop it with `runtime kill web1`');
  t.is(hint('creating', 'checkpointed', 'checkpoint'), 'wait for it to start, or remove it with `runtime delete -f`');
});
