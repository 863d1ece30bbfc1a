/**
 * The text `runtime inspect` prints: a tree in the manner of checkpointctl's `show`, one branch per
 * section (container, size, statistics, process tree, open files, sockets, memory, mounts).
 */
import type { DumpStatistics, RestoreStatistics } from '../../criu/images/stats.js';
import type { CheckpointInspection, ProcessNode, SocketInfo } from './model.js';

/** A tree node: a label and its children. */
export interface TreeNode {
  readonly label: string;
  readonly children?: readonly TreeNode[];
}

/** Draws a tree with box-drawing branches, the root label on the first line. */
export function renderTree(root: TreeNode): string {
  const lines = [root.label];
  const walk = (children: readonly TreeNode[], prefix: string): void => {
    children.forEach((child, index) => {
      const last = index === children.length - 1;
      lines.push(`${prefix}${last ? '└── ' : '├── '}${child.label}`);
      if (child.children?.length) walk(child.children, `${prefix}${last ? '    ' : '│   '}`);
    });
  };
  walk(root.children ?? [], '');
  return `${lines.join('\n')}\n`;
}

/** 1536 → "1.5 KiB". */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** Microseconds as checkpointctl shows durations: "595µs", "205.476ms", "1.5s". */
export function formatMicroseconds(us: number): string {
  if (us < 1000) return `${us}µs`;
  if (us < 1_000_000) return `${trim((us / 1000).toFixed(3))}ms`;
  return `${trim((us / 1_000_000).toFixed(3))}s`;
}

function trim(decimal: string): string {
  return decimal.replace(/\.?0+$/, '');
}

const dumpLabels: readonly [keyof DumpStatistics, string, 'time' | 'count'][] = [
  ['freezing_time', 'Freezing time', 'time'],
  ['frozen_time', 'Frozen time', 'time'],
  ['memdump_time', 'Memdump time', 'time'],
  ['memwrite_time', 'Memwrite time', 'time'],
  ['pages_scanned', 'Pages scanned', 'count'],
  ['pages_skipped_parent', 'Pages skipped (in parent)', 'count'],
  ['pages_written', 'Pages written', 'count'],
  ['pages_lazy', 'Pages lazy', 'count'],
  ['irmap_resolve', 'Irmap resolve time', 'time'],
  ['page_pipes', 'Page pipes', 'count'],
  ['page_pipe_bufs', 'Page pipe buffers', 'count'],
  ['shpages_scanned', 'Shared pages scanned', 'count'],
  ['shpages_skipped_parent', 'Shared pages skipped (in parent)', 'count'],
  ['shpages_written', 'Shared pages written', 'count'],
];

const restoreLabels: readonly [keyof RestoreStatistics, string, 'time' | 'count'][] = [
  ['restore_time', 'Restore time', 'time'],
  ['forking_time', 'Forking time', 'time'],
  ['pages_restored', 'Pages restored', 'count'],
  ['pages_compared', 'Pages compared', 'count'],
  ['pages_skipped_cow', 'Pages skipped (COW)', 'count'],
];

function statsNodes<S extends object>(stats: S, labels: readonly [keyof S, string, 'time' | 'count'][]): TreeNode[] {
  const nodes: TreeNode[] = [];
  for (const [key, label, kind] of labels) {
    const value = stats[key];
    if (typeof value !== 'number') continue;
    nodes.push({ label: `${label}: ${kind === 'time' ? formatMicroseconds(value) : value}` });
  }
  return nodes;
}

function taskLabel(pid: number, comm: string): string {
  return `[${pid}]  ${comm || '?'}`;
}

function processNode(node: ProcessNode): TreeNode {
  const extra = [
    node.exe && node.exe !== `/${node.comm}` && !node.exe.endsWith(`/${node.comm}`) ? `exe ${node.exe}` : undefined,
    node.threads > 1 ? `${node.threads} threads` : undefined,
    node.state && node.state !== 'Alive' ? node.state.toLowerCase() : undefined,
  ].filter((part) => part !== undefined);
  return {
    label: `${taskLabel(node.pid, node.comm)}${extra.length > 0 ? `  (${extra.join(', ')})` : ''}`,
    children: node.children.map(processNode),
  };
}

export function describeSocketLine(socket: SocketInfo): string {
  const kind = socket.family === 'UNIX' ? `UNIX ${socket.type}` : `${socket.protocol ?? socket.type}`;
  const state = socket.state ? ` (${socket.state})` : '';
  const where =
    socket.family === 'UNIX'
      ? `${socket.local ?? `unix[${socket.inode ?? '?'}]`}${socket.remote ? ` -> ${socket.remote}` : ''}`
      : socket.local !== undefined
        ? `${socket.local} -> ${socket.remote ?? '?'}`
        : `inode ${socket.inode ?? '?'}`;
  return `[${kind}${state}]  fd ${socket.fd}  ${where}`;
}

/** The tree `runtime inspect` prints. */
export function inspectionTree(inspection: CheckpointInspection): TreeNode {
  const sections: TreeNode[] = [];
  const c = inspection.container;
  if (c) {
    sections.push(
      { label: `Container: ${c.id}` },
      { label: `Runtime: ${c.ociRuntime}` },
      { label: `Created: ${c.created}` },
      { label: `Bundle: ${c.bundle}` },
      { label: `CRIU version: ${c.criuVersion}` },
      { label: `Left running: ${c.leftRunning ? 'yes' : 'no'}` },
    );
  }
  sections.push({
    label: `Checkpoint size: ${formatBytes(inspection.size.totalBytes)}`,
    children: [{ label: `Memory pages size: ${formatBytes(inspection.size.pagesBytes)}` }],
  });
  if (inspection.dumpStatistics) sections.push({ label: 'CRIU dump statistics', children: statsNodes(inspection.dumpStatistics, dumpLabels) });
  if (inspection.restoreStatistics) sections.push({ label: 'CRIU restore statistics', children: statsNodes(inspection.restoreStatistics, restoreLabels) });
  if (inspection.processTree) sections.push({ label: 'Process tree', children: [processNode(inspection.processTree)] });
  if (inspection.files.length > 0) {
    sections.push({
      label: 'Open files',
      children: inspection.files.map((task) => ({
        label: taskLabel(task.pid, task.comm),
        children: [
          ...task.files.map((file) => ({ label: `[${file.type} ${file.fd}]  ${file.path}` })),
          ...(task.cwd !== undefined ? [{ label: `[cwd]  ${task.cwd}` }] : []),
          ...(task.root !== undefined ? [{ label: `[root]  ${task.root}` }] : []),
        ],
      })),
    });
  }
  if (inspection.sockets.length > 0) {
    sections.push({
      label: 'Sockets',
      children: inspection.sockets.map((task) => ({
        label: taskLabel(task.pid, task.comm),
        children: task.sockets.map((s) => ({ label: describeSocketLine(s) })),
      })),
    });
  }
  if (inspection.memory.length > 0) {
    const total = inspection.memory.reduce((sum, m) => sum + m.presentBytes, 0);
    sections.push({
      label: `Memory (pages in the checkpoint: ${formatBytes(total)}, page size ${formatBytes(inspection.pageSize)})`,
      children: inspection.memory.map((m) => ({
        label:
          `${taskLabel(m.pid, m.comm)}  ${formatBytes(m.presentBytes)} (${m.pagesPresent} pages) of ${formatBytes(m.mappedBytes)} mapped in ${m.vmas} VMAs` +
          `${m.pagesInParent > 0 ? `, ${m.pagesInParent} pages in the parent` : ''}`,
      })),
    });
  }
  if (inspection.mounts.length > 0) {
    sections.push({
      label: 'Mounts',
      children: inspection.mounts.map((m) => ({
        label: m.mountpoint,
        children: [
          { label: `Type: ${m.fstype}` },
          { label: `Source: ${m.source}${m.root !== '/' && m.root !== '' ? ` (${m.root})` : ''}` },
          ...(m.external !== undefined ? [{ label: `External: ${m.external}` }] : []),
        ],
      })),
    });
  }
  return { label: `Checkpoint ${inspection.imagePath}`, children: sections };
}

export function formatInspection(inspection: CheckpointInspection): string {
  return renderTree(inspectionTree(inspection));
}

/** `--format json`: the inspection as indented JSON. */
export function formatInspectionJson(inspection: CheckpointInspection): string {
  return `${JSON.stringify(inspection, null, 2)}\n`;
}
