/**
 * Recording fakes of the services through which the runtime reaches the system (CRIU, processes,
 * mounts, cgroups, the reaper, the OCI runtime, the monitor processes), as youki's recording
 * syscall fake: each implements the real interface, records every call, and keeps just enough
 * state (a process table, a mount table, cgroup membership) for the verbs to run against it
 * without root. They share one process table, so what one fake does is seen by the others: CRIU
 * puts the restored tree in the cgroup its prepare() step entered, killing a cgroup ends its
 * processes, and the reaper's wait() resolves when a process ends.
 */
import { constants as osConstants } from 'node:os';
import { mkdir, readFile, readdir, rmdir, stat, symlink, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { CgroupHierarchy, CgroupService } from '../../src/runtime/cgroups.js';
import { criuCgroupRoots, freezerDirectory } from '../../src/runtime/cgroups.js';
import type { RuntimeContext } from '../../src/runtime/context.js';
import type { OciRuntime, OciStartRequest } from '../../src/runtime/oci-runtime.js';
import type { MonitorClient } from '../../src/runtime/monitor/launch.js';
import { deserializeError, type ControlRequest, type MonitorJob, type MonitorReport } from '../../src/runtime/monitor/protocol.js';
import { superviseContainer } from '../../src/runtime/monitor/container-monitor.js';
import type {
  CriuDumpRequest,
  CriuPageServerRequest,
  CriuRestoreRequest,
  CriuService,
  FeatureName,
  LazyPages,
  PageServer,
} from '../../src/criu/service.js';
import type { RemotePages } from '../../src/criu/lazy-pages.js';
import type { NetworkLockName } from '../../src/criu/options.js';
import { CriuFeatureMissingError, CriuRequestError, CriuTooOldError } from '../../src/criu/errors.js';
import { criuLogTail } from '../../src/criu/log.js';
import { encodeImage } from '../../src/criu/images/image.js';
import { formatVersion, isAtLeast, parseVersion, type CriuVersion } from '../../src/criu/version.js';
import type { CgroupRoot, CriuFeatures } from '../../src/criu/rpc/messages.js';
import type { MountService } from '../../src/rootfs/mount-service.js';
import type { MountFromRequest } from '../../src/rootfs/mount-from.js';
import type { MountInfo } from '../../src/rootfs/mountinfo.js';
import type { CgroupMembership, LazyMapping, ProcessIdentity, ProcessService, ProcStat } from '../../src/system/processes.js';
import type { ChildReaper } from '../../src/system/reaper.js';
import { MS_RDONLY, type WaitStatus } from '../../src/system/libc.js';
import { SystemCallError } from '../../src/system/errors.js';

/**
 * Fake pids start above the kernel's PID_MAX_LIMIT (4194304 on 64-bit), so no fake pid is ever a
 * host process: code that still looks at /proc/<pid>/... directly finds nothing there.
 */
export const FIRST_FAKE_PID = 4_194_304 + 1_000;

export type FakeProcessState = 'running' | 'stopped' | 'dead';

export interface FakeProcess {
  readonly pid: number;
  readonly startTime: string;
  readonly comm: string;
  state: FakeProcessState;
  /** The cgroup path (below each hierarchy) the process is in, if any. */
  cgroup: string | undefined;
  exit?: WaitStatus;
}

const signalNumbers: Readonly<Record<string, number>> = osConstants.signals;

function signalNumber(signal: NodeJS.Signals | number): number {
  return typeof signal === 'number' ? signal : signalNumbers[signal]!;
}

/** Signals whose default action ends a running process (SIGKILL ends a stopped one too). */
const terminating = new Set(['SIGKILL', 'SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'].map((s) => signalNumbers[s]!));

/** An in-memory process table. */
export class FakeProcesses implements ProcessService {
  readonly table = new Map<number, FakeProcess>();
  /** Every signal sent through ProcessService.signal (not the ones a cgroup kill delivers). */
  readonly signals: { readonly pid: number; readonly signal: NodeJS.Signals | number; readonly delivered: boolean }[] = [];
  readonly namespaceLookups: { readonly pid: number; readonly type: string }[] = [];
  /** What effectiveUid() answers. */
  uid = 0;
  /** What sysctl() answers, by name; an absent name is an absent setting. */
  sysctls: Record<string, string> = {};
  /** Where stat() says each process's arguments and environment lie, by pid. */
  readonly argumentAreas = new Map<number, readonly { readonly start: number; readonly end: number }[]>();
  /** What children() answers, by parent pid (none when absent). */
  readonly childPids = new Map<number, number[]>();
  /** What lazyMappings() answers, by pid: memory a lazy-pages daemon has yet to copy in. */
  readonly lazy = new Map<number, LazyMapping[]>();
  /** Whether faultIn() fills a lazy mapping in (a daemon serves it) or leaves it missing. */
  lazyDaemonServes = true;
  /** Every faultIn() call. */
  readonly faultIns: { readonly pid: number; readonly start: number; readonly end: number }[] = [];
  /** What fdTargets() answers for every process (its first `count`). */
  descriptors: readonly string[] = ['pipe:[1]', 'pipe:[2]', 'pipe:[3]'];
  /** The runtime process itself (what self() answers): alive, in no container cgroup. */
  readonly selfProcess: FakeProcess;
  private nextPid = FIRST_FAKE_PID;
  private readonly exitListeners = new Map<number, ((status: WaitStatus) => void)[]>();

  constructor() {
    this.selfProcess = this.spawn({ comm: 'runtime' });
  }

  /** A new process, running (or stopped), in a cgroup when one is given. */
  spawn(options: { readonly comm?: string; readonly cgroup?: string | undefined; readonly stopped?: boolean } = {}): FakeProcess {
    const pid = this.nextPid++;
    const process: FakeProcess = {
      pid,
      startTime: String(1_000_000 + pid - FIRST_FAKE_PID),
      comm: options.comm ?? 'sh',
      state: options.stopped ? 'stopped' : 'running',
      cgroup: options.cgroup,
    };
    this.table.set(pid, process);
    return process;
  }

  process(pid: number): FakeProcess {
    const process = this.table.get(pid);
    if (!process) throw new Error(`fake process ${pid} does not exist`);
    return process;
  }

  identity(pid: number): ProcessIdentity {
    const { startTime } = this.process(pid);
    return { pid, startTime };
  }

  alive(pid: number): boolean {
    const process = this.table.get(pid);
    return process !== undefined && process.state !== 'dead';
  }

  /** The processes alive in exactly this cgroup. */
  inCgroup(cgroupPath: string): FakeProcess[] {
    return [...this.table.values()].filter((p) => p.state !== 'dead' && p.cgroup === cgroupPath);
  }

  /** Ends the process (it exits by itself, or is killed); its waiters are told. */
  exit(pid: number, status: WaitStatus = { kind: 'exited', code: 0 }): void {
    const process = this.process(pid);
    if (process.state === 'dead') return;
    process.state = 'dead';
    process.exit = status;
    for (const listener of this.exitListeners.get(pid)?.splice(0) ?? []) listener(status);
  }

  /** Calls listener once the process has ended (at once if it already has). */
  onExit(pid: number, listener: (status: WaitStatus) => void): void {
    const process = this.process(pid);
    if (process.exit) return listener(process.exit);
    const listeners = this.exitListeners.get(pid) ?? [];
    listeners.push(listener);
    this.exitListeners.set(pid, listeners);
  }

  /** What a signal does to a fake process: end it, stop it or continue it. False when it is gone. */
  deliver(pid: number, signal: NodeJS.Signals | number): boolean {
    const process = this.table.get(pid);
    if (!process || process.state === 'dead') return false;
    const number = signalNumber(signal);
    if (number === signalNumbers.SIGKILL || (process.state === 'running' && terminating.has(number))) {
      this.exit(pid, { kind: 'signaled', signal: number });
    } else if (number === signalNumbers.SIGSTOP) {
      process.state = 'stopped';
    } else if (number === signalNumbers.SIGCONT) {
      process.state = 'running';
    }
    return true;
  }

  /** Ends every process still alive but this runtime's own (test teardown). */
  killAll(): void {
    for (const process of this.table.values()) {
      if (process !== this.selfProcess && process.state !== 'dead') this.exit(process.pid, { kind: 'signaled', signal: signalNumbers.SIGKILL! });
    }
  }

  async stat(pid: number): Promise<ProcStat | undefined> {
    const process = this.table.get(pid);
    // A dead fake process has been reaped: /proc no longer has it.
    if (!process || process.state === 'dead') return undefined;
    const argumentAreas = this.argumentAreas.get(pid);
    return {
      pid,
      comm: process.comm,
      state: process.state === 'stopped' ? 'T' : 'S',
      ppid: this.selfProcess.pid,
      startTime: process.startTime,
      ...(argumentAreas ? { argumentAreas } : {}),
    };
  }

  async identify(pid: number): Promise<ProcessIdentity | undefined> {
    const stat = await this.stat(pid);
    return stat ? { pid, startTime: stat.startTime } : undefined;
  }

  async isAlive(identity: ProcessIdentity): Promise<boolean> {
    const process = this.table.get(identity.pid);
    return process !== undefined && process.state !== 'dead' && process.startTime === identity.startTime;
  }

  async signal(identity: ProcessIdentity, signal: NodeJS.Signals | number): Promise<boolean> {
    const process = this.table.get(identity.pid);
    const delivered = process !== undefined && process.startTime === identity.startTime && this.deliver(identity.pid, signal);
    this.signals.push({ pid: identity.pid, signal, delivered });
    return delivered;
  }

  async fdTargets(_pid: number, count: number): Promise<string[]> {
    return this.descriptors.slice(0, count);
  }

  async cgroups(pid: number): Promise<CgroupMembership[]> {
    const cgroup = this.process(pid).cgroup ?? '/';
    return fakeHierarchies.map((h, index) => ({ hierarchy: index + 1, controllers: h.controllers, path: cgroup }));
  }

  async children(pid: number): Promise<number[]> {
    return this.childPids.get(pid) ?? [];
  }

  async lazyMappings(pid: number): Promise<LazyMapping[]> {
    return this.alive(pid) ? [...(this.lazy.get(pid) ?? [])] : [];
  }

  async faultIn(pid: number, start: number, end: number): Promise<boolean> {
    this.faultIns.push({ pid, start, end });
    if (!this.alive(pid)) return false;
    // A live lazy-pages daemon copies the pages in; a dead one leaves them missing.
    if (this.lazyDaemonServes)
      this.lazy.set(
        pid,
        (this.lazy.get(pid) ?? []).filter((m) => m.end <= start || m.start >= end),
      );
    return true;
  }

  async namespaceInode(pid: number, type: string): Promise<number> {
    this.namespaceLookups.push({ pid, type });
    // Stable per process and type, as /proc/<pid>/ns/<type> would be.
    return 4026531000 + (pid - FIRST_FAKE_PID) * 16 + ['net', 'pid', 'mnt', 'ipc', 'uts'].indexOf(type) + 1;
  }

  async sysctl(name: string): Promise<string | undefined> {
    return this.sysctls[name];
  }

  effectiveUid(): number {
    return this.uid;
  }

  async self(): Promise<ProcessIdentity> {
    return this.identity(this.selfProcess.pid);
  }
}

/** Reaps fake processes: wait(pid) resolves once the fake process has ended. */
export class FakeReaper implements ChildReaper {
  installs = 0;
  uninstalls = 0;
  readonly waits: number[] = [];
  private pending = 0;

  constructor(private readonly processes: FakeProcesses) {}

  install(): void {
    this.installs++;
  }

  wait(pid: number): Promise<WaitStatus> {
    this.waits.push(pid);
    // As waitpid: a pid that is no child of ours is ECHILD.
    if (!this.processes.table.has(pid)) return Promise.reject(new SystemCallError('waitpid', 10, String(pid)));
    this.pending++;
    return new Promise((resolve) =>
      this.processes.onExit(pid, (status) => {
        this.pending--;
        resolve(status);
      }),
    );
  }

  get watching(): number {
    return this.pending;
  }

  uninstall(): void {
    this.uninstalls++;
  }

  /** The fake processes that are alive or not yet waited for (all are "ours"). */
  children(): Set<number> {
    return new Set([...this.processes.table.keys()]);
  }

  /** Records each sweep: the pids it was told it may leave alone. */
  readonly sweeps: number[][] = [];

  async reapStrays(known: ReadonlySet<number>): Promise<number[]> {
    this.sweeps.push([...known]);
    return [...this.processes.table.values()].filter((p) => !known.has(p.pid) && p.state !== 'dead').map((p) => p.pid);
  }
}

/** A cgroup v1 host with a freezer and a memory hierarchy. */
export const fakeHierarchies: readonly CgroupHierarchy[] = [
  { mountPoint: '/sys/fs/cgroup/freezer', controllers: ['freezer'], version: 1 },
  { mountPoint: '/sys/fs/cgroup/memory', controllers: ['memory'], version: 1 },
];

export type CgroupCall =
  | { readonly op: 'enter'; readonly cgroupPath: string; readonly pid: number }
  | { readonly op: 'setFrozen'; readonly cgroupPath: string; readonly frozen: boolean }
  | { readonly op: 'signal'; readonly cgroupPath: string; readonly signal: NodeJS.Signals; readonly reached: number }
  | { readonly op: 'kill'; readonly cgroupPath: string }
  | { readonly op: 'killTree'; readonly cgroupPath: string }
  | { readonly op: 'removeTree'; readonly cgroupPath: string };

function inTree(cgroup: string | undefined, root: string): boolean {
  return cgroup !== undefined && (cgroup === root || cgroup.startsWith(`${root.replace(/\/$/, '')}/`));
}

/** Records every cgroup operation and acts on the fake process table's membership. */
export class FakeCgroups implements CgroupService {
  readonly calls: CgroupCall[] = [];
  /** Cgroups created (by enter) and not removed since. */
  readonly existing = new Set<string>();

  constructor(private readonly processes: FakeProcesses) {}

  callsOf<K extends CgroupCall['op']>(op: K): Extract<CgroupCall, { op: K }>[] {
    return this.calls.filter((c): c is Extract<CgroupCall, { op: K }> => c.op === op);
  }

  async hierarchies(): Promise<readonly CgroupHierarchy[]> {
    return fakeHierarchies;
  }

  async freezer(cgroupPath: string): Promise<string | undefined> {
    return freezerDirectory(fakeHierarchies, cgroupPath);
  }

  /** What memoryInUse() answers for any cgroup. */
  memoryBytes: number | undefined = 16 * 1024 * 1024;

  async memoryInUse(): Promise<number | undefined> {
    return this.memoryBytes;
  }

  async enter(cgroupPath: string, pid: number): Promise<CgroupRoot[]> {
    this.calls.push({ op: 'enter', cgroupPath, pid });
    this.existing.add(cgroupPath);
    this.processes.process(pid).cgroup = cgroupPath;
    return criuCgroupRoots(fakeHierarchies, cgroupPath);
  }

  async setFrozen(cgroupPath: string, frozen: boolean): Promise<void> {
    this.calls.push({ op: 'setFrozen', cgroupPath, frozen });
  }

  async signal(cgroupPath: string, signal: NodeJS.Signals): Promise<number> {
    let reached = 0;
    for (const process of this.processes.inCgroup(cgroupPath)) if (this.processes.deliver(process.pid, signal)) reached++;
    this.calls.push({ op: 'signal', cgroupPath, signal, reached });
    return reached;
  }

  async kill(cgroupPath: string): Promise<void> {
    this.calls.push({ op: 'kill', cgroupPath });
    for (const process of this.processes.inCgroup(cgroupPath)) if (process.state !== 'dead') this.processes.deliver(process.pid, 'SIGKILL');
  }

  async killTree(cgroupPath: string): Promise<void> {
    this.calls.push({ op: 'killTree', cgroupPath });
    for (const process of [...this.processes.table.values()]) {
      if (process.state !== 'dead' && inTree(process.cgroup, cgroupPath)) this.processes.deliver(process.pid, 'SIGKILL');
    }
  }

  async removeTree(cgroupPath: string): Promise<string[]> {
    this.calls.push({ op: 'removeTree', cgroupPath });
    for (const cgroup of [...this.existing]) if (inTree(cgroup, cgroupPath)) this.existing.delete(cgroup);
    return [];
  }

  async occupants(cgroupPath: string): Promise<number[]> {
    return [...this.processes.table.values()].filter((p) => p.state !== 'dead' && inTree(p.cgroup, cgroupPath)).map((p) => p.pid);
  }
}

export type MountCall =
  | { readonly op: 'bind'; readonly source: string; readonly target: string }
  | { readonly op: 'bindReadOnly'; readonly source: string; readonly target: string }
  | { readonly op: 'mount'; readonly source: string; readonly target: string; readonly fsType: string; readonly flags: number; readonly data: string }
  | ({ readonly op: 'mountFrom'; readonly fds: readonly string[] } & MountFromRequest)
  | { readonly op: 'makePrivate'; readonly target: string }
  | { readonly op: 'unmount'; readonly target: string; readonly detach: boolean };

function mountInfo(id: number, mountPoint: string, fsType: string, source: string, superOptions: readonly string[] = ['rw']): MountInfo {
  return { id, parentId: 1, device: `0:${id}`, root: '/', mountPoint, mountOptions: ['rw'], optionalFields: [], fsType, source, superOptions };
}

/** What /proc/<init>/mountinfo shows inside a container: its root, /proc, and two cgroup v1 binds. */
export const fakeContainerMounts: readonly MountInfo[] = [
  mountInfo(1, '/', 'ext4', '/dev/root'),
  mountInfo(2, '/proc', 'proc', 'proc'),
  mountInfo(3, '/sys/fs/cgroup/freezer', 'cgroup', 'cgroup', ['rw', 'freezer']),
  mountInfo(4, '/sys/fs/cgroup/memory', 'cgroup', 'cgroup', ['rw', 'memory']),
];

/**
 * Records every mount call and keeps a mount table (this process's mount namespace). A bind onto
 * an empty directory also makes the source visible there (a symbolic link stands in for the
 * mount, and the empty directory comes back on unmount), so code that reads through the mount
 * point (a restore reading images through their read-only bind) sees what it would see. Nothing
 * else is emulated: an overlay's mount point stays empty, and a bind over a non-empty directory
 * is only recorded.
 */
export class FakeMounts implements MountService {
  readonly calls: MountCall[] = [];
  readonly table: MountInfo[] = [];
  /** What mounts(pid) answers for a container's init. */
  containerMounts: readonly MountInfo[] = fakeContainerMounts;
  /** Mount points where a symbolic link stands in for a bind, innermost last. */
  private readonly views: string[] = [];
  private nextId = 100;

  callsOf<K extends MountCall['op']>(op: K): Extract<MountCall, { op: K }>[] {
    return this.calls.filter((c): c is Extract<MountCall, { op: K }> => c.op === op);
  }

  /** Mount points in the table at or below dir. */
  mountedUnder(dir: string): string[] {
    return this.table.map((m) => m.mountPoint).filter((p) => p === dir || p.startsWith(`${dir}/`));
  }

  async bind(source: string, target: string): Promise<void> {
    this.calls.push({ op: 'bind', source, target });
    await this.attach(source, target, 'none', true);
  }

  async bindReadOnly(source: string, target: string): Promise<void> {
    this.calls.push({ op: 'bindReadOnly', source, target });
    await this.attach(source, target, 'none', true);
  }

  async mount(source: string, target: string, fsType: string, flags: number, data: string): Promise<void> {
    this.calls.push({ op: 'mount', source, target, fsType, flags, data });
    // As mount(2): MS_RDONLY makes a new superblock read-only.
    await this.attach(source, target, fsType, false, flags & MS_RDONLY ? ['ro'] : ['rw']);
  }

  async mountFrom(cwd: string, source: string, target: string, fsType: string, flags: number, data: string, fds: readonly string[] = []): Promise<void> {
    this.calls.push({ op: 'mountFrom', cwd, source, target, fsType, flags, data, fds });
    await this.attach(source, target, fsType, false);
  }

  async makePrivate(target: string): Promise<void> {
    this.calls.push({ op: 'makePrivate', target });
  }

  async unmount(target: string, options: { readonly detach?: boolean } = {}): Promise<void> {
    this.calls.push({ op: 'unmount', target, detach: options.detach ?? false });
    const index = this.table.map((m) => m.mountPoint).lastIndexOf(target);
    // As umount2(2) on something that is not a mount point.
    if (index < 0) throw new SystemCallError('umount2', 22, target);
    this.table.splice(index, 1);
    const view = this.views.lastIndexOf(target);
    if (view >= 0 && !this.table.some((m) => m.mountPoint === target)) {
      this.views.splice(view, 1);
      await unlink(target);
      await mkdir(target);
    }
  }

  async isMountPoint(file: string): Promise<boolean> {
    return this.table.some((m) => m.mountPoint === file);
  }

  async mounts(pid?: number): Promise<MountInfo[]> {
    return pid === undefined ? [...this.table] : [...this.containerMounts];
  }

  private async attach(source: string, target: string, fsType: string, bind: boolean, superOptions?: readonly string[]): Promise<void> {
    const info = await stat(target).catch(() => undefined);
    // As mount(2): the mount point must exist.
    if (!info) throw new SystemCallError('mount', 2, `${source} on ${target}`);
    if (bind && info.isDirectory() && !this.table.some((m) => m.mountPoint === target) && (await readdir(target)).length === 0) {
      await rmdir(target);
      await symlink(source, target);
      this.views.push(target);
    }
    this.table.push(mountInfo(this.nextId++, target, fsType, source, superOptions));
  }
}

/** Starts fake inits: each a new fake process in the cgroup its bundle names. */
export class FakeOciRuntime implements OciRuntime {
  readonly starts: OciStartRequest[] = [];
  readonly forgets: Pick<OciStartRequest, 'id' | 'root'>[] = [];
  /** Thrown by the next start. */
  failNext: Error | undefined;

  constructor(private readonly processes: FakeProcesses) {}

  async start(request: OciStartRequest): Promise<number> {
    this.starts.push(request);
    const failure = this.failNext;
    this.failNext = undefined;
    if (failure) throw failure;
    // As runc: the init goes into the cgroup the (effective) bundle names.
    const spec = JSON.parse(await readFile(path.join(request.bundle, 'config.json'), 'utf8')) as { linux?: { cgroupsPath?: string } };
    return this.processes.spawn({ comm: 'init', cgroup: spec.linux?.cgroupsPath }).pid;
  }

  async forget(request: Pick<OciStartRequest, 'id' | 'root'>): Promise<void> {
    this.forgets.push(request);
  }
}

/** Where a CRIU request fails: before anything ('start'), after the post-dump notification, or after the restore's prepare step. */
export type CriuFailurePoint = 'start' | 'post-dump' | 'prepared';

export interface CriuFailurePlan {
  readonly at?: CriuFailurePoint;
  readonly errno?: number;
  /** CRIU's own error line. */
  readonly message?: string;
}

export interface DumpCall {
  readonly op: 'dump';
  readonly request: CriuDumpRequest;
  /** The image directory's entries when CRIU was asked (what the runtime wrote before). */
  readonly entriesAtStart: readonly string[];
  /** The notifications sent to the runtime, in order. */
  readonly notified: string[];
}

export interface RestoreCall {
  readonly op: 'restore';
  readonly request: CriuRestoreRequest;
  /** The pid of the fake `criu swrk` the runtime prepared (put in the container's cgroups). */
  readonly criuPid: number;
  /** What prepare() answered: the cg_root entries the real service adds to the options. */
  cgroupRoots: readonly CgroupRoot[];
  /** The restored tree's root, once restored. */
  pid?: number;
}

export type CriuCall =
  | { readonly op: 'binary' }
  | { readonly op: 'version' }
  | { readonly op: 'requireVersion' }
  | { readonly op: 'features' }
  | { readonly op: 'requireFeature'; readonly feature: FeatureName; readonly neededFor: string }
  | { readonly op: 'preferredNetworkLock' }
  | DumpCall
  | RestoreCall
  | { readonly op: 'startLazyPages'; readonly imagePath: string; readonly workPath: string }
  | { readonly op: 'stopLazyPages' | 'pauseLazyPages' | 'resumeLazyPages'; readonly imagePath: string; readonly workPath: string }
  | { readonly op: 'startPageServer'; readonly request: CriuPageServerRequest }
  | { readonly op: 'cpuinfoDump' | 'cpuinfoCheck'; readonly imagePath: string };

/** Called at moments of a dump ('start', then 'after <script>' for each notification). */
export type DumpProbe = (moment: string, request: CriuDumpRequest) => void | Promise<void>;

/**
 * CRIU as the runtime sees it. A dump writes a small image set (inventory.img, pages-1.img) and
 * its log, sends the post-dump notification, and, without leave_running, kills the tree as CRIU
 * does. A restore checks there are images, runs prepare() with a fake `criu swrk` pid (so the
 * runtime puts it in the container's cgroups), and restores a new process in that cgroup,
 * stopped with leave_stopped. Either can be told to fail next, at a chosen point, with a
 * CriuRequestError naming its log, as the real service does.
 */
export class FakeCriu implements CriuService {
  readonly calls: CriuCall[] = [];
  offered: CriuFeatures = { mem_track: true, lazy_pages: true };
  versionAnswer: CriuVersion = { major: 4, minor: 2, sublevel: 1 };
  /** Whether this CRIU was built with nftables (`criu check --feature nftables`). */
  nftables = true;
  /** The bytes of pages-1.img each dump writes. */
  pageBytes = 8192;
  /**
   * The pages each next pre-dump says it wrote, in a real stats-dump (pycriu's descriptors
   * needed); none left, a pre-dump writes no statistics.
   */
  preDumpPages: number[] = [];
  /**
   * The page servers started so far: each answers port 1 + this unless a port was asked (ports
   * nothing listens on, so that a wait for the server's sockets to go ends at once).
   */
  private pageServers = 0;
  /** The notifications each (non pre-) dump sends. */
  dumpNotifications: readonly string[] = ['post-dump'];
  probe: DumpProbe | undefined;
  private dumpFailure: CriuFailurePlan | undefined;
  private restoreFailure: CriuFailurePlan | undefined;

  constructor(
    private readonly processes: FakeProcesses,
    private readonly minimumVersion = '4.2.0',
  ) {}

  get dumps(): DumpCall[] {
    return this.calls.filter((c): c is DumpCall => c.op === 'dump');
  }

  get restores(): RestoreCall[] {
    return this.calls.filter((c): c is RestoreCall => c.op === 'restore');
  }

  /** The CRIU features this kernel offers (FEATURE_CHECK). */
  setFeatures(features: CriuFeatures): void {
    this.offered = features;
  }

  failNextDump(plan: CriuFailurePlan = {}): void {
    this.dumpFailure = plan;
  }

  failNextRestore(plan: CriuFailurePlan = {}): void {
    this.restoreFailure = plan;
  }

  async binary(): Promise<string> {
    this.calls.push({ op: 'binary' });
    return '/opt/fake/criu';
  }

  async version(): Promise<CriuVersion> {
    this.calls.push({ op: 'version' });
    return this.versionAnswer;
  }

  async requireVersion(): Promise<CriuVersion> {
    this.calls.push({ op: 'requireVersion' });
    const minimum = parseVersion(this.minimumVersion);
    if (!isAtLeast(this.versionAnswer, minimum)) throw new CriuTooOldError('/opt/fake/criu', formatVersion(this.versionAnswer), formatVersion(minimum));
    return this.versionAnswer;
  }

  async features(): Promise<CriuFeatures> {
    this.calls.push({ op: 'features' });
    return this.offered;
  }

  async requireFeature(feature: FeatureName, neededFor: string): Promise<void> {
    this.calls.push({ op: 'requireFeature', feature, neededFor });
    if (this.offered[feature] !== true) throw new CriuFeatureMissingError(feature, neededFor, `the fake kernel lacks ${feature}`);
  }

  async preferredNetworkLock(): Promise<NetworkLockName> {
    this.calls.push({ op: 'preferredNetworkLock' });
    return this.nftables ? 'nftables' : 'iptables';
  }

  async dump(request: CriuDumpRequest): Promise<void> {
    const entriesAtStart = await readdir(request.imagePath);
    const call: DumpCall = { op: 'dump', request, entriesAtStart, notified: [] };
    this.calls.push(call);
    const failure = this.dumpFailure;
    this.dumpFailure = undefined;
    if (request.workPath) await mkdir(request.workPath, { recursive: true });
    const log = this.logPath(request, request.preDump ? 'pre-dump.log' : 'dump.log');
    await writeFile(log, `(00.000001) Version: ${formatVersion(this.versionAnswer)}\n(00.000100) Dumping processes (pid: ${request.opts.pid})\n`);
    await this.probe?.('start', request);
    if (failure && (failure.at === undefined || failure.at === 'start')) throw await this.failure('DUMP', log, failure);
    if (request.opts.parent_img !== undefined) await this.linkParent(request.imagePath, request.opts.parent_img, log);
    await writeFile(path.join(request.imagePath, 'pages-1.img'), Buffer.alloc(this.pageBytes));
    await writeFile(path.join(request.imagePath, 'pagemap-1.img'), 'fake pagemap');
    // A pre-dump writes an inventory too (CRIU's cr_pre_dump_finish), but sends no notification.
    await writeFile(path.join(request.imagePath, 'inventory.img'), 'fake inventory');
    if (request.preDump) {
      const pages = this.preDumpPages.shift();
      if (pages !== undefined) await writeFile(path.join(request.workPath ?? request.imagePath, 'stats-dump'), fakeDumpStats(pages));
      return;
    }
    for (const script of this.dumpNotifications) {
      call.notified.push(script);
      await request.onNotify?.({ script });
      await this.probe?.(`after ${script}`, request);
      if (failure?.at === script) throw await this.failure('DUMP', log, failure);
    }
    // CRIU kills the dumped tree unless asked to leave it running, then writes its statistics last.
    if (request.opts.leave_running !== true && request.opts.pid !== undefined) this.processes.deliver(request.opts.pid, 'SIGKILL');
    await writeFile(path.join(request.imagePath, 'stats-dump'), '');
    await appendLine(log, '(00.100000) Dumping finished successfully');
  }

  async restore(request: CriuRestoreRequest): Promise<number> {
    const criu = this.processes.spawn({ comm: 'criu' });
    const call: RestoreCall = { op: 'restore', request, criuPid: criu.pid, cgroupRoots: [] };
    this.calls.push(call);
    const failure = this.restoreFailure;
    this.restoreFailure = undefined;
    const log = this.logPath(request, 'restore.log');
    try {
      if (request.workPath) await mkdir(request.workPath, { recursive: true });
      await writeFile(log, `(00.000001) Version: ${formatVersion(this.versionAnswer)}\n`);
      if (!(await stat(path.join(request.imagePath, 'inventory.img')).catch(() => undefined))) {
        throw await this.failure('RESTORE', log, { message: `Can't open ${path.join(request.imagePath, 'inventory.img')}`, errno: 2 });
      }
      if (failure && (failure.at === undefined || failure.at === 'start')) throw await this.failure('RESTORE', log, failure);
      call.cgroupRoots = request.prepare ? await request.prepare(criu.pid) : [];
      if (failure) throw await this.failure('RESTORE', log, failure);
      // The tree is restored where CRIU was put: the container's cgroup.
      const restored = this.processes.spawn({ comm: 'init', cgroup: criu.cgroup, stopped: request.opts.leave_stopped === true });
      call.pid = restored.pid;
      await appendLine(log, `(00.200000) Restore finished successfully. Tasks resumed.`);
      return restored.pid;
    } finally {
      this.processes.exit(criu.pid);
    }
  }

  /** What lazyPagesOnDemand() answers: whether this CRIU is the project's patched one. */
  lazyOnDemand = true;

  async lazyPagesOnDemand(): Promise<boolean> {
    return this.lazyOnDemand;
  }

  /** Records the request; answers with a fake page server (pid and the port asked, or 1 and up); links a parent as CRIU does. */
  async startPageServer(request: CriuPageServerRequest): Promise<PageServer> {
    this.calls.push({ op: 'startPageServer', request });
    if (request.opts.parent_img !== undefined)
      await this.linkParent(request.imagePath, request.opts.parent_img, path.join(request.imagePath, 'page-server.log'));
    return { pid: 0, port: request.opts.ps?.port || 1 + this.pageServers++ };
  }

  /** Writes a cpuinfo.img of its own, as CPUINFO_DUMP does. */
  async cpuinfoDump(imagePath: string): Promise<void> {
    this.calls.push({ op: 'cpuinfoDump', imagePath });
    await writeFile(path.join(imagePath, 'cpuinfo.img'), 'fake cpuinfo');
  }

  /** Passes when imagePath holds a cpuinfo.img. */
  async cpuinfoCheck(imagePath: string): Promise<void> {
    this.calls.push({ op: 'cpuinfoCheck', imagePath });
    await readFile(path.join(imagePath, 'cpuinfo.img'));
  }

  async startLazyPages(imagePath: string, workPath: string, _remote?: RemotePages): Promise<LazyPages> {
    this.calls.push({ op: 'startLazyPages', imagePath, workPath });
    return {
      onDemand: this.lazyOnDemand,
      stop: async () => {
        this.calls.push({ op: 'stopLazyPages', imagePath, workPath });
      },
      pause: () => {
        this.calls.push({ op: 'pauseLazyPages', imagePath, workPath });
      },
      resume: () => {
        this.calls.push({ op: 'resumeLazyPages', imagePath, workPath });
      },
      onFailure: () => undefined,
    };
  }

  /** As CRIU's open_image_dir: the parent (relative to the images) must be there; `parent` links to it. */
  private async linkParent(imagePath: string, parent: string, log: string): Promise<void> {
    if (!(await stat(path.resolve(imagePath, parent)).catch(() => undefined))) {
      throw await this.failure('DUMP', log, { message: `Invalid parent image directory provided: ${parent}`, errno: 2 });
    }
    await symlink(parent, path.join(imagePath, 'parent')).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST') throw error;
    });
  }

  private logPath(request: CriuDumpRequest | CriuRestoreRequest, fallback: string): string {
    return path.join(request.workPath ?? request.imagePath, request.opts.log_file ?? fallback);
  }

  private async failure(type: string, logPath: string, plan: CriuFailurePlan): Promise<CriuRequestError> {
    const message = plan.message ?? `fake ${type.toLowerCase()} failure`;
    await appendLine(logPath, `(00.050000) Error (criu/fake.c:42): ${message}`);
    return new CriuRequestError({ request: type, errno: plan.errno, criuMessage: message, logPath, logTail: await criuLogTail(logPath) });
  }
}

/** A stats-dump image as CRIU writes it after a (pre-)dump, saying it wrote `pages` pages. */
function fakeDumpStats(pages: number): Buffer {
  const dump = {
    freezing_time: 1000,
    frozen_time: 2000,
    memdump_time: 500,
    memwrite_time: 400,
    pages_scanned: pages * 2,
    pages_skipped_parent: pages,
    pages_written: pages,
    pages_lazy: 0,
  };
  return encodeImage({ magic: 'STATS', entries: [{ dump }] });
}

async function appendLine(file: string, line: string): Promise<void> {
  await writeFile(file, `${line}\n`, { flag: 'a' });
}

export type MonitorLaunchMode =
  /** Record the job and answer with this pid. */
  | { readonly kind: 'answer'; readonly pid: number }
  /** Run the job in this process, through superviseContainer, as the monitor process would. */
  | { readonly kind: 'supervise' }
  /** Record the job and throw. */
  | { readonly kind: 'throw'; readonly error: Error };

/** Records launches and control requests; can run a launched job in-process. */
export class FakeMonitorClient implements MonitorClient {
  readonly launched: MonitorJob[] = [];
  readonly asked: { readonly id: string; readonly request: ControlRequest }[] = [];
  readonly reports: MonitorReport[] = [];
  /** The exit codes of the monitors run in-process ('supervise'), in launch order. */
  readonly monitors: Promise<number>[] = [];
  launchMode: MonitorLaunchMode = { kind: 'answer', pid: 4242 };
  /** What ask() answers: a pid, undefined (no monitor listens), or an error to throw. */
  askAnswer: number | undefined | Error = undefined;
  /** The context a supervised job runs in (set by fakeRuntime once it is resolved). */
  context: RuntimeContext | undefined;

  async launch(job: MonitorJob): Promise<number> {
    this.launched.push(job);
    const mode = this.launchMode;
    if (mode.kind === 'answer') return mode.pid;
    if (mode.kind === 'throw') throw mode.error;
    const context = this.context;
    if (!context) throw new Error('FakeMonitorClient.context is not set');
    let report!: (message: MonitorReport) => void;
    const reported = new Promise<MonitorReport>((resolve) => (report = resolve));
    const exit = superviseContainer(context, job, (message) => {
      this.reports.push(message);
      report(message);
    });
    this.monitors.push(exit);
    const message = await Promise.race([
      reported,
      exit.then((code) => {
        throw new Error(`the in-process monitor of ${job.id} ended (${code}) without reporting`);
      }),
    ]);
    if (!message.ok) throw deserializeError(message.error, context.store.paths(job.id).monitorLog);
    return message.pid;
  }

  async ask(id: string, request: ControlRequest): Promise<number | undefined> {
    this.asked.push({ id, request });
    if (this.askAnswer instanceof Error) throw this.askAnswer;
    return this.askAnswer;
  }
}
