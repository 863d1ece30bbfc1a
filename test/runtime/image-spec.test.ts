/**
 * specFromImage: config.json from an image's config as Docker derives it, over `runc spec`'s
 * defaults (compared with test/fixtures/oci/runc-spec.json, what this machine's runc 1.1 prints, so
 * no runc is needed). Rootfs trees are temporary directories; nothing needs root.
 */
import test, { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ImageConfig, ImageRunConfig } from '../../src/rootfs/image/types.js';
import {
  ImageUserError,
  InvalidEnvError,
  InvalidExposedPortError,
  InvalidStopSignalError,
  InvalidUserError,
  InvalidVolumeError,
  InvalidWorkdirError,
  NoCommandError,
  UnmappedIdError,
  specFromImage,
  type ImageSpec,
  type ImageSpecInput,
} from '../../src/runtime/image-spec.js';
import { parseSpec, type Spec } from '../../src/runtime/oci/index.js';
import { fixturePath } from '../helpers/fixture-path.js';

const passwd = [
  'root:x:0:0:root:/root:/bin/bash',
  'daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin',
  '# a comment, and a malformed line, both skipped',
  'broken:x:notanumber:1::/:/bin/sh',
  'postgres:x:999:999:PostgreSQL administrator:/var/lib/postgresql:/bin/bash',
  'app:x:1000:1000:App:/home/app:/bin/sh',
  'nohome:x:1001:1001:::/bin/sh',
  '',
].join('\n');

const group = [
  'root:x:0:root',
  'daemon:x:1:',
  'tty:x:5:',
  'wheel:x:10:root',
  'staff:x:50:app,postgres',
  'ssl-cert:x:101:postgres',
  'docker:x:998:app',
  'postgres:x:999:',
  'app:x:1000:',
  '',
].join('\n');

const dockerCapabilities = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
];

const runcSpec = JSON.parse(readFileSync(fixturePath('oci', 'runc-spec.json'), 'utf8')) as Spec;

async function tempDir(t: ExecutionContext, prefix = 'image-spec-'): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A rootfs with the given /etc files (none when a file is undefined). */
async function makeRootfs(t: ExecutionContext, files: { passwd?: string; group?: string } = { passwd, group }): Promise<string> {
  const rootfs = await tempDir(t);
  await mkdir(path.join(rootfs, 'etc'));
  if (files.passwd !== undefined) await writeFile(path.join(rootfs, 'etc', 'passwd'), files.passwd);
  if (files.group !== undefined) await writeFile(path.join(rootfs, 'etc', 'group'), files.group);
  return rootfs;
}

function imageConfig(config: ImageRunConfig | undefined): ImageConfig {
  return { architecture: 'amd64', os: 'linux', ...(config === undefined ? {} : { config }), rootfs: { type: 'layers', diff_ids: [] } };
}

const postgresLike: ImageRunConfig = {
  Env: ['PATH=/usr/lib/postgresql/16/bin:/usr/local/bin:/usr/bin:/bin', 'PGDATA=/var/lib/postgresql/data', 'LANG=en_US.utf8'],
  Entrypoint: ['docker-entrypoint.sh'],
  Cmd: ['postgres'],
  ExposedPorts: { '5432/tcp': {} },
  Volumes: { '/var/lib/postgresql/data': {} },
  StopSignal: 'SIGINT',
  Labels: { maintainer: 'someone', 'org.opencontainers.image.version': '16' },
};

async function fromImage(rootfs: string, config: ImageRunConfig | undefined, extra: Partial<ImageSpecInput> = {}): Promise<ImageSpec> {
  return specFromImage({ config: imageConfig(config), rootfs, id: 'db1', ...extra });
}

/** The spec goes through the project's config.json parser unchanged. */
function assertParses(t: ExecutionContext, spec: Spec): void {
  const text = JSON.stringify(spec);
  const parsed = parseSpec(text, 'config.json');
  t.deepEqual(JSON.parse(JSON.stringify(parsed)), JSON.parse(text));
}

function envOf(result: ImageSpec): Record<string, string> {
  return Object.fromEntries(result.spec.process.env!.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
}

test('the spec keeps every namespace, mount, masked and read-only path, rlimit and device rule of `runc spec`', async (t) => {
  const { spec } = await fromImage(await makeRootfs(t), postgresLike);
  assertParses(t, spec);
  const types = spec.linux!.namespaces!.map((ns) => ns.type);
  for (const ns of runcSpec.linux!.namespaces!) t.true(types.includes(ns.type), `namespace ${ns.type}`);
  t.is(types.length, runcSpec.linux!.namespaces!.length, 'no namespace added without a user namespace');
  for (const mount of runcSpec.mounts!) {
    t.deepEqual(
      spec.mounts!.find((m) => m.destination === mount.destination),
      mount,
      `mount ${mount.destination}`,
    );
  }
  t.is(spec.mounts!.length, runcSpec.mounts!.length);
  for (const masked of runcSpec.linux!.maskedPaths!) t.true(spec.linux!.maskedPaths!.includes(masked), `masked ${masked}`);
  t.true(spec.linux!.maskedPaths!.includes('/sys/devices/virtual/powercap'), "Docker's extra masked path");
  t.deepEqual(spec.linux!.readonlyPaths, runcSpec.linux!.readonlyPaths);
  t.deepEqual(spec.linux!.resources, runcSpec.linux!.resources);
  t.is(spec.ociVersion, runcSpec.ociVersion);
});

test("Docker's file limit (1024, raisable to 524288, or the runtime's own hard limit) and setuid programs working, where runc spec has 1024 and no_new_privs", async (t) => {
  const { spec } = await fromImage(await makeRootfs(t), { Cmd: ['redis-server'] });
  t.deepEqual(spec.process!.rlimits, [{ type: 'RLIMIT_NOFILE', hard: 524288, soft: 1024 }]);
  t.false(spec.process!.noNewPrivileges);
  // A runtime whose own hard limit is lower gives what it has (raising it needs CAP_SYS_RESOURCE).
  const limited = await fromImage(await makeRootfs(t), { Cmd: ['redis-server'] }, { nofileHardLimit: 20000 });
  t.deepEqual(limited.spec.process!.rlimits, [{ type: 'RLIMIT_NOFILE', hard: 20000, soft: 1024 }]);
});

test("Docker's choices replace runc's where a database needs them: writable rootfs, no terminal, the id as hostname", async (t) => {
  const { spec } = await fromImage(await makeRootfs(t), postgresLike);
  t.deepEqual(spec.root, { path: 'rootfs', readonly: false });
  t.false(spec.process.terminal);
  t.is(spec.hostname, 'db1');
  t.deepEqual(spec.process.capabilities, { bounding: dockerCapabilities, effective: dockerCapabilities, permitted: dockerCapabilities });
  t.false('TERM' in envOf(await fromImage(await makeRootfs(t), postgresLike)), 'no TERM without a terminal');
});

test('a non-root user gets the capabilities only in the bounding set, never inheritable or ambient', async (t) => {
  const { spec } = await fromImage(await makeRootfs(t), { ...postgresLike, User: 'postgres' });
  t.deepEqual(spec.process.capabilities, { bounding: dockerCapabilities });
  assertParses(t, spec);
});

test('a hostname longer than sethostname allows is cut to 64 characters', async (t) => {
  const id = 'x'.repeat(100);
  const result = await fromImage(await makeRootfs(t), postgresLike, { id });
  t.is(result.spec.hostname, 'x'.repeat(64));
  t.is(envOf(result).HOSTNAME, 'x'.repeat(64));
});

test('each call returns a fresh spec', async (t) => {
  const rootfs = await makeRootfs(t);
  const first = await fromImage(rootfs, postgresLike);
  const pristine = JSON.parse(JSON.stringify(first.spec)) as Spec;
  first.spec.mounts![0]!.options = ['changed'];
  first.spec.linux!.namespaces!.push({ type: 'time' });
  first.spec.process.capabilities!.bounding!.pop();
  first.spec.linux!.maskedPaths!.length = 0;
  const second = await fromImage(rootfs, postgresLike);
  t.deepEqual(second.spec, pristine);
  t.not(second.spec.mounts, first.spec.mounts);
});

test('args are Entrypoint then Cmd; a command replaces Cmd; an entrypoint replaces Entrypoint and drops Cmd', async (t) => {
  const rootfs = await makeRootfs(t);
  const image: ImageRunConfig = { Entrypoint: ['docker-entrypoint.sh'], Cmd: ['postgres', '-c', 'fsync=off'] };
  const cases: [Partial<ImageSpecInput>, string[]][] = [
    [{}, ['docker-entrypoint.sh', 'postgres', '-c', 'fsync=off']],
    [{ args: [] }, ['docker-entrypoint.sh', 'postgres', '-c', 'fsync=off']],
    [{ args: ['postgres', '-c', 'max_connections=5'] }, ['docker-entrypoint.sh', 'postgres', '-c', 'max_connections=5']],
    [{ entrypoint: ['/bin/sh'] }, ['/bin/sh']],
    [{ entrypoint: ['/bin/sh', '-c'], args: ['echo $HOME'] }, ['/bin/sh', '-c', 'echo $HOME']],
    [{ entrypoint: [''], args: ['id', '-u'] }, ['id', '-u']],
    [{ entrypoint: [], args: ['id'] }, ['id']],
  ];
  for (const [extra, args] of cases) {
    t.deepEqual((await fromImage(rootfs, image, extra)).spec.process.args, args, JSON.stringify(extra));
  }
  t.deepEqual((await fromImage(rootfs, { Entrypoint: null, Cmd: ['redis-server'] })).spec.process.args, ['redis-server']);
  t.deepEqual((await fromImage(rootfs, { Entrypoint: ['tini', '--'], Cmd: null })).spec.process.args, ['tini', '--']);
  t.deepEqual(
    (await fromImage(rootfs, { Cmd: ['sh', '-c', '  two  spaces ', '', "'quoted'"] })).spec.process.args,
    ['sh', '-c', '  two  spaces ', '', "'quoted'"],
    'verbatim',
  );
});

test('no Entrypoint, no Cmd and no command is NoCommandError, pointing at `--`', async (t) => {
  const rootfs = await makeRootfs(t);
  for (const config of [undefined, {}, { Entrypoint: null, Cmd: null }, { Entrypoint: [], Cmd: [] }]) {
    const error = await t.throwsAsync(fromImage(rootfs, config), { instanceOf: NoCommandError });
    t.is(error?.code, 'IMAGE_NO_COMMAND');
    t.regex(error?.hint ?? '', /`--`/);
  }
  // An entrypoint given drops the image's Cmd; clearing it leaves nothing to run.
  await t.throwsAsync(fromImage(rootfs, { Cmd: ['postgres'] }, { entrypoint: [''] }), { instanceOf: NoCommandError });
  t.deepEqual((await fromImage(rootfs, {}, { args: ['sh'] })).spec.process.args, ['sh']);
});

test('env: PATH and HOSTNAME first, then the image, then the overrides, a key replaced where it first appeared; HOME last', async (t) => {
  const rootfs = await makeRootfs(t);
  const { spec } = await fromImage(
    rootfs,
    { ...postgresLike, Env: ['PGDATA=/data', 'PATH=/opt/bin:/bin', 'EQ=a=b', 'EMPTY='] },
    { env: ['PGDATA=/elsewhere', 'POSTGRES_PASSWORD=secret'] },
  );
  t.deepEqual(spec.process.env, ['PATH=/opt/bin:/bin', 'HOSTNAME=db1', 'PGDATA=/elsewhere', 'EQ=a=b', 'EMPTY=', 'POSTGRES_PASSWORD=secret', 'HOME=/root']);
});

test('env defaults: PATH when the image sets none, HOME from the passwd entry, "/" for a numeric user without one', async (t) => {
  const rootfs = await makeRootfs(t);
  const plain = envOf(await fromImage(rootfs, { Cmd: ['sh'] }));
  t.is(plain.PATH, '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
  t.is(plain.HOSTNAME, 'db1');
  t.is(plain.HOME, '/root');
  t.is(envOf(await fromImage(rootfs, { Cmd: ['sh'], User: 'postgres' })).HOME, '/var/lib/postgresql');
  t.is(envOf(await fromImage(rootfs, { Cmd: ['sh'], User: '4242' })).HOME, '/');
  t.is(envOf(await fromImage(rootfs, { Cmd: ['sh'], User: 'nohome' })).HOME, '/', 'an entry with an empty home');
  const overridden = envOf(await fromImage(rootfs, { Cmd: ['sh'], Env: ['HOME=/srv'] }, { env: ['HOSTNAME=db.example'] }));
  t.is(overridden.HOME, '/srv');
  t.is(overridden.HOSTNAME, 'db.example');
});

test('an env entry without "=", with an empty key or a NUL byte is InvalidEnvError naming where it came from', async (t) => {
  const rootfs = await makeRootfs(t);
  const fromOverride = await t.throwsAsync(fromImage(rootfs, postgresLike, { env: ['NOVALUE'] }), { instanceOf: InvalidEnvError });
  t.is(fromOverride?.origin, 'override');
  t.regex(fromOverride?.message ?? '', /"NOVALUE"/);
  const fromImageEnv = await t.throwsAsync(fromImage(rootfs, { ...postgresLike, Env: ['=value'] }), { instanceOf: InvalidEnvError });
  t.is(fromImageEnv?.origin, 'image');
  t.regex(fromImageEnv?.message ?? '', /image's Env/);
  await t.throwsAsync(fromImage(rootfs, postgresLike, { env: ['A=b\0c'] }), { instanceOf: InvalidEnvError });
});

test('every user form resolves through the rootfs passwd and group files, with supplementary groups as Docker gives them', async (t) => {
  const rootfs = await makeRootfs(t);
  const cases: [string, { uid: number; gid: number; additionalGids: number[] }][] = [
    ['', { uid: 0, gid: 0, additionalGids: [0, 10] }],
    ['root', { uid: 0, gid: 0, additionalGids: [0, 10] }],
    ['0', { uid: 0, gid: 0, additionalGids: [0, 10] }],
    ['app', { uid: 1000, gid: 1000, additionalGids: [1000, 50, 998] }],
    ['1000', { uid: 1000, gid: 1000, additionalGids: [1000, 50, 998] }],
    ['app:', { uid: 1000, gid: 1000, additionalGids: [1000, 50, 998] }],
    ['postgres', { uid: 999, gid: 999, additionalGids: [999, 50, 101] }],
    // An explicit group replaces the primary gid and drops the membership groups (libcontainer).
    ['postgres:staff', { uid: 999, gid: 50, additionalGids: [50] }],
    ['postgres:4000', { uid: 999, gid: 4000, additionalGids: [4000] }],
    ['1000:50', { uid: 1000, gid: 50, additionalGids: [50] }],
    ['1000:docker', { uid: 1000, gid: 998, additionalGids: [998] }],
    ['4242', { uid: 4242, gid: 0, additionalGids: [0] }],
    ['4242:4242', { uid: 4242, gid: 4242, additionalGids: [4242] }],
    ['4242:staff', { uid: 4242, gid: 50, additionalGids: [50] }],
    [':staff', { uid: 0, gid: 50, additionalGids: [50] }],
  ];
  for (const [user, expected] of cases) {
    const { spec } = await fromImage(rootfs, { Cmd: ['id'], User: user });
    t.deepEqual(spec.process.user, expected, JSON.stringify(user));
  }
});

test('the user given overrides the image User', async (t) => {
  const rootfs = await makeRootfs(t);
  const { spec } = await fromImage(rootfs, { Cmd: ['id'], User: 'postgres' }, { user: 'app' });
  t.is(spec.process.user.uid, 1000);
  t.is((await fromImage(rootfs, { Cmd: ['id'], User: 'postgres' }, { user: '' })).spec.process.user.uid, 0, 'an empty override is root');
});

test('a user or group name the image does not define is ImageUserError naming the file', async (t) => {
  const rootfs = await makeRootfs(t);
  const user = await t.throwsAsync(fromImage(rootfs, { Cmd: ['id'], User: 'nobody' }), { instanceOf: ImageUserError });
  t.is(user?.code, 'IMAGE_USER_NOT_FOUND');
  t.is(user?.file, '/etc/passwd');
  t.regex(user?.message ?? '', /user "nobody" is not in the image's \/etc\/passwd/);
  const groupError = await t.throwsAsync(fromImage(rootfs, { Cmd: ['id'], User: 'app:nogroup' }), { instanceOf: ImageUserError });
  t.is(groupError?.kind, 'group');
  t.is(groupError?.file, '/etc/group');
  t.regex(groupError?.hint ?? '', /numeric/);
});

test('a malformed user string or an id out of range is InvalidUserError', async (t) => {
  const rootfs = await makeRootfs(t);
  await t.throwsAsync(fromImage(rootfs, { Cmd: ['id'] }, { user: 'a:b:c' }), { instanceOf: InvalidUserError, message: /more than one ":"/ });
  const tooBig = await t.throwsAsync(fromImage(rootfs, { Cmd: ['id'], User: '99999999999' }), { instanceOf: InvalidUserError });
  t.is(tooBig?.origin, 'image');
  await t.throwsAsync(fromImage(rootfs, { Cmd: ['id'] }, { user: '1:3000000000' }), { instanceOf: InvalidUserError });
});

test('without /etc/passwd or /etc/group, numeric users and groups still work and names fail', async (t) => {
  const empty = await makeRootfs(t, {});
  t.deepEqual((await fromImage(empty, { Cmd: ['id'], User: '1000:1000' })).spec.process.user, { uid: 1000, gid: 1000, additionalGids: [1000] });
  t.deepEqual((await fromImage(empty, { Cmd: ['id'] })).spec.process.user, { uid: 0, gid: 0, additionalGids: [0] });
  t.is(envOf(await fromImage(empty, { Cmd: ['id'] })).HOME, '/');
  const missing = await t.throwsAsync(fromImage(empty, { Cmd: ['id'], User: 'app' }), { instanceOf: ImageUserError });
  t.regex(missing?.message ?? '', /the image has no \/etc\/passwd/);

  const noGroup = await makeRootfs(t, { passwd });
  t.deepEqual((await fromImage(noGroup, { Cmd: ['id'], User: 'app' })).spec.process.user, { uid: 1000, gid: 1000, additionalGids: [1000] });
  await t.throwsAsync(fromImage(noGroup, { Cmd: ['id'], User: 'app:staff' }), { instanceOf: ImageUserError, message: /no \/etc\/group/ });
});

test("an /etc that links out of the rootfs is followed inside it: the host's hostile passwd is never read", async (t) => {
  const hostile = await tempDir(t, 'image-spec-hostile-');
  await mkdir(path.join(hostile, 'etc'));
  await writeFile(path.join(hostile, 'etc', 'passwd'), 'evil:x:0:0::/evil:/bin/sh\napp:x:666:666::/evil:/bin/sh\n');
  await writeFile(path.join(hostile, 'etc', 'group'), 'evil:x:0:app\n');

  // Absolute link: resolves to <rootfs><hostile>/etc, which does not exist.
  const absolute = await tempDir(t);
  await symlink(path.join(hostile, 'etc'), path.join(absolute, 'etc'));
  await t.throwsAsync(fromImage(absolute, { Cmd: ['id'], User: 'evil' }), { instanceOf: ImageUserError, message: /no \/etc\/passwd/ });
  t.is(envOf(await fromImage(absolute, { Cmd: ['id'] })).HOME, '/', 'root has no entry either');

  // The same link, with the rootfs's own file at that path: that file is the one read.
  const shadowed = await tempDir(t);
  await symlink(path.join(hostile, 'etc'), path.join(shadowed, 'etc'));
  await mkdir(path.join(shadowed, hostile, 'etc'), { recursive: true });
  await writeFile(path.join(shadowed, hostile, 'etc', 'passwd'), 'app:x:1000:1000::/home/app:/bin/sh\n');
  await writeFile(path.join(shadowed, hostile, 'etc', 'group'), 'staff:x:50:app\n');
  const { spec } = await fromImage(shadowed, { Cmd: ['id'], User: 'app' });
  t.deepEqual(spec.process.user, { uid: 1000, gid: 1000, additionalGids: [1000, 50] });

  // A relative link climbing out stops at the rootfs's "/"; a passwd that is itself a link to the host file too.
  const relative = await tempDir(t);
  await symlink(`${'../'.repeat(20)}${hostile.slice(1)}/etc`, path.join(relative, 'etc'));
  await t.throwsAsync(fromImage(relative, { Cmd: ['id'], User: 'evil' }), { instanceOf: ImageUserError });
  const fileLink = await tempDir(t);
  await mkdir(path.join(fileLink, 'etc'));
  await symlink(path.join(hostile, 'etc', 'passwd'), path.join(fileLink, 'etc', 'passwd'));
  await t.throwsAsync(fromImage(fileLink, { Cmd: ['id'], User: 'evil' }), { instanceOf: ImageUserError });
});

test('a passwd that is a fifo is not opened for reading and blocks nothing', async (t) => {
  const rootfs = await makeRootfs(t, { group });
  execFileSync('mkfifo', [path.join(rootfs, 'etc', 'passwd')]);
  t.deepEqual((await fromImage(rootfs, { Cmd: ['id'], User: '1000' })).spec.process.user, { uid: 1000, gid: 0, additionalGids: [0] });
  await t.throwsAsync(fromImage(rootfs, { Cmd: ['id'], User: 'app' }), { instanceOf: ImageUserError });
});

test('ExposedPorts become port and protocol, tcp by default, sorted and without duplicates', async (t) => {
  const rootfs = await makeRootfs(t);
  const { exposedPorts } = await fromImage(rootfs, {
    Cmd: ['x'],
    ExposedPorts: { '5432/tcp': {}, '53/udp': {}, '80': {}, '53/tcp': {}, '80/tcp': {}, '9000/SCTP': {} },
  });
  t.deepEqual(exposedPorts, [
    { port: 53, protocol: 'tcp' },
    { port: 53, protocol: 'udp' },
    { port: 80, protocol: 'tcp' },
    { port: 5432, protocol: 'tcp' },
    { port: 9000, protocol: 'sctp' },
  ]);
  t.deepEqual((await fromImage(rootfs, { Cmd: ['x'] })).exposedPorts, []);
});

test('a bad ExposedPorts key is InvalidExposedPortError naming the key', async (t) => {
  const rootfs = await makeRootfs(t);
  for (const key of ['0/tcp', '70000', 'http', '80/icmp', '8000-8010/tcp', '/tcp', '80/']) {
    const error = await t.throwsAsync(fromImage(rootfs, { Cmd: ['x'], ExposedPorts: { [key]: {} } }), { instanceOf: InvalidExposedPortError });
    t.is(error?.key, key);
    t.true(error?.message.includes(JSON.stringify(key)), key);
  }
});

test('StopSignal is normalised to a name and annotated; image Labels are not', async (t) => {
  const rootfs = await makeRootfs(t);
  const cases: [string, string][] = [
    ['SIGINT', 'SIGINT'],
    ['INT', 'SIGINT'],
    ['int', 'SIGINT'],
    ['2', 'SIGINT'],
    ['15', 'SIGTERM'],
    ['SIGQUIT', 'SIGQUIT'],
    ['SIGRTMIN+3', 'SIGRTMIN+3'],
    ['RTMIN+3', 'SIGRTMIN+3'],
    ['37', 'SIGRTMIN+3'],
    ['34', 'SIGRTMIN'],
    ['64', 'SIGRTMAX'],
    ['SIGRTMAX-1', 'SIGRTMAX-1'],
  ];
  for (const [given, name] of cases) {
    const result = await fromImage(rootfs, { ...postgresLike, StopSignal: given });
    t.is(result.stopSignal, name, given);
    t.deepEqual(result.spec.annotations, { 'org.opencontainers.image.stopSignal': name }, given);
  }
  const none = await fromImage(rootfs, { ...postgresLike, StopSignal: undefined });
  t.false('stopSignal' in none);
  t.is(none.spec.annotations, undefined, 'no annotations at all: Labels are not copied');
});

test('an unknown StopSignal is InvalidStopSignalError', async (t) => {
  const rootfs = await makeRootfs(t);
  for (const signal of ['SIGFOO', '0', '32', '65', '99', 'SIGRTMIN-1', 'SIGRTMAX+1', 'SIGRTMIN+31']) {
    const error = await t.throwsAsync(fromImage(rootfs, { ...postgresLike, StopSignal: signal }), { instanceOf: InvalidStopSignalError });
    t.is(error?.signal, signal);
  }
});

test('the working directory is WorkingDir, the override, or "/", cleaned; a relative one is an error', async (t) => {
  const rootfs = await makeRootfs(t);
  t.is((await fromImage(rootfs, { Cmd: ['x'] })).spec.process.cwd, '/');
  t.is((await fromImage(rootfs, { Cmd: ['x'], WorkingDir: '' })).spec.process.cwd, '/');
  t.is((await fromImage(rootfs, { Cmd: ['x'], WorkingDir: '/var/lib//postgresql/' })).spec.process.cwd, '/var/lib/postgresql');
  t.is((await fromImage(rootfs, { Cmd: ['x'], WorkingDir: '/app' }, { workdir: '/srv/data' })).spec.process.cwd, '/srv/data');
  const image = await t.throwsAsync(fromImage(rootfs, { Cmd: ['x'], WorkingDir: 'app' }), { instanceOf: InvalidWorkdirError });
  t.is(image?.origin, 'image');
  const override = await t.throwsAsync(fromImage(rootfs, { Cmd: ['x'], WorkingDir: '/app' }, { workdir: 'data' }), { instanceOf: InvalidWorkdirError });
  t.is(override?.origin, 'override');
});

test('Volumes are returned as normalised absolute paths; a relative one is an error', async (t) => {
  const rootfs = await makeRootfs(t);
  const { volumes } = await fromImage(rootfs, { Cmd: ['x'], Volumes: { '/var/lib/postgresql/data': {}, '/data/': {}, '/data': {} } });
  t.deepEqual(volumes, ['/var/lib/postgresql/data', '/data']);
  t.deepEqual((await fromImage(rootfs, { Cmd: ['x'] })).volumes, []);
  await t.throwsAsync(fromImage(rootfs, { Cmd: ['x'], Volumes: { data: {} } }), { instanceOf: InvalidVolumeError });
});

test('a user namespace adds the namespace and copies of the mappings', async (t) => {
  const rootfs = await makeRootfs(t);
  const uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
  const gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
  const { spec } = await fromImage(rootfs, { ...postgresLike, User: 'postgres' }, { userNamespace: { uidMappings, gidMappings } });
  assertParses(t, spec);
  t.deepEqual(
    spec.linux!.namespaces!.map((ns) => ns.type),
    ['pid', 'network', 'ipc', 'uts', 'mount', 'user'],
  );
  t.deepEqual(spec.linux!.uidMappings, uidMappings);
  t.deepEqual(spec.linux!.gidMappings, gidMappings);
  t.not(spec.linux!.uidMappings![0], uidMappings[0], 'a copy, not the caller’s object');
  t.true(spec.mounts!.find((m) => m.destination === '/dev/pts')!.options!.includes('gid=5'), 'gid 5 is mapped');
  t.deepEqual(
    spec.mounts!.find((m) => m.destination === '/sys'),
    runcSpec.mounts!.find((m) => m.destination === '/sys'),
    'sysfs kept: the container has its own network namespace',
  );
});

test('a user namespace that does not map gid 5 drops gid=5 from devpts, as `runc spec --rootless` does', async (t) => {
  // No /etc/group: root has no membership groups that the one-id namespace could not map.
  const rootfs = await makeRootfs(t, { passwd });
  const single = [{ containerID: 0, hostID: 100000, size: 1 }];
  const { spec } = await fromImage(rootfs, postgresLike, { userNamespace: { uidMappings: single, gidMappings: single } });
  assertParses(t, spec);
  t.deepEqual(spec.mounts!.find((m) => m.destination === '/dev/pts')!.options, ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620']);
  t.deepEqual(spec.process.user, { uid: 0, gid: 0, additionalGids: [0] });
});

test('a process uid or gid the user namespace does not map is UnmappedIdError', async (t) => {
  const rootfs = await makeRootfs(t);
  const small = [{ containerID: 0, hostID: 100000, size: 1000 }];
  const uid = await t.throwsAsync(fromImage(rootfs, { Cmd: ['x'], User: 'app' }, { userNamespace: { uidMappings: small, gidMappings: small } }), {
    instanceOf: UnmappedIdError,
  });
  t.is(uid?.kind, 'uid');
  t.is(uid?.id, 1000);
  const wide = [{ containerID: 0, hostID: 100000, size: 65536 }];
  const gid = await t.throwsAsync(fromImage(rootfs, { Cmd: ['x'], User: '1:70000' }, { userNamespace: { uidMappings: wide, gidMappings: wide } }), {
    instanceOf: UnmappedIdError,
  });
  t.is(gid?.kind, 'gid');
});
