/**
 * A receiver (`runtime receive`) of a fake runtime on 127.0.0.1, with a test CA's certificates:
 * the events it reports, and the source's TLS files the CA signed too.
 */
import { receive, type Receiver } from '../../src/runtime/migration/receive.js';
import type { TlsFiles } from '../../src/criu/options.js';
import { makePki } from './certs.js';
import type { FakeRuntime } from './fake-runtime.js';

export interface LoopbackReceiver {
  readonly receiver: Receiver;
  readonly events: string[];
  readonly sourceTls: TlsFiles;
}

export async function loopbackReceiver(t: { teardown(fn: () => unknown): void }, runtime: FakeRuntime, pkiDir: string): Promise<LoopbackReceiver> {
  const pki = await makePki(pkiDir, 'cluster');
  const events: string[] = [];
  const receiver = await receive(runtime.context, {
    listen: { host: '127.0.0.1', port: 0 },
    tls: await pki.issue('destination', { ip: '127.0.0.1' }),
    timeoutMs: 5_000,
    onEvent: (message) => events.push(message),
  });
  t.teardown(() => receiver.close());
  return { receiver, events, sourceTls: await pki.issue('source', { ip: '127.0.0.1' }) };
}
