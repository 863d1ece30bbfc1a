/** What delete -f still uses of a state file it cannot read: cgroups and the monitor, plainly named. */
import test from 'ava';
import { salvageRecord } from '../../src/runtime/delete.js';

test('salvageRecord: the cgroups and the monitor an unreadable record still names', (t) => {
  const record = {
    id: 'web1',
    status: 'exploded',
    cgroupPath: '/runtime/web1/3',
    cgroupBase: '/runtime/web1',
    monitor: { pid: 4242, startTime: '123456' },
  };
  t.deepEqual(salvageRecord(JSON.stringify(record)), { cgroups: ['/runtime/web1', '/runtime/web1/3'], monitor: { pid: 4242, startTime: '123456' } });
  t.deepEqual(salvageRecord(JSON.stringify({ ...record, cgroupBase: undefined })).cgroups, ['/runtime/web1/3']);
});

test('salvageRecord: nothing from text that is no JSON object, or fields of the wrong kind', (t) => {
  for (const text of ['', '{', 'null', '[]', '"x"']) t.deepEqual(salvageRecord(text), { cgroups: [] }, text);
  t.deepEqual(salvageRecord(JSON.stringify({ cgroupPath: 7, cgroupBase: '', monitor: { pid: 1, startTime: '5' } })), { cgroups: [] });
  t.deepEqual(salvageRecord(JSON.stringify({ monitor: { pid: 99, startTime: 5 } })), { cgroups: [] }, 'a start time is digits in a string');
});
