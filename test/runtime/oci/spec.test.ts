import test from 'ava';
import { InvalidBundleError, parseSpec, specHasNamespace } from '../../../src/runtime/oci/index.js';
import { fixturePath, readFixture } from './fixtures.js';

function parseFixture(name: string) {
  return parseSpec(readFixture(name), fixturePath(name));
}

function rejects(name: string): InvalidBundleError {
  const file = fixturePath(name);
  const error = (() => {
    try {
      parseSpec(readFixture(name), file);
    } catch (thrown) {
      return thrown;
    }
    throw new Error(`${name} parsed, but should not have`);
  })();
  if (!(error instanceof InvalidBundleError)) throw new Error(`expected InvalidBundleError, got ${String(error)}`);
  return error;
}

test('parses the config.json that `runc spec` writes', (t) => {
  const spec = parseFixture('runc-spec.json');
  t.is(spec.ociVersion, '1.0.2-dev');
  t.deepEqual(spec.process.args, ['sh']);
  t.is(spec.process.cwd, '/');
  t.deepEqual(spec.process.user, { uid: 0, gid: 0 });
  t.deepEqual(spec.root, { path: 'rootfs', readonly: true });
  t.is(spec.mounts?.length, 7);
  t.is(spec.mounts?.[2]?.destination, '/dev/pts');
  t.deepEqual(
    spec.linux?.namespaces?.map((ns) => ns.type),
    ['pid', 'network', 'ipc', 'uts', 'mount'],
  );
  t.deepEqual(spec.linux?.resources?.devices, [{ allow: false, access: 'rwm' }]);
});

test('the runc spec survives a round trip unchanged', (t) => {
  const text = readFixture('runc-spec.json');
  t.deepEqual(JSON.parse(JSON.stringify(parseSpec(text, '/b/config.json'))), JSON.parse(text));
});

test('extension fields and untyped spec fields survive a round trip, at every level', (t) => {
  const text = readFixture('extensions.json');
  const spec = parseSpec(text, '/b/config.json');
  t.deepEqual(JSON.parse(JSON.stringify(spec)), JSON.parse(text));
  // Spot checks that the unknown keys are really on the parsed object, not just tolerated.
  t.deepEqual(spec['org.example.vendor'], { tier: 'gold', weights: [1, 2, 3] });
  t.deepEqual(spec.process['ioPriority'], { class: 'IOPRIO_CLASS_BE', priority: 4 });
  t.is(spec.root['x-snapshotter'], 'overlayfs');
  t.is(spec.mounts?.[7]?.['x-origin'], 'volume');
  t.is(spec.hooks?.createRuntime?.[0]?.['x-owner'], 'cni');
  t.deepEqual(spec.linux?.resources?.['x-future-controller'], { knob: 1 });
  t.is(spec.linux?.resources?.memory?.['checkBeforeUpdate'], true);
  t.deepEqual(spec.linux?.['timeOffsets'], { monotonic: { secs: 3600, nanosecs: 0 } });
});

test('specHasNamespace finds a namespace entry by type', (t) => {
  const spec = parseFixture('extensions.json');
  t.deepEqual(specHasNamespace(spec, 'user'), { type: 'user', path: '/proc/1234/ns/user' });
  t.deepEqual(specHasNamespace(spec, 'pid'), { type: 'pid' });
  t.is(specHasNamespace(parseFixture('runc-spec.json'), 'user'), undefined);
});

test('specHasNamespace is undefined when there is no linux section', (t) => {
  const spec = JSON.parse(readFixture('runc-spec.json')) as Record<string, unknown>;
  delete spec['linux'];
  t.is(specHasNamespace(parseSpec(JSON.stringify(spec), '/b/config.json'), 'pid'), undefined);
});

test('invalid JSON names the file and the line and column', (t) => {
  const error = rejects('invalid-json.json');
  t.is(error.code, 'INVALID_BUNDLE');
  t.is(error.field, '');
  t.is(error.file, fixturePath('invalid-json.json'));
  t.true(error.message.startsWith(`invalid ${fixturePath('invalid-json.json')}: not valid JSON at line 4, column 2: `));
  t.true(error.cause instanceof SyntaxError);
  t.is(error.hint, 'fix the field, or regenerate the file with `runc spec`');
});

test('invalid JSON without a position from V8 is still located', (t) => {
  // Node 20 says only `Unexpected token '}', "..." is not valid JSON` here.
  const error = t.throws(() => parseSpec('{\n  "a": tru\n}', '/b/config.json'), { instanceOf: InvalidBundleError });
  t.regex(error.message, /^invalid \/b\/config\.json: not valid JSON at line 2, column 11: /);
});

test('an empty file is reported as such', (t) => {
  const error = t.throws(() => parseSpec('  \n', '/b/config.json'), { instanceOf: InvalidBundleError });
  t.is(error.field, '');
  t.is(error.message, 'invalid /b/config.json: the file is empty, not JSON');
});

test('JSON that is not an object is a whole-file problem', (t) => {
  const error = t.throws(() => parseSpec('[1, 2]', '/b/config.json'), { instanceOf: InvalidBundleError });
  t.is(error.field, '');
  t.is(error.message, 'invalid /b/config.json: must be an object, not an array');
});

test('empty process.args is rejected at process.args', (t) => {
  const error = rejects('args-empty.json');
  t.is(error.field, 'process.args');
  t.is(error.message, `invalid ${fixturePath('args-empty.json')}: process.args: must not be empty`);
  t.deepEqual(error.problems, [{ field: 'process.args', reason: 'must not be empty' }]);
});

test('a relative mount destination is rejected at mounts[2].destination', (t) => {
  const error = rejects('relative-mount.json');
  t.is(error.field, 'mounts[2].destination');
  t.is(error.reason, 'must be an absolute path');
  t.is(error.message, `invalid ${fixturePath('relative-mount.json')}: mounts[2].destination: must be an absolute path`);
});

test('an unknown namespace type is rejected and the known ones are listed', (t) => {
  const error = rejects('bad-namespace.json');
  t.is(error.field, 'linux.namespaces[1].type');
  t.is(error.reason, 'must be one of "pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time", not "net"');
  t.true(error.message.includes(fixturePath('bad-namespace.json')));
});

test('wrong types: the first problem is reported and the others are counted', (t) => {
  const error = rejects('wrong-types.json');
  t.is(error.field, 'process.terminal');
  t.is(error.reason, 'must be a boolean, not a string');
  t.is(error.message, `invalid ${fixturePath('wrong-types.json')}: process.terminal: must be a boolean, not a string (and 2 other problems)`);
  t.deepEqual(error.problems, [
    { field: 'process.terminal', reason: 'must be a boolean, not a string' },
    { field: 'process.user.uid', reason: 'must be a number, not a string' },
    { field: 'hostname', reason: 'must be a string, not a number' },
  ]);
});

/** The runc spec with one change applied, parsed; returns the error's field and reason. */
function problemAfter(change: (spec: any) => void): { field: string; reason: string; message: string } {
  const spec: unknown = JSON.parse(readFixture('runc-spec.json'));
  change(spec);
  try {
    parseSpec(JSON.stringify(spec), '/b/config.json');
  } catch (error) {
    if (error instanceof InvalidBundleError) return { field: error.field, reason: error.reason, message: error.message };
    throw error;
  }
  throw new Error('the spec parsed, but should not have');
}

test('a missing required field says it is required', (t) => {
  t.like(
    problemAfter((s) => delete s.process.args),
    { field: 'process.args', reason: 'is required (an array)' },
  );
  t.like(
    problemAfter((s) => delete s.ociVersion),
    { field: 'ociVersion', reason: 'is required (a string)' },
  );
  t.like(
    problemAfter((s) => delete s.root),
    { field: 'root', reason: 'is required (an object)' },
  );
  t.like(
    problemAfter((s) => delete s.process.user.gid),
    { field: 'process.user.gid', reason: 'is required (a number)' },
  );
});

test('process.cwd must be absolute', (t) => {
  t.like(
    problemAfter((s) => (s.process.cwd = 'home')),
    { field: 'process.cwd', reason: 'must be an absolute path' },
  );
});

test('ids must be non-negative 32-bit integers', (t) => {
  t.like(
    problemAfter((s) => (s.process.user.uid = -1)),
    { field: 'process.user.uid', reason: 'must be at least 0, not -1' },
  );
  t.like(
    problemAfter((s) => (s.process.user.uid = 1.5)),
    { field: 'process.user.uid', reason: 'must be an integer, not a non-integer number' },
  );
  t.like(
    problemAfter((s) => (s.process.user.gid = 2 ** 32)),
    { field: 'process.user.gid', reason: 'must be at most 4294967295, not 4294967296' },
  );
});

test('a namespace listed twice is rejected at the second entry', (t) => {
  t.like(
    problemAfter((s) => s.linux.namespaces.push({ type: 'pid' })),
    {
      field: 'linux.namespaces[5].type',
      reason: 'namespace "pid" is listed more than once',
    },
  );
});

test('a namespace path must be absolute', (t) => {
  t.like(
    problemAfter((s) => (s.linux.namespaces[1].path = 'run/netns/x')),
    {
      field: 'linux.namespaces[1].path',
      reason: 'must be an absolute path',
    },
  );
});

test('character and block devices need major and minor; fifos do not', (t) => {
  t.like(
    problemAfter((s) => (s.linux.devices = [{ path: '/dev/fuse', type: 'c', minor: 229 }])),
    {
      field: 'linux.devices[0].major',
      reason: 'is required for a device of type "c"',
    },
  );
  t.like(
    problemAfter((s) => (s.linux.devices = [{ path: '/dev/x', type: 'z', major: 1, minor: 1 }])),
    {
      field: 'linux.devices[0].type',
    },
  );
  const spec = JSON.parse(readFixture('runc-spec.json'));
  spec.linux.devices = [{ path: '/dev/fifo', type: 'p' }];
  t.deepEqual(parseSpec(JSON.stringify(spec), '/b/config.json').linux?.devices, [{ path: '/dev/fifo', type: 'p' }]);
});

test('hooks need an absolute path and a positive timeout', (t) => {
  t.like(
    problemAfter((s) => (s.hooks = { poststop: [{ path: 'cleanup' }] })),
    {
      field: 'hooks.poststop[0].path',
      reason: 'must be an absolute path',
    },
  );
  t.like(
    problemAfter((s) => (s.hooks = { createRuntime: [{ path: '/bin/true', timeout: 0 }] })),
    {
      field: 'hooks.createRuntime[0].timeout',
      reason: 'must be greater than zero',
    },
  );
});

test('map keys that are not identifiers are quoted in the field path', (t) => {
  t.like(
    problemAfter((s) => (s.linux.sysctl = { 'net.ipv4.ip_forward': 1 })),
    {
      field: 'linux.sysctl["net.ipv4.ip_forward"]',
      reason: 'must be a string, not a number',
    },
  );
  t.like(
    problemAfter((s) => (s.annotations = { 'io.example/ok': 'yes', 'io.example/count': 3 })),
    {
      field: 'annotations["io.example/count"]',
    },
  );
});

test('resources are checked to be objects, their contents are not', (t) => {
  t.like(
    problemAfter((s) => (s.linux.resources.memory = 512)),
    {
      field: 'linux.resources.memory',
      reason: 'must be an object, not a number',
    },
  );
  t.like(
    problemAfter((s) => (s.linux.resources.unified = { 'memory.max': 1 })),
    {
      field: 'linux.resources.unified["memory.max"]',
    },
  );
});

test('an unlimited rlimit (2^64-1, which a double cannot hold exactly) is accepted', (t) => {
  const text = readFixture('runc-spec.json').replace('"hard": 1024', '"hard": 18446744073709551615');
  t.is(parseSpec(text, '/b/config.json').process.rlimits?.[0]?.hard, 2 ** 64);
});
