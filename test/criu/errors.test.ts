import test from 'ava';
import {
  CriuFeatureMissingError,
  CriuNotFoundError,
  CriuRequestError,
  CriuTooOldError,
  CriuUnusableError,
  RpcProtoMissingError,
} from '../../src/criu/errors.js';
import { RuntimeError } from '../../src/runtime/errors.js';

test("a failed request names the errno, CRIU's message, the log tail and the log path", (t) => {
  const error = new CriuRequestError({
    request: 'DUMP',
    errno: 16,
    criuMessage: "mnt: Can't proceed",
    logPath: '/var/lib/cp/web1/dump.log',
    logTail: ['(00.1) Error (criu/mount.c:1): first', '(00.2) Error (criu/cr-dump.c:2): Dumping FAILED.'],
  });
  t.is(error.code, 'CRIU_FAILED');
  t.is(error.name, 'CriuRequestError');
  t.true(error instanceof RuntimeError);
  t.is(
    error.message,
    "CRIU DUMP failed: errno 16 (EBUSY): mnt: Can't proceed\n" +
      '  (00.1) Error (criu/mount.c:1): first\n' +
      '  (00.2) Error (criu/cr-dump.c:2): Dumping FAILED.\n' +
      '  log: /var/lib/cp/web1/dump.log',
  );
  t.is(error.hint, 'read /var/lib/cp/web1/dump.log for the whole story');
  t.is(error.failure.request, 'DUMP');
  t.true(error.describe().endsWith('\n  hint: read /var/lib/cp/web1/dump.log for the whole story'));
});

test("a dump of another uid's process, refused for want of CAP_SYS_RESOURCE, says to give the container a user namespace", (t) => {
  const error = new CriuRequestError({
    request: 'DUMP',
    criuMessage: 'Dumping FAILED.',
    logPath: '/run/runtime/db/failed-dump.log',
    logTail: ["(00.14) Error (criu/cr-dump.c:389): Can't get rlimit 0: Operation not permitted", '(00.15) Error (criu/cr-dump.c:1975): Dumping FAILED.'],
  });
  t.regex(
    error.hint ?? '',
    /^the container runs processes of a non-root uid .* CAP_SYS_RESOURCE: give the container a user namespace .*--uidmap 0:100000:65536/,
  );
  t.true(error.hint?.endsWith('; read /run/runtime/db/failed-dump.log for the whole story'));
});

test('an errno without a name is given as a number only', (t) => {
  const error = new CriuRequestError({ request: 'RESTORE', errno: 200, logTail: [] });
  t.is(error.message, 'CRIU RESTORE failed: errno 200');
  t.is(error.hint, undefined);
});

test('without errno, message or log, only the request', (t) => {
  const error = new CriuRequestError({ request: 'PRE_DUMP', errno: 0, logTail: [] }, { cause: new Error('socket closed'), hint: 'check the kernel' });
  t.is(error.message, 'CRIU PRE_DUMP failed');
  t.is(error.hint, 'check the kernel');
  t.is((error.cause as Error).message, 'socket closed');
});

test('every CRIU error has its literal code and a hint', (t) => {
  const cases: Array<[RuntimeError, string, string]> = [
    [new CriuNotFoundError('no executable "criu" on PATH'), 'CRIU_NOT_FOUND', 'CRIU was not found (no executable "criu" on PATH)'],
    [
      new CriuTooOldError('/usr/sbin/criu', '4.1.1', '4.2.0'),
      'CRIU_TOO_OLD',
      'CRIU at /usr/sbin/criu is version 4.1.1; this runtime needs 4.2.0 or newer',
    ],
    [new CriuUnusableError('/usr/sbin/criu', 'swrk exited'), 'CRIU_UNUSABLE', 'CRIU at /usr/sbin/criu could not be used: swrk exited'],
    [
      new CriuFeatureMissingError('mem_dirty_track', '--pre-dump', 'soft-dirty is off'),
      'CRIU_FEATURE_MISSING',
      '--pre-dump needs the CRIU feature "mem_dirty_track", which this kernel or CRIU lacks',
    ],
    [new RpcProtoMissingError('/usr/share/criu/rpc.proto'), 'CRIU_RPC_PROTO_MISSING', "CRIU's rpc.proto was not found at /usr/share/criu/rpc.proto"],
  ];
  for (const [error, code, message] of cases) {
    t.is(error.code, code);
    t.is(error.message, message);
    t.truthy(error.hint);
  }
  t.is(cases[3]![0].hint, 'soft-dirty is off; `criu check --feature mem_dirty_track` shows the details');
  t.regex(cases[0]![0].hint ?? '', /--criu \/ RUNTIME_CRIU/);
  // A missing or too old CRIU, or a missing rpc.proto, names the installer.
  for (const i of [0, 1, 2, 4]) t.regex(cases[i]![0].hint ?? '', /bash scripts\/install-criu\.sh/);
});
