/**
 * Published ports: docker's -p syntax, and the forwarder with real network namespaces (as root):
 * two servers in namespaces of their own answer on the same container port, and the forwarder's
 * one host port reaches whichever it is switched to.
 */
import test, { type ExecutionContext } from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { freePort } from '../helpers/net.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { PortInUseError, checkPublished, formatPort, parsePublish } from '../../src/runtime/ports.js';
import { PortForwarder } from '../../src/runtime/port-forwarder.js';
import { UsageError } from '../../src/runtime/errors.js';
import { createLogger } from '../../src/runtime/logger.js';
import { rootTest } from '../rootfs/helpers/root.js';

test('parsePublish: docker syntax, with and without a host address', (t) => {
  t.deepEqual(parsePublish('15432:5432'), { hostIp: '0.0.0.0', hostPort: 15432, containerPort: 5432 });
  t.deepEqual(parsePublish('127.0.0.1:8080:80'), { hostIp: '127.0.0.1', hostPort: 8080, containerPort: 80 });
  t.deepEqual(parsePublish('8080:80/tcp'), { hostIp: '0.0.0.0', hostPort: 8080, containerPort: 80 });
  t.deepEqual(parsePublish('[::1]:6380:6379'), { hostIp: '::1', hostPort: 6380, containerPort: 6379 });
  t.is(formatPort(parsePublish('[::1]:6380:6379')), '[::1]:6380->6379/tcp');
  t.is(formatPort(parsePublish('127.0.0.1:8080:80')), '127.0.0.1:8080->80/tcp');
});

test('parsePublish: bad input is a usage error saying the syntax', (t) => {
  for (const bad of ['80', '0:80', '80:70000', 'a:80', '1.2.3:80:80', '80:80/udp', '[nope]:80:80', '1:2:3:4', '']) {
    const error = t.throws(() => parsePublish(bad), { instanceOf: UsageError }, bad);
    t.is(error.code, 'USAGE');
    t.regex(error.hint ?? '', /HOST_PORT:CONTAINER_PORT/);
  }
});

test('checkPublished: one host port may be published once per address', (t) => {
  t.notThrows(() => checkPublished([parsePublish('127.0.0.1:80:80'), parsePublish('127.0.0.2:80:80')]));
  t.throws(() => checkPublished([parsePublish('8080:80'), parsePublish('8080:81')]), { instanceOf: UsageError });
});

/** A server in a new network namespace (loopback up) that answers every line with `name:line`. */
async function serverInNamespace(t: ExecutionContext, name: string, port: number): Promise<ChildProcess> {
  const script = `
    const net = require('node:net');
    net.createServer((s) => s.on('data', (d) => s.write('${name}:' + d))).listen(${port}, '127.0.0.1', () => process.stdout.write('ready\\n'));`;
  const child = spawn('unshare', ['--net', 'sh', '-c', `ip link set lo up && exec ${process.execPath} -e "$0"`, script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.teardown(() => child.kill('SIGKILL'));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`the server in a namespace exited (${code})`)));
  });
  return child;
}

async function ask(port: number, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(`${line}\n`));
    let text = '';
    socket.on('data', (chunk) => {
      text += chunk.toString();
      if (text.endsWith('\n')) {
        socket.end();
        resolve(text.trim());
      }
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(text.trim()));
  });
}

/** A forwarder of a free host port to container port 7777, listening; closed after the test. */
async function listening(t: ExecutionContext): Promise<{ hostPort: number; forwarder: PortForwarder }> {
  const hostPort = await freePort();
  const forwarder = new PortForwarder(
    [{ hostIp: '127.0.0.1', hostPort, containerPort: 7777 }],
    createLogger({ level: 'error', format: 'text', file: '' }),
  );
  await forwarder.listen();
  t.teardown(() => forwarder.close());
  return { hostPort, forwarder };
}

/** A connection to the host port that its client keeps open; resolves, once connected, with its end (in an object: a promise would be awaited through). */
async function heldOpen(hostPort: number): Promise<{ closed: Promise<void> }> {
  const held = net.connect(hostPort, '127.0.0.1');
  const closed = new Promise<void>((resolve) => held.on('close', () => resolve()));
  held.on('error', () => undefined);
  await new Promise<void>((resolve) => held.once('connect', () => resolve()));
  await sleep(50);
  return { closed };
}

rootTest("the forwarder reaches the instance it is switched to, and closes the old one's connections", async (t) => {
  const one = await serverInNamespace(t, 'one', 7777);
  const two = await serverInNamespace(t, 'two', 7777);
  const { hostPort, forwarder } = await listening(t);

  // Before an instance is set, a connection is closed at once.
  t.is(await ask(hostPort, 'hello'), '');

  forwarder.switchTo(one.pid);
  t.is(await ask(hostPort, 'hello'), 'one:hello');

  // A connection held open across the switch is closed by it.
  const { closed } = await heldOpen(hostPort);
  forwarder.switchTo(two.pid);
  await closed;
  t.is(await ask(hostPort, 'again'), 'two:again');

  // The host port is the forwarder's alone.
  const second = new PortForwarder([{ hostIp: '127.0.0.1', hostPort, containerPort: 7777 }], createLogger({ level: 'error', format: 'text', file: '' }));
  const error = await t.throwsAsync(second.listen(), { instanceOf: PortInUseError });
  t.is(error.code, 'PORT_IN_USE');
  t.regex(error.message, /the host port is in use/);

  await forwarder.close();
  await t.throwsAsync(ask(hostPort, 'gone'), { code: 'ECONNREFUSED' });
});

rootTest('closing the forwarder ends the connections it carries, and does not wait for their clients to hang up', async (t) => {
  const one = await serverInNamespace(t, 'one', 7777);
  const { hostPort, forwarder } = await listening(t);
  forwarder.switchTo(one.pid);
  t.is(await ask(hostPort, 'hello'), 'one:hello');
  // A client that keeps its connection open, idle (a pool's connection, a blocking read).
  const { closed } = await heldOpen(hostPort);

  const ended = await Promise.race([forwarder.close().then(() => 'closed'), sleep(3000).then(() => 'still waiting')]);
  t.is(ended, 'closed');
  await closed;
  await t.throwsAsync(ask(hostPort, 'gone'), { code: 'ECONNREFUSED' });
});
