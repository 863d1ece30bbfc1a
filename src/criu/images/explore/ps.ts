/** `crit x DIR ps`: the process tree from pstree.img and each task's core image. */
import type { CritJsonObject } from '../types.js';
import { CheckpointDir, taskId, type ExploreOptions } from './checkpoint-dir.js';
import { d, s } from './printf.js';

export interface PsNode {
  readonly pid: number;
  readonly ppid: number;
  readonly pgid: number;
  readonly sid: number;
  /** The task's comm from its core image. */
  readonly comm: string;
  readonly children: PsNode[];
}

/** The root of the process tree (the task whose ppid is 0), children in pstree.img order. */
export async function explorePs(dir: string, options: ExploreOptions = {}): Promise<PsNode | undefined> {
  const images = new CheckpointDir(dir, options);
  const nodes = new Map<number, PsNode>();
  for (const p of await images.entries('pstree.img')) {
    const pid = taskId(p, 'pid');
    const core = (await images.entries(`core-${pid}.img`))[0];
    const comm = ((core?.tc as CritJsonObject | undefined)?.comm as string | undefined) ?? '';
    nodes.set(pid, { pid, ppid: Number(p.ppid), pgid: taskId(p, 'pgid'), sid: taskId(p, 'sid'), comm, children: [] });
  }
  let root: PsNode | undefined;
  for (const node of nodes.values()) {
    if (node.ppid === 0) root = node;
    else nodes.get(node.ppid)?.children.push(node);
  }
  return root;
}

/** The text `crit x DIR ps` prints. */
export function formatPs(root: PsNode | undefined): string {
  const lines = [`${s('PID', 7)}${s('PGID', 7)}${s('SID', 7)}   COMM`];
  const walk = (node: PsNode, depth: number): void => {
    lines.push(`${d(node.pid, 7)}${d(node.pgid, 7)}${d(node.sid, 7)}   ${' '.repeat(4 * depth)}${node.comm}`);
    node.children.forEach((child) => walk(child, depth + 1));
  };
  if (root) walk(root, 0);
  return `${lines.join('\n')}\n`;
}
