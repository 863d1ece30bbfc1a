/**
 * Watching a container's monitor from outside, to know when the work a reset leaves behind it is
 * done: the standby the monitor prepares next (a stopped copy of the snapshot's tree, restored by
 * a CRIU that is the monitor's child), a lazy-pages daemon still filling memory in, the replaced
 * instance being killed and its directory removed. The benchmark waits for that between two
 * resets, so each measured reset starts from the same quiet state: the steady state of a
 * container reset now and then, not of one reset again while the last one still settles.
 */
import { readdir, readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { BenchError } from './exec.js';

export interface ProcessEntry {
  readonly pid: number;
  /** /proc/<pid>/stat's state letter: R, S, D, T (stopped), Z... */
  readonly state: string;
  readonly comm: string;
}

/** The processes whose parent is `ppid`, from /proc/<pid>/stat. */
export async function childrenOf(ppid: number): Promise<ProcessEntry[]> {
  const children: ProcessEntry[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = await readFile(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split at the last ')'.
    const close = stat.lastIndexOf(')');
    const [state, parent] = stat.slice(close + 2).split(' ');
    if (Number(parent) === ppid) children.push({ pid: Number(name), state: state!, comm: stat.slice(stat.indexOf('(') + 1, close) });
  }
  return children;
}

/** The parent of `pid` (/proc/<pid>/status PPid), or undefined when it is gone. */
export async function parentOf(pid: number): Promise<number | undefined> {
  try {
    return Number(/^PPid:\s+(\d+)/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1]);
  } catch {
    return undefined;
  }
}

export interface SettleRequest {
  readonly monitorPid: number;
  /** The instance the reset returned. */
  readonly initPid: number;
  /** <stateRoot>/<id>/instances: one directory per live instance. */
  readonly instancesDir: string;
  /** Whether the monitor should end up with a stopped standby beside the running instance. */
  readonly standby: boolean;
  readonly timeoutMs: number;
  /** For the error: where the monitor logs why a standby failed. */
  readonly monitorLog: string;
  readonly abort: AbortSignal;
}

/**
 * Waits until the monitor's only children are the running instance and, with a standby, one
 * stopped tree; no CRIU (restore or lazy-pages daemon) of it runs; and only those instances keep
 * a directory. Returns the milliseconds it took.
 */
export async function waitSettled(request: SettleRequest): Promise<number> {
  const started = Date.now();
  let seen = '';
  for (;;) {
    request.abort.throwIfAborted();
    const others = (await childrenOf(request.monitorPid)).filter((child) => child.pid !== request.initPid);
    const directories = (await readdir(request.instancesDir).catch(() => [])).length;
    const busy = others.some((child) => child.comm === 'criu');
    const settled = request.standby
      ? !busy && others.length === 1 && others[0]!.state === 'T' && directories === 2
      : others.length === 0 && directories <= 1;
    if (settled) return Date.now() - started;
    seen = `children besides the init: ${JSON.stringify(others)}; instance directories: ${directories}`;
    if (Date.now() - started > request.timeoutMs) {
      throw new BenchError(
        'BENCH_NOT_SETTLED',
        `the monitor (pid ${request.monitorPid}) did not settle within ${request.timeoutMs} ms after a reset ` +
          `(${request.standby ? 'expected one stopped standby' : 'expected no standby'}); ${seen}`,
        { hint: `see ${request.monitorLog}` },
      );
    }
    await sleep(10);
  }
}
