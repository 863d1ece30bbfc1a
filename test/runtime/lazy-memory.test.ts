/**
 * Filling in a lazily restored tree's memory before a dump, with the recording fake process table:
 * every process of the tree is read where pages are missing, a tree with none is only looked at,
 * and memory no daemon serves any more refuses the dump.
 */
import 'reflect-metadata';
import test from 'ava';
import { fillInArguments, fillInLazyMemory, LazyMemoryMissingError } from '../../src/runtime/lazy-memory.js';
import { FakeProcesses } from '../helpers/fakes.js';

const MiB = 2 ** 20;

function lazyTree(): { processes: FakeProcesses; init: number; child: number } {
  const processes = new FakeProcesses();
  const init = processes.spawn({ comm: 'postgres' }).pid;
  const child = processes.spawn({ comm: 'postgres' }).pid;
  processes.childPids.set(init, [child]);
  processes.lazy.set(init, [
    { start: 0x1000_0000, end: 0x1000_0000 + 64 * MiB, missingBytes: 60 * MiB },
    { start: 0x7000_0000, end: 0x7000_0000 + MiB, missingBytes: 4096 },
  ]);
  processes.lazy.set(child, [{ start: 0x2000_0000, end: 0x2000_0000 + 8 * MiB, missingBytes: 8 * MiB }]);
  return { processes, init, child };
}

test("every process of the tree has its missing memory read in, the tree's root first", async (t) => {
  const { processes, init, child } = lazyTree();
  t.deepEqual(await fillInLazyMemory(processes, 'db', init), { bytes: 68 * MiB + 4096, processes: 2 });
  t.deepEqual(processes.faultIns, [
    { pid: init, start: 0x1000_0000, end: 0x1000_0000 + 64 * MiB },
    { pid: init, start: 0x7000_0000, end: 0x7000_0000 + MiB },
    { pid: child, start: 0x2000_0000, end: 0x2000_0000 + 8 * MiB },
  ]);
});

test('a tree no lazy restore made is looked at, not read', async (t) => {
  const processes = new FakeProcesses();
  const init = processes.spawn().pid;
  t.deepEqual(await fillInLazyMemory(processes, 'db', init), { bytes: 0, processes: 0 });
  t.deepEqual(processes.faultIns, []);
});

test('memory that stays missing (no daemon serves it) refuses the dump, naming the processes', async (t) => {
  const { processes, init, child } = lazyTree();
  processes.lazyDaemonServes = false;
  const error = await t.throwsAsync(fillInLazyMemory(processes, 'db', init), { instanceOf: LazyMemoryMissingError });
  t.is(error.code, 'LAZY_MEMORY_MISSING');
  t.deepEqual(error.missing, [
    { pid: init, bytes: 60 * MiB + 4096 },
    { pid: child, bytes: 8 * MiB },
  ]);
  t.regex(error.message, /^container db was restored lazily and 62918656 bytes of process \d+, 8388608 bytes of process \d+ could not be copied in/);
  t.is(processes.faultIns.length, 3 * 3, 'three tries for each mapping');
});

test('a process that has ended is passed over', async (t) => {
  const { processes, init, child } = lazyTree();
  processes.exit(child);
  t.deepEqual(await fillInLazyMemory(processes, 'db', init), { bytes: 64 * MiB - 4 * MiB + 4096, processes: 1 });
});

test("each task's arguments and environment are read in, whole pages, so that ps can read them", async (t) => {
  const { processes, init, child } = lazyTree();
  processes.argumentAreas.set(init, [
    { start: 0x7ffc_0000_1ff0, end: 0x7ffc_0000_2100 },
    { start: 0x7ffc_0000_2100, end: 0x7ffc_0000_2400 },
  ]);
  // Arguments moved far below the environment (PR_SET_MM_ARG_START): two ranges, not what lies between.
  processes.argumentAreas.set(child, [
    { start: 0x5555_0000_0010, end: 0x5555_0000_0020 },
    { start: 0x7ffc_1000_0010, end: 0x7ffc_1000_0020 },
  ]);
  t.is(await fillInArguments(processes, init), 2);
  t.deepEqual(processes.faultIns, [
    { pid: init, start: 0x7ffc_0000_1000, end: 0x7ffc_0000_3000 },
    { pid: init, start: 0x7ffc_0000_2000, end: 0x7ffc_0000_3000 },
    { pid: child, start: 0x5555_0000_0000, end: 0x5555_0000_1000 },
    { pid: child, start: 0x7ffc_1000_0000, end: 0x7ffc_1000_1000 },
  ]);
});
