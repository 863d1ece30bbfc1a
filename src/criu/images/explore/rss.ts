/** `crit x DIR rss`: each task's dumped page ranges (pagemap) matched to the VMAs they fall in. */
import { CorruptImageError } from '../errors.js';
import type { CritJsonObject } from '../types.js';
import { CheckpointDir, taskId, type ExploreOptions } from './checkpoint-dir.js';
import { d, s, x, type Int } from './printf.js';

const VMA_FILE_PRIVATE = 1n << 6n;
const VMA_FILE_SHARED = 1n << 7n;

/** A VMA a page range touches; `continued` when the previous range already listed it (CRIT's "~"). */
export type RssVma =
  { readonly continued: false; readonly start: Int; readonly pages: Int; readonly file: string | undefined } | { readonly continued: true };

export interface RssRange {
  readonly vaddr: Int;
  readonly nrPages: Int;
  readonly vmas: readonly RssVma[];
}

export interface TaskRss {
  readonly pid: number;
  readonly ranges: readonly RssRange[];
}

export async function exploreRss(dir: string, options: ExploreOptions = {}): Promise<TaskRss[]> {
  const images = new CheckpointDir(dir, options);
  const out: TaskRss[] = [];
  for (const p of await images.entries('pstree.img')) {
    const pid = taskId(p, 'pid');
    const vmas = ((await images.entries(`mm-${pid}.img`))[0]!.vmas ?? []) as CritJsonObject[];
    const pagemap = await images.entries(`pagemap-${pid}.img`);
    const ranges: RssRange[] = [];
    // The same walk as CRIT's explore_rss, which steps back one VMA after each range (and so can
    // go negative, where Python indexes from the end: hence at()).
    const vmaAt = (i: number): CritJsonObject => {
      const vma = vmas.at(i);
      if (!vma) throw new CorruptImageError(`pagemap-${pid}.img`, 0, `its page ranges do not match the VMAs of mm-${pid}.img (CRIT fails here too)`);
      return vma;
    };
    let vmi = 0;
    let pvmi = -1;
    for (const pm of pagemap.slice(1)) {
      const vaddr = BigInt(pm.vaddr as Int);
      // CRIU 4.2 writes the count in nr_pages; older images have it in field 2, now compat_nr_pages
      // (CRIT 4.2 fails on them with a KeyError).
      const count = (pm.nr_pages ?? pm.compat_nr_pages) as Int;
      const nrPages = BigInt(count);
      while (vmi < vmas.length && BigInt(vmaAt(vmi).end as Int) <= vaddr) vmi++;
      const pme = vaddr + (nrPages << 12n);
      const touched: RssVma[] = [];
      while (vmi < vmas.length && BigInt(vmaAt(vmi).start as Int) < pme) {
        const vma = vmaAt(vmi);
        if (vmi === pvmi) {
          touched.push({ continued: true });
        } else {
          const start = BigInt(vma.start as Int);
          const file = BigInt(vma.status as Int) & (VMA_FILE_PRIVATE | VMA_FILE_SHARED) ? await images.describeFile('REG', vma.shmid as Int) : undefined;
          touched.push({ continued: false, start: vma.start as Int, pages: (BigInt(vma.end as Int) - start) >> 12n, file });
          pvmi = vmi;
        }
        vmi++;
      }
      vmi--;
      ranges.push({ vaddr: pm.vaddr as Int, nrPages: count, vmas: touched });
    }
    out.push({ pid, ranges });
  }
  return out;
}

/** The text `crit x DIR rss` prints. */
export function formatRss(tasks: readonly TaskRss[]): string {
  const lines: string[] = [];
  for (const task of tasks) {
    lines.push(d(task.pid));
    for (const range of task.ranges) {
      const pstr = `\t${x(range.vaddr)} / ${d(range.nrPages, -8)}`;
      let vstr = '';
      for (const vma of range.vmas) {
        if (vma.continued) vstr += ' ~';
        else vstr += ` ${x(vma.start, { width: 8, zero: true })} / ${d(vma.pages, -8)}${vma.file === undefined ? '' : ` ${vma.file}`}`;
        vstr += `\n\t${s('', 23)}`;
      }
      lines.push(`${s(pstr, -24)}${vstr}`);
    }
  }
  return lines.map((line) => `${line}\n`).join('');
}
