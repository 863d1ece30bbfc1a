import 'reflect-metadata';
import test from 'ava';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { LinuxProcessService, parseLazyMappings, parseProcCgroup, parseProcStat } from '../../src/system/processes.js';

// /proc/<pid>/stat of a process whose comm is "(sd) pam)": 52 fields, starttime is field 22.
const statLine =
  '1234 ((sd) pam)) S 1 1234 1234 0 -1 4194560 120 0 0 0 3 1 0 0 20 0 1 0 98765432 9875456 512 ' +
  '18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 17 3 0 0 0 0 0 0 0 0 0 0 0 0 0\n';

test('parseProcStat: comm with spaces and ")" is split after the last ")"', (t) => {
  t.deepEqual(parseProcStat(statLine), { pid: 1234, comm: '(sd) pam)', state: 'S', ppid: 1, startTime: '98765432' });
  t.deepEqual(parseProcStat('77 (my prog) Z 76 77 77 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 555 0 0'), {
    pid: 77,
    comm: 'my prog',
    state: 'Z',
    ppid: 76,
    startTime: '555',
  });
});

test('parseProcStat: where the arguments and environment lie (fields 48-51), when the kernel shows them', (t) => {
  // Fields 3 to 52 after "pid (comm) ", as Linux 6.x writes them; 48-51 are rest[45..48].
  const rest = Array.from({ length: 50 }, () => '0');
  rest.splice(45, 4, '140721221392917', '140721221392937', '140721221392937', '140721221394411');
  t.deepEqual(parseProcStat(`77 (my prog) ${rest.join(' ')}\n`).argumentAreas, [
    { start: 140721221392917, end: 140721221392937 },
    { start: 140721221392937, end: 140721221394411 },
  ]);
  t.is(parseProcStat(statLine).argumentAreas, undefined, 'zeros: not shown to this reader');
  t.is(parseProcStat('77 (x) S 1 77 77 0').argumentAreas, undefined, 'a short line');
});

test('parseProcStat: malformed text throws', (t) => {
  t.throws(() => parseProcStat('1234 no-parens S 1'), { message: /^malformed \/proc stat: 1234 no-parens/ });
  t.throws(() => parseProcStat(')1234 ( S'), { message: /^malformed \/proc stat/ });
});

test('parseProcCgroup: v1 controllers, named hierarchies and the v2 line', (t) => {
  const text = '12:pids:/runtime/web1\n4:cpu,cpuacct:/runtime/web1\n1:name=systemd:/user.slice/a:b\n0::/runtime/web1\n';
  t.deepEqual(parseProcCgroup(text), [
    { hierarchy: 12, controllers: ['pids'], path: '/runtime/web1' },
    { hierarchy: 4, controllers: ['cpu', 'cpuacct'], path: '/runtime/web1' },
    { hierarchy: 1, controllers: ['name=systemd'], path: '/user.slice/a:b' },
    { hierarchy: 0, controllers: [], path: '/runtime/web1' },
  ]);
  t.deepEqual(parseProcCgroup(''), []);
});

test('LinuxProcessService on this very process', async (t) => {
  const processes = new LinuxProcessService();
  const stat = await processes.stat(process.pid);
  t.is(stat?.pid, process.pid);
  t.is(stat?.ppid, process.ppid);
  t.regex(stat?.startTime ?? '', /^\d+$/);
  t.is(stat?.comm, (await readFile('/proc/self/comm', 'utf8')).trim());

  const identity = await processes.identify(process.pid);
  t.deepEqual(identity, { pid: process.pid, startTime: stat!.startTime });
  t.true(await processes.isAlive(identity!));
  t.deepEqual(await processes.cgroups(process.pid), parseProcCgroup(await readFile('/proc/self/cgroup', 'utf8')));
});

test('a pid that does not exist', async (t) => {
  const processes = new LinuxProcessService();
  // Above the kernel's largest pid_max (2^22).
  const pid = 2 ** 22 + 12345;
  t.is(await processes.stat(pid), undefined);
  t.is(await processes.identify(pid), undefined);
  t.false(await processes.isAlive({ pid, startTime: '1' }));
  t.false(await processes.signal({ pid, startTime: '1' }, 0));
});

test('a wrong start time: not alive, and signal sends nothing', async (t) => {
  const processes = new LinuxProcessService();
  const identity = (await processes.identify(process.pid))!;
  const impostor = { pid: process.pid, startTime: String(BigInt(identity.startTime) + 1n) };
  let received = 0;
  const onSignal = () => {
    received++;
  };
  process.on('SIGUSR2', onSignal);
  t.teardown(() => {
    process.off('SIGUSR2', onSignal);
  });

  t.false(await processes.isAlive(impostor));
  t.false(await processes.signal(impostor, 'SIGUSR2'));
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.is(received, 0);

  // The real identity is signalled.
  t.true(await processes.signal(identity, 'SIGUSR2'));
  for (let i = 0; i < 100 && received === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
  t.is(received, 1);
});

/** A mapping as /proc/<pid>/smaps shows it, with the fields parseLazyMappings reads and a few it skips. */
function smapsEntry(range: string, sizeKb: number, rssKb: number, swapKb: number, flags: string): string {
  return [
    `${range} rw-p 00000000 00:00 0 `,
    `Size:           ${sizeKb} kB`,
    'KernelPageSize:        4 kB',
    `Rss:            ${rssKb} kB`,
    'Pss:                   4 kB',
    `Swap:           ${swapKb} kB`,
    'Locked:                0 kB',
    'THPeligible:           0',
    `VmFlags: ${flags}`,
  ].join('\n');
}

test('parseLazyMappings: mappings registered for missing pages ("um") with pages neither resident nor swapped', (t) => {
  const smaps = [
    smapsEntry('7f0000000000-7f0004000000', 65536, 1024, 512, 'rd wr mr mw me ac um'),
    smapsEntry('7f0004000000-7f0004010000', 64, 60, 4, 'rd wr mr mw me ac um'),
    smapsEntry('7f0005000000-7f0006000000', 16384, 0, 0, 'rd wr mr mw me ac'),
    smapsEntry('7f0006000000-7f0006001000', 4, 0, 0, 'mr mw me ac um').replace(' rw-p ', ' ---p '),
    smapsEntry('7ffd00000000-7ffd00021000', 132, 8, 0, 'rd wr mr mw me gd ac um sd'),
    '',
  ].join('\n');
  t.deepEqual(parseLazyMappings(smaps), [
    { start: 0x7f0000000000, end: 0x7f0004000000, missingBytes: (65536 - 1024 - 512) * 1024 },
    { start: 0x7ffd00000000, end: 0x7ffd00021000, missingBytes: (132 - 8) * 1024 },
  ]);
  t.deepEqual(parseLazyMappings(''), []);
});

test('LinuxProcessService reads memory of a live process to fault it in, skips what is unmapped, and knows when it is gone', async (t) => {
  const processes = new LinuxProcessService();
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  t.teardown(() => child.kill('SIGKILL'));
  await once(child, 'spawn');
  const pid = child.pid!;
  const stack = /^([0-9a-f]+)-([0-9a-f]+) .*\[stack\]$/m.exec(await readFile(`/proc/${pid}/maps`, 'utf8'))!;
  t.true(await processes.faultIn(pid, parseInt(stack[1]!, 16), parseInt(stack[2]!, 16)));
  t.true(await processes.faultIn(pid, 0x10000, 0x14000), 'pages that are not mapped are skipped');
  t.deepEqual(await processes.lazyMappings(pid), [], 'a process no lazy restore made has nothing registered with userfaultfd');

  child.kill('SIGKILL');
  await once(child, 'exit');
  t.false(await processes.faultIn(pid, parseInt(stack[1]!, 16), parseInt(stack[2]!, 16)));
  t.deepEqual(await processes.lazyMappings(pid), []);
});
