import anyTest, { type TestFn } from 'ava';
import test from 'ava';
import { describeSocket, readInspection } from '../../../src/runtime/inspection/read.js';
import {
  describeSocketLine,
  formatBytes,
  formatInspection,
  formatInspectionJson,
  formatMicroseconds,
  renderTree,
} from '../../../src/runtime/inspection/format.js';
import { inspectImagesDir, withPycriu } from './helpers.js';

const imageTest = withPycriu(anyTest as TestFn, 'inspection format tests');

test("renderTree draws checkpointctl's branches", (t) => {
  const text = renderTree({
    label: 'root',
    children: [
      { label: 'a', children: [{ label: 'a1' }, { label: 'a2' }] },
      { label: 'b', children: [{ label: 'b1' }] },
    ],
  });
  t.is(text, 'root\n├── a\n│   ├── a1\n│   └── a2\n└── b\n    └── b1\n');
});

test('durations and sizes', (t) => {
  t.is(formatMicroseconds(595), '595µs');
  t.is(formatMicroseconds(205476), '205.476ms');
  t.is(formatMicroseconds(2000), '2ms');
  t.is(formatMicroseconds(1_500_000), '1.5s');
  t.is(formatBytes(512), '512 B');
  t.is(formatBytes(1536), '1.5 KiB');
  t.is(formatBytes(1024 ** 3), '1.0 GiB');
});

test('an INET socket from files.img (pretty) reads as protocol, state and addresses', (t) => {
  const socket = describeSocket(4, 'INETSK', {
    id: 9,
    ino: 1234,
    family: 'INET',
    type: 'STREAM',
    proto: 'TCP',
    state: 'LISTEN',
    src_port: 8080,
    dst_port: 0,
    src_addr: ['0.0.0.0'],
    dst_addr: ['0.0.0.0'],
  });
  t.deepEqual(socket, {
    fd: 4,
    family: 'INET',
    type: 'STREAM',
    protocol: 'TCP',
    state: 'LISTEN',
    local: '0.0.0.0:8080',
    remote: '0.0.0.0:0',
    inode: 1234,
  });
  t.is(describeSocketLine(socket), '[TCP (LISTEN)]  fd 4  0.0.0.0:8080 -> 0.0.0.0:0');
  const v6 = describeSocket(5, 'INETSK', { family: 'INET6', type: 'DGRAM', proto: 'UDP', state: 'CLOSE', src_port: 53, src_addr: ['::1'] });
  t.is(v6.local, '[::1]:53');
});

test('a unix socket: abstract names get "@", a peer shows as its inode', (t) => {
  const socket = describeSocket(3, 'UNIXSK', { ino: 10, type: 'STREAM', state: 'ESTABLISHED', peer: 11, name: '=00abstract' });
  t.like(socket, { family: 'UNIX', local: '@abstract', remote: 'unix[11]', inode: 10 });
  t.is(describeSocketLine(socket), '[UNIX STREAM (ESTABLISHED)]  fd 3  @abstract -> unix[11]');
});

imageTest('the tree of the fixture checkpoint has every section', async (t) => {
  const inspection = await readInspection(inspectImagesDir);
  const text = formatInspection(inspection);
  t.true(text.startsWith(`Checkpoint ${inspectImagesDir}\n├── Container: fix\n`));
  for (const line of [
    '├── CRIU dump statistics\n│   ├── Freezing time: 100.962ms\n│   ├── Frozen time: 334.107ms\n',
    '├── CRIU restore statistics\n│   ├── Restore time: 285.68ms\n',
    '├── Process tree\n│   └── [1]  sh  (exe /bin/busybox)\n│       ├── [7]  syslogd  (exe /bin/busybox)\n',
    '│   │   ├── [REG 3]  /data/a.txt\n',
    '├── Sockets\n│   └── [7]  syslogd\n│       └── [UNIX DGRAM (CLOSE)]  fd 0  /dev/log\n',
    '│   ├── [1]  sh  76.0 KiB (19 pages) of 2.2 MiB mapped in 11 VMAs\n',
    '    ├── /proc/keys\n    │   ├── Type: tmpfs\n    │   ├── Source: tmpfs (/null)\n    │   └── External: /dev/null\n',
  ]) {
    t.true(text.includes(line), line);
  }
  t.deepEqual(JSON.parse(formatInspectionJson(inspection)), JSON.parse(JSON.stringify(inspection)));
});
