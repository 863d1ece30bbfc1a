/**
 * parseTcpTable: the kernel's /proc/net/tcp and tcp6 lines (written here as the kernel prints
 * them) read into addresses, ports, states, timers, retransmit and probe counts and inodes.
 * tcpSockets: this machine's tables list a server the test listens on. keepAlive: a connection of
 * this process gets its keepalive timer through a copy of its descriptor.
 */
import test from 'ava';
import { readdir, readFile, readlink } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { keepAlive, parseTcpTable, silent, tcpSockets } from '../../src/system/tcp-sockets.js';

const tcp = [
  '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode                                                     ',
  '   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 41234 1 0000000000000000 100 0 0 10 0                     ',
  '   1: 0500000A:A8CA 1401A8C0:6989 01 00001A2B:00000000 01:000002F4 00000003     0        0 52817 2 0000000000000000 1600 0 0 10 -1                   ',
  '   2: 0100007F:1F90 0100007F:D431 06 00000000:00000000 03:00001770 00000000     0        0 0 3 0000000000000000',
  '   3: 0500000A:A8CB 1401A8C0:6989 01 00000000:00000000 02:00000064 00000000     0        3 52818 2 0000000000000000 20 4 30 10 -1',
  '',
].join('\n');

const tcp6 = [
  '  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
  '   0: 0000000000000000FFFF00000100007F:18EB 0000000000000000FFFF00000100007F:C822 01 00000000:00000000 00:00000000 00000000   999        0 61001 1 0000000000000000 20 4 30 10 -1',
  '   1: B80D0120000000000000000001000000:01BB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 61002 1 0000000000000000 100 0 0 10 0',
  '   2: B80D0120000000000000010001000000:0016 B80D0120010000000100010001000100:C350 01 00000024:00000000 01:00000190 0000000A     0        0 61003 2 0000000000000000 3200 0 0 10 -1',
  '',
].join('\n');

test('parseTcpTable reads /proc/net/tcp: a listener, a connection that retransmits, a TIME_WAIT no process holds, an idle connection whose keepalive probes go unanswered', (t) => {
  const sockets = parseTcpTable(tcp, 4);
  t.deepEqual(
    sockets.map((s) => [s.state, s.timer, s.retransmits, s.unansweredProbes, silent(s), s.inode, s.family]),
    [
      ['LISTEN', 'none', 0, 0, false, 41234, 4],
      ['ESTABLISHED', 'retransmit', 3, 0, true, 52817, 4],
      ['TIME_WAIT', 'time-wait', 0, 0, false, 0, 4],
      ['ESTABLISHED', 'keepalive', 0, 3, true, 52818, 4],
    ],
  );
  t.deepEqual(sockets[0], {
    local: { address: '127.0.0.1', port: 8080 },
    remote: { address: '0.0.0.0', port: 0 },
    state: 'LISTEN',
    retransmits: 0,
    unansweredProbes: 0,
    timer: 'none',
    inode: 41234,
    family: 4,
  });
  t.deepEqual(
    [sockets[1]?.local, sockets[1]?.remote],
    [
      { address: '10.0.0.5', port: 43210 },
      { address: '192.168.1.20', port: 27017 },
    ],
  );
  t.deepEqual(sockets[2]?.remote, { address: '127.0.0.1', port: 54321 });
});

test('parseTcpTable reads /proc/net/tcp6: IPv4-mapped and plain IPv6 addresses, compressed as RFC 5952 says', (t) => {
  const sockets = parseTcpTable(tcp6, 6);
  t.deepEqual(
    sockets.map((s) => `${s.local.address} port ${s.local.port} -> ${s.remote.address} port ${s.remote.port}`),
    [
      '::ffff:127.0.0.1 port 6379 -> ::ffff:127.0.0.1 port 51234',
      '2001:db8::1 port 443 -> :: port 0',
      // Of two equal runs of zeros the first is compressed; a lone zero group is not.
      '2001:db8::1:0:0:1 port 22 -> 2001:db8:0:1:1:1:1:1 port 50000',
    ],
  );
  // The retransmit count is hex (0000000A).
  t.deepEqual(
    sockets.map((s) => [s.state, s.retransmits, s.inode, s.family]),
    [
      ['ESTABLISHED', 0, 61001, 6],
      ['LISTEN', 0, 61002, 6],
      ['ESTABLISHED', 10, 61003, 6],
    ],
  );
});

test('tcpSockets lists a server this process listens on, with the inode of its socket', async (t) => {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  t.teardown(() => server.close());
  const { port } = server.address() as net.AddressInfo;

  const socket = (await tcpSockets()).find((s) => s.local.port === port && s.local.address === '127.0.0.1');
  t.like(socket, { state: 'LISTEN', family: 4, remote: { address: '0.0.0.0', port: 0 } });
  t.true((socket?.inode ?? 0) > 0);
  const links = await Promise.all((await readdir('/proc/self/fd')).map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => '')));
  t.true(links.includes(`socket:[${socket?.inode}]`));
});

test('keepAlive turns keepalive on for a connection a process holds: idle, it waits on its keepalive timer and probes every second, and its peer answering leaves it not silent', async (t) => {
  const server = net.createServer((accepted) => t.teardown(() => accepted.destroy()));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  t.teardown(() => server.close());
  const { port } = server.address() as net.AddressInfo;
  const client = net.connect({ host: '127.0.0.1', port });
  await new Promise<void>((resolve) => client.once('connect', () => resolve()));
  t.teardown(() => client.destroy());
  const ours = async () => (await tcpSockets()).find((s) => s.remote.port === port && s.state === 'ESTABLISHED');

  const before = await ours();
  t.is(before?.timer, 'none', 'an idle connection without keepalive has no timer');
  t.true(await keepAlive(process.pid, before!.inode));
  const after = await ours();
  t.is(after?.timer, 'keepalive');
  const sent = await keepaliveProbesSent();
  // Probes go every second from the first idle second on, and loopback answers each.
  await new Promise((resolve) => setTimeout(resolve, 2500));
  t.true((await keepaliveProbesSent()) - sent >= 2, 'at least two probes in 2.5 s (the kernel counts every probe of this network namespace)');
  const probed = await ours();
  t.is(probed?.timer, 'keepalive');
  t.false(silent(probed!));

  t.false(await keepAlive(process.pid, 1), 'no descriptor of this process is that socket');
});

/** The kernel's count of keepalive probes sent in this network namespace (TcpExt TCPKeepAlive). */
async function keepaliveProbesSent(): Promise<number> {
  const lines = (await readFile('/proc/net/netstat', 'utf8')).split('\n').filter((line) => line.startsWith('TcpExt:'));
  const [names, values] = lines.map((line) => line.split(/\s+/));
  return Number(values![names!.indexOf('TCPKeepAlive')]);
}

test('keepAlive finds the socket in a descendant of the process named (CRIU forks for a pre-dump), every 2 s when asked, and says false for a process that holds none', async (t) => {
  const server = net.createServer((accepted) => t.teardown(() => accepted.destroy()));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  t.teardown(() => server.close());
  const { port } = server.address() as net.AddressInfo;
  // A child of this process holds the connection, idle.
  const child = spawn(
    process.execPath,
    ['-e', `require('net').connect(${port}, '127.0.0.1', () => console.log('connected')); setInterval(() => {}, 1000)`],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  t.teardown(() => child.kill('SIGKILL'));
  await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
  const theirs = (await tcpSockets()).find((s) => s.remote.port === port && s.state === 'ESTABLISHED');

  t.false(await keepAlive(child.pid!, 1), 'the child holds no socket of inode 1');
  t.true(await keepAlive(process.pid, theirs!.inode, 2));
  const after = (await tcpSockets()).find((s) => s.inode === theirs!.inode);
  t.is(after?.timer, 'keepalive');
});
