/**
 * Process and /proc access (an injection token, so tests can swap it). A process is named by its
 * pid *and* its start time, as crun's status record does: a pid that was freed and reused by
 * another process is never signalled.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { open, readFile, readlink, type FileHandle } from 'node:fs/promises';
import { RuntimeError } from './errors.js';
import { faultInMemoryAsync } from './libc.js';

export class ProcFormatError extends RuntimeError {
  readonly code = 'PROC_FORMAT' as const;
  constructor(message: string) {
    super(message);
  }
}

/** A process identity that survives pid reuse: the pid and its start time in clock ticks since boot. */
export interface ProcessIdentity {
  readonly pid: number;
  readonly startTime: string;
}

export interface ProcStat {
  readonly pid: number;
  readonly comm: string;
  /** R, S, D, Z, T, ... */
  readonly state: string;
  readonly ppid: number;
  /** Clock ticks since boot, as a decimal string (it can exceed 2^53 in theory). */
  readonly startTime: string;
  /**
   * Where the process's arguments and its environment lie in its memory (what /proc/<pid>/cmdline
   * and environ read), when the reader may see them (fields 48-51; the kernel shows zeros
   * otherwise). Two ranges: a process may move its arguments elsewhere (PR_SET_MM_ARG_START).
   */
  readonly argumentAreas?: readonly { readonly start: number; readonly end: number }[];
}

/** Parses /proc/<pid>/stat; comm may hold spaces and parentheses, so split after the last ')'. */
export function parseProcStat(text: string): ProcStat {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) throw new ProcFormatError(`malformed /proc stat: ${text.slice(0, 80)}`);
  const rest = text.slice(close + 2).split(' ');
  // rest[0] is field 3 (state); field 22 (starttime) is rest[19]; 48-51 (arg_start, arg_end,
  // env_start, env_end) are rest[45..48].
  const area = rest.slice(45, 49).map(Number);
  const areas = [
    { start: area[0]!, end: area[1]! },
    { start: area[2]!, end: area[3]! },
  ].filter((a) => Number.isSafeInteger(a.start) && Number.isSafeInteger(a.end) && a.start > 0 && a.end > a.start);
  return {
    pid: Number(text.slice(0, open).trim()),
    comm: text.slice(open + 1, close),
    state: rest[0]!,
    ppid: Number(rest[1]),
    startTime: rest[19]!,
    ...(area.length === 4 && areas.length > 0 ? { argumentAreas: areas } : {}),
  };
}

/** cgroup v1: hierarchy id, controllers ("cpu,cpuacct", "name=systemd"), path. */
export interface CgroupMembership {
  readonly hierarchy: number;
  readonly controllers: readonly string[];
  readonly path: string;
}

export function parseProcCgroup(text: string): CgroupMembership[] {
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const first = line.indexOf(':');
      const second = line.indexOf(':', first + 1);
      return {
        hierarchy: Number(line.slice(0, first)),
        controllers: line
          .slice(first + 1, second)
          .split(',')
          .filter((c) => c !== ''),
        path: line.slice(second + 1),
      };
    });
}

/** A mapping of a process registered with userfaultfd that is not wholly in memory yet. */
export interface LazyMapping {
  readonly start: number;
  readonly end: number;
  /** Bytes of it neither present nor swapped: what a dump would save as zeros. */
  readonly missingBytes: number;
}

/**
 * The mappings of /proc/<pid>/smaps registered with userfaultfd for missing pages ("um" among
 * VmFlags, as CRIU's lazy restore leaves private memory) whose Rss and Swap fall short of Size:
 * candidates only, as Rss does not count the zero page a fault on a hole maps (pagemapMissingBytes does).
 */
export function parseLazyMappings(smaps: string): LazyMapping[] {
  const found: LazyMapping[] = [];
  let current: { start: number; end: number; readable: boolean; fields: Map<string, number> } | undefined;
  for (const line of smaps.split('\n')) {
    const range = /^([0-9a-f]+)-([0-9a-f]+) (\S+) /.exec(line);
    if (range) {
      current = { start: parseInt(range[1]!, 16), end: parseInt(range[2]!, 16), readable: range[3]!.startsWith('r'), fields: new Map() };
      continue;
    }
    if (!current) continue;
    const field = /^(Size|Rss|Swap):\s+(\d+) kB$/.exec(line);
    if (field) current.fields.set(field[1]!, Number(field[2]) * 1024);
    else if (line.startsWith('VmFlags:')) {
      const size = current.fields.get('Size') ?? current.end - current.start;
      const missingBytes = size - (current.fields.get('Rss') ?? 0) - (current.fields.get('Swap') ?? 0);
      // A mapping no one may read (PROT_NONE: guard pages, reserved heaps) cannot be read in
      // from outside either; CRIU registers it all the same, and it holds nothing to dump.
      if (current.readable && line.slice('VmFlags:'.length).trim().split(/\s+/).includes('um') && missingBytes > 0) {
        found.push({ start: current.start, end: current.end, missingBytes });
      }
      current = undefined;
    }
  }
  return found;
}

export interface ProcessService {
  /** The stat of pid, or undefined when there is no such process. */
  stat(pid: number): Promise<ProcStat | undefined>;
  /** pid with its start time, or undefined when it does not exist. */
  identify(pid: number): Promise<ProcessIdentity | undefined>;
  /** True while the very process named by identity exists and is not a zombie. */
  isAlive(identity: ProcessIdentity): Promise<boolean>;
  /** Sends signal to identity's process; false when that process is gone (its pid may be reused). */
  signal(identity: ProcessIdentity, signal: NodeJS.Signals | number): Promise<boolean>;
  /** What fds 0..n-1 of pid point to ("pipe:[123]", "/dev/null", ...). */
  fdTargets(pid: number, count: number): Promise<string[]>;
  cgroups(pid: number): Promise<CgroupMembership[]>;
  /** Pids of the children of pid, forked by any of its threads (/proc/<pid>/task/<tid>/children). */
  children(pid: number): Promise<number[]>;
  /** The inode of one of pid's namespaces ("net", "pid", ...), as /proc/<pid>/ns/<type> names it. */
  namespaceInode(pid: number, type: string): Promise<number>;
  /** A kernel setting from /proc/sys ("vm.unprivileged_userfaultfd"), trimmed; undefined when absent. */
  sysctl(name: string): Promise<string | undefined>;
  /** This process's effective uid (root is 0). */
  effectiveUid(): number;
  /** This process's own identity. */
  self(): Promise<ProcessIdentity>;
  /** pid's memory that a lazy-pages daemon has yet to copy in (parseLazyMappings); [] when pid is gone. */
  lazyMappings(pid: number): Promise<LazyMapping[]>;
  /** Reads [start, end) of pid's memory so that it faults in; false when pid is gone. */
  faultIn(pid: number, start: number, end: number): Promise<boolean>;
}

export const PROCESS_SERVICE = Symbol('ProcessService');

/** root and its descendants, parents first, as `children` lists each one's at the time. */
export async function processTree(root: number, children: (pid: number) => readonly number[] | Promise<readonly number[]>): Promise<number[]> {
  const found = [root];
  for (let index = 0; index < found.length; index++) found.push(...(await children(found[index]!)));
  return found;
}

/**
 * The children of pid, forked by any of its threads, as the kernel lists them in
 * /proc/<pid>/task/<tid>/children. Undefined where the kernel has no such file
 * (CONFIG_PROC_CHILDREN) or pid is gone; a thread that ends meanwhile is passed over.
 */
export function threadChildren(pid: number | 'self'): Set<number> | undefined {
  const children = new Set<number>();
  let threads: string[];
  try {
    threads = readdirSync(`/proc/${pid}/task`);
  } catch {
    return undefined;
  }
  for (const tid of threads) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8');
    } catch (error) {
      // A kernel without the file at all is told by a thread that is still there.
      if ((error as NodeJS.ErrnoException).code === 'ENOENT' && existsSync(`/proc/${pid}/task/${tid}`)) return undefined;
      continue;
    }
    for (const child of text.split(' ')) if (child.trim() !== '') children.add(Number(child));
  }
  return children;
}

/**
 * A small kernel file (/proc), read synchronously: one open, read and close of microseconds,
 * where an async read is four trips through the thread pool, and a reset makes dozens of them.
 * Undefined when it cannot be read.
 */
function readSmallFile(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

export class LinuxProcessService implements ProcessService {
  async stat(pid: number): Promise<ProcStat | undefined> {
    try {
      return parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'ESRCH') return undefined;
      throw error;
    }
  }

  async identify(pid: number): Promise<ProcessIdentity | undefined> {
    const stat = await this.stat(pid);
    return stat ? { pid, startTime: stat.startTime } : undefined;
  }

  async isAlive(identity: ProcessIdentity): Promise<boolean> {
    const stat = await this.stat(identity.pid);
    return stat !== undefined && stat.startTime === identity.startTime && stat.state !== 'Z' && stat.state !== 'X';
  }

  async signal(identity: ProcessIdentity, signal: NodeJS.Signals | number): Promise<boolean> {
    const stat = await this.stat(identity.pid);
    if (!stat || stat.startTime !== identity.startTime) return false;
    try {
      process.kill(identity.pid, signal);
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
      throw error;
    }
  }

  async fdTargets(pid: number, count: number): Promise<string[]> {
    const targets: string[] = [];
    for (let fd = 0; fd < count; fd++) targets.push(await readlink(`/proc/${pid}/fd/${fd}`).catch(() => ''));
    return targets;
  }

  async cgroups(pid: number): Promise<CgroupMembership[]> {
    return parseProcCgroup(readFileSync(`/proc/${pid}/cgroup`, 'utf8'));
  }

  async children(pid: number): Promise<number[]> {
    return [...(threadChildren(pid) ?? [])];
  }

  async lazyMappings(pid: number): Promise<LazyMapping[]> {
    const gone = (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT' || error.code === 'ESRCH') return undefined;
      throw error;
    };
    const candidates = parseLazyMappings((await readFile(`/proc/${pid}/smaps`, 'utf8').catch(gone)) ?? '');
    if (candidates.length === 0) return [];
    const pagemap = await open(`/proc/${pid}/pagemap`, 'r').catch(gone);
    if (!pagemap) return [];
    try {
      const exact: LazyMapping[] = [];
      for (const mapping of candidates) {
        const missingBytes = await pagemapMissingBytes(pagemap, mapping.start, mapping.end);
        if (missingBytes > 0) exact.push({ ...mapping, missingBytes });
      }
      return exact;
    } finally {
      await pagemap.close();
    }
  }

  async faultIn(pid: number, start: number, end: number): Promise<boolean> {
    return faultInMemoryAsync(pid, start, end);
  }

  async sysctl(name: string): Promise<string | undefined> {
    const text = readSmallFile(`/proc/sys/${name.replace(/\./g, '/')}`);
    return text?.trim();
  }

  effectiveUid(): number {
    return process.geteuid?.() ?? -1;
  }

  async self(): Promise<ProcessIdentity> {
    const identity = await this.identify(process.pid);
    if (!identity) throw new ProcFormatError(`/proc/${process.pid}/stat: this process has no entry`);
    return identity;
  }

  async namespaceInode(pid: number, type: string): Promise<number> {
    const link = await readlink(`/proc/${pid}/ns/${type}`);
    const match = /\[(\d+)\]$/.exec(link);
    if (!match) throw new ProcFormatError(`unexpected namespace link ${link} for pid ${pid}`);
    return Number(match[1]);
  }
}

const PAGE = 4096;
const PAGEMAP_PRESENT = 1n << 63n;
const PAGEMAP_SWAPPED = 1n << 62n;

/**
 * Bytes of [start, end) that /proc/<pid>/pagemap (open as file) shows neither present (the zero
 * page counts) nor swapped: the pages CRIU would not dump. 8 bytes per page, read in 1 MiB pieces.
 */
async function pagemapMissingBytes(file: FileHandle, start: number, end: number): Promise<number> {
  const buffer = Buffer.alloc(1 << 20);
  let missing = 0;
  for (let page = start / PAGE; page < end / PAGE;) {
    const pages = Math.min(buffer.length / 8, end / PAGE - page);
    const { bytesRead } = await file.read(buffer, 0, pages * 8, page * 8);
    if (bytesRead === 0) break;
    for (let offset = 0; offset + 8 <= bytesRead; offset += 8) {
      if ((buffer.readBigUInt64LE(offset) & (PAGEMAP_PRESENT | PAGEMAP_SWAPPED)) === 0n) missing += PAGE;
    }
    page += Math.floor(bytesRead / 8);
  }
  return missing;
}
