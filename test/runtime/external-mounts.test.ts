import test from 'ava';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cgroupHierarchies } from '../../src/runtime/cgroups.js';
import {
  MissingMountMappingError,
  dumpMountMap,
  externalMountsForDump,
  restoreMountMap,
  type ExternalMount,
  type RecordedTmpfs,
} from '../../src/runtime/external-mounts.js';
import { isBindMount, resolveInRoot } from '../../src/rootfs/in-root.js';
import { parseSpec, type Spec } from '../../src/runtime/oci/index.js';
import { parseMountInfo } from '../../src/rootfs/mountinfo.js';
import { coreFixturePath, readCoreFixture, tempDir } from './fixtures.js';

type T = Parameters<typeof tempDir>[0];

/**
 * A rootfs shaped like a real image: /var/run -> ../run (relative, as Debian has it), /web -> /opt/www
 * (absolute, which must stay inside the rootfs), a chain, a loop and a link that tries to climb out.
 */
async function makeRootfs(root: string): Promise<void> {
  await mkdir(join(root, 'var'), { recursive: true });
  await mkdir(join(root, 'run'));
  await mkdir(join(root, 'opt/www/releases/v2'), { recursive: true });
  await mkdir(join(root, 'srv/target'), { recursive: true });
  await mkdir(join(root, 'etc'));
  await writeFile(join(root, 'etc/passwd'), 'root:x:0:0::/root:/bin/sh\n');
  await symlink('../run', join(root, 'var/run'));
  await symlink('/opt/www', join(root, 'web'));
  await symlink('releases/v2', join(root, 'opt/www/current'));
  await symlink('../www/current', join(root, 'opt/www/previous'));
  await symlink('link2', join(root, 'link1'));
  await symlink('/srv/target', join(root, 'link2'));
  await symlink('../../../../../etc', join(root, 'srv/up'));
  await symlink('/', join(root, 'slash'));
  await symlink('/tmp', join(root, 'hosttmp'));
  await symlink('loop2', join(root, 'loop1'));
  await symlink('loop1', join(root, 'loop2'));
  await symlink('self', join(root, 'self'));
  await symlink('etc/passwd', join(root, 'file-link'));
}

async function rootfs(t: T): Promise<string> {
  const root = join(await tempDir(t, 'ext-mounts-'), 'rootfs');
  await makeRootfs(root);
  return root;
}

test('resolveInRoot: plain paths are normalised', async (t) => {
  const root = await rootfs(t);
  t.is(await resolveInRoot(root, '/'), '/');
  t.is(await resolveInRoot(root, ''), '/');
  t.is(await resolveInRoot(root, '//etc/./passwd/'), '/etc/passwd');
  t.is(await resolveInRoot(root, 'etc'), '/etc');
});

test('resolveInRoot: relative and absolute symlinks, resolved inside the root', async (t) => {
  const root = await rootfs(t);
  t.is(await resolveInRoot(root, '/var/run'), '/run');
  t.is(await resolveInRoot(root, '/var/run/app'), '/run/app');
  t.is(await resolveInRoot(root, '/web/static'), '/opt/www/static');
  t.is(await resolveInRoot(root, '/web/current/bin'), '/opt/www/releases/v2/bin');
  t.is(await resolveInRoot(root, '/hosttmp/x'), '/tmp/x');
  t.is(await resolveInRoot(root, '/slash/etc'), '/etc');
  t.is(await resolveInRoot(root, '/file-link'), '/etc/passwd');
});

test('resolveInRoot: chains of symlinks', async (t) => {
  const root = await rootfs(t);
  t.is(await resolveInRoot(root, '/link1'), '/srv/target');
  t.is(await resolveInRoot(root, '/link1/data'), '/srv/target/data');
  t.is(await resolveInRoot(root, '/opt/www/previous/x'), '/opt/www/releases/v2/x');
});

test('resolveInRoot: ".." never climbs above the root', async (t) => {
  const root = await rootfs(t);
  t.is(await resolveInRoot(root, '/../../etc/passwd'), '/etc/passwd');
  t.is(await resolveInRoot(root, '/srv/up/passwd'), '/etc/passwd');
  t.is(await resolveInRoot(root, '/etc/../../../var'), '/var');
  // ".." after a symlink applies to where the link points, as the kernel does it.
  t.is(await resolveInRoot(root, '/web/../etc'), '/opt/etc');
});

test('resolveInRoot: a nonexistent tail is kept as written', async (t) => {
  const root = await rootfs(t);
  t.is(await resolveInRoot(root, '/var/run/app/deep/er'), '/run/app/deep/er');
  t.is(await resolveInRoot(root, '/no/such/path'), '/no/such/path');
  t.is(await resolveInRoot(root, '/no/such/../path'), '/no/path');
  // A root that does not exist at all: nothing is a symlink.
  t.is(await resolveInRoot(join(root, 'absent'), '/var/run'), '/var/run');
});

test('resolveInRoot: symlink loops are an error', async (t) => {
  const root = await rootfs(t);
  for (const path of ['/loop1', '/loop2/x', '/self']) {
    const error = await t.throwsAsync(resolveInRoot(root, path));
    t.is(error.message, `too many symlinks resolving ${path} in ${root}`);
  }
});

test('isBindMount: by type or by option', (t) => {
  t.true(isBindMount({ destination: '/a', type: 'bind' }));
  t.true(isBindMount({ destination: '/a', type: 'none', options: ['rbind'] }));
  t.true(isBindMount({ destination: '/a', options: ['ro', 'bind'] }));
  t.false(isBindMount({ destination: '/a', type: 'tmpfs', options: ['nobind', 'rbindx'] }));
  t.false(isBindMount({ destination: '/a' }));
});

function fixtureSpec(): Spec {
  return parseSpec(readCoreFixture('external-mounts-spec.json'), coreFixturePath('external-mounts-spec.json'));
}

/** /proc/<init>/root of the "running container": two masked files, a masked directory. */
async function containerRoot(t: T): Promise<string> {
  const root = await tempDir(t, 'ext-mounts-croot-');
  await mkdir(join(root, 'proc/acpi'), { recursive: true });
  await writeFile(join(root, 'proc/kcore'), '');
  await writeFile(join(root, 'proc/timer_list'), '');
  return root;
}

const expectedDump: ExternalMount[] = [
  { kind: 'bind', mountPoint: '/data', name: '/data' },
  { kind: 'bind', mountPoint: '/run/app', name: '/run/app' },
  { kind: 'bind', mountPoint: '/opt/www/static', name: '/opt/www/static' },
  { kind: 'cgroup', mountPoint: '/sys/fs/cgroup/systemd', name: '/sys/fs/cgroup/systemd' },
  { kind: 'cgroup', mountPoint: '/sys/fs/cgroup/cpu,cpuacct', name: '/sys/fs/cgroup/cpu,cpuacct' },
  { kind: 'cgroup', mountPoint: '/sys/fs/cgroup/freezer', name: '/sys/fs/cgroup/freezer' },
  { kind: 'masked', mountPoint: '/proc/kcore', name: '/dev/null' },
  { kind: 'masked-directory', mountPoint: '/proc/acpi', name: 'masked-directory' },
  { kind: 'masked', mountPoint: '/proc/timer_list', name: '/dev/null' },
  { kind: 'device', mountPoint: '/dev/fuse', name: '/dev/fuse' },
  { kind: 'device', mountPoint: '/dev/null', name: '/dev/null' },
  { kind: 'device', mountPoint: '/dev/zero', name: '/dev/zero' },
  { kind: 'device', mountPoint: '/dev/full', name: '/dev/full' },
  { kind: 'device', mountPoint: '/dev/random', name: '/dev/random' },
  { kind: 'device', mountPoint: '/dev/urandom', name: '/dev/urandom' },
  { kind: 'device', mountPoint: '/dev/tty', name: '/dev/tty' },
];

test('externalMountsForDump: binds (symlinks resolved), v1 cgroups, masked files and directories, devices', async (t) => {
  const mounts = await externalMountsForDump({
    spec: fixtureSpec(),
    rootfs: await rootfs(t),
    containerMounts: parseMountInfo(readCoreFixture('mountinfo-container.txt')),
    containerRoot: await containerRoot(t),
  });
  t.deepEqual(mounts, expectedDump);
});

test('externalMountsForDump: a masked directory stays a tmpfs of its own once it is no longer an empty read-only one', async (t) => {
  const root = await containerRoot(t);
  const mounts = parseMountInfo(readCoreFixture('mountinfo-container.txt'));
  const dump = (containerMounts: typeof mounts) => externalMountsForDump({ spec: fixtureSpec(), rootfs: root, containerMounts, containerRoot: root });
  const writable = mounts.map((m) => (m.mountPoint === '/proc/acpi' ? { ...m, superOptions: ['rw'] } : m));
  t.false(
    (await dump(writable)).some((m) => m.mountPoint === '/proc/acpi'),
    'a writable tmpfs',
  );
  t.false(
    (await dump(mounts.filter((m) => m.mountPoint !== '/proc/acpi'))).some((m) => m.mountPoint === '/proc/acpi'),
    'no mount there',
  );
  await writeFile(join(root, 'proc/acpi/left'), '');
  t.false(
    (await dump(mounts)).some((m) => m.mountPoint === '/proc/acpi'),
    'a file in it',
  );
});

test('dumpMountMap: the in-container mount point to its name', (t) => {
  t.deepEqual(dumpMountMap(expectedDump.slice(5, 9)), [
    { key: '/sys/fs/cgroup/freezer', val: '/sys/fs/cgroup/freezer' },
    { key: '/proc/kcore', val: '/dev/null' },
    { key: '/proc/acpi', val: 'masked-directory' },
    { key: '/proc/timer_list', val: '/dev/null' },
  ]);
  t.deepEqual(dumpMountMap([]), []);
});

test('externalMountsForDump: a mount point is named once, the first mount wins', async (t) => {
  const spec = fixtureSpec();
  const mounts = await externalMountsForDump({
    spec: {
      ...spec,
      mounts: [
        { destination: '/data', type: 'bind', source: '/a' },
        { destination: '/data/', type: 'bind', source: '/b' },
        { destination: '/dev/fuse', type: 'bind', source: '/dev/fuse' },
      ],
      linux: { devices: [{ path: '/dev/fuse', type: 'c', major: 10, minor: 229 }] },
    },
    rootfs: await rootfs(t),
    containerMounts: [],
    containerRoot: await containerRoot(t),
  });
  t.deepEqual(mounts.slice(0, 3), [
    { kind: 'bind', mountPoint: '/data', name: '/data' },
    { kind: 'bind', mountPoint: '/dev/fuse', name: '/dev/fuse' },
    { kind: 'device', mountPoint: '/dev/null', name: '/dev/null' },
  ]);
  t.is(mounts.length, 8);
});

test('externalMountsForDump: a spec without mounts or linux section has the default devices only', async (t) => {
  const spec = fixtureSpec();
  const bare: Spec = { ociVersion: spec.ociVersion, process: spec.process, root: spec.root };
  const mounts = await externalMountsForDump({ spec: bare, rootfs: await rootfs(t), containerMounts: [], containerRoot: await containerRoot(t) });
  t.deepEqual(
    mounts.map((m) => `${m.kind}:${m.mountPoint}`),
    ['device:/dev/null', 'device:/dev/zero', 'device:/dev/full', 'device:/dev/random', 'device:/dev/urandom', 'device:/dev/tty'],
  );
});

async function restoreContext(t: T, hostMountInfo: string) {
  const bundle = await tempDir(t, 'ext-mounts-bundle-');
  const root = join(bundle, 'rootfs');
  await makeRootfs(root);
  return {
    spec: fixtureSpec(),
    bundle,
    bundleConfig: join(bundle, 'config.json'),
    rootfs: root,
    hierarchies: cgroupHierarchies(parseMountInfo(readCoreFixture(hostMountInfo))),
    cgroupPath: '/runtime/web2',
    maskedDirectory: async () => '/run/runtime-masked',
    copiedTmpfs: async (tmpfs: RecordedTmpfs) => {
      filled.push(tmpfs);
      return `/staging/${filled.length - 1}`;
    },
  };
}

const filled: RecordedTmpfs[] = [];

test('restoreMountMap: binds to their sources, cgroups to the new cgroup, masked files and directories, devices', async (t) => {
  const context = await restoreContext(t, 'mountinfo-host-v1.txt');
  t.deepEqual(await restoreMountMap(expectedDump, context), [
    { key: '/data', val: join(context.bundle, 'volumes/data') },
    { key: '/run/app', val: '/host/run/app' },
    { key: '/opt/www/static', val: '/srv/static' },
    { key: '/sys/fs/cgroup/systemd', val: '/sys/fs/cgroup/systemd/runtime/web2' },
    { key: '/sys/fs/cgroup/cpu,cpuacct', val: '/sys/fs/cgroup/cpu,cpuacct/runtime/web2' },
    { key: '/sys/fs/cgroup/freezer', val: '/sys/fs/cgroup/freezer/runtime/web2' },
    { key: '/dev/null', val: '/dev/null' },
    { key: 'masked-directory', val: '/run/runtime-masked' },
    { key: '/dev/fuse', val: '/dev/fuse' },
    { key: '/dev/zero', val: '/dev/zero' },
    { key: '/dev/full', val: '/dev/full' },
    { key: '/dev/random', val: '/dev/random' },
    { key: '/dev/urandom', val: '/dev/urandom' },
    { key: '/dev/tty', val: '/dev/tty' },
  ]);
});

test.serial('restoreMountMap: a copied tmpfs is mounted and filled for the restore, each under its key', async (t) => {
  filled.length = 0;
  const context = await restoreContext(t, 'mountinfo-host-v1.txt');
  const dev = { source: 'tmpfs', options: 'size=65536k,mode=755', flags: 0x1000002, content: 'tmpfs-content-42' };
  const shm = { source: 'shm', options: 'size=65536k', flags: 0x20000e, content: 'tmpfs-content-44' };
  const map = await restoreMountMap(
    [
      { kind: 'tmpfs', mountPoint: '/dev', name: 'runtime-tmpfs:42', tmpfs: dev },
      { kind: 'tmpfs', mountPoint: '/dev/shm', name: 'runtime-tmpfs:44', tmpfs: shm },
    ],
    context,
  );
  t.deepEqual(map, [
    { key: 'runtime-tmpfs:42', val: '/staging/0' },
    { key: 'runtime-tmpfs:44', val: '/staging/1' },
  ]);
  t.deepEqual(filled, [dev, shm]);
});

test('restoreMountMap: a cgroup hierarchy the host lacks is left out', async (t) => {
  const context = await restoreContext(t, 'mountinfo-host-v2.txt');
  const map = await restoreMountMap(expectedDump.slice(3, 6), context);
  t.deepEqual(map, []);
});

test('restoreMountMap: a recorded bind the bundle no longer has', async (t) => {
  const context = await restoreContext(t, 'mountinfo-host-v1.txt');
  const error = await t.throwsAsync(
    restoreMountMap([...expectedDump.slice(0, 1), { kind: 'bind', mountPoint: '/srv/gone', name: '/srv/gone' }], context),
    { instanceOf: MissingMountMappingError },
  );
  t.is(error.code, 'MISSING_MOUNT_MAPPING');
  t.is(error.mountPoint, '/srv/gone');
  t.is(error.message, `the checkpoint has a bind mount at /srv/gone, and ${context.bundleConfig} has no bind mount there`);
  t.is(error.hint, 'restore with the bundle the container was checkpointed with, or add the bind mount to its config.json');
});

test('restoreMountMap: a recorded bind matches the spec destination after symlink resolution', async (t) => {
  const context = await restoreContext(t, 'mountinfo-host-v1.txt');
  // Recorded as /run/app at dump time; the spec still says /var/run/app.
  t.deepEqual(await restoreMountMap([{ kind: 'bind', mountPoint: '/run/app', name: '/run/app' }], context), [{ key: '/run/app', val: '/host/run/app' }]);
  // Recorded under the unresolved name, it does not match.
  await t.throwsAsync(restoreMountMap([{ kind: 'bind', mountPoint: '/var/run/app', name: '/var/run/app' }], context), {
    instanceOf: MissingMountMappingError,
  });
});

test("restoreMountMap: metadata that maps a device or a masked file to another host path than the spec's is refused", async (t) => {
  const context = await restoreContext(t, 'mountinfo-host-v1.txt');
  for (const hostile of [
    { kind: 'device', mountPoint: '/dev/null', name: '/etc/shadow' },
    { kind: 'device', mountPoint: '/dev/sda', name: '/dev/sda' },
    { kind: 'masked', mountPoint: '/proc/kcore', name: '/etc/shadow' },
    { kind: 'masked', mountPoint: '/etc/hostname', name: '/dev/null' },
  ] as const) {
    await t.throwsAsync(
      restoreMountMap([hostile], context),
      { code: 'UNTRUSTED_CHECKPOINT_MOUNT', message: new RegExp(`${hostile.mountPoint} to the host's ${hostile.name}`) },
      JSON.stringify(hostile),
    );
  }
});
