/** `crit x DIR fds`: each task's open files, cwd and root. */
import { CheckpointDir, taskId, type ExploreOptions } from './checkpoint-dir.js';
import { d, s } from './printf.js';

export interface TaskFiles {
  readonly pid: number;
  readonly fds: readonly { readonly fd: number; readonly file: string }[];
  readonly cwd: string;
  readonly root: string;
}

export async function exploreFds(dir: string, options: ExploreOptions = {}): Promise<TaskFiles[]> {
  const images = new CheckpointDir(dir, options);
  const out: TaskFiles[] = [];
  for (const p of await images.entries('pstree.img')) {
    const pid = taskId(p, 'pid');
    const ids = (await images.entries(`ids-${pid}.img`))[0]!;
    const fds: { fd: number; file: string }[] = [];
    for (const fd of await images.entries(`fdinfo-${Number(ids.files_id)}.img`)) {
      fds.push({ fd: Number(fd.fd), file: await images.describeFile(String(fd.type), fd.id as number) });
    }
    const fs = (await images.entries(`fs-${pid}.img`))[0]!;
    out.push({
      pid,
      fds,
      cwd: await images.describeFile('REG', fs.cwd_id as number),
      root: await images.describeFile('REG', fs.root_id as number),
    });
  }
  return out;
}

/** The text `crit x DIR fds` prints. */
export function formatFds(tasks: readonly TaskFiles[]): string {
  const lines: string[] = [];
  for (const task of tasks) {
    lines.push(d(task.pid));
    for (const { fd, file } of task.fds) lines.push(`\t${d(fd, 7)}: ${file}`);
    lines.push(`\t${s('cwd', 7)}: ${task.cwd}`, `\t${s('root', 7)}: ${task.root}`);
  }
  return lines.map((line) => `${line}\n`).join('');
}
