/**
 * The memory a lazy restore leaves to its lazy-pages daemon, where something other than the tasks
 * themselves reads it. The kernel's own reads of another process's memory (/proc/<pid>/cmdline
 * and environ, which ps reads) do not wait for userfaultfd and fail on a page not copied in yet,
 * so after a lazy restore each task's arguments and environment are copied in at once
 * (fillInArguments: a page or two per task).
 *
 * Before a dump, the memory a lazy restore left to its lazy-pages daemon is copied in. CRIU dumps
 * the pages a task has (present or swapped) and saves the others as holes, restored as zeros; a
 * lazily restored tree holds only what it touched until its daemon copied the rest (on demand:
 * never). Reading those pages from outside (process_vm_readv) makes the daemon serve them as if
 * the task had touched them, so the dump holds the whole memory. A tree whose memory stays
 * missing after three tries is refused rather than dumped with holes. (A daemon that died is
 * not seen here: the kernel drops its registrations with it, and the tasks already read zeros
 * there; the monitor logs that daemon's end.)
 */
import { processTree, type ProcessService } from '../system/processes.js';
import { RuntimeError } from './errors.js';

export class LazyMemoryMissingError extends RuntimeError {
  readonly code = 'LAZY_MEMORY_MISSING' as const;
  constructor(
    readonly id: string,
    readonly missing: readonly { readonly pid: number; readonly bytes: number }[],
  ) {
    super(
      `container ${id} was restored lazily and ${missing.map((m) => `${m.bytes} bytes of process ${m.pid}`).join(', ')} ` +
        'could not be copied in: a checkpoint would save them as zeros',
      {
        hint: 'the lazy-pages daemon serving it did not copy these pages in (see the monitor log and its lazy-pages.log); try again, or reset the container from its snapshot',
      },
    );
  }
}

/** What filling in found: bytes copied in and the processes that had any missing. */
export interface LazyMemoryFilled {
  readonly bytes: number;
  readonly processes: number;
}

const ROUNDS = 3;

/**
 * Fills in the lazily restored memory of the tree rooted at rootPid. It runs while the tree runs:
 * a process forked during a round is found by the next, and a mapping unmapped meanwhile is gone
 * from the next look. Nothing is read from a tree that was not restored lazily (no mapping is
 * registered with userfaultfd), beyond its smaps.
 */
export async function fillInLazyMemory(processes: ProcessService, id: string, rootPid: number): Promise<LazyMemoryFilled> {
  let bytes = 0;
  const touched = new Set<number>();
  for (let round = 1; ; round++) {
    const missing: { pid: number; bytes: number }[] = [];
    for (const pid of await processTree(rootPid, (pid) => processes.children(pid))) {
      const mappings = await processes.lazyMappings(pid);
      const total = mappings.reduce((sum, m) => sum + m.missingBytes, 0);
      if (total === 0) continue;
      missing.push({ pid, bytes: total });
      if (round > ROUNDS) continue;
      touched.add(pid);
      bytes += total;
      for (const mapping of mappings) {
        if (!(await processes.faultIn(pid, mapping.start, mapping.end))) break;
      }
    }
    if (missing.length === 0) return { bytes, processes: touched.size };
    if (round > ROUNDS) throw new LazyMemoryMissingError(id, missing);
  }
}

/**
 * Copies in the pages holding each task's arguments and its environment (/proc/<pid>/stat's
 * arg_start..arg_end and env_start..env_end, each read up to ARGUMENTS_AT_MOST, as the kernel
 * reads no more for cmdline). Returns how many tasks it read; a task that ended is passed over.
 */
export async function fillInArguments(processes: ProcessService, rootPid: number): Promise<number> {
  let read = 0;
  for (const pid of await processTree(rootPid, (pid) => processes.children(pid))) {
    const areas = (await processes.stat(pid))?.argumentAreas ?? [];
    let alive = areas.length > 0;
    for (const area of areas) {
      const start = Math.floor(area.start / PAGE) * PAGE;
      alive &&= await processes.faultIn(pid, start, Math.min(Math.ceil(area.end / PAGE) * PAGE, start + ARGUMENTS_AT_MOST));
    }
    if (alive) read++;
  }
  return read;
}

const PAGE = 4096;
const ARGUMENTS_AT_MOST = 1 << 20;
