/**
 * Helpers for the reset tests: a redis-server container made of the host's Debian packages (the
 * host's /usr and library directories bind-mounted read-only into a busybox rootfs), a redis
 * client that reaches it inside the container, exact digests of its data and of file trees,
 * counts of what a container leaves behind on the host, and a container holding known memory.
 */
import { createHash } from 'node:crypto';
import { existsSync, realpathSync } from 'node:fs';
import { chmod, copyFile, lstat, readdir, readFile, readlink } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { repoRoot, waitFor, type Sandbox } from './helpers.js';
import { defaultCgroupPath } from '../../src/runtime/cgroups.js';
import { buildMemhog, readyFileInContainer } from '../../bench/workload.js';

/**
 * redis listens on a unix socket in the container's /tmp, not on TCP: CRIU 4.1.1 cannot dump an
 * inet socket on Linux 6.16 and newer (getsockopt(SO_PASSCRED) fails with EOPNOTSUPP there;
 * checkpoint-restore/criu#2718), and the server is the point here, not its transport.
 */
export const redisSocket = '/tmp/redis.sock';
const redisServer = '/usr/bin/redis-server';
const redisClient = '/usr/bin/redis-cli';
export const digestScript = path.join(repoRoot, 'test/fixtures/reset/digest.lua');

/** Why the redis tests cannot run here, or undefined. */
export function redisMissing(): string | undefined {
  for (const tool of [redisServer, redisClient]) {
    if (!existsSync(tool)) return `${tool} is not installed (apt-get install redis-server)`;
  }
  return undefined;
}

/**
 * Adds the host's /usr, /lib and /lib64 to a bundle's spec as read-only external bind mounts, so
 * that a busybox rootfs runs the host's Debian packages. Their sources are given with symlinks
 * resolved: on Debian /lib and /lib64 are symlinks into /usr, and CRIU cannot restore an external
 * mount whose host path is a symlink (the runtime passes the source as written; see the report
 * of the reset tests).
 */
export function bindHostPackages(spec: Record<string, any>): void {
  for (const directory of ['/usr', '/lib', '/lib64']) {
    if (!existsSync(directory)) continue;
    spec.mounts.push({ destination: directory, type: 'bind', source: realpathSync(directory), options: ['rbind', 'ro'] });
  }
}

/** A busybox bundle whose init is the host's redis-server (bindHostPackages). */
export function redisBundle(box: Sandbox, name: string): Promise<string> {
  const args = [redisServer, '--port', '0', '--unixsocket', redisSocket, '--unixsocketperm', '700', '--save', '', '--appendonly', 'no'];
  return box.bundle(name, args, bindHostPackages);
}

/** Runs redis-cli inside the container's mount and network namespaces (init pid `pid`). */
export async function redis(pid: number, args: readonly string[], input?: string): Promise<string> {
  const result = await execa('nsenter', ['-t', String(pid), '-m', '-n', redisClient, '-s', redisSocket, ...args], {
    reject: false,
    ...(input !== undefined ? { input } : { stdin: 'ignore' }),
  });
  const stdout = String(result.stdout);
  if (result.exitCode !== 0 || /^(ERR|WRONGTYPE|Could not connect)/m.test(stdout)) {
    throw new Error(`redis-cli ${args.join(' ')} (pid ${pid}) failed: ${stdout} ${String(result.stderr)}`.trim());
  }
  return stdout.trim();
}

export function waitForRedis(pid: number): Promise<string> {
  return waitFor(`redis (pid ${pid}) to answer PING`, async () => ((await redis(pid, ['PING'])) === 'PONG' ? 'PONG' : undefined), 15_000);
}

/** Deterministic, non-trivial values: each key's value differs in content and length. */
export function valueOf(index: number): string {
  const hex = createHash('sha256').update(`value ${index}`).digest('hex');
  return hex.repeat(1 + (index % 4)).slice(0, 16 + (index % 97));
}

/** `count` strings plus a hash, a list, a set and a sorted set; returns the command text. */
export function loadCommands(count: number): string {
  const lines: string[] = [];
  for (let i = 0; i < count; i++) lines.push(`SET key:${String(i).padStart(4, '0')} ${valueOf(i)}`);
  lines.push('HSET profile:1 name ada lang en visits 42');
  lines.push(`RPUSH queue ${Array.from({ length: 50 }, (_, i) => `job${i}`).join(' ')}`);
  lines.push(`SADD tags ${Array.from({ length: 30 }, (_, i) => `tag${i}`).join(' ')}`);
  lines.push(`ZADD scores ${Array.from({ length: 30 }, (_, i) => `${i * 1.5} player${i}`).join(' ')}`);
  return `${lines.join('\n')}\n`;
}

export interface RedisDigest {
  readonly keys: number;
  readonly sha1: string;
}

/** The whole dataset's digest (test/fixtures/reset/digest.lua). */
export async function redisDigest(pid: number): Promise<RedisDigest> {
  const [keys, sha1] = (await redis(pid, ['EVAL', await readFile(digestScript, 'utf8'), '0'])).split('\n');
  return { keys: Number(keys), sha1: sha1!.trim() };
}

/** The server's run_id: a restarted server gets a new one, a restored one keeps it. */
export async function redisRunId(pid: number): Promise<string> {
  return /^run_id:(\w+)/m.exec(await redis(pid, ['INFO', 'server']))![1]!;
}

/**
 * What a tree holds, path by path (relative to root): a file's mode and content hash, a
 * symlink's target, "dir", "socket", ... Listing mode bits makes a chmod visible too.
 */
export async function describeTree(root: string, directories: readonly string[] = ['.']): Promise<Record<string, string>> {
  const tree: Record<string, string> = {};
  const visit = async (relative: string): Promise<void> => {
    const full = path.join(root, relative);
    const info = await lstat(full).catch(() => undefined);
    if (!info) return;
    const mode = (info.mode & 0o7777).toString(8);
    if (info.isDirectory()) {
      tree[relative] = `dir ${mode}`;
      for (const entry of (await readdir(full)).sort()) await visit(path.join(relative, entry));
    } else if (info.isFile()) {
      tree[relative] = `file ${mode} ${createHash('sha256')
        .update(await readFile(full))
        .digest('hex')}`;
    } else if (info.isSymbolicLink()) {
      tree[relative] = `link ${await readlink(full)}`;
    } else {
      tree[relative] = info.isSocket() ? 'socket' : info.isFIFO() ? 'fifo' : `device ${info.rdev}`;
    }
  };
  for (const directory of directories) await visit(directory);
  return tree;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length === 0 ? NaN : sorted[Math.floor(sorted.length / 2)]!;
}

/** What a container's life leaves on the host, counted for one sandbox. */
export interface ResourceCounts {
  /** Host mounts whose line names the sandbox (CRIU's temporary ones are in its work directory there). */
  readonly mounts: number;
  /** Directories of the containers' cgroups (with any below them), in every hierarchy. */
  readonly cgroups: number;
  /** Processes in those cgroups. */
  readonly containerProcesses: number;
  /** Those, this process's descendants (monitors, CRIU), and any process naming the sandbox. */
  readonly processes: number;
  /** Zombies among them. */
  readonly zombies: number;
  /** This (the runtime's) process's open descriptors. */
  readonly fds: number;
  /** Bytes on disk below the sandbox, logs excepted, mounts not crossed. */
  readonly diskBytes: number;
}

interface ProcessEntry {
  readonly pid: number;
  readonly ppid: number;
  readonly state: string;
  readonly cmdline: string;
}

async function processTable(): Promise<ProcessEntry[]> {
  const entries: ProcessEntry[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => undefined);
    if (!stat) continue;
    // "pid (comm) S ppid ...": comm may hold spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cmdline = (await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '')).replace(/\0/g, ' ').trim();
    entries.push({ pid: Number(name), ppid: Number(fields[1]), state: fields[0]!, cmdline });
  }
  return entries;
}

async function cgroupHierarchyDirectories(): Promise<string[]> {
  const root = '/sys/fs/cgroup';
  const directories: string[] = [];
  for (const name of await readdir(root).catch(() => [] as string[])) {
    const full = path.join(root, name);
    if ((await lstat(full)).isDirectory()) directories.push(full);
  }
  return directories;
}

/** Counts a cgroup directory and those below it, and gathers their processes. */
async function walkCgroup(directory: string, processes: Set<number>): Promise<number> {
  const entries = await readdir(directory, { withFileTypes: true }).catch(() => undefined);
  if (!entries) return 0;
  const procs = await readFile(path.join(directory, 'cgroup.procs'), 'utf8').catch(() => '');
  for (const pid of procs.split('\n').filter((p) => p !== '')) processes.add(Number(pid));
  let count = 1;
  for (const entry of entries) if (entry.isDirectory()) count += await walkCgroup(path.join(directory, entry.name), processes);
  return count;
}

/**
 * A container's cgroups: its default <cgroupParent>/<id>, and whatever its record names (a reset
 * instance may get a cgroup of its own below the container's), each counted once.
 */
async function cgroupRoots(box: Sandbox, ids: readonly string[]): Promise<string[]> {
  const candidates = new Set<string>();
  for (const id of ids) {
    candidates.add(defaultCgroupPath(id, box.runtime.config.cgroupParent));
    const record = (await box.runtime.context.store.load(id).catch(() => undefined)) as { cgroupPath?: string; cgroupBase?: string } | undefined;
    if (record?.cgroupBase) candidates.add(record.cgroupBase);
    if (record?.cgroupPath) candidates.add(record.cgroupPath);
  }
  const all = [...candidates];
  return all.filter((candidate) => !all.some((other) => other !== candidate && candidate.startsWith(`${other}/`)));
}

async function countOnce(box: Sandbox, ids: readonly string[]): Promise<ResourceCounts> {
  const mountLines = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n');
  const mounts = mountLines.filter((line) => line.includes(box.dir)).length;

  let cgroups = 0;
  const inCgroups = new Set<number>();
  const roots = await cgroupRoots(box, ids);
  for (const hierarchy of await cgroupHierarchyDirectories()) {
    for (const root of roots) cgroups += await walkCgroup(path.join(hierarchy, root), inCgroups);
  }

  const table = await processTable();
  const children = new Map<number, number[]>();
  for (const entry of table) children.set(entry.ppid, [...(children.get(entry.ppid) ?? []), entry.pid]);
  const mine = new Set<number>();
  const pending = [...(children.get(process.pid) ?? [])];
  while (pending.length > 0) {
    const pid = pending.pop()!;
    if (mine.has(pid)) continue;
    mine.add(pid);
    pending.push(...(children.get(pid) ?? []));
  }
  const monitorOf = new RegExp(`runtime monitor (${ids.map((id) => id.replace(/[.+]/g, '\\$&')).join('|')})$`);
  const counted = table.filter((p) => mine.has(p.pid) || inCgroups.has(p.pid) || p.cmdline.includes(box.dir) || monitorOf.test(p.cmdline));

  // A standby being restored meanwhile creates and removes directories (its restore root): du
  // then reports one it listed and could not enter, which is no leak; the reading is retried.
  const du = await execa('du', ['-s', '-x', '-B1', '--exclude=*.log', box.dir], { reject: false });
  const vanished = String(du.stderr)
    .split('\n')
    .every((line) => line === '' || /^du: cannot (access|read directory) .*: No such file or directory$/.test(line));
  if (du.exitCode !== 0 && !vanished) throw new Error(`du of ${box.dir} failed: ${String(du.stderr)}`);
  return {
    mounts,
    cgroups,
    containerProcesses: table.filter((p) => inCgroups.has(p.pid)).length,
    processes: counted.length,
    zombies: counted.filter((p) => p.state === 'Z').length,
    fds: (await readdir('/proc/self/fd')).length,
    diskBytes: Number(String(du.stdout).split(/\s/)[0]),
  };
}

/** The counts that must not move (disk is compared with a tolerance). */
export function withoutDisk({ diskBytes: _disk, ...counts }: ResourceCounts): Omit<ResourceCounts, 'diskBytes'> {
  return counts;
}

function sameCounts(a: ResourceCounts, b: ResourceCounts): boolean {
  return JSON.stringify(withoutDisk(a)) === JSON.stringify(withoutDisk(b));
}

/**
 * The counts once they hold still: the same in `samples` readings 250 ms apart (a short-lived
 * process such as the counter loop's `sleep 0.2`, or a standby being restored, is passing).
 * With `expected`, waits up to timeoutMs for exactly those counts instead, and returns the last
 * reading either way: a leak stays, so it shows.
 */
export async function settledCounts(box: Sandbox, ids: readonly string[], expected?: ResourceCounts, timeoutMs = 20_000): Promise<ResourceCounts> {
  const deadline = Date.now() + timeoutMs;
  let previous: ResourceCounts | undefined;
  let same = 0;
  for (;;) {
    const counts = await countOnce(box, ids);
    if (expected ? sameCounts(counts, expected) : previous && sameCounts(counts, previous)) {
      if (expected || ++same >= 3) return counts;
    } else {
      same = 0;
    }
    if (Date.now() > deadline) return counts;
    previous = counts;
    await sleep(250);
  }
}

/**
 * A monitor's descriptors once they hold still (three equal readings 250 ms apart, or equal to
 * `expected`): a standby restore in flight holds a CRIU session's socket and pipes for a while.
 */
export async function settledDescriptorKinds(pid: number, expected?: Record<string, number>, timeoutMs = 20_000): Promise<Record<string, number>> {
  const deadline = Date.now() + timeoutMs;
  let previous: string | undefined;
  let same = 0;
  for (;;) {
    const kinds = await descriptorKinds(pid);
    const text = JSON.stringify(Object.entries(kinds).sort());
    if (expected ? text === JSON.stringify(Object.entries(expected).sort()) : text === previous) {
      if (expected || ++same >= 3) return kinds;
    } else {
      same = 0;
    }
    if (Date.now() > deadline) return kinds;
    previous = text;
    await sleep(250);
  }
}

/** The open descriptors of a process (a monitor), by target kind: pipe, socket, anon_inode, file. */
export async function descriptorKinds(pid: number): Promise<Record<string, number>> {
  const kinds: Record<string, number> = {};
  for (const fd of await readdir(`/proc/${pid}/fd`)) {
    const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => 'gone');
    const kind = /^(\w+):/.exec(target)?.[1] ?? (target.startsWith('/') ? 'file' : target);
    kinds[kind] = (kinds[kind] ?? 0) + 1;
  }
  return kinds;
}

/** A bundle whose init is memhog holding `mib` MiB (bench/fixtures/memhog.c, built once). */
export async function memhogBundle(box: Sandbox, mib: number): Promise<string> {
  const memhog = await buildMemhog(path.join(repoRoot, 'bench/fixtures/memhog.c'), path.join(repoRoot, 'node_modules/.cache/runtime-bench'));
  const bundle = await box.bundle('memhog', ['/bin/memhog', String(mib), readyFileInContainer]);
  await copyFile(memhog, path.join(bundle, 'rootfs/bin/memhog'));
  await chmod(path.join(bundle, 'rootfs/bin/memhog'), 0o755);
  return bundle;
}
