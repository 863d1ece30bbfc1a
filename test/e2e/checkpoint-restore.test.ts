/**
 * The core cycle with real runc and CRIU: run, checkpoint, restore; the counter continues, the
 * child process survives, the restored init is the runtime's child, volumes keep their data.
 */
import test from 'ava';
import { existsSync, statSync, statfsSync } from 'node:fs';
import { lstat, readFile, readdir, mkdir, writeFile } from 'node:fs/promises';
import { execa } from 'execa';
import { KERNDAT_CACHE_DIR } from '../../src/criu/kerndat-cache.js';
import path from 'node:path';
import { childrenOf, counterAbove, e2e, isAlive, parentOf, readCounter, sandbox, waitFor } from './helpers.js';

const serial = e2e(test);

serial('CLI: run -d, bare checkpoint, bare restore -d; the counter continues under a runtime parent', async (t) => {
  const box = await sandbox(t);
  const bundle = await box.bundle('counter');

  const run = await box.cli(['run', '-d', '--bundle', bundle, 'web1']);
  t.is(run.exitCode, 0, run.stderr);
  const before = await counterAbove(bundle, 3);
  const started = JSON.parse((await box.cli(['state', 'web1'])).stdout) as { status: string; pid: number };
  t.is(started.status, 'running');
  t.regex((await parentOf(started.pid)).cmdline, /runtime monitor web1/);

  const checkpoint = await box.cli(['checkpoint', 'web1']);
  t.is(checkpoint.exitCode, 0, checkpoint.stderr);
  t.false(isAlive(started.pid), 'the dumped init is gone');
  const stopped = JSON.parse((await box.cli(['state', 'web1'])).stdout) as { status: string; pid?: number };
  t.is(stopped.status, 'checkpointed');
  t.is(stopped.pid, undefined);
  const frozenAt = (await readCounter(bundle))!;
  t.true(frozenAt >= before);

  const restore = await box.cli(['restore', '-d', 'web1']);
  t.is(restore.exitCode, 0, restore.stderr);
  const restored = JSON.parse((await box.cli(['state', 'web1'])).stdout) as { status: string; pid: number };
  t.is(restored.status, 'running');
  t.not(restored.pid, started.pid);
  // The counter continues from where it was, not from 1.
  const after = await counterAbove(bundle, frozenAt);
  t.true(after > frozenAt && after < frozenAt + 100, `counter went from ${frozenAt} to ${after}`);
  const parent = await parentOf(restored.pid);
  t.regex(parent.cmdline, /runtime monitor web1/, 'the restored init is a child of the runtime monitor');
  // The loop's child (sleep) came back with it.
  const children = await childrenOf(restored.pid);
  const commands = await Promise.all(children.map((pid) => readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')));
  t.true(
    commands.some((c) => c.startsWith('sleep\x001000000')),
    `children: ${commands.join(' | ')}`,
  );

  const list = JSON.parse((await box.cli(['list', '--format', 'json'])).stdout) as { id: string; status: string }[];
  t.deepEqual(
    list.map((s) => [s.id, s.status]),
    [['web1', 'running']],
  );

  const removed = await box.cli(['delete', '-f', 'web1']);
  t.is(removed.exitCode, 0, removed.stderr);
  await waitFor('the restored init to be gone', async () => (isAlive(restored.pid) ? undefined : true));
  t.false(isAlive(parent.pid) && (await readFile(`/proc/${parent.pid}/cmdline`, 'utf8').catch(() => '')).includes('web1'));
  t.is((await box.cli(['list', '-q'])).stdout, '');
});

serial('library: repeated checkpoint/restore cycles of one container keep counting', async (t) => {
  const box = await sandbox(t);
  const bundle = await box.bundle('cycles');
  await box.runtime.run({ id: 'c1', bundle });
  let last = await counterAbove(bundle, 1);
  // The mounts as runc made them, to compare the restored container's with.
  const runcMounts = wholeTmpfsMounts(await readFile(`/proc/${(await box.runtime.state('c1')).pid!}/mountinfo`, 'utf8'));
  let result!: Awaited<ReturnType<typeof box.runtime.checkpoint>>;
  for (let cycle = 0; cycle < 4; cycle++) {
    result = await box.runtime.checkpoint({ id: 'c1' });
    t.is(result.imagePath, path.join(box.checkpointRoot, 'c1', 'checkpoint'));
    const frozen = (await readCounter(bundle))!;
    t.true(frozen >= last);
    const pid = await box.runtime.restore({ id: 'c1' });
    t.regex((await parentOf(pid)).cmdline, /runtime monitor c1/);
    last = await counterAbove(bundle, frozen);
    t.true(last - frozen < 100, `cycle ${cycle}: ${frozen} -> ${last}`);
  }
  const record = await box.runtime.context.store.load('c1');
  t.is(record.restoreCount, 4);
  // CRIU kept its kernel probe where the runtime made it a tmpfs (scripts/install-criu.sh builds
  // it with that RUNDIR): later CRIUs skip the probe.
  t.is(statfsSync(KERNDAT_CACHE_DIR).type, 0x01021994, `${KERNDAT_CACHE_DIR} is a tmpfs`);
  t.true(existsSync(path.join(KERNDAT_CACHE_DIR, 'criu.kdat')), 'criu.kdat is there');
  // The dump locked the network with nftables, where this CRIU has it; the namespace has lo
  // alone, so the lock table was taken out of the images and the inventory says none was taken
  // (CRIU's own numbering: 0 iptables, 1 nftables, 2 skip), and no restore runs nftables.
  const inventory = await box.cli(['image', 'decode', '-i', path.join(result.imagePath, 'inventory.img')]);
  t.is(inventory.exitCode, 0, inventory.stderr);
  const entries = (JSON.parse(inventory.stdout) as { entries: { network_lock_method?: number }[] }).entries;
  t.is(entries[0]?.network_lock_method, 2, 'restores take no lock');
  t.false(
    (await readdir(result.imagePath)).some((name) => name.startsWith('nftables-')),
    'no ruleset image',
  );
  t.regex(await readFile(path.join(result.imagePath, 'dump.log'), 'utf8'), /net: Lock network/);
  t.regex(await readFile(path.join(result.imagePath, 'restore.log'), 'utf8'), /Skipping nft restore, no image/);
  // The container's network namespace has lo alone: the images of its addresses, routes, rules
  // and (empty) firewall restated the kernel's defaults and were removed (no `ip` or
  // `iptables-restore` runs on restore)...
  const names = await readdir(result.imagePath);
  const netns = names.map((name) => /^netns-(\d+)\.img$/.exec(name)?.[1]).find((id) => id !== undefined);
  t.truthy(netns, 'the dump holds a network namespace');
  for (const prefix of ['ifaddr', 'route', 'route6', 'rule', 'iptables', 'ip6tables']) {
    t.false(names.includes(`${prefix}-${netns}.img`), `${prefix}-${netns}.img is gone`);
  }
  // ...and the restored namespace has them all the same, from the kernel.
  const pid = (await box.runtime.state('c1')).pid!;
  const inside = (args: string[]) => execa('nsenter', [`--net=/proc/${pid}/ns/net`, 'ip', ...args]).then((r) => r.stdout);
  t.regex(await inside(['-o', 'addr', 'show', 'dev', 'lo']), /inet 127\.0\.0\.1\/8 scope host lo[\s\S]*inet6 ::1\/128 scope host/);
  t.deepEqual(
    (await inside(['rule', 'show'])).split('\n').map((line) => line.trim()),
    ['0:\tfrom all lookup local', '32766:\tfrom all lookup main', '32767:\tfrom all lookup default'],
  );
  t.regex(await inside(['route', 'show', 'table', 'local']), /local 127\.0\.0\.1 dev lo/);

  // runc's masks of directories were recorded as external mounts, not as tmpfs archives CRIU would
  // unpack with tar and gzip on every restore; restored, they are as runc made them: empty, read-only.
  const spec = JSON.parse(await readFile(path.join(bundle, 'config.json'), 'utf8')) as { linux: { maskedPaths: string[] } };
  const maskedDirectories = spec.linux.maskedPaths.filter((masked) =>
    statSync(path.join(`/proc/${pid}/root`, masked), { throwIfNoEntry: false })?.isDirectory(),
  );
  t.true(maskedDirectories.length > 0, 'the container has masked directories');
  const mountinfo = await readFile(`/proc/${pid}/mountinfo`, 'utf8');
  // The other tmpfs mounts (/dev, /dev/shm, /sys/fs/cgroup) were taken out of CRIU's images: no
  // archive for tar to unpack; their files beside the images, filled into a new tmpfs by the
  // runtime at each restore, mounted as runc mounted them (flags and superblock options).
  t.deepEqual(
    names.filter((name) => /^tmpfs-dev-\d+\.tar\.gz\.img$/.test(name)),
    [],
    'no tmpfs archive',
  );
  const metadata = JSON.parse(await readFile(path.join(result.imagePath, 'runtime-checkpoint.json'), 'utf8')) as {
    externalMounts: { kind: string; mountPoint: string }[];
  };
  const copied = metadata.externalMounts.filter((mount) => mount.kind === 'tmpfs').map((mount) => mount.mountPoint);
  t.deepEqual(copied.sort(), ['/dev', '/dev/shm', '/sys/fs/cgroup']);
  const unmasked = (mounts: string[]) => mounts.filter((mount) => !maskedDirectories.includes(mount.split(' ')[0]!));
  const restoredMounts = unmasked(wholeTmpfsMounts(mountinfo));
  t.deepEqual(restoredMounts, unmasked(runcMounts));
  t.true(restoredMounts.includes('/dev rw,nosuid tmpfs tmpfs rw,size=65536k,mode=755'), restoredMounts.join('\n'));
  const devices = await execa('nsenter', [
    '-t',
    String(pid),
    '-m',
    '-p',
    'sh',
    '-c',
    'head -c 4 /dev/zero > /dev/null && ls -l /dev/null /dev/urandom && readlink /dev/fd && touch /dev/shm/x',
  ]);
  t.regex(devices.stdout, /^crw-rw-rw- +1 root +root +1, +3 .*\/dev\/null\ncrw-rw-rw- +1 root +root +1, +9 .*\/dev\/urandom\n\/proc\/self\/fd$/);
  // The host let go of the copies once CRIU had them: none of the container's tmpfs superblocks
  // is mounted on the host (other tests' restores may be staging theirs meanwhile).
  const superblock = (line: string) => line.split(' ')[2];
  // (The masked directories' is the host's own, /run/runtime-masked.)
  const containerTmpfs = mountinfo
    .split('\n')
    .filter((line) => / - tmpfs /.test(line) && !/ - tmpfs runtime-masked /.test(line))
    .map(superblock);
  t.is(containerTmpfs.length, 3, '/dev, /dev/shm, /sys/fs/cgroup');
  const hostTmpfs = new Set((await readFile('/proc/self/mountinfo', 'utf8')).split('\n').map(superblock));
  t.deepEqual(
    containerTmpfs.filter((device) => hostTmpfs.has(device)),
    [],
    'no tmpfs of the container left on the host',
  );
  for (const masked of maskedDirectories) {
    const entries = await readdir(path.join(`/proc/${pid}/root`, masked));
    t.deepEqual(entries, [], `${masked} is empty`);
    t.regex(mountinfo, new RegExp(` ${masked} ro[ ,][^\n]* - tmpfs runtime-masked ro[, ]`), `${masked} is the host's read-only tmpfs`);
    const write = await execa('nsenter', ['-t', String(pid), '-m', '-p', 'sh', '-c', `echo x > ${masked}/written`], { reject: false });
    t.not(write.exitCode, 0, `${masked} cannot be written to`);
  }
});

/** The container's tmpfs mounts mounted whole: mount point, mount options, source and superblock options. */
function wholeTmpfsMounts(mountinfo: string): string[] {
  return mountinfo
    .split('\n')
    .map((line) => line.split(' '))
    .filter((fields) => fields[3] === '/' && fields[fields.indexOf('-') + 1] === 'tmpfs')
    .map((fields) => `${fields[4]} ${fields[5]} ${fields.slice(fields.indexOf('-') + 1).join(' ')}`)
    .sort();
}

serial("checkpoints and snapshots are root's alone: images, logs and metadata (they hold the container's memory and environment)", async (t) => {
  const box = await sandbox(t);
  const bundle = await box.bundle('private');
  await box.runtime.run({ id: 'p1', bundle });
  await counterAbove(bundle, 1);
  await box.runtime.checkpoint({ id: 'p1', name: 'snap', leaveRunning: true });
  await box.runtime.checkpoint({ id: 'p1', leaveRunning: true });
  const exposed: string[] = [];
  const walk = async (dir: string): Promise<number> => {
    let files = 0;
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const file = path.join(dir, entry.name);
      // A snapshot's rootfs layer and a tmpfs's files keep the container's own files and modes, below a directory of root's alone.
      if ((entry.name === 'rootfs' && path.basename(path.dirname(dir)) === 'snapshots') || entry.name === 'tree') {
        if (((await lstat(dir)).mode & 0o077) !== 0) exposed.push(`${path.relative(box.checkpointRoot, dir)} (above a rootfs layer)`);
        continue;
      }
      const mode = (await lstat(file)).mode & 0o777;
      // Directories may be searched by others (a restore in a user namespace needs it); nothing may be read or written.
      const allowed = entry.isDirectory() ? 0o711 : 0o700;
      if (!entry.isSymbolicLink() && (mode & ~allowed) !== 0) exposed.push(`${path.relative(box.checkpointRoot, file)} ${mode.toString(8)}`);
      files += entry.isDirectory() ? await walk(file) : 1;
    }
    return files;
  };
  const files = await walk(path.join(box.checkpointRoot, 'p1'));
  t.true(files > 20, `${files} files looked at`);
  t.deepEqual(exposed, []);
});

serial('a bind-mounted volume keeps its data and stays writable across checkpoint and restore', async (t) => {
  const box = await sandbox(t);
  const volume = path.join(box.dir, 'volume');
  await mkdir(volume);
  await writeFile(path.join(volume, 'seed'), 'from the host\n');
  const bundle = await box.bundle(
    'volume',
    // /tmp/seen is replaced by a rename: a reader never sees it truncated and not yet written.
    ['sh', '-c', 'i=0; while true; do i=$((i+1)); echo $i >>/data/log; cat /data/seed >/tmp/seen.new; mv /tmp/seen.new /tmp/seen; sleep 0.2; done'],
    (spec) => {
      spec.mounts.push({ destination: '/data', type: 'bind', source: volume, options: ['rbind', 'rw'] });
    },
  );
  await box.runtime.run({ id: 'vol', bundle });
  await waitFor('the volume log', async () => ((await readFile(path.join(volume, 'log'), 'utf8')).split('\n').length > 3 ? true : undefined));
  await box.runtime.checkpoint({ id: 'vol' });
  const linesAtCheckpoint = (await readFile(path.join(volume, 'log'), 'utf8')).trim().split('\n');
  await box.runtime.restore({ id: 'vol' });
  const linesAfter = await waitFor('new lines in the volume', async () => {
    const lines = (await readFile(path.join(volume, 'log'), 'utf8')).trim().split('\n');
    return lines.length > linesAtCheckpoint.length + 2 ? lines : undefined;
  });
  // The same process goes on appending its count to the same file on the host.
  t.deepEqual(linesAfter.slice(0, linesAtCheckpoint.length), linesAtCheckpoint);
  t.is(Number(linesAfter[linesAtCheckpoint.length]), Number(linesAtCheckpoint.at(-1)) + 1);
  t.is(await readFile(path.join(bundle, 'rootfs/tmp/seen'), 'utf8'), 'from the host\n');
});

serial("foreground run exits with the container's code and leaves it stopped", async (t) => {
  const box = await sandbox(t);
  const bundle = await box.bundle('exit', ['sh', '-c', 'echo out; echo err >&2; exit 7']);
  const result = await box.cli(['run', '--bundle', bundle, 'fg']);
  t.is(result.exitCode, 7);
  t.is(result.stdout.trim(), 'out');
  t.is(result.stderr.trim(), 'err');
  const state = JSON.parse((await box.cli(['state', 'fg'])).stdout) as { status: string };
  t.is(state.status, 'stopped');
  const record = await box.runtime.context.store.load('fg');
  t.is(record.status === 'stopped' ? record.exit?.code : undefined, 7);
  t.is(await readFile(record.logPath, 'utf8').then((log) => log.split('\n').sort().join(' ').trim()), 'err out');
});

serial('restoring a checkpoint under a new id with --image-path and --bundle', async (t) => {
  const box = await sandbox(t);
  const bundle = await box.bundle('original');
  await box.runtime.run({ id: 'orig', bundle });
  const frozen = await counterAbove(bundle, 2);
  const imagePath = path.join(box.dir, 'exported');
  await box.runtime.checkpoint({ id: 'orig', imagePath });
  await box.runtime.delete('orig');
  const restore = await box.cli(['restore', '-d', '--image-path', imagePath, '--bundle', bundle, 'copy']);
  t.is(restore.exitCode, 0, restore.stderr);
  const state = await box.runtime.state('copy');
  t.is(state.status, 'running');
  t.regex((await parentOf(state.pid!)).cmdline, /runtime monitor copy/);
  t.true((await counterAbove(bundle, frozen)) > frozen);
});

serial('a killed container is reaped and its exit recorded; kill then delete leaves nothing', async (t) => {
  const box = await sandbox(t);
  const bundle = await box.bundle('killme');
  const pid = await box.runtime.run({ id: 'k', bundle });
  await box.runtime.checkpoint({ id: 'k', leaveRunning: true });
  t.is((await box.runtime.state('k')).status, 'running');
  await box.runtime.kill('k', 'KILL');
  const record = await waitFor('the exit to be recorded', async () => {
    const r = await box.runtime.context.store.load('k');
    return r.status === 'stopped' ? r : undefined;
  });
  t.is(record.exit?.signal, 'SIGKILL');
  t.false(isAlive(pid));
  const zombies = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => 'gone');
  t.is(zombies, 'gone', 'the init was reaped, not left a zombie');
  await box.runtime.delete('k');
  t.deepEqual(await box.runtime.list(), []);
});
