import test, { type ExecutionContext } from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { RuntimeError } from '../../../src/runtime/errors.js';
import {
  ChannelTimeoutError,
  connectChannel,
  encodeFrame,
  listenChannel,
  MAX_FRAME_BYTES,
  MessageChannel,
  PeerRefusedError,
  TlsFilesError,
  type ChannelListener,
  type ListenOptions,
  type TlsFiles,
} from '../../../src/runtime/migration/channel.js';
import {
  ChannelClosedError,
  ChannelProtocolError,
  expect,
  MigrationPeerError,
  PROTOCOL_VERSION,
  type MigrationMessage,
} from '../../../src/runtime/migration/protocol.js';
import { makePki } from '../../helpers/certs.js';

interface Certs {
  readonly dir: string;
  /** Signed by the cluster's CA. */
  readonly source: TlsFiles;
  readonly destination: TlsFiles;
  /** Signed by another CA, but trusting the cluster's (so that only its own certificate is at fault). */
  readonly intruder: TlsFiles;
}

let certs: Certs;

test.before(async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'migration-channel-'));
  const cluster = await makePki(dir, 'cluster');
  const other = await makePki(dir, 'other');
  const intruder = await other.issue('intruder', { ip: '127.0.0.1' });
  certs = {
    dir,
    source: await cluster.issue('source', { ip: '127.0.0.1' }),
    destination: await cluster.issue('destination', { ip: '127.0.0.1' }),
    intruder: { ...intruder, ca: cluster.ca },
  };
});

test.after.always(async () => {
  if (certs) await rm(certs.dir, { recursive: true, force: true });
});

const local = { host: '127.0.0.1', port: 0 };

class DiskFullError extends RuntimeError {
  readonly code = 'TEST_DISK_FULL' as const;
  constructor() {
    super('no space left for the images', { hint: 'free some space in /var/lib/runtime' });
  }
}

class TarFailedError extends RuntimeError {
  readonly code = 'TEST_TAR_FAILED' as const;
  constructor() {
    super('tar: ./rootfs/etc: Cannot open: Permission denied', { hint: 'run the migration as root' });
  }
}

async function until(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

interface Served {
  readonly listener: ChannelListener;
  readonly refused: { reason: string; remote: string | undefined }[];
  readonly errors: unknown[];
}

/** A listener with the destination's certificate, closed when the test ends. */
async function serve(
  t: ExecutionContext,
  handler: (channel: MessageChannel) => Promise<void>,
  files: TlsFiles = certs.destination,
  options: ListenOptions = {},
): Promise<Served> {
  const refused: Served['refused'] = [];
  const errors: unknown[] = [];
  const listener = await listenChannel(local, files, handler, {
    onRefused: (reason, remote) => refused.push({ reason, remote }),
    onError: (error) => errors.push(error),
    ...options,
  });
  t.teardown(() => listener.close());
  return { listener, refused, errors };
}

async function connect(t: ExecutionContext, port: number, files: TlsFiles = certs.source): Promise<MessageChannel> {
  const channel = await connectChannel({ host: '127.0.0.1', port }, files, { timeoutMs: 5000 });
  t.teardown(() => channel.destroy());
  return channel;
}

/** A TLS connection with the source's certificate that writes frames by hand; read through a MessageChannel on the same socket. */
async function rawClient(t: ExecutionContext, port: number): Promise<{ readonly socket: tls.TLSSocket; readonly channel: MessageChannel }> {
  const socket = tls.connect({
    host: '127.0.0.1',
    port,
    cert: readFileSync(certs.source.cert),
    key: readFileSync(certs.source.key),
    ca: readFileSync(certs.source.ca),
    checkServerIdentity: () => undefined,
  });
  t.teardown(() => socket.destroy());
  await once(socket, 'secureConnect');
  const channel = new MessageChannel(socket);
  t.true(await channel.awaitReady(5000), 'the server accepted the raw client');
  return { socket, channel };
}

async function sha256(chunks: AsyncIterable<Buffer>): Promise<{ readonly digest: string; readonly bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of chunks) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  return { digest: hash.digest('hex'), bytes };
}

const everyMessage: readonly MigrationMessage[] = [
  { type: 'hello', version: PROTOCOL_VERSION, runtimeVersion: '0.1.0', criu: { major: 4, minor: 1, sublevel: 0 } },
  { type: 'welcome', version: PROTOCOL_VERSION, runtimeVersion: '0.1.0', criu: { major: 4, minor: 1, sublevel: 1 } },
  {
    type: 'offer',
    id: 'web1',
    mode: 'post-copy',
    sharedStorage: false,
    bundle: '/srv/bundles/web1',
    tcpEstablished: true,
    cpuinfo: randomBytes(300).toString('base64'),
    rootfs: { kind: 'directory', path: '/srv/bundles/web1/rootfs' },
    config: JSON.stringify({ ociVersion: '1.0.2', process: { args: ['sh'] } }),
    imageBytes: 1 << 30,
    token: '0123456789abcdef0123456789abcdef',
  },
  { type: 'accept', pageServer: { port: 27000 } },
  { type: 'images', files: 31, bytes: 52_000_000 },
  { type: 'rootfs', bytes: 7_000_000 },
  { type: 'restore', lazyPageServer: { host: '127.0.0.1', port: 27001 } },
  { type: 'restored', pid: 4242, downtimeMs: 120 },
  { type: 'abort', reason: 'interrupted — by the operator' },
  { type: 'error', code: 'CRIU_FAILED', message: 'restore failed', hint: 'read restore.log' },
  { type: 'done' },
];

test('every message goes over mutual TLS and back unchanged; each side sees the other certificate', async (t) => {
  const seen: MigrationMessage[] = [];
  let serverSaw: string | undefined;
  const { listener } = await serve(t, async (channel) => {
    serverSaw = channel.peerCertificateSubject;
    for (;;) {
      const message = await channel.receive({ timeoutMs: 5000 });
      seen.push(message);
      await channel.send(message);
      if (message.type === 'done') return;
    }
  });
  const channel = await connect(t, listener.port);
  t.is(channel.peerCertificateSubject, 'CN=destination');
  t.is(channel.remoteAddress, '127.0.0.1');
  t.is(channel.localAddress, '127.0.0.1');
  for (const message of everyMessage) {
    await channel.send(message);
    t.deepEqual(await channel.receive({ timeoutMs: 5000 }), message);
  }
  t.deepEqual(seen, everyMessage);
  t.is(serverSaw, 'CN=source');
});

test('a stream of several MiB arrives byte for byte, both ways, whatever the chunk sizes', async (t) => {
  // Chunks below, at and above the frame size, and an empty one.
  const sizes = [1, 4096, MAX_FRAME_BYTES, 3 * MAX_FRAME_BYTES + 17, 0, 65_537, 2 * MAX_FRAME_BYTES - 1];
  const chunks = sizes.map((size) => randomBytes(size));
  const expected = createHash('sha256').update(Buffer.concat(chunks)).digest('hex');
  const total = sizes.reduce((a, b) => a + b, 0);
  let received: { digest: string; bytes: number } | undefined;
  let echoed = 0;
  const { listener } = await serve(t, async (channel) => {
    const images = expect(await channel.receive(), 'images');
    const parts: Buffer[] = [];
    for await (const chunk of channel.receiveStream({ awaiting: 'the images' })) {
      t.true(chunk.length <= MAX_FRAME_BYTES);
      parts.push(chunk);
    }
    const whole = Buffer.concat(parts);
    received = { digest: createHash('sha256').update(whole).digest('hex'), bytes: whole.length };
    t.is(images.bytes, whole.length);
    await channel.send({ type: 'rootfs', bytes: whole.length });
    echoed = await channel.sendStream(
      (async function* () {
        yield whole;
      })(),
    );
  });
  const channel = await connect(t, listener.port);
  await channel.send({ type: 'images', files: 1, bytes: total });
  const sent = await channel.sendStream(
    (async function* () {
      yield* chunks;
    })(),
  );
  t.is(sent, total);
  t.is(expect(await channel.receive(), 'rootfs').bytes, total);
  t.deepEqual(await sha256(channel.receiveStream()), { digest: expected, bytes: total });
  t.deepEqual(received, { digest: expected, bytes: total });
  await until(() => echoed > 0, "the server's count");
  t.is(echoed, total);
});

test('a sender waits for a slow reader instead of buffering the whole stream', async (t) => {
  const total = 96 * MAX_FRAME_BYTES;
  const block = randomBytes(MAX_FRAME_BYTES);
  let produced = 0;
  let producedWhenReadingStarted: number | undefined;
  let startReading!: () => void;
  const reading = new Promise<void>((resolve) => (startReading = resolve));
  const { listener } = await serve(t, async (channel) => {
    expect(await channel.receive(), 'images');
    await reading;
    producedWhenReadingStarted = produced;
    const { bytes } = await sha256(channel.receiveStream());
    await channel.send({ type: 'restored', pid: bytes });
  });
  const channel = await connect(t, listener.port);
  await channel.send({ type: 'images', files: 1, bytes: total });
  const sending = channel.sendStream(
    (async function* () {
      while (produced < total) {
        produced += block.length;
        yield block;
      }
    })(),
  );
  // The reader sleeps: the sender must stall once the socket buffers and the reader's bounded queue are full.
  await new Promise((resolve) => setTimeout(resolve, 500));
  const stalledAt = produced;
  await new Promise((resolve) => setTimeout(resolve, 200));
  t.is(produced, stalledAt, 'the sender made no progress while nobody read');
  t.true(stalledAt < total / 2, `the sender stalled after ${stalledAt} bytes`);
  t.log(`stalled after ${stalledAt / MAX_FRAME_BYTES} MiB`);
  startReading();
  t.is(await sending, total);
  t.is(producedWhenReadingStarted, stalledAt);
  t.is(expect(await channel.receive({ timeoutMs: 10_000 }), 'restored').pid, total);
});

test("a sender whose source fails aborts the stream ('X'): the reader raises the sender's error", async (t) => {
  let readerError: unknown;
  let chunksRead = 0;
  const { listener } = await serve(t, async (channel) => {
    expect(await channel.receive(), 'rootfs');
    try {
      for await (const chunk of channel.receiveStream()) chunksRead += chunk.length > 0 ? 1 : 0;
    } catch (error) {
      readerError = error;
    }
    // The channel is still in step: the next message arrives.
    t.is(expect(await channel.receive(), 'done').type, 'done');
  });
  const channel = await connect(t, listener.port);
  await channel.send({ type: 'rootfs', bytes: 3000 });
  const failure = new TarFailedError();
  const error = await t.throwsAsync(
    channel.sendStream(
      (async function* () {
        yield Buffer.alloc(1000, 1);
        yield Buffer.alloc(1000, 2);
        throw failure;
      })(),
    ),
  );
  t.is(error, failure, "the sender gets its own source's error");
  await channel.send({ type: 'done' });
  await until(() => readerError !== undefined, "the reader's error");
  t.true(readerError instanceof MigrationPeerError);
  t.like(readerError, { code: 'TEST_TAR_FAILED', message: 'tar: ./rootfs/etc: Cannot open: Permission denied', hint: 'run the migration as root' });
  t.is(chunksRead, 2);
});

test('a reader that fails in the middle of a stream stops the sender with its error', async (t) => {
  const { listener, errors } = await serve(t, async (channel) => {
    expect(await channel.receive(), 'images');
    for await (const _ of channel.receiveStream()) throw new DiskFullError();
  });
  const channel = await connect(t, listener.port);
  await channel.send({ type: 'images', files: 1, bytes: 1 << 40 });
  let produced = 0;
  const error = await t.throwsAsync(
    channel.sendStream(
      (async function* () {
        // Endless: only the peer's error ends it.
        for (;;) {
          produced += MAX_FRAME_BYTES;
          yield Buffer.alloc(MAX_FRAME_BYTES);
        }
      })(),
    ),
    { instanceOf: MigrationPeerError },
  );
  t.is(error.code, 'TEST_DISK_FULL');
  t.is(error.hint, 'free some space in /var/lib/runtime');
  t.true(produced < 256 * MAX_FRAME_BYTES);
  await until(() => errors.length > 0, 'the handler error');
  t.true(errors[0] instanceof DiskFullError);
});

test('a handler error reaches the peer as an error message, rebuilt with its code and hint', async (t) => {
  const { listener, errors } = await serve(t, async (channel) => {
    expect(await channel.receive(), 'hello');
    throw new DiskFullError();
  });
  const channel = await connect(t, listener.port);
  await channel.send(everyMessage[0]!);
  const answer = await channel.receive();
  t.deepEqual(answer, { type: 'error', code: 'TEST_DISK_FULL', message: 'no space left for the images', hint: 'free some space in /var/lib/runtime' });
  const error = t.throws(() => expect(answer, 'welcome'), { instanceOf: MigrationPeerError });
  t.is(error.code, 'TEST_DISK_FULL');
  t.is(error.describe(), 'no space left for the images\n  hint: free some space in /var/lib/runtime');
  // Then the listener closes the connection.
  await t.throwsAsync(channel.receive({ awaiting: 'the welcome message' }), {
    instanceOf: ChannelClosedError,
    message: /waiting for the welcome message/,
  });
  t.true(errors[0] instanceof DiskFullError);
});

test('a client whose certificate another CA signed is refused on both sides; the listener goes on', async (t) => {
  let handled = 0;
  const { listener, refused } = await serve(t, async (channel) => {
    handled++;
    expect(await channel.receive(), 'hello');
    await channel.send(everyMessage[1]!);
  });
  const error = await t.throwsAsync(connectChannel({ host: '127.0.0.1', port: listener.port }, certs.intruder, { timeoutMs: 5000 }), {
    instanceOf: PeerRefusedError,
  });
  t.is(error.code, 'MIGRATION_PEER_REFUSED');
  t.regex(error.message, /127\.0\.0\.1:\d+ and this host did not accept each other: .*certificate/);
  t.regex(error.hint ?? '', /--tls-ca/);
  t.regex(error.reason, /the peer closed the connection without accepting this host's certificate/);
  await until(() => refused.length > 0, 'the refusal on the server');
  t.is(refused.length, 1);
  t.regex(
    refused[0]!.reason,
    /the client's certificate is not signed by the CA in .*cluster-ca\.crt \((UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT\w*)\)$/,
  );
  t.is(refused[0]!.remote, '127.0.0.1');
  t.is(handled, 0);

  // The next good connection is served.
  const channel = await connect(t, listener.port);
  await channel.send(everyMessage[0]!);
  t.is(expect(await channel.receive(), 'welcome').runtimeVersion, '0.1.0');
  t.is(handled, 1);
});

test('a client without a certificate is refused by the handshake', async (t) => {
  let handled = 0;
  const { listener, refused } = await serve(t, async () => void handled++);
  const socket = tls.connect({ host: '127.0.0.1', port: listener.port, ca: readFileSync(certs.source.ca), checkServerIdentity: () => undefined });
  t.teardown(() => socket.destroy());
  const failed = new Promise<Error | undefined>((resolve) => {
    socket.once('error', resolve);
    socket.once('close', () => resolve(undefined));
  });
  const data: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => data.push(chunk));
  const error = await failed;
  t.is((error as NodeJS.ErrnoException | undefined)?.code, 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED');
  t.deepEqual(data, [], 'no ready frame');
  await until(() => refused.length > 0, 'the refusal on the server');
  t.deepEqual(refused, [{ reason: 'the peer sent no certificate', remote: '127.0.0.1' }]);
  t.is(handled, 0);
});

test('a server whose certificate another CA signed is refused by the client', async (t) => {
  let handled = 0;
  const { listener, refused } = await serve(t, async () => void handled++, certs.intruder);
  const error = await t.throwsAsync(connectChannel({ host: '127.0.0.1', port: listener.port }, certs.source, { timeoutMs: 5000 }), {
    instanceOf: PeerRefusedError,
  });
  t.regex(error.reason, /this host does not accept the peer's certificate, which must be signed by the CA in .*cluster-ca\.crt/);
  await until(() => refused.length > 0, 'the refusal on the server');
  t.is(handled, 0);
});

test('garbage instead of frames closes the connection with a protocol error', async (t) => {
  const errors: unknown[] = [];
  const { listener } = await serve(t, async (channel) => {
    try {
      await channel.receive();
    } catch (error) {
      errors.push(error);
      throw error;
    }
  });
  const { socket } = await rawClient(t, listener.port);
  socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  await once(socket, 'close');
  t.true(errors[0] instanceof ChannelProtocolError);
  t.regex((errors[0] as Error).message, /a frame of unknown kind 0x47/);
});

test('an oversized frame is refused from its header alone', async (t) => {
  const errors: unknown[] = [];
  const { listener } = await serve(t, async (channel) => {
    try {
      await channel.receive();
    } catch (error) {
      errors.push(error);
      throw error;
    }
  });
  const { socket } = await rawClient(t, listener.port);
  const header = Buffer.alloc(5);
  header.write('M', 0, 'latin1');
  header.writeUInt32BE(MAX_FRAME_BYTES + 1, 1);
  socket.write(header);
  await once(socket, 'close');
  t.true(errors[0] instanceof ChannelProtocolError);
  t.regex((errors[0] as Error).message, new RegExp(`a message frame of ${MAX_FRAME_BYTES + 1} bytes, above the limit of ${MAX_FRAME_BYTES}`));
});

test('a client reading garbage from the server gets a protocol error, and the channel stays broken', async (t) => {
  const server = tls.createServer(
    {
      cert: readFileSync(certs.destination.cert),
      key: readFileSync(certs.destination.key),
      ca: readFileSync(certs.destination.ca),
      requestCert: true,
      rejectUnauthorized: true,
    },
    (socket) => {
      socket.on('error', () => {});
      socket.write(Buffer.concat([encodeFrame('R'), encodeFrame('Z', Buffer.from('zzz'))]));
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const port = (server.address() as { port: number }).port;
  const channel = await connect(t, port);
  const error = await t.throwsAsync(channel.receive(), { instanceOf: ChannelProtocolError, message: /unknown kind 0x5a/ });
  t.is(await t.throwsAsync(channel.send({ type: 'done' })), error);
});

test('an unknown message type and a bad field are refused naming the field; the peer is told so', async (t) => {
  const errors: unknown[] = [];
  const { listener } = await serve(t, async (channel) => {
    try {
      await channel.receive();
    } catch (error) {
      errors.push(error);
      throw error;
    }
  });
  for (const [text, field, pattern] of [
    ['{"type":"launch","id":"web1"}', 'type', /type: must be one of .* not "launch"/],
    [
      JSON.stringify({ ...everyMessage[2]!, mode: 'live' }),
      'offer.mode',
      /offer\.mode: must be one of "stop-and-copy", "post-copy", "pre-copy", not "live"/,
    ],
  ] as const) {
    const { socket, channel } = await rawClient(t, listener.port);
    socket.write(encodeFrame('M', Buffer.from(text)));
    // The listener answers with the error, then closes.
    const answer = expect(await channel.receive({ timeoutMs: 5000 }), 'error');
    t.is(answer.code, 'MIGRATION_PROTOCOL');
    t.regex(answer.message, pattern);
    const error = errors.at(-1) as ChannelProtocolError;
    t.true(error instanceof ChannelProtocolError);
    t.is(error.field, field);
    await t.throwsAsync(channel.receive(), { instanceOf: ChannelClosedError });
  }
});

test('a connection that closes while receive() waits is a ChannelClosedError naming what was awaited', async (t) => {
  const serverErrors: unknown[] = [];
  const { listener } = await serve(t, async (channel) => {
    const message = await channel.receive({ awaiting: 'the offer' }).catch((error: unknown) => (serverErrors.push(error), undefined));
    if (message?.type === 'hello') channel.destroy();
  });
  // The server goes away while the client waits.
  const channel = await connect(t, listener.port);
  const waiting = channel.receive({ awaiting: 'the welcome message' });
  await channel.send(everyMessage[0]!);
  const error = await t.throwsAsync(waiting, { instanceOf: ChannelClosedError });
  t.is(error.code, 'MIGRATION_CHANNEL_CLOSED');
  t.is(error.awaited, 'the welcome message');
  t.regex(error.message, /the migration channel to 127\.0\.0\.1:\d+ closed while waiting for the welcome message/);

  // The client goes away while the server waits.
  const second = await connect(t, listener.port);
  await new Promise((resolve) => setTimeout(resolve, 50));
  second.destroy();
  await until(() => serverErrors.length > 0, "the server's error");
  t.true(serverErrors[0] instanceof ChannelClosedError);
  t.is((serverErrors[0] as ChannelClosedError).awaited, 'the offer');
});

test('receive() gives up after its timeout and closes the channel', async (t) => {
  let closed = false;
  const { listener } = await serve(t, async (channel) => {
    await channel.receive().catch(() => (closed = true));
  });
  const channel = await connect(t, listener.port);
  const started = Date.now();
  const error = await t.throwsAsync(channel.receive({ timeoutMs: 150, awaiting: 'the welcome message' }), { instanceOf: ChannelTimeoutError });
  t.true(Date.now() - started >= 140);
  t.is(error.code, 'MIGRATION_TIMEOUT');
  t.regex(error.message, /sent nothing for 0\.15 s while this host waited for the welcome message/);
  await until(() => closed, 'the server to see the connection closed');
  t.is(await t.throwsAsync(channel.receive()), error);
});

test('connections are handled one at a time, in order of arrival', async (t) => {
  const events: string[] = [];
  const { listener } = await serve(t, async (channel) => {
    const hello = expect(await channel.receive(), 'hello');
    events.push(`start ${hello.runtimeVersion}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
    events.push(`end ${hello.runtimeVersion}`);
    await channel.send({ ...everyMessage[1]!, runtimeVersion: hello.runtimeVersion } as MigrationMessage);
  });
  const first = await connect(t, listener.port);
  const second = await connect(t, listener.port);
  await first.send({ type: 'hello', version: 1, runtimeVersion: 'first', criu: { major: 4, minor: 0, sublevel: 0 } });
  await second.send({ type: 'hello', version: 1, runtimeVersion: 'second', criu: { major: 4, minor: 0, sublevel: 0 } });
  const answers = await Promise.all([first.receive(), second.receive()]);
  t.deepEqual(
    answers.map((answer) => expect(answer, 'welcome').runtimeVersion),
    ['first', 'second'],
  );
  t.deepEqual(events, ['start first', 'end first', 'start second', 'end second']);
});

test('TLS files that are missing, not PEM, or do not go together are named', async (t) => {
  const dir = certs.dir;
  const notPem = path.join(dir, 'not-pem.crt');
  await writeFile(notPem, 'hello\n', { mode: 0o600 });
  const missing = path.join(dir, 'missing.key');
  const cases: [TlsFiles, RegExp][] = [
    [{ ...certs.source, key: missing }, new RegExp(`cannot read ${missing} \\(--tls-key\\): ENOENT`)],
    [{ ...certs.source, cert: notPem }, new RegExp(`${notPem} \\(--tls-cert\\) is not a PEM certificate`)],
    [{ ...certs.source, ca: certs.source.key }, /\(--tls-ca\) is not a PEM CA certificate/],
    [{ ...certs.source, key: certs.destination.key }, /do not go together: key values mismatch/],
  ];
  for (const [files, pattern] of cases) {
    const error = await t.throwsAsync(connectChannel({ host: '127.0.0.1', port: 1 }, files), { instanceOf: TlsFilesError });
    t.is(error.code, 'MIGRATION_TLS_FILES');
    t.regex(error.message, pattern);
    await t.throwsAsync(
      listenChannel(local, files, async () => {}),
      { instanceOf: TlsFilesError, message: pattern },
    );
  }
});
