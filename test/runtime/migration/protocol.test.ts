import test from 'ava';
import { RuntimeError } from '../../../src/runtime/errors.js';
import {
  ChannelProtocolError,
  checkMessage,
  errorFrom,
  errorMessage,
  expect,
  MigrationAbortedError,
  MigrationPeerError,
  parseMessage,
  PROTOCOL_VERSION,
  type MigrationMessage,
} from '../../../src/runtime/migration/protocol.js';

class DiskFullError extends RuntimeError {
  readonly code = 'TEST_DISK_FULL' as const;
  constructor() {
    super('no space left for the images', { hint: 'free some space in /var/lib/runtime' });
  }
}

/** One valid message of every type, with every optional field somewhere. */
const everyMessage: readonly MigrationMessage[] = [
  { type: 'hello', version: PROTOCOL_VERSION, runtimeVersion: '0.1.0', criu: { major: 4, minor: 1, sublevel: 0 } },
  { type: 'welcome', version: PROTOCOL_VERSION, runtimeVersion: '0.1.1', criu: { major: 3, minor: 19, sublevel: 2 } },
  {
    type: 'offer',
    id: 'web1',
    mode: 'post-copy',
    sharedStorage: false,
    bundle: '/srv/bundles/web1',
    tcpEstablished: true,
    cpuinfo: Buffer.from('cpuinfo image').toString('base64'),
    rootfs: { kind: 'directory', path: '/srv/bundles/web1/rootfs' },
    config: '{"ociVersion":"1.0.2"}',
    imageBytes: 123456,
    token: '0123456789abcdef0123456789abcdef',
  },
  {
    type: 'offer',
    id: 'web2',
    mode: 'stop-and-copy',
    sharedStorage: true,
    bundle: '/shared/web2',
    tcpEstablished: false,
    cpuinfo: '',
    rootfs: { kind: 'none' },
    config: '{}',
    token: 'ffffffffffffffffffffffffffffffff',
  },
  { type: 'accept', pageServer: { port: 27000 } },
  { type: 'accept' },
  { type: 'pre-dump', round: 3 },
  { type: 'dump' },
  { type: 'page-server', port: 27002 },
  { type: 'images', files: 12, bytes: 4096 },
  { type: 'rootfs', bytes: 0 },
  { type: 'restore', lazyPageServer: { host: '10.0.0.1', port: 27001 } },
  { type: 'restore' },
  { type: 'restored', pid: 4242, downtimeMs: 87.5 },
  { type: 'restored', pid: 1 },
  { type: 'done' },
  { type: 'verdict', id: 'web1', token: '0123456789abcdef0123456789abcdef', moved: true },
  { type: 'verdict', id: 'web2', token: 'ffffffffffffffffffffffffffffffff', moved: false },
  { type: 'settled' },
  { type: 'abort', reason: 'the operator pressed ^C' },
  { type: 'error', code: 'CRIU_FAILED', message: 'restore failed', hint: 'read restore.log' },
  { type: 'error', code: 'INTERNAL', message: 'boom' },
];

test('every message type survives JSON and the schema unchanged', (t) => {
  const types = new Set<string>();
  for (const message of everyMessage) {
    t.deepEqual(parseMessage(JSON.stringify(message)), message);
    types.add(message.type);
  }
  t.deepEqual([...types].sort(), [
    'abort',
    'accept',
    'done',
    'dump',
    'error',
    'hello',
    'images',
    'offer',
    'page-server',
    'pre-dump',
    'restore',
    'restored',
    'rootfs',
    'settled',
    'verdict',
    'welcome',
  ]);
});

test('keys a later version may add are dropped, not refused', (t) => {
  t.deepEqual(parseMessage('{"type":"done","comment":"from version 1.5"}'), { type: 'done' });
});

function protocolError(t: { throws: (fn: () => unknown, expectations: object) => unknown }, fn: () => unknown): ChannelProtocolError {
  return t.throws(fn, { instanceOf: ChannelProtocolError }) as ChannelProtocolError;
}

test('an unknown type is refused naming the type field and the types there are', (t) => {
  const error = protocolError(t, () => parseMessage('{"type":"launch","id":"web1"}'));
  t.is(error.code, 'MIGRATION_PROTOCOL');
  t.is(error.field, 'type');
  t.regex(error.message, /type: must be one of "hello", .*"error", not "launch"/);
  t.truthy(error.hint);
});

test('a bad field is refused naming the message and the field', (t) => {
  const offer = everyMessage[2]!;
  const cases: readonly [unknown, string, RegExp][] = [
    [{ ...offer, mode: 'live' }, 'offer.mode', /offer\.mode: must be one of "stop-and-copy", "post-copy", "pre-copy", not "live"/],
    [{ ...offer, rootfs: { kind: 'directory' } }, 'offer.rootfs.path', /offer\.rootfs\.path: is required/],
    [{ ...offer, cpuinfo: 'not base64!' }, 'offer.cpuinfo', /must be base64/],
    [{ ...offer, sharedStorage: 'yes' }, 'offer.sharedStorage', /expected boolean, received string/],
    [{ ...offer, token: 'short' }, 'offer.token', /32 hexadecimal digits/],
    [{ type: 'verdict', id: 'web1', token: '0123456789abcdef0123456789abcdef' }, 'verdict.moved', /is required/],
    [{ type: 'accept', pageServer: { port: 70000 } }, 'accept.pageServer.port', /TCP port/],
    [{ type: 'restored', pid: -1 }, 'restored.pid', /greater than 0/],
    [{ type: 'pre-dump', round: 0 }, 'pre-dump.round', /greater than 0/],
    [{ type: 'page-server' }, 'page-server.port', /is required/],
    [{ type: 'hello', version: 1, runtimeVersion: '1', criu: { major: 4, minor: 1.5, sublevel: 0 } }, 'hello.criu.minor', /integer/],
    [{ type: 'error', message: 'no code' }, 'error.code', /is required/],
  ];
  for (const [value, field, pattern] of cases) {
    const error = protocolError(t, () => parseMessage(JSON.stringify(value)));
    t.is(error.field, field);
    t.regex(error.message, pattern);
    // checkMessage (what send() uses) says the same.
    t.is(protocolError(t, () => checkMessage(value)).field, field);
  }
});

test('text that is not JSON, or not an object, is a protocol error', (t) => {
  t.regex(protocolError(t, () => parseMessage('GET / HTTP/1.1')).message, /not JSON.*GET \/ HTTP/);
  const array = protocolError(t, () => parseMessage('[1,2]'));
  t.is(array.field, undefined);
  t.regex(array.message, /the message: expected object, received array/);
});

test('errors become error messages with their code and hint, and come back as MigrationPeerError', (t) => {
  const sent = errorMessage(new DiskFullError());
  t.deepEqual(sent, { type: 'error', code: 'TEST_DISK_FULL', message: 'no space left for the images', hint: 'free some space in /var/lib/runtime' });
  const rebuilt = errorFrom(sent);
  t.true(rebuilt instanceof MigrationPeerError);
  t.true(rebuilt instanceof RuntimeError);
  t.is(rebuilt.code, 'TEST_DISK_FULL');
  t.is(rebuilt.message, 'no space left for the images');
  t.is(rebuilt.hint, 'free some space in /var/lib/runtime');
  t.is(rebuilt.describe(), 'no space left for the images\n  hint: free some space in /var/lib/runtime');

  t.deepEqual(errorMessage(new TypeError('x is undefined')), { type: 'error', code: 'INTERNAL', message: 'x is undefined' });
  t.deepEqual(errorMessage('a string'), { type: 'error', code: 'INTERNAL', message: 'a string' });
  // A peer's error sent back keeps the peer's code.
  t.deepEqual(errorMessage(rebuilt), sent);
  // And every one of them is a valid message.
  for (const message of [sent, errorMessage(new TypeError('x')), errorMessage(rebuilt)]) t.deepEqual(checkMessage(message), message);
});

test('expect narrows to the expected type and raises the peer error, abort and a message out of step', (t) => {
  const restored: MigrationMessage = { type: 'restored', pid: 7 };
  const narrowed = expect(restored, 'restored');
  t.is(narrowed.pid, 7);

  const peer = t.throws(() => expect({ type: 'error', code: 'CRIU_FAILED', message: 'restore failed', hint: 'read the log' }, 'restored'), {
    instanceOf: MigrationPeerError,
  });
  t.is(peer.code, 'CRIU_FAILED');
  t.is(peer.hint, 'read the log');

  const aborted = t.throws(() => expect({ type: 'abort', reason: 'interrupted' }, 'welcome'), { instanceOf: MigrationAbortedError });
  t.is(aborted.code, 'MIGRATION_ABORTED');
  t.is(aborted.reason, 'interrupted');

  const outOfStep = t.throws(() => expect({ type: 'done' }, 'accept'), { instanceOf: ChannelProtocolError });
  t.regex(outOfStep.message, /a done message where the protocol expects accept/);

  // An error is what the caller asked for when it asks for one.
  t.is(expect({ type: 'error', code: 'X', message: 'm' }, 'error').code, 'X');
});
