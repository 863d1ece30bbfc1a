/**
 * The children this process started through node:child_process (or execa over it). Node reaps
 * those itself, by pid, when they exit; a waitpid of ours on one of them would take its exit from
 * Node, whose 'exit' event, and whatever awaits it, would then never come. The reaper reaps
 * strays of a failed restore (tasks CRIU made our children) and must leave these alone: several
 * restores, each with its own `criu swrk`, run side by side in a monitor.
 */
import type { ChildProcess } from 'node:child_process';

const tracked = new Set<number>();

/** Registers child until Node has reaped it; returns it. */
export function trackChild<T extends Pick<ChildProcess, 'pid' | 'once'>>(child: T): T {
  const pid = child.pid;
  if (pid !== undefined) {
    tracked.add(pid);
    // Node emits 'exit' once it has reaped the child: the pid is no longer ours to mind.
    child.once('exit', () => tracked.delete(pid));
  }
  return child;
}

/** Whether pid is a child Node spawned and has not reaped yet. */
export function isTrackedChild(pid: number): boolean {
  return tracked.has(pid);
}

/** Registers a child started without Node (direct-spawn.ts), which reaps it itself. */
export function trackPid(pid: number): void {
  tracked.add(pid);
}

/** The child registered with trackPid has been reaped. */
export function untrackPid(pid: number): void {
  tracked.delete(pid);
}
