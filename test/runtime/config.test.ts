import test from 'ava';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidConfigError, environmentVariables, resolveConfig, type RuntimeConfig } from '../../src/runtime/config.js';
import { tempDir } from './fixtures.js';

const defaults: RuntimeConfig = {
  stateRoot: '/run/runtime',
  checkpointRoot: '/var/lib/runtime/checkpoints',
  imageRoot: '/var/lib/runtime/images',
  criu: '',
  ociRuntime: 'runc',
  cgroupParent: '/runtime',
  minCriuVersion: '4.2.0',
  logLevel: 'info',
  logFormat: 'text',
  logFile: '',
};

async function configFile(t: Parameters<typeof tempDir>[0], content: unknown): Promise<string> {
  const file = join(await tempDir(t, 'config-'), 'config.json');
  await writeFile(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

test('the defaults, when nothing else is set', (t) => {
  // An empty RUNTIME_CONFIG means no file layer, even when /etc/runtime/config.json exists.
  t.deepEqual(resolveConfig({ environment: { RUNTIME_CONFIG: '' } }), defaults);
  if (!existsSync('/etc/runtime/config.json')) t.deepEqual(resolveConfig({ environment: {} }), defaults);
});

test('every key has its environment variable', (t) => {
  t.deepEqual(environmentVariables, {
    stateRoot: 'RUNTIME_ROOT',
    checkpointRoot: 'RUNTIME_CHECKPOINT_ROOT',
    imageRoot: 'RUNTIME_IMAGE_ROOT',
    criu: 'RUNTIME_CRIU',
    ociRuntime: 'RUNTIME_OCI_RUNTIME',
    cgroupParent: 'RUNTIME_CGROUP_PARENT',
    minCriuVersion: 'RUNTIME_MIN_CRIU_VERSION',
    logLevel: 'RUNTIME_LOG_LEVEL',
    logFormat: 'RUNTIME_LOG_FORMAT',
    logFile: 'RUNTIME_LOG',
  });
});

test('the RUNTIME_CONFIG file layer over the defaults', async (t) => {
  const file = await configFile(t, { stateRoot: '/srv/state', ociRuntime: 'crun', logLevel: 'warn' });
  t.deepEqual(resolveConfig({ environment: { RUNTIME_CONFIG: file } }), {
    ...defaults,
    stateRoot: '/srv/state',
    ociRuntime: 'crun',
    logLevel: 'warn',
  });
});

test('the environment over the file', async (t) => {
  const file = await configFile(t, { stateRoot: '/srv/state', ociRuntime: 'crun' });
  const environment = {
    RUNTIME_CONFIG: file,
    RUNTIME_ROOT: '/env/state',
    RUNTIME_CHECKPOINT_ROOT: '/env/checkpoints',
    RUNTIME_IMAGE_ROOT: '/env/images',
    RUNTIME_CRIU: '/opt/criu/sbin/criu',
    RUNTIME_CGROUP_PARENT: '/ci/job7',
    RUNTIME_MIN_CRIU_VERSION: '3.17',
    RUNTIME_LOG_LEVEL: 'debug',
    RUNTIME_LOG_FORMAT: 'json',
    RUNTIME_LOG: '/var/log/runtime.log',
    UNRELATED: 'ignored',
  };
  t.deepEqual(resolveConfig({ environment }), {
    stateRoot: '/env/state',
    checkpointRoot: '/env/checkpoints',
    imageRoot: '/env/images',
    criu: '/opt/criu/sbin/criu',
    ociRuntime: 'crun',
    cgroupParent: '/ci/job7',
    minCriuVersion: '3.17',
    logLevel: 'debug',
    logFormat: 'json',
    logFile: '/var/log/runtime.log',
  });
});

test('overrides win over the environment; undefined overrides are ignored', (t) => {
  const config = resolveConfig({
    environment: { RUNTIME_CONFIG: '', RUNTIME_ROOT: '/env/state', RUNTIME_OCI_RUNTIME: 'crun', RUNTIME_LOG_LEVEL: 'warn' },
    overrides: { stateRoot: '/flag/state', logLevel: 'debug', criu: undefined },
  });
  t.deepEqual(config, { ...defaults, stateRoot: '/flag/state', ociRuntime: 'crun', logLevel: 'debug' });
});

test('a custom defaults file', async (t) => {
  const file = await configFile(t, { ...defaults, stateRoot: '/custom' });
  t.is(resolveConfig({ environment: { RUNTIME_CONFIG: '' }, defaultsPath: file }).stateRoot, '/custom');
});

test('a bad value in the file names the file', async (t) => {
  const file = await configFile(t, { logLevel: 'loud' });
  const error = t.throws(() => resolveConfig({ environment: { RUNTIME_CONFIG: file } }), { instanceOf: InvalidConfigError });
  t.is(error.code, 'INVALID_CONFIG');
  t.is(error.source, file);
  t.true(error.message.startsWith(`invalid configuration in ${file}: logLevel: `));
  t.is(error.hint, 'see "Configuration" in the README for the keys and their values');
});

test('an unknown key in the file names the file', async (t) => {
  const file = await configFile(t, { stateroot: '/typo' });
  const error = t.throws(() => resolveConfig({ environment: { RUNTIME_CONFIG: file } }), { instanceOf: InvalidConfigError });
  t.is(error.source, file);
  t.regex(error.message, /stateroot/);
});

test('a file that is not a JSON object, or not JSON, or missing', async (t) => {
  for (const content of ['[1, 2]', 'null', '"text"']) {
    const file = await configFile(t, content);
    const error = t.throws(() => resolveConfig({ environment: { RUNTIME_CONFIG: file } }), { instanceOf: InvalidConfigError });
    t.is(error.message, `invalid configuration in ${file}: not a JSON object`, content);
  }
  const broken = await configFile(t, '{"stateRoot": ');
  t.is(t.throws(() => resolveConfig({ environment: { RUNTIME_CONFIG: broken } }), { instanceOf: InvalidConfigError }).source, broken);
  const missing = join(await tempDir(t, 'config-'), 'absent.json');
  const error = t.throws(() => resolveConfig({ environment: { RUNTIME_CONFIG: missing } }), { instanceOf: InvalidConfigError });
  t.is(error.source, missing);
  t.regex(error.message, /ENOENT/);
});

test('bad values in the environment name the environment', (t) => {
  const cases: Array<[string, string, string]> = [
    ['RUNTIME_LOG_LEVEL', 'loud', 'logLevel'],
    ['RUNTIME_OCI_RUNTIME', 'youki', 'ociRuntime'],
    ['RUNTIME_MIN_CRIU_VERSION', '4', 'minCriuVersion'],
    ['RUNTIME_MIN_CRIU_VERSION', 'v4.0.0', 'minCriuVersion'],
    ['RUNTIME_LOG_FORMAT', 'xml', 'logFormat'],
    ['RUNTIME_ROOT', '', 'stateRoot'],
  ];
  for (const [variable, value, key] of cases) {
    const error = t.throws(() => resolveConfig({ environment: { RUNTIME_CONFIG: '', [variable]: value } }), { instanceOf: InvalidConfigError }, variable);
    t.is(error.source, 'the environment');
    t.true(error.message.startsWith(`invalid configuration in the environment: ${key}: `), error.message);
  }
});

test('bad overrides name the command line', (t) => {
  const cases: Array<[Partial<RuntimeConfig>, string]> = [
    [{ logLevel: 'loud' as RuntimeConfig['logLevel'] }, 'logLevel'],
    [{ ociRuntime: 'youki' as RuntimeConfig['ociRuntime'] }, 'ociRuntime'],
    [{ minCriuVersion: '4.x' }, 'minCriuVersion'],
  ];
  for (const [overrides, key] of cases) {
    const error = t.throws(() => resolveConfig({ environment: { RUNTIME_CONFIG: '' }, overrides }), { instanceOf: InvalidConfigError }, key);
    t.is(error.source, 'the command line');
    t.true(error.message.startsWith(`invalid configuration in the command line: ${key}: `), error.message);
  }
});
