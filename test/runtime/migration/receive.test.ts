/**
 * receive's order of steps and its source's word, with the fake runtime (its CRIU and monitors
 * recording) behind a real receiver on the loopback, spoken to over a real mutual-TLS channel.
 */
import 'reflect-metadata';
import test, { type ExecutionContext } from 'ava';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { receive } from '../../../src/runtime/migration/receive.js';
import { connectChannel, type MessageChannel } from '../../../src/runtime/migration/channel.js';
import { expect, MigrationPeerError, PROTOCOL_VERSION } from '../../../src/runtime/migration/protocol.js';
import { fakeRuntime, type FakeRuntime } from '../../helpers/fake-runtime.js';
import { makePki } from '../../helpers/certs.js';

const TOKEN = '0123456789abcdef0123456789abcdef';

/** A receiver on 127.0.0.1 and a source's channel to it, past hello and welcome. */
async function receiverAndSource(t: ExecutionContext): Promise<{ runtime: FakeRuntime; source: MessageChannel; events: string[] }> {
  const runtime = await fakeRuntime(t);
  const pki = await makePki(runtime.root, 'cluster');
  const events: string[] = [];
  const receiver = await receive(runtime.context, {
    listen: { host: '127.0.0.1', port: 0 },
    tls: await pki.issue('destination', { ip: '127.0.0.1' }),
    timeoutMs: 5_000,
    onEvent: (message) => events.push(message),
  });
  t.teardown(() => receiver.close());
  const source = await connectChannel({ host: '127.0.0.1', port: receiver.port }, await pki.issue('source', { ip: '127.0.0.1' }), { timeoutMs: 5_000 });
  t.teardown(() => source.destroy());
  await source.send({ type: 'hello', version: PROTOCOL_VERSION, runtimeVersion: 'test', criu: { major: 4, minor: 2, sublevel: 1 } });
  expect(await source.receive({ timeoutMs: 5_000 }), 'welcome');
  return { runtime, source, events };
}

test('a step out of its turn is refused before anything acts on it, and nothing of the migration is left', async (t) => {
  const { runtime, source } = await receiverAndSource(t);
  await source.send({
    type: 'offer',
    token: TOKEN,
    id: 'web1',
    mode: 'stop-and-copy',
    sharedStorage: true,
    bundle: runtime.bundleDir,
    tcpEstablished: false,
    cpuinfo: '',
    config: await readFile(path.join(runtime.bundleDir, 'config.json'), 'utf8'),
    rootfs: { kind: 'none' },
  });
  expect(await source.receive({ timeoutMs: 5_000 }), 'accept');
  await source.send({ type: 'restore' });
  const error = await t.throwsAsync(async () => expect(await source.receive({ timeoutMs: 5_000 }), 'restored'), { instanceOf: MigrationPeerError });
  t.is(error?.code, 'MIGRATION_PROTOCOL');
  t.regex(error?.message ?? '', /a restore message where the protocol expects images/);
  t.deepEqual(
    runtime.fakes.criu.calls.filter((call) => call.op === 'restore'),
    [],
  );
  t.false(existsSync(path.join(runtime.context.config.checkpointRoot, 'web1')));
  t.false(await runtime.context.store.exists('web1'));
});

test('a word about a migration that holds nothing here is refused, naming it', async (t) => {
  const { source, events } = await receiverAndSource(t);
  await source.send({ type: 'verdict', id: 'web1', token: TOKEN, moved: true });
  const error = await t.throwsAsync(async () => expect(await source.receive({ timeoutMs: 5_000 }), 'settled'), { instanceOf: MigrationPeerError });
  t.is(error?.code, 'MIGRATION_REFUSED');
  t.regex(error?.message ?? '', /no migration of web1 waits for its source's word here/);
  t.false(events.some((line) => /runs here now/.test(line)));
});
