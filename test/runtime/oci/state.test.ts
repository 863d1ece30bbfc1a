import test from 'ava';
import { OciStateSchema, ociStatuses } from '../../../src/runtime/oci/index.js';

const running = { ociVersion: '1.2.0', id: 'demo', status: 'running', pid: 4242, bundle: '/srv/bundles/demo' };

test('a running state parses and keeps runtime-defined extra keys', (t) => {
  const state = OciStateSchema.parse({ ...running, annotations: { a: 'b' }, 'x-started': 17 });
  t.is(state.status, 'running');
  t.is(state.pid, 4242);
  t.is(state['x-started'], 17);
});

test('the statuses are the four of the spec plus checkpointed', (t) => {
  t.deepEqual([...ociStatuses], ['creating', 'created', 'running', 'stopped', 'checkpointed']);
  const state = OciStateSchema.parse({ ociVersion: '1.2.0', id: 'demo', status: 'checkpointed', bundle: '/b' });
  t.is(state.status, 'checkpointed');
  t.is(state.pid, undefined);
});

test('an unknown status is rejected', (t) => {
  const result = OciStateSchema.safeParse({ ...running, status: 'paused' });
  t.false(result.success);
  t.deepEqual(
    result.error?.issues.map((i) => i.path),
    [['status']],
  );
});

test('created and running need a pid; stopped does not', (t) => {
  const { pid: _pid, ...withoutPid } = running;
  const result = OciStateSchema.safeParse(withoutPid);
  t.false(result.success);
  t.deepEqual(
    result.error?.issues.map((i) => i.path),
    [['pid']],
  );
  t.false(OciStateSchema.safeParse({ ...withoutPid, status: 'created' }).success);
  t.true(OciStateSchema.safeParse({ ...withoutPid, status: 'stopped' }).success);
});

test('the bundle must be absolute and the pid positive', (t) => {
  t.deepEqual(
    OciStateSchema.safeParse({ ...running, bundle: 'bundles/demo' }).error?.issues.map((i) => i.path),
    [['bundle']],
  );
  t.deepEqual(
    OciStateSchema.safeParse({ ...running, pid: 0 }).error?.issues.map((i) => i.path),
    [['pid']],
  );
});
