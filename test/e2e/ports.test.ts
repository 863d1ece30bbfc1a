/**
 * Published ports, end to end: a busybox httpd container run with -p answers on the host port
 * before and after a checkpoint and restore, and after every reset, at the same host address;
 * at a reset the old instance's connections are closed and new ones reach the new instance.
 */
import test from 'ava';
import http from 'node:http';
import net from 'node:net';
import { freePort } from '../helpers/net.js';
import { execa } from 'execa';
import { e2e, sandbox, waitFor } from './helpers.js';

const serial = e2e(test);

/** GET over the published port, from the host. */
async function get(port: number, file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const request = http.get({ host: '127.0.0.1', port, path: `/${file}`, timeout: 5000, agent: false }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => (response.statusCode === 200 ? resolve(body.trim()) : reject(new Error(`GET ${file}: HTTP ${response.statusCode}`))));
      response.on('error', reject);
    });
    request.on('timeout', () => request.destroy(new Error(`GET ${file} on port ${port}: timed out`)));
    request.on('error', reject);
  });
}

/** The httpd serves /tmp; a file the test writes through the container changes what a GET returns. */
const script = ['echo v1 >/tmp/version', 'echo $$ >/tmp/pid', 'exec httpd -f -p 8080 -h /tmp'].join('\n');

serial('a published port answers across checkpoint, restore and resets, at the same host address', async (t) => {
  const box = await sandbox(t);
  const port = await freePort();
  const bundle = await box.bundle('web', ['sh', '-c', script]);

  const run = await box.cli(['run', '-d', '-p', `127.0.0.1:${port}:8080`, '--bundle', bundle, 'web']);
  t.is(run.exitCode, 0, run.stderr);
  t.is(await waitFor('the published port to answer', () => get(port, 'version').catch(() => undefined)), 'v1');

  const checkpoint = await box.cli(['checkpoint', 'web']);
  t.is(checkpoint.exitCode, 0, checkpoint.stderr);
  // Checkpointed, the container has no parent and so no published port.
  await t.throwsAsync(get(port, 'version'));

  const restore = await box.cli(['restore', '-d', 'web']);
  t.is(restore.exitCode, 0, restore.stderr);
  t.is(await get(port, 'version'), 'v1', 'the same port reaches the restored container');

  const snapshot = await box.cli(['checkpoint', '--name', 'pristine', '--leave-running', 'web']);
  t.is(snapshot.exitCode, 0, snapshot.stderr);
  for (let round = 1; round <= 3; round++) {
    // The test changes the container: the port shows the change...
    const pid = (await box.runtime.state('web')).pid!;
    await execa('nsenter', ['-t', String(pid), '-m', '-p', 'sh', '-c', `echo changed-${round} >/tmp/version`]);
    t.is(await get(port, 'version'), `changed-${round}`);
    // ...and a connection is held open across the reset.
    const held = net.connect(port, '127.0.0.1');
    held.on('error', () => undefined);
    await new Promise<void>((resolve) => held.once('connect', () => resolve()));
    const closed = new Promise<void>((resolve) => held.once('close', () => resolve()));

    const reset = await box.cli(['reset', 'web', 'pristine']);
    t.is(reset.exitCode, 0, reset.stderr);
    await closed;
    t.is(await get(port, 'version'), 'v1', `round ${round}: the reset instance answers on the same port`);
  }
  t.log(`published 127.0.0.1:${port} -> 8080 through a checkpoint, a restore and 3 resets`);
});

serial('a port in use fails the run before the container starts; -p needs a network namespace', async (t) => {
  const box = await sandbox(t);
  const taken = net.createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', () => resolve()));
  t.teardown(() => taken.close());
  const { port } = taken.address() as net.AddressInfo;
  const bundle = await box.bundle('busy', ['sh', '-c', script]);
  const run = await box.cli(['run', '-d', '-p', `127.0.0.1:${port}:8080`, '--bundle', bundle, 'busy']);
  t.is(run.exitCode, 1);
  t.regex(run.stderr, /cannot publish 127\.0\.0\.1:\d+->8080\/tcp: the host port is in use/);
  t.deepEqual(await box.runtime.list(), [], 'nothing is left of the container');

  const shared = await box.bundle('hostnet', ['sh', '-c', script], (spec) => {
    spec.linux.namespaces = spec.linux.namespaces.filter((ns: { type: string }) => ns.type !== 'network');
  });
  const refused = await box.cli(['run', '-d', '-p', '18080:8080', '--bundle', shared, 'hostnet']);
  t.is(refused.exitCode, 2);
  t.regex(refused.stderr, /has no network namespace of its own/);
});
