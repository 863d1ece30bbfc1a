import 'reflect-metadata';
import test from 'ava';
import {
  cgroupDirectory,
  cgroupHierarchies,
  containerCgroupPath,
  criuCgroupRoots,
  defaultCgroupPath,
  dumpedMemory,
  freezerDirectory,
  LinuxCgroupService,
  requireContainerCgroup,
  type CgroupHierarchy,
} from '../../src/runtime/cgroups.js';
import { FakeMounts, FakeProcesses } from '../helpers/fakes.js';
import { parseMountInfo } from '../../src/rootfs/mountinfo.js';
import { readCoreFixture } from './fixtures.js';

function hierarchiesOf(fixture: string): CgroupHierarchy[] {
  return cgroupHierarchies(parseMountInfo(readCoreFixture(fixture)));
}

const v1Host: CgroupHierarchy[] = [
  { mountPoint: '/sys/fs/cgroup/unified', controllers: [], version: 2 },
  { mountPoint: '/sys/fs/cgroup/systemd', controllers: ['name=systemd'], version: 1 },
  { mountPoint: '/sys/fs/cgroup/cpu,cpuacct', controllers: ['cpu', 'cpuacct'], version: 1 },
  { mountPoint: '/sys/fs/cgroup/freezer', controllers: ['freezer'], version: 1 },
  { mountPoint: '/sys/fs/cgroup/memory', controllers: ['memory'], version: 1 },
  { mountPoint: '/sys/fs/cgroup/cpuset', controllers: ['cpuset'], version: 1 },
  { mountPoint: '/sys/fs/cgroup/net_cls,net_prio', controllers: ['net_cls', 'net_prio'], version: 1 },
  { mountPoint: '/sys/fs/cgroup/pids', controllers: ['pids'], version: 1 },
];

test('v1 (hybrid) host: one hierarchy per controller set; duplicates and subtree binds skipped', (t) => {
  // The fixture mounts freezer a second time at /mnt/freezer-again, and a memory subtree at
  // /mnt/memory-subtree: neither is a hierarchy of its own. Options such as xattr and
  // clone_children are not controllers.
  t.deepEqual(hierarchiesOf('mountinfo-host-v1.txt'), v1Host);
});

test('cgroup2 host: the unified hierarchy once', (t) => {
  t.deepEqual(hierarchiesOf('mountinfo-host-v2.txt'), [{ mountPoint: '/sys/fs/cgroup', controllers: [], version: 2 }]);
});

test("a container's own mount table has no hierarchy roots", (t) => {
  t.deepEqual(hierarchiesOf('mountinfo-container.txt'), []);
  t.deepEqual(cgroupHierarchies([]), []);
});

test('defaultCgroupPath and cgroupDirectory', (t) => {
  t.is(defaultCgroupPath('web1'), '/runtime/web1');
  // Under another parent (cgroupParent): runtimes with separate state roots never share a cgroup.
  t.is(defaultCgroupPath('web1', '/ci/job7'), '/ci/job7/web1');
  t.is(cgroupDirectory(v1Host[3]!, '/runtime/web1'), '/sys/fs/cgroup/freezer/runtime/web1');
  t.is(cgroupDirectory(v1Host[2]!, 'runtime/web1'), '/sys/fs/cgroup/cpu,cpuacct/runtime/web1');
  t.is(cgroupDirectory({ mountPoint: '/sys/fs/cgroup', controllers: [], version: 2 }, '/'), '/sys/fs/cgroup/');
});

test('freezerDirectory: the v1 freezer first, else the unified hierarchy, else none', (t) => {
  t.is(freezerDirectory(v1Host, '/runtime/web1'), '/sys/fs/cgroup/freezer/runtime/web1');
  t.is(freezerDirectory(hierarchiesOf('mountinfo-host-v2.txt'), '/runtime/web1'), '/sys/fs/cgroup/runtime/web1');
  t.is(
    freezerDirectory(
      v1Host.filter((h) => !h.controllers.includes('freezer')),
      '/runtime/web1',
    ),
    '/sys/fs/cgroup/unified/runtime/web1',
  );
  t.is(
    freezerDirectory(
      v1Host.filter((h) => h.version === 1 && !h.controllers.includes('freezer')),
      '/runtime/web1',
    ),
    undefined,
  );
  t.is(freezerDirectory([], '/runtime/web1'), undefined);
});

test('criuCgroupRoots: one root per v1 controller, one without controller for v2', (t) => {
  t.deepEqual(criuCgroupRoots(v1Host, '/runtime/web2'), [
    { path: '/runtime/web2' },
    { ctrl: 'name=systemd', path: '/runtime/web2' },
    { ctrl: 'cpu', path: '/runtime/web2' },
    { ctrl: 'cpuacct', path: '/runtime/web2' },
    { ctrl: 'freezer', path: '/runtime/web2' },
    { ctrl: 'memory', path: '/runtime/web2' },
    { ctrl: 'cpuset', path: '/runtime/web2' },
    { ctrl: 'net_cls', path: '/runtime/web2' },
    { ctrl: 'net_prio', path: '/runtime/web2' },
    { ctrl: 'pids', path: '/runtime/web2' },
  ]);
  t.deepEqual(criuCgroupRoots(hierarchiesOf('mountinfo-host-v2.txt'), '/runtime/web2'), [{ path: '/runtime/web2' }]);
  t.deepEqual(criuCgroupRoots([], '/runtime/web2'), []);
});

test('containerCgroupPath: cleaned as runc cleans it, a relative path below the parent, the root refused', (t) => {
  t.is(containerCgroupPath(undefined, 'web1'), '/runtime/web1');
  t.is(containerCgroupPath('', 'web1', '/ci'), '/ci/web1');
  t.is(containerCgroupPath('/demo/', 'web1'), '/demo');
  t.is(containerCgroupPath('/a//b/./c/../d', 'web1'), '/a/b/d');
  t.is(containerCgroupPath('/../../etc', 'web1'), '/etc');
  t.is(containerCgroupPath('tests/db', 'web1', '/ci'), '/ci/tests/db');
  for (const parent of ['.', 'db/../../..', '/ci', '/ci/']) {
    t.throws(() => containerCgroupPath(parent, 'web1', '/ci'), { message: /is the runtime's cgroupParent \(\/ci\) or above it/ }, parent);
  }
  t.throws(() => containerCgroupPath('/runtime/..', 'web1', '/runtime/nested'), { code: 'INVALID_CGROUP_PATH' });
  for (const root of ['/', '//', '/..', '/a/..']) {
    t.throws(() => containerCgroupPath(root, 'web1'), { code: 'INVALID_CGROUP_PATH' }, root);
  }
});

test('requireContainerCgroup: a recorded path is cleaned (records made before the checks), the root refused', (t) => {
  t.is(requireContainerCgroup('/runtime/web1'), '/runtime/web1');
  for (const [recorded, clean] of [
    ['runtime/web1', '/runtime/web1'],
    ['/runtime/', '/runtime'],
    ['/runtime//web1', '/runtime/web1'],
    ['/../x', '/x'],
  ] as const) {
    t.is(requireContainerCgroup(recorded), clean, recorded);
  }
  for (const root of ['/', '/runtime/../..', '//', '.']) t.throws(() => requireContainerCgroup(root), { code: 'INVALID_CGROUP_PATH' }, root);
});

test('the cgroup service refuses the root or an unclean path (a record made before the checks) before it touches anything', async (t) => {
  const processes = new FakeProcesses();
  const mounts = new FakeMounts();
  const cgroups = new LinuxCgroupService(mounts, processes);
  for (const recorded of ['/', '/demo/../..', '.']) {
    await t.throwsAsync(cgroups.killTree(recorded), { code: 'INVALID_CGROUP_PATH' });
    await t.throwsAsync(cgroups.removeTree(recorded), { code: 'INVALID_CGROUP_PATH' });
    await t.throwsAsync(cgroups.setFrozen(recorded, true), { code: 'INVALID_CGROUP_PATH' });
    await t.throwsAsync(cgroups.signal(recorded, 'SIGKILL'), { code: 'INVALID_CGROUP_PATH' });
    await t.throwsAsync(cgroups.occupants(recorded), { code: 'INVALID_CGROUP_PATH' });
  }
  t.deepEqual(processes.signals, []);
});

test("a dump's memory, about, from memory.stat: v1's totals (cgroups below counted), v2's own keys", (t) => {
  const v1 = 'cache 4096\nrss 8192\nshmem 0\ntotal_cache 1048576\ntotal_rss 2097152\ntotal_shmem 65536\ntotal_swap 4096\ntotal_mapped_file 12\n';
  t.is(dumpedMemory(v1, 1), 2097152 + 65536 + 4096);
  t.is(dumpedMemory('anon 1000\nfile 99999\nshmem 24\n', 2), 1024);
  t.is(dumpedMemory('', 1), 0);
});
