/**
 * Reaping children Node did not spawn. libuv reaps only its own children, so a restored init
 * (a child through rst_sibling) or a container init reparented to us (we are a child subreaper)
 * would stay a zombie. On every SIGCHLD the reaper calls waitpid(pid, WNOHANG) for each pid it
 * watches, which never blocks a thread and never takes a child libuv is waiting for.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { becomeChildSubreaper, reapIfExited, type WaitStatus } from './libc.js';
import { parseProcStat, threadChildren } from './processes.js';
import { isTrackedChild } from './spawned.js';

/** What a parent needs to reap children Node did not spawn (a service, so tests can fake it). */
export interface ChildReaper {
  /** Makes this process a child subreaper and starts listening for SIGCHLD. */
  /** reapEveryChild: see Reaper.install. */
  install(options?: { readonly reapEveryChild?: boolean }): void;
  /** Resolves with pid's exit once it is reaped. pid must be our child (directly or as subreaper). */
  wait(pid: number): Promise<WaitStatus>;
  /** How many pids are being waited for. */
  readonly watching: number;
  /** Stops listening, so the process can exit. */
  uninstall(): void;
  /** Pids of this process's children now (running or ended, not yet reaped). */
  children(): Set<number>;
  /**
   * Waits until every child not in `known` has ended, and reaps it: what a failed restore leaves
   * (its tasks are this process's children through rst_sibling and the subreaper). Resolves with
   * the pids that were left running after timeoutMs.
   */
  reapStrays(known: ReadonlySet<number>, timeoutMs?: number): Promise<number[]>;
}

interface Watch {
  readonly pid: number;
  readonly resolve: (status: WaitStatus) => void;
  readonly reject: (error: unknown) => void;
}

/** How long the exit of a child no one waits for is kept for a wait that may still come. */
const UNCLAIMED_KEPT_MS = 10_000;

export class Reaper implements ChildReaper {
  private readonly watches = new Map<number, Watch>();
  /**
   * Exits of children no one was waiting for, reaped at once so that no zombie is left (the
   * stray tasks of a failed restore, in a monitor that lives for days), and kept a while for a
   * wait that comes after (an init that ended before its supervisor watched it).
   */
  private readonly unclaimed = new Map<number, { readonly status: WaitStatus; readonly at: number }>();
  private installed = false;
  private reapEveryChild = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly onSignal = () => this.sweep();

  /**
   * Makes this process a child subreaper and starts listening for SIGCHLD. With reapEveryChild,
   * every child that ends is reaped, watched or not, but Node's own (registered with trackChild):
   * only for a process whose every child Node starts is registered (the monitor), or Node would
   * lose the exit of one that is not.
   */
  install(options: { readonly reapEveryChild?: boolean } = {}): void {
    if (options.reapEveryChild) this.reapEveryChild = true;
    if (this.installed) return;
    becomeChildSubreaper();
    process.on('SIGCHLD', this.onSignal);
    this.installed = true;
  }

  /** Resolves with pid's exit once it is reaped. pid must be our child (directly or as subreaper). */
  wait(pid: number): Promise<WaitStatus> {
    this.install();
    const ended = this.unclaimed.get(pid);
    this.unclaimed.delete(pid);
    // Only while no other process has taken the pid since (a live one there is not the one that ended).
    if (ended && !existsSync(`/proc/${pid}`)) return Promise.resolve(ended.status);
    const promise = new Promise<WaitStatus>((resolve, reject) => this.watches.set(pid, { pid, resolve, reject }));
    // The child may have ended before we started watching; signals also coalesce, so a slow
    // timer is the safety net. The timer also keeps the event loop alive while a child is
    // watched, as a spawned child's handle would: without it, the process could exit when the
    // container's pipes close, before SIGCHLD is handled.
    this.sweep();
    this.timer ??= setInterval(() => this.sweep(), 1000);
    return promise;
  }

  children(): Set<number> {
    // Each thread's children, as the kernel lists them (CONFIG_PROC_CHILDREN): a few small files,
    // where a scan of /proc reads one per process on the host (milliseconds, on every restore).
    const listed = threadChildren('self');
    if (listed) return listed;
    const children = new Set<number>();
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        if (parseProcStat(readFileSync(`/proc/${entry}/stat`, 'utf8')).ppid === process.pid) children.add(Number(entry));
      } catch {
        // gone meanwhile
      }
    }
    return children;
  }

  async reapStrays(known: ReadonlySet<number>, timeoutMs = 2_000): Promise<number[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      // Not Node's own children (criu swrk of another restore, its lazy-pages daemon): Node reaps those.
      const strays = [...this.children()].filter((pid) => !known.has(pid) && !this.watches.has(pid) && !isTrackedChild(pid));
      const left = strays.filter((pid) => {
        try {
          return reapIfExited(pid) === undefined;
        } catch {
          return false; // not ours after all (ECHILD)
        }
      });
      if (left.length === 0 || Date.now() > deadline) return left;
      await sleep(10);
    }
  }

  get watching(): number {
    return this.watches.size;
  }

  /** Stops listening (when nothing is watched any more), so the process can exit. */
  uninstall(): void {
    process.off('SIGCHLD', this.onSignal);
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.installed = false;
  }

  private sweep(): void {
    for (const watch of [...this.watches.values()]) {
      let status: WaitStatus | undefined;
      try {
        status = reapIfExited(watch.pid);
      } catch (error) {
        this.watches.delete(watch.pid);
        watch.reject(error);
        continue;
      }
      if (status) {
        this.watches.delete(watch.pid);
        watch.resolve(status);
      }
    }
    if (this.watches.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
    this.reapUnclaimed();
  }

  /** Every other child that has ended, but Node's own (Node reaps those, and tells their 'exit'). */
  private reapUnclaimed(): void {
    if (!this.installed || !this.reapEveryChild) return;
    const now = Date.now();
    for (const [pid, ended] of this.unclaimed) if (now - ended.at > UNCLAIMED_KEPT_MS) this.unclaimed.delete(pid);
    for (const pid of threadChildren('self') ?? []) {
      if (this.watches.has(pid) || isTrackedChild(pid)) continue;
      try {
        const status = reapIfExited(pid);
        if (status) this.unclaimed.set(pid, { status, at: now });
      } catch {
        // not ours after all (ECHILD)
      }
    }
  }
}
