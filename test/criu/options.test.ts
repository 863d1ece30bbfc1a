import test from 'ava';
import {
  cgroupModeValue,
  dumpOpts,
  parseCgroupsMode,
  parsePageServer,
  restoreOpts,
  type CheckpointOptions,
  type DumpContext,
  type RestoreContext,
} from '../../src/criu/options.js';
import { UsageError } from '../../src/runtime/errors.js';

const dumpContext: DumpContext = {
  pid: 4242,
  root: '/var/lib/bundles/web1/rootfs',
  extMounts: [{ key: '/data', val: '/data' }],
};

const restoreContext: RestoreContext = {
  root: '/run/runtime/web1/criu-root',
  extMounts: [{ key: '/data', val: '/srv/data' }],
  inheritFds: [{ key: 'pipe:[1234]', fd: 5 }],
  cgroupRoots: [],
};

test("dump with no options: runc's fixed choices and every flag off", (t) => {
  t.deepEqual(dumpOpts({}, dumpContext), {
    pid: 4242,
    root: '/var/lib/bundles/web1/rootfs',
    log_level: 4,
    log_file: 'dump.log',
    notify_scripts: true,
    manage_cgroups: true,
    manage_cgroups_mode: 6,
    ext_mnt: [{ key: '/data', val: '/data' }],
    leave_running: false,
    tcp_established: false,
    ext_unix_sk: false,
    shell_job: false,
    file_locks: false,
    auto_dedup: false,
  });
});

test("dump copies ext_mnt rather than sharing the context's array", (t) => {
  const extMounts = [{ key: '/a', val: '/a' }];
  const opts = dumpOpts({}, { ...dumpContext, extMounts });
  t.deepEqual(opts.ext_mnt, [{ key: '/a', val: '/a' }]);
  t.not(opts.ext_mnt, extMounts);
});

const booleanFlags: ReadonlyArray<[keyof CheckpointOptions, string]> = [
  ['leaveRunning', 'leave_running'],
  ['tcpEstablished', 'tcp_established'],
  ['extUnixSk', 'ext_unix_sk'],
  ['shellJob', 'shell_job'],
  ['fileLocks', 'file_locks'],
  ['autoDedup', 'auto_dedup'],
];

for (const [option, field] of booleanFlags) {
  test(`dump: ${option} sets ${field} and nothing else`, (t) => {
    const base = dumpOpts({}, dumpContext) as Record<string, unknown>;
    const opts = dumpOpts({ [option]: true }, dumpContext) as Record<string, unknown>;
    t.is(opts[field], true);
    t.deepEqual({ ...opts, [field]: false }, base);
  });
}

for (const [option, field] of booleanFlags.filter(([o]) => o !== 'leaveRunning')) {
  test(`restore: ${option} sets ${field} and nothing else`, (t) => {
    const base = restoreOpts({}, restoreContext) as Record<string, unknown>;
    const opts = restoreOpts({ [option]: true }, restoreContext) as Record<string, unknown>;
    t.is(opts[field], true);
    t.deepEqual({ ...opts, [field]: false }, base);
  });
}

test('dump: optional fields appear only when asked for', (t) => {
  const opts = dumpOpts({ tcpSkipInFlight: true, linkRemap: true, lazyPages: true }, dumpContext);
  t.is(opts.tcp_skip_in_flight, true);
  t.is(opts.link_remap, true);
  t.is(opts.lazy_pages, true);
  const plain = dumpOpts({ tcpSkipInFlight: false, linkRemap: false, lazyPages: false }, dumpContext);
  for (const key of ['tcp_skip_in_flight', 'link_remap', 'lazy_pages', 'track_mem', 'parent_img', 'ps', 'freeze_cgroup', 'external']) {
    t.false(key in plain, key);
  }
});

test("manage_cgroups_mode for every name, and CRIU's DEFAULT when unset", (t) => {
  const expected = { soft: 3, full: 4, strict: 5, ignore: 0 } as const;
  for (const [name, value] of Object.entries(expected)) {
    const mode = parseCgroupsMode(name);
    t.is(mode as string, name);
    t.is(cgroupModeValue(mode), value);
    t.is(dumpOpts({ manageCgroupsMode: mode }, dumpContext).manage_cgroups_mode, value, name);
    t.is(restoreOpts({ manageCgroupsMode: mode }, restoreContext).manage_cgroups_mode, value, name);
  }
  t.is(cgroupModeValue(undefined), 6);
  t.is(restoreOpts({}, restoreContext).manage_cgroups_mode, 6);
});

test('parseCgroupsMode refuses other names', (t) => {
  for (const value of ['', 'Soft', 'props', 'none', 'default', ' soft']) {
    const error = t.throws(() => parseCgroupsMode(value), { instanceOf: UsageError });
    t.is(error.code, 'USAGE');
    t.is(error.message, `invalid --manage-cgroups-mode ${JSON.stringify(value)}`);
    t.is(error.hint, 'use one of: soft, full, strict, ignore');
  }
});

test('pre-dump: pre-dump.log, the tree keeps running, memory is tracked', (t) => {
  const opts = dumpOpts({ preDump: true }, dumpContext);
  t.is(opts.log_file, 'pre-dump.log');
  t.is(opts.leave_running, true);
  t.is(opts.track_mem, true);
  t.false('parent_img' in opts);
  // leave_running false is overridden by pre-dump, never the other way round
  t.is(dumpOpts({ preDump: true, leaveRunning: false }, dumpContext).leave_running, true);
});

test('parent path: parent_img and track_mem', (t) => {
  const opts = dumpOpts({ parentPath: '../pre1' }, dumpContext);
  t.is(opts.parent_img, '../pre1');
  t.is(opts.track_mem, true);
  t.is(opts.log_file, 'dump.log');
  t.is(opts.leave_running, false);
  const both = dumpOpts({ preDump: true, parentPath: '../pre1' }, dumpContext);
  t.is(both.parent_img, '../pre1');
  t.is(both.track_mem, true);
  t.is(both.log_file, 'pre-dump.log');
});

test('dump context: freeze_cgroup and external only when given', (t) => {
  const opts = dumpOpts({}, { ...dumpContext, freezeCgroup: '/sys/fs/cgroup/freezer/runtime/web1', external: ['net[4026532]:extRootNetNS'] });
  t.is(opts.freeze_cgroup, '/sys/fs/cgroup/freezer/runtime/web1');
  t.deepEqual(opts.external, ['net[4026532]:extRootNetNS']);
  t.false('external' in dumpOpts({}, { ...dumpContext, external: [] }));
  t.false('freeze_cgroup' in dumpOpts({}, { ...dumpContext, freezeCgroup: '' }));
});

test('page server: IPv4, host name and bracketed IPv6', (t) => {
  t.deepEqual(parsePageServer('10.0.0.2:27'), { address: '10.0.0.2', port: 27 });
  t.deepEqual(parsePageServer('checkpoint-host:65535'), { address: 'checkpoint-host', port: 65535 });
  t.deepEqual(parsePageServer('[::1]:27'), { address: '::1', port: 27 });
  t.deepEqual(parsePageServer('[fe80::1%eth0]:1'), { address: 'fe80::1%eth0', port: 1 });
  t.deepEqual(dumpOpts({ pageServer: '[::1]:27' }, dumpContext).ps, { address: '::1', port: 27 });
  t.deepEqual(restoreOpts({ pageServer: '10.0.0.2:27' }, restoreContext).ps, { address: '10.0.0.2', port: 27 });
});

test('page server: bad values are usage errors', (t) => {
  for (const value of ['10.0.0.2', ':27', '10.0.0.2:', '10.0.0.2:0', '10.0.0.2:65536', '10.0.0.2:-1', '10.0.0.2:1.5', '10.0.0.2:http', '[::1]']) {
    const error = t.throws(() => parsePageServer(value), { instanceOf: UsageError }, value);
    t.is(error.message, `invalid --page-server ${JSON.stringify(value)}`);
    t.is(error.hint, 'give it as ADDRESS:PORT, for example 10.0.0.2:27');
    t.throws(() => dumpOpts({ pageServer: value }, dumpContext), { instanceOf: UsageError });
    t.throws(() => restoreOpts({ pageServer: value }, restoreContext), { instanceOf: UsageError });
  }
});

test('restore with no options: rst_sibling, evasive_devices, restore.log, no pid', (t) => {
  t.deepEqual(restoreOpts({}, restoreContext), {
    root: '/run/runtime/web1/criu-root',
    log_level: 4,
    log_file: 'restore.log',
    notify_scripts: false,
    rst_sibling: true,
    evasive_devices: true,
    manage_cgroups: true,
    manage_cgroups_mode: 6,
    ext_mnt: [{ key: '/data', val: '/srv/data' }],
    inherit_fd: [{ key: 'pipe:[1234]', fd: 5 }],
    tcp_established: false,
    ext_unix_sk: false,
    shell_job: false,
    file_locks: false,
    auto_dedup: false,
  });
});

test('restore: lazy pages, cg_root and join_ns', (t) => {
  const opts = restoreOpts(
    { lazyPages: true },
    {
      ...restoreContext,
      cgroupRoots: [{ ctrl: 'freezer', path: '/runtime/web2' }, { path: '/runtime/web2' }],
      joinNamespaces: [{ ns: 'net', ns_file: '/var/run/netns/web' }],
    },
  );
  t.is(opts.lazy_pages, true);
  t.deepEqual(opts.cg_root, [{ ctrl: 'freezer', path: '/runtime/web2' }, { path: '/runtime/web2' }]);
  t.deepEqual(opts.join_ns, [{ ns: 'net', ns_file: '/var/run/netns/web' }]);
  t.false('pid' in opts);
  t.false('leave_running' in opts);

  const bare = restoreOpts({}, { ...restoreContext, joinNamespaces: [] });
  for (const key of ['cg_root', 'join_ns', 'lazy_pages', 'ps']) t.false(key in bare, key);
});

test('page server ports are plain decimal numbers, as runc parses them', (t) => {
  for (const value of ['host:0x1b', 'host:1e3', 'host: 27', 'host:27.0']) {
    t.throws(() => parsePageServer(value), { instanceOf: UsageError }, value);
  }
  t.deepEqual(parsePageServer('host:27'), { address: 'host', port: 27 });
});
