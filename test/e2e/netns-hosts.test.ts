/**
 * The two-host helper the migration tests stand on: a TCP connection from host a reaches host b
 * over the veth, and cut() stalls an established connection, without a reset, until heal().
 * The endpoints are small Node scripts run inside the hosts, reporting what their socket sees on
 * stdout, one event a line.
 */
import test from 'ava';
import type { ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { e2e, waitFor } from './helpers.js';
import { twoHosts, type Host } from './netns-hosts.js';

const serial = e2e(test);

const port = 7000;

/** Echoes every line back; reports accepted peers, received lines, errors and closes. */
const serverScript = `
const net = require('node:net');
const [address, port] = process.argv.slice(1);
net.createServer((socket) => {
  console.log('accepted ' + socket.remoteAddress);
  let rest = '';
  socket.on('data', (data) => {
    rest += data;
    const lines = rest.split('\\n');
    rest = lines.pop();
    for (const line of lines) { console.log('got ' + line); socket.write(line + '\\n'); }
  });
  socket.on('error', (error) => console.log('error ' + error.code));
  socket.on('close', () => console.log('closed'));
}).listen(Number(port), address, () => console.log('listening'));
`;

/** Sends each stdin line; reports connecting, echoed lines, errors and closes. */
const clientScript = `
const net = require('node:net');
const [address, port] = process.argv.slice(1);
const socket = net.connect(Number(port), address, () => console.log('connected ' + socket.localAddress));
socket.on('data', (data) => { for (const line of String(data).split('\\n')) if (line) console.log('echo ' + line); });
socket.on('error', (error) => console.log('error ' + error.code));
socket.on('close', () => console.log('closed'));
process.stdin.on('data', (data) => socket.write(data));
`;

interface Endpoint {
  readonly child: ChildProcess;
  readonly lines: string[];
  /** Waits for a line starting with start and returns it. */
  line(start: string, timeoutMs?: number): Promise<string>;
}

function run(host: Host, script: string, address: string): Endpoint {
  const child = host.spawn([process.execPath, '-e', script, address, String(port)], { stdio: ['pipe', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let rest = '';
  child.stdout!.on('data', (data: Buffer) => {
    rest += data.toString();
    const complete = rest.split('\n');
    rest = complete.pop()!;
    lines.push(...complete);
  });
  child.stderr!.on('data', (data: Buffer) => lines.push(`stderr ${data.toString().trim()}`));
  return {
    child,
    lines,
    line: (start, timeoutMs = 10_000) =>
      waitFor(`"${start}" from ${host.name} (has: ${lines.join(' | ')})`, async () => lines.find((l) => l.startsWith(start)), timeoutMs),
  };
}

/** Connections in ESTABLISHED state in the host's namespace. */
async function established(host: Host): Promise<number> {
  const { stdout } = await host.exec(['ss', '-Htn', 'state', 'established']);
  return stdout.split('\n').filter((line) => line.trim() !== '').length;
}

/** A server on b, a client on a connected to it, one line echoed both ways. */
async function connected(a: Host, b: Host): Promise<{ server: Endpoint; client: Endpoint }> {
  const server = run(b, serverScript, b.address);
  await server.line('listening');
  const client = run(a, clientScript, b.address);
  await client.line('connected');
  client.child.stdin!.write('before\n');
  await client.line('echo before');
  return { server, client };
}

serial('a TCP connection from host a reaches host b over the veth', async (t) => {
  const { a, b } = await twoHosts(t, 'netns-hosts-tcp');
  t.not(a.address, b.address);
  t.regex(a.address, /^10\./);

  const { server, client } = await connected(a, b);
  // b saw a's veth address: the packets went over the link, not through some shared namespace.
  t.is(await server.line('accepted'), `accepted ${a.address}`);
  t.is(await client.line('connected'), `connected ${a.address}`);
  t.truthy(await server.line('got before'));
});

serial('cut() stalls an established connection, without a reset, until heal()', async (t) => {
  const hosts = await twoHosts(t, 'netns-hosts-cut');
  const { a, b } = hosts;
  const { server, client } = await connected(a, b);

  await hosts.cut();
  client.child.stdin!.write('during\n');
  await sleep(2_000);
  t.false(server.lines.includes('got during'), 'a line went through the cut link');
  const ended = (lines: string[]) => lines.filter((line) => line.startsWith('error') || line === 'closed');
  t.deepEqual(ended(client.lines), [], 'the client saw its connection end');
  t.deepEqual(ended(server.lines), [], 'the server saw its connection end');
  t.is(await established(a), 1);
  t.is(await established(b), 1);

  const healedAt = Date.now();
  await hosts.heal();
  await server.line('got during');
  await client.line('echo during');
  t.log(`the stalled line arrived ${Date.now() - healedAt} ms after heal()`);
  t.deepEqual(ended(client.lines), []);
  t.deepEqual(ended(server.lines), []);
});

serial('cut({ drop: true }) is a silent partition: a new connection waits instead of failing', async (t) => {
  const hosts = await twoHosts(t, 'netns-hosts-drop');
  const { a, b } = hosts;
  const server = run(b, serverScript, b.address);
  await server.line('listening');

  await hosts.cut({ drop: true });
  const client = run(a, clientScript, b.address);
  await sleep(1_500);
  t.deepEqual(client.lines, [], 'the connection attempt should neither succeed nor fail while cut');

  await hosts.heal();
  // The SYN is sent again 1 s, then 2 s, after the first: it gets through soon after heal().
  t.is(await client.line('connected'), `connected ${a.address}`);
});
