import test from 'ava';
import { formatVersion, isAtLeast, parseVersion, versionNumber } from '../../src/criu/version.js';

test('parses major.minor.sublevel', (t) => {
  t.deepEqual(parseVersion('4.1.1'), { major: 4, minor: 1, sublevel: 1 });
  t.deepEqual(parseVersion('3.17'), { major: 3, minor: 17, sublevel: 0 });
  t.deepEqual(parseVersion(' 4.0.0\n'), { major: 4, minor: 0, sublevel: 0 });
});

test('parses `criu --version` output', (t) => {
  t.deepEqual(parseVersion('Version: 3.17'), { major: 3, minor: 17, sublevel: 0 });
  t.deepEqual(parseVersion('Version: 4.1.1'), { major: 4, minor: 1, sublevel: 1 });
});

test('refuses what is not a version', (t) => {
  for (const text of ['', '4', 'v4.1', '4.1.1.1', '4.x', 'Version 4.1', 'GitID: v4.1', '4.1-rc1']) {
    const error = t.throws(() => parseVersion(text), { instanceOf: TypeError }, text);
    t.is(error.message, `not a CRIU version: ${JSON.stringify(text)}`);
  }
});

test('versionNumber is major*10000 + minor*100 + sublevel', (t) => {
  t.is(versionNumber({ major: 4, minor: 1, sublevel: 1 }), 40101);
  t.is(versionNumber({ major: 3, minor: 17, sublevel: 0 }), 31700);
  t.is(versionNumber({ major: 0, minor: 0, sublevel: 0 }), 0);
});

test('a git build counts as the next minor release (runc and go-criu)', (t) => {
  t.is(versionNumber({ major: 3, minor: 17, sublevel: 1, gitId: 'v3.17.1-12-gabcdef' }), 31800);
  t.is(versionNumber({ major: 3, minor: 17, sublevel: 0, gitId: 'abc' }), 31800);
  t.is(versionNumber({ major: 3, minor: 99, sublevel: 42, gitId: 'abc' }), 40000);
  // An empty git id is no git id.
  t.is(versionNumber({ major: 3, minor: 17, sublevel: 1, gitId: '' }), 31701);
  t.is(versionNumber({ major: 3, minor: 17, sublevel: 1, gitId: undefined }), 31701);
});

test('isAtLeast compares the numbers', (t) => {
  const v = (text: string) => parseVersion(text);
  t.true(isAtLeast(v('4.0.0'), v('4.0.0')));
  t.true(isAtLeast(v('4.1.1'), v('4.0')));
  t.true(isAtLeast(v('4.0.1'), v('4.0.0')));
  t.false(isAtLeast(v('3.19'), v('4.0.0')));
  t.false(isAtLeast(v('4.0.0'), v('4.0.1')));
  // The default minimum (config/defaults.json): 4.1.1 cannot dump inet sockets on kernels >= 6.16.
  t.false(isAtLeast(v('4.1.1'), v('4.2.0')));
  t.true(isAtLeast(v('4.2.1'), v('4.2.0')));
  t.false(isAtLeast(v('3.17.1'), v('3.18')));
  t.true(isAtLeast({ ...v('3.17.1'), gitId: 'abc' }, v('3.18')));
  t.false(isAtLeast({ ...v('3.17.1'), gitId: 'abc' }, v('3.18.1')));
});

test('formatVersion', (t) => {
  t.is(formatVersion({ major: 4, minor: 1, sublevel: 1 }), '4.1.1');
  t.is(formatVersion({ major: 3, minor: 17, sublevel: 0 }), '3.17.0');
  t.is(formatVersion({ major: 3, minor: 17, sublevel: 1, gitId: 'v3.17.1-12-gabcdef' }), '3.17.1 (git v3.17.1-12-gabcdef)');
  t.is(formatVersion(parseVersion('Version: 3.17')), '3.17.0');
});
