/**
 * Starting a program with posix_spawn(3), for the one child the runtime starts on every restore
 * and reset: `criu swrk`. Node's child_process forks (libuv's uv_spawn): the whole process is
 * copied for an instant, page tables and all, and every page the process then writes faults once
 * more; in a monitor of 90 MB that is 6-7 ms with the event loop blocked and as much CPU again,
 * per restore. glibc's posix_spawn shares the memory until the exec (vfork-like): a fraction of
 * a millisecond.
 *
 * The child gets exactly the given fds as its 0, 1, 2, ... (an fd of ours, /dev/null for
 * 'ignore', a new pipe read back here for 'pipe'), every other fd closed, its signals as exec
 * leaves them by default (Node ignores SIGPIPE; a child must not inherit that) and none blocked.
 * It is reaped here, with waitpid(pid, WNOHANG) on SIGCHLD (and a timer, as signals coalesce);
 * it is registered as a child Node minds (spawned.ts), so the stray reaper leaves it alone.
 */
import { closeSync, constants, openSync } from 'node:fs';
import { Socket } from 'node:net';
import os from 'node:os';
import type { Readable } from 'node:stream';
import { pipe, posixSpawn, reapIfExited, type WaitStatus } from './libc.js';
import { trackPid, untrackPid } from './spawned.js';

export type DirectFd = number | 'ignore' | 'pipe';

export interface DirectSpawnOptions {
  /** The child's fds 0, 1, 2, ... in order. */
  readonly fds: readonly DirectFd[];
  readonly cwd?: string;
  /** Start it in a process group of its own: a Ctrl-C at the terminal reaches the caller alone. */
  readonly newProcessGroup?: boolean;
}

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface DirectChild {
  readonly pid: number;
  /** The read end of each fd given as 'pipe', by the child's fd number. */
  readonly pipes: ReadonlyMap<number, Readable>;
  /** Resolves once the child has ended and been reaped. */
  readonly exited: Promise<Exit>;
  kill(signal: NodeJS.Signals): void;
}

const watched = new Map<number, (exit: Exit) => void>();
let timer: NodeJS.Timeout | undefined;

function exitOf(status: WaitStatus): Exit {
  return status.kind === 'exited' ? { code: status.code, signal: null } : { code: null, signal: signalName(status.signal) };
}

function signalName(signal: number): NodeJS.Signals | null {
  const entry = Object.entries(os.constants.signals).find(([, number]) => number === signal);
  return (entry?.[0] as NodeJS.Signals | undefined) ?? null;
}

function sweep(): void {
  for (const [pid, resolve] of [...watched]) {
    let status: WaitStatus | undefined;
    try {
      status = reapIfExited(pid);
    } catch {
      // Reaped by someone else after all (ECHILD): it has ended, how is not known.
      watched.delete(pid);
      untrackPid(pid);
      resolve({ code: null, signal: null });
      continue;
    }
    if (!status) continue;
    watched.delete(pid);
    untrackPid(pid);
    resolve(exitOf(status));
  }
  if (watched.size === 0) {
    process.off('SIGCHLD', sweep);
    if (timer) clearInterval(timer);
    timer = undefined;
  }
}

/** Resolves with pid's exit once reaped; onReaped is called at that moment, synchronously. */
function watch(pid: number, onReaped: () => void): Promise<Exit> {
  const exited = new Promise<Exit>((resolve) =>
    watched.set(pid, (exit) => {
      onReaped();
      resolve(exit);
    }),
  );
  if (!timer) {
    process.on('SIGCHLD', sweep);
    timer = setInterval(sweep, 100);
  }
  sweep();
  return exited;
}

/** Starts binary with args (argv[0] is the binary) and the given fds; throws if it cannot be executed. */
export function spawnDirect(binary: string, args: readonly string[], options: DirectSpawnOptions): DirectChild {
  const opened: number[] = [];
  const childEnds: number[] = [];
  const readEnds = new Map<number, number>();
  try {
    const sources = options.fds.map((fd, target) => {
      if (typeof fd === 'number') return fd;
      if (fd === 'ignore') {
        const devNull = openSync('/dev/null', constants.O_RDWR);
        opened.push(devNull);
        return devNull;
      }
      const [readEnd, writeEnd] = pipe();
      readEnds.set(target, readEnd);
      childEnds.push(writeEnd);
      return writeEnd;
    });
    const environment = Object.entries(process.env).map(([key, value]) => `${key}=${value ?? ''}`);
    const pid = posixSpawn(binary, [binary, ...args], environment, sources, { cwd: options.cwd, newProcessGroup: options.newProcessGroup });
    trackPid(pid);
    const pipes = new Map<number, Readable>();
    for (const [target, fd] of readEnds) pipes.set(target, new Socket({ fd, readable: true, writable: false }));
    readEnds.clear();
    let reaped = false;
    const exited = watch(pid, () => (reaped = true));
    return {
      pid,
      pipes,
      exited,
      kill(signal) {
        // Once reaped, the pid may be another process's.
        if (reaped) return;
        try {
          process.kill(pid, signal);
        } catch {
          // ended already
        }
      },
    };
  } finally {
    for (const fd of [...opened, ...childEnds, ...readEnds.values()]) closeSync(fd);
  }
}
