/**
 * Inet sockets, end to end: a container that serves HTTP on TCP and holds an established TCP
 * connection is checkpointed and restored, and goes on serving and sending. CRIU 4.1.1 could not
 * dump any inet socket on kernels >= 6.16 ("Can't get 1:16 opt", criu#2718); 4.2 can.
 */
import test from 'ava';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { e2e, isAlive, sandbox, waitFor } from './helpers.js';

const serial = e2e(test);

/** The TCP ports listening in the network namespace of pid (busybox listens on IPv6, dual-stack). */
async function listeningPorts(pid: number): Promise<number[]> {
  const tables = await Promise.all(['tcp', 'tcp6'].map((name) => readFile(`/proc/${pid}/net/${name}`, 'utf8')));
  const lines = tables.flatMap((table) => table.split('\n').slice(1));
  return lines
    .map((line) => line.trim().split(/\s+/))
    .filter((fields) => fields[3] === '0A')
    .map((fields) => parseInt(fields[1]!.split(':')[1]!, 16));
}

/** GET from inside the network namespace of pid (only the network namespace is entered). */
async function httpGet(pid: number, port: number): Promise<string> {
  const result = await execa('nsenter', [`--net=/proc/${pid}/ns/net`, '/bin/busybox', 'wget', '-q', '-O', '-', `http://127.0.0.1:${port}/index.html`], {
    reject: false,
    timeout: 10_000,
  });
  if (result.exitCode !== 0) throw new Error(`wget failed: ${String(result.stderr)}`);
  return String(result.stdout);
}

/** Lines the container's client sent over its connection and its server wrote to /tmp/received. */
async function received(bundle: string): Promise<number> {
  const text = await readFile(path.join(bundle, 'rootfs/tmp/received'), 'utf8').catch(() => '');
  return text.split('\n').filter((line) => line.startsWith('tick')).length;
}

serial('a container serving on TCP, with an established connection, is checkpointed and restored', async (t) => {
  const box = await sandbox(t);
  const script = [
    'echo hello-over-tcp >/tmp/index.html',
    'httpd -f -p 8080 -h /tmp &',
    'sleep 1000000 | nc -l -p 9000 >/tmp/received &',
    'sleep 0.3',
    'while :; do echo tick; sleep 0.1; done | nc 127.0.0.1 9000',
  ].join('\n');
  const bundle = await box.bundle('tcp', ['sh', '-c', script]);
  const pid = await box.runtime.run({ id: 'tcp', bundle });
  await waitFor('the server to listen', async () => ((await listeningPorts(pid)).includes(8080) ? true : undefined));
  t.is(await httpGet(pid, 8080), 'hello-over-tcp');
  await waitFor('data over the connection', async () => ((await received(bundle)) > 3 ? true : undefined));

  const checkpoint = await box.cli(['checkpoint', '--tcp-established', 'tcp']);
  t.is(checkpoint.exitCode, 0, checkpoint.stderr);
  t.false(isAlive(pid));
  const atCheckpoint = await received(bundle);

  const restore = await box.cli(['restore', '-d', '--tcp-established', 'tcp']);
  t.is(restore.exitCode, 0, restore.stderr);
  const restored = (JSON.parse((await box.cli(['state', 'tcp'])).stdout) as { pid: number }).pid;
  t.true((await listeningPorts(restored)).includes(8080), 'the listening socket is back');
  t.is(await httpGet(restored, 8080), 'hello-over-tcp');
  // The restored connection carries on: the same nc pair, more lines.
  const after = await waitFor('more data over the restored connection', async () => {
    const count = await received(bundle);
    return count > atCheckpoint + 3 ? count : undefined;
  });
  t.true(after > atCheckpoint);
});
