/** `crit x DIR mems`: each task's VMAs with what backs them. */
import type { CritJsonObject } from '../types.js';
import { CheckpointDir, taskId, type ExploreOptions } from './checkpoint-dir.js';
import { d, s, x, type Int } from './printf.js';

// VMA status bits (criu/include/image.h), as CRIT tests them.
const VMA_AREA_REGULAR = 1n << 0n;
const VMA_AREA_STACK = 1n << 1n;
const VMA_AREA_VSYSCALL = 1n << 2n;
const VMA_AREA_VDSO = 1n << 3n;
const VMA_FILE_PRIVATE = 1n << 6n;
const VMA_FILE_SHARED = 1n << 7n;
const VMA_ANON_SHARED = 1n << 8n;
const VMA_AREA_SYSVIPC = 1n << 10n;
const VMA_AREA_SOCKET = 1n << 11n;
const MAP_GROWSDOWN = 0x0100n;

export interface VmaInfo {
  readonly start: Int;
  readonly end: Int;
  /** "rwx" with "-" for missing rights. */
  readonly prot: string;
  /** What CRIT prints after the rights, without the leading space ("" for anonymous memory). */
  readonly backing: string;
}

export interface TaskMemory {
  readonly pid: number;
  readonly exe: string;
  readonly vmas: readonly VmaInfo[];
}

/** Numbers the shmids of shared mappings 1, 2, ... in order of appearance, as CRIT's vma_id. */
class VmaIds {
  private readonly ids = new Map<string, number>();
  get(shmid: Int): number {
    const key = String(shmid);
    let id = this.ids.get(key);
    if (id === undefined) {
      id = this.ids.size + 1;
      this.ids.set(key, id);
    }
    return id;
  }
}

export async function exploreMems(dir: string, options: ExploreOptions = {}): Promise<TaskMemory[]> {
  const images = new CheckpointDir(dir, options);
  const ids = new VmaIds();
  const out: TaskMemory[] = [];
  for (const p of await images.entries('pstree.img')) {
    const pid = taskId(p, 'pid');
    const mm = (await images.entries(`mm-${pid}.img`))[0]!;
    const exe = await images.describeFile('REG', mm.exe_file_id as number);
    const vmas: VmaInfo[] = [];
    for (const vma of (mm.vmas ?? []) as CritJsonObject[]) {
      const status = BigInt(vma.status as Int);
      const shmid = (vma.shmid ?? 0) as Int;
      let fn: string;
      if (status & VMA_AREA_SYSVIPC) fn = ` ips[${x(ids.get(shmid))}]`;
      else if (status & VMA_ANON_SHARED) fn = ` shmem[${x(ids.get(shmid))}]`;
      else if (status & VMA_AREA_SOCKET) fn = ` packet[${x(ids.get(shmid))}]`;
      else if (status & (VMA_FILE_PRIVATE | VMA_FILE_SHARED)) {
        fn = ` ${await images.describeFile('REG', shmid)}`;
        if (BigInt((vma.pgoff ?? 0) as Int) !== 0n) fn += ` + ${x(vma.pgoff as Int, { alt: true })}`;
        if (status & VMA_FILE_SHARED) fn += ' (s)';
      } else if (status & VMA_AREA_STACK) fn = ' [stack]';
      else if (status & VMA_AREA_VSYSCALL) fn = ' [vsyscall]';
      else if (status & VMA_AREA_VDSO) fn = ' [vdso]';
      else if (BigInt(vma.flags as Int) & MAP_GROWSDOWN) fn = ' [stack?]';
      else fn = '';
      if (!(status & VMA_AREA_REGULAR)) fn += ' *';
      const prot = BigInt(vma.prot as Int);
      vmas.push({
        start: vma.start as Int,
        end: vma.end as Int,
        prot: `${prot & 1n ? 'r' : '-'}${prot & 2n ? 'w' : '-'}${prot & 4n ? 'x' : '-'}`,
        backing: fn.slice(1),
      });
    }
    out.push({ pid, exe, vmas });
  }
  return out;
}

/** The text `crit x DIR mems` prints. */
export function formatMems(tasks: readonly TaskMemory[]): string {
  const lines: string[] = [];
  for (const task of tasks) {
    lines.push(d(task.pid), `\t${s('exe', -36)}    ${task.exe}`);
    for (const vma of task.vmas) {
      const range = `${x(vma.start, { width: 8, zero: true })}-${x(vma.end, { width: 8, zero: true })}`;
      lines.push(`\t${s(range, -36)}${vma.prot}${vma.backing ? ` ${vma.backing}` : ''}`);
    }
  }
  return lines.map((line) => `${line}\n`).join('');
}
