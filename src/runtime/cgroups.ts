/**
 * The container's cgroups: one directory per cgroup v1 hierarchy (or one on a v2 host), at the
 * same path below each. The OCI runtime creates them when a container starts; on restore the
 * runtime creates them and puts CRIU inside first, as runc does, so the tree lands there.
 *
 * A bundle's linux.cgroupsPath is a path below every hierarchy's root, never a host path: it is
 * cleaned as runc cleans it (utils.CleanPath: ".." stops at the root), a relative one is placed
 * below the runtime's cgroupParent, and the root itself (where every process of the host is) is
 * refused. The service checks each path it is given the same way, whatever recorded it.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { readFile, readdir, rmdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { MountInfo } from '../rootfs/mountinfo.js';
import type { CgroupRoot } from '../criu/rpc/messages.js';
import type { MountService } from '../rootfs/mount-service.js';
import type { ProcessService } from '../system/processes.js';
import { RuntimeError } from '../system/errors.js';

export class InvalidCgroupPathError extends RuntimeError {
  readonly code = 'INVALID_CGROUP_PATH' as const;
  constructor(
    readonly cgroupPath: string,
    reason: string,
  ) {
    super(`cgroup path ${JSON.stringify(cgroupPath)} ${reason}`, {
      hint: "give linux.cgroupsPath a cgroup of the container's own, such as /runtime/<id>, or leave it out",
    });
  }
}

/** Everything in a container's cgroup is killed with it: refuses one that already holds processes. */
export async function requireUnoccupied(cgroups: CgroupService, cgroupPath: string): Promise<void> {
  const occupants = await cgroups.occupants(cgroupPath);
  if (occupants.length > 0) throw new CgroupInUseError(cgroupPath, occupants);
}

export class CgroupInUseError extends RuntimeError {
  readonly code = 'CGROUP_IN_USE' as const;
  constructor(
    readonly cgroupPath: string,
    readonly pids: readonly number[],
  ) {
    super(
      `cgroup ${cgroupPath} already holds ${pids.length} process(es) (${pids.slice(0, 5).join(', ')}${pids.length > 5 ? ', ...' : ''}) that are not the container's`,
      {
        hint: 'a container gets a cgroup of its own (runc refuses a populated one too): choose another linux.cgroupsPath, or stop what runs there',
      },
    );
  }
}

export interface CgroupHierarchy {
  readonly mountPoint: string;
  /** v1 controllers ("cpu", "name=systemd"); empty for the v2 unified hierarchy. */
  readonly controllers: readonly string[];
  readonly version: 1 | 2;
}

const knownControllers = new Set([
  'cpu',
  'cpuacct',
  'cpuset',
  'memory',
  'devices',
  'freezer',
  'net_cls',
  'blkio',
  'perf_event',
  'net_prio',
  'hugetlb',
  'pids',
  'rdma',
  'misc',
]);

/** The host's cgroup hierarchies, from its mount table. */
export function cgroupHierarchies(mounts: readonly MountInfo[]): CgroupHierarchy[] {
  const seen = new Set<string>();
  const hierarchies: CgroupHierarchy[] = [];
  for (const mount of mounts) {
    if (mount.fsType !== 'cgroup' && mount.fsType !== 'cgroup2') continue;
    if (mount.root !== '/') continue;
    const controllers = mount.fsType === 'cgroup2' ? [] : mount.superOptions.filter((o) => knownControllers.has(o) || o.startsWith('name='));
    const key = mount.fsType === 'cgroup2' ? 'unified' : [...controllers].sort().join(',');
    if (seen.has(key)) continue;
    seen.add(key);
    hierarchies.push({ mountPoint: mount.mountPoint, controllers, version: mount.fsType === 'cgroup2' ? 2 : 1 });
  }
  return hierarchies;
}

/** The default cgroup of a container that does not name one: <parent>/<id>, /runtime/<id> by default. */
export function defaultCgroupPath(id: string, parent = '/runtime'): string {
  return `${parent}/${id}`;
}

/** The container's cgroup path: cgroupsPath cleaned (a relative one below parent), or the default. */
export function containerCgroupPath(cgroupsPath: string | undefined, id: string, parent = '/runtime'): string {
  if (!cgroupsPath) return defaultCgroupPath(id, parent);
  // As runc: cleaned first, so that ".." stops at the root (of the hierarchy, or of the parent).
  const clean = cleanCgroupPath(cgroupsPath.startsWith('/') ? cgroupsPath : path.posix.join(parent, path.posix.normalize(`/${cgroupsPath}`)), cgroupsPath);
  if (clean === parent || parent.startsWith(`${clean}/`)) {
    throw new InvalidCgroupPathError(cgroupsPath, `is the runtime's cgroupParent (${parent}) or above it, where the other containers are`);
  }
  return clean;
}

/**
 * The path cleaned as containerCgroupPath cleans an absolute one, refusing the root (a record made
 * before the checks, or edited): every process of the host would be the container's.
 */
export function requireContainerCgroup(cgroupPath: string): string {
  return cleanCgroupPath(cgroupPath, cgroupPath);
}

/** cgroupPath made absolute and normalized, without a trailing "/"; the root refused, named as `given`. */
function cleanCgroupPath(cgroupPath: string, given: string): string {
  const clean = path.posix.normalize(`/${cgroupPath}`).replace(/(.)\/+$/, '$1');
  if (clean === '/') throw new InvalidCgroupPathError(given, 'is the root of the cgroup hierarchies, where every process of the host is');
  return clean;
}

export function cgroupDirectory(hierarchy: CgroupHierarchy, cgroupPath: string): string {
  return path.join(hierarchy.mountPoint, cgroupPath);
}

/** The v1 freezer directory, which CRIU freezes the tree with (freeze_cgroup). */
export function freezerDirectory(hierarchies: readonly CgroupHierarchy[], cgroupPath: string): string | undefined {
  const freezer = hierarchies.find((h) => h.controllers.includes('freezer')) ?? hierarchies.find((h) => h.version === 2);
  return freezer ? cgroupDirectory(freezer, cgroupPath) : undefined;
}

/** Creates the cgroup in every hierarchy; cpuset directories get their parent's cpus and mems. */
/**
 * Creates the cgroup in every hierarchy, the missing parents first. Synchronous: each step is
 * a cgroupfs call of microseconds, and a restore waits on them while CRIU is started (as async
 * calls, each a trip through the thread pool, the 40-odd of a reset instance took 12-30 ms).
 */
export function createCgroup(hierarchies: readonly CgroupHierarchy[], cgroupPath: string): void {
  const parts = cgroupPath.split('/').filter((p) => p !== '');
  for (const hierarchy of hierarchies) {
    // The deepest existing level first: a reset instance's parents are there already.
    let existing = parts.length;
    while (existing > 0 && !existsSync(path.join(hierarchy.mountPoint, ...parts.slice(0, existing)))) existing--;
    for (let level = 1; level <= parts.length; level++) {
      const directory = path.join(hierarchy.mountPoint, ...parts.slice(0, level));
      if (level > existing) {
        try {
          mkdirSync(directory);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        }
      }
      if (hierarchy.controllers.includes('cpuset')) inheritCpuset(path.dirname(directory), directory);
    }
  }
}

/** A new v1 cpuset cgroup is empty, and no task can join it until cpus and mems are set. */
function inheritCpuset(parent: string, directory: string): void {
  for (const file of ['cpuset.cpus', 'cpuset.mems']) {
    const current = readFileSync(path.join(directory, file), 'utf8').trim();
    if (current !== '') continue;
    writeFileSync(path.join(directory, file), readFileSync(path.join(parent, file), 'utf8').trim());
  }
}

/** Puts pid into the cgroup in every hierarchy (synchronous, as createCgroup). */
export function attachToCgroup(hierarchies: readonly CgroupHierarchy[], cgroupPath: string, pid: number): void {
  for (const hierarchy of hierarchies) writeFileSync(path.join(cgroupDirectory(hierarchy, cgroupPath), 'cgroup.procs'), String(pid));
}

/** cg_root for CRIU: per controller, the container's cgroup path (v2: one root, no controller). */
export function criuCgroupRoots(hierarchies: readonly CgroupHierarchy[], cgroupPath: string): CgroupRoot[] {
  const roots: CgroupRoot[] = [];
  for (const hierarchy of hierarchies) {
    if (hierarchy.version === 2) roots.push({ path: cgroupPath });
    else for (const controller of hierarchy.controllers) roots.push({ ctrl: controller, path: cgroupPath });
  }
  return roots;
}

/**
 * Removes the container's cgroup directories. A directory is busy for a moment after its last
 * task exits, so removal is retried briefly; what is still busy then is reported, not thrown.
 */
export async function removeCgroup(hierarchies: readonly CgroupHierarchy[], cgroupPath: string): Promise<string[]> {
  const left: string[] = [];
  for (const hierarchy of hierarchies) {
    const directory = cgroupDirectory(hierarchy, cgroupPath);
    for (let attempt = 0; ; attempt++) {
      try {
        await rmdir(directory);
        break;
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') break;
        if (code !== 'EBUSY' || attempt >= 50) {
          left.push(directory);
          break;
        }
        await sleep(20);
      }
    }
  }
  return left;
}

/** Pids in the container's cgroup (from the first hierarchy that has the directory). */
export async function cgroupPids(hierarchies: readonly CgroupHierarchy[], cgroupPath: string): Promise<number[]> {
  for (const hierarchy of hierarchies) {
    try {
      const text = readFileSync(path.join(cgroupDirectory(hierarchy, cgroupPath), 'cgroup.procs'), 'utf8');
      return text
        .split('\n')
        .filter((l) => l !== '')
        .map(Number);
    } catch {
      continue;
    }
  }
  return [];
}

/**
 * Freezes (or thaws) every task of the cgroup through the v1 freezer, waiting until the freeze
 * has taken. Without a freezer hierarchy it does nothing.
 */
export async function setFrozen(hierarchies: readonly CgroupHierarchy[], cgroupPath: string, frozen: boolean): Promise<void> {
  const freezer = hierarchies.find((h) => h.controllers.includes('freezer'));
  if (!freezer) return;
  const file = path.join(cgroupDirectory(freezer, cgroupPath), 'freezer.state');
  const wanted = frozen ? 'FROZEN' : 'THAWED';
  try {
    await writeFile(file, wanted);
    for (let attempt = 0; attempt < 500; attempt++) {
      if (readFileSync(file, 'utf8').trim() === wanted) return;
      await sleep(2);
    }
  } catch (error) {
    // The cgroup may be removed meanwhile (ENOENT, or ENODEV while its directory goes away).
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENODEV') throw error;
  }
}

/** The cgroup and every cgroup below it (in any hierarchy), parents before children. */
export async function cgroupTree(hierarchies: readonly CgroupHierarchy[], cgroupPath: string): Promise<string[]> {
  const paths = new Set<string>([cgroupPath]);
  for (const hierarchy of hierarchies) {
    const walk = async (relative: string): Promise<void> => {
      const entries = await readdir(path.join(hierarchy.mountPoint, relative), { withFileTypes: true }).catch(() => []);
      for (const entry of entries) {
        if (!entry.isDirectory()) continue;
        const child = path.join(relative, entry.name);
        paths.add(child);
        await walk(child);
      }
    };
    await walk(cgroupPath);
  }
  return [...paths].sort((a, b) => a.length - b.length);
}

/** Removes the cgroup and every cgroup below it, deepest first; returns what stayed busy. */
export async function removeCgroupTree(hierarchies: readonly CgroupHierarchy[], cgroupPath: string): Promise<string[]> {
  const left: string[] = [];
  for (const cgroup of (await cgroupTree(hierarchies, cgroupPath)).reverse()) left.push(...(await removeCgroup(hierarchies, cgroup)));
  return left;
}

/**
 * The container's cgroups as a service (an injection token): every read and write of the cgroup
 * filesystem goes through it, so a test can record them instead. Paths are relative to each
 * hierarchy's mount point ("/runtime/web1").
 */
export interface CgroupService {
  /** The host's hierarchies (read once from the mount table). */
  hierarchies(): Promise<readonly CgroupHierarchy[]>;
  /** The v1 freezer directory CRIU freezes the tree with (freeze_cgroup), if there is one. */
  freezer(cgroupPath: string): Promise<string | undefined>;
  /** Creates the cgroup in every hierarchy, puts pid in it, and returns CRIU's cg_root entries. */
  enter(cgroupPath: string, pid: number): Promise<CgroupRoot[]>;
  /** Thaws (or freezes) every task of the cgroup. */
  setFrozen(cgroupPath: string, frozen: boolean): Promise<void>;
  /** Sends a signal to every process of the cgroup (pid reuse guarded); returns how many it reached. */
  signal(cgroupPath: string, signal: NodeJS.Signals): Promise<number>;
  /**
   * The one way a container's processes are killed: every process of the cgroup gets SIGKILL,
   * then the cgroup is thawed (a frozen v1 task dies only once thawed, and with SIGKILL pending
   * it never runs its own code again), then SIGKILL again for any child forked meanwhile. Only
   * the cgroup's own processes: a reset instance's cgroup lies below the first instance's.
   */
  kill(cgroupPath: string): Promise<void>;
  /** kill() for the cgroup and every cgroup below it: the whole container. */
  killTree(cgroupPath: string): Promise<void>;
  /** Removes the cgroup and every cgroup below it; returns the directories still busy. */
  removeTree(cgroupPath: string): Promise<string[]>;
  /** The pids in the cgroup and every cgroup below it, in any hierarchy. */
  occupants(cgroupPath: string): Promise<number[]>;
  /**
   * The memory a dump of the cgroup's tree would write, about: its anonymous and shared memory
   * and swap (memory.stat), below it included; undefined where there is no memory controller.
   */
  memoryInUse(cgroupPath: string): Promise<number | undefined>;
}

export const CGROUP_SERVICE = Symbol('CgroupService');

export class LinuxCgroupService implements CgroupService {
  private cached: Promise<CgroupHierarchy[]> | undefined;

  constructor(
    private readonly mounts: MountService,
    private readonly processes: ProcessService,
  ) {}

  hierarchies(): Promise<CgroupHierarchy[]> {
    this.cached ??= this.mounts.mounts().then(cgroupHierarchies);
    this.cached.catch(() => (this.cached = undefined));
    return this.cached;
  }

  async freezer(cgroupPath: string): Promise<string | undefined> {
    return freezerDirectory(await this.hierarchies(), requireContainerCgroup(cgroupPath));
  }

  async enter(cgroupPath: string, pid: number): Promise<CgroupRoot[]> {
    const clean = requireContainerCgroup(cgroupPath);
    const hierarchies = await this.hierarchies();
    createCgroup(hierarchies, clean);
    attachToCgroup(hierarchies, clean, pid);
    return criuCgroupRoots(hierarchies, clean);
  }

  async setFrozen(cgroupPath: string, frozen: boolean): Promise<void> {
    await setFrozen(await this.hierarchies(), requireContainerCgroup(cgroupPath), frozen);
  }

  async signal(cgroupPath: string, signal: NodeJS.Signals): Promise<number> {
    let reached = 0;
    for (const pid of await cgroupPids(await this.hierarchies(), requireContainerCgroup(cgroupPath))) {
      const identity = await this.processes.identify(pid);
      if (identity && (await this.processes.signal(identity, signal))) reached++;
    }
    return reached;
  }

  async kill(cgroupPath: string): Promise<void> {
    await this.signal(cgroupPath, 'SIGKILL');
    await this.setFrozen(cgroupPath, false);
    await this.signal(cgroupPath, 'SIGKILL');
  }

  async killTree(cgroupPath: string): Promise<void> {
    for (const cgroup of await cgroupTree(await this.hierarchies(), requireContainerCgroup(cgroupPath))) await this.kill(cgroup);
  }

  async removeTree(cgroupPath: string): Promise<string[]> {
    return removeCgroupTree(await this.hierarchies(), requireContainerCgroup(cgroupPath));
  }

  async memoryInUse(cgroupPath: string): Promise<number | undefined> {
    const hierarchies = await this.hierarchies();
    const memory = hierarchies.find((h) => h.controllers.includes('memory')) ?? hierarchies.find((h) => h.version === 2);
    if (!memory) return undefined;
    const text = await readFile(path.join(cgroupDirectory(memory, requireContainerCgroup(cgroupPath)), 'memory.stat'), 'utf8').catch(() => undefined);
    return text === undefined ? undefined : dumpedMemory(text, memory.version);
  }

  async occupants(cgroupPath: string): Promise<number[]> {
    const hierarchies = await this.hierarchies();
    const pids = new Set<number>();
    for (const cgroup of await cgroupTree(hierarchies, requireContainerCgroup(cgroupPath))) {
      for (const hierarchy of hierarchies) for (const pid of await cgroupPids([hierarchy], cgroup)) pids.add(pid);
    }
    return [...pids].sort((a, b) => a - b);
  }
}

/**
 * From a memory.stat: what a dump writes, about (anonymous memory, shared memory, swap), the
 * cgroups below counted (v1's total_ keys; v2 counts them in its own).
 */
export function dumpedMemory(stat: string, version: 1 | 2): number {
  const values = new Map<string, number>();
  for (const line of stat.split('\n')) {
    const [key, value] = line.split(' ');
    if (key && value !== undefined && /^\d+$/.test(value)) values.set(key, Number(value));
  }
  const keys = version === 1 ? ['total_rss', 'total_shmem', 'total_swap'] : ['anon', 'shmem'];
  return keys.reduce((sum, key) => sum + (values.get(key) ?? 0), 0);
}
