/**
 * Reads a checkpoint directory into a CheckpointInspection, as checkpointctl does for podman's
 * checkpoints: the process tree (pstree + core), each task's files (fdinfo + files.img), sockets,
 * memory (mm + pagemap), mounts (mountpoints), and CRIU's statistics. It never opens pages-*.img.
 * A task image that is missing leaves that part of the task out rather than failing the whole.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { decodeImage } from '../../criu/images/image.js';
import { loadImageCatalog } from '../../criu/images/catalog.js';
import { ImageReadError } from '../../criu/images/errors.js';
import { readDumpStatistics, readRestoreStatistics } from '../../criu/images/stats.js';
import { quopriDecode } from '../../criu/images/text/quopri.js';
import type { CritJsonObject, CritJsonValue, ImageEntry } from '../../criu/images/types.js';
import { METADATA_FILE, type CheckpointMetadata } from '../checkpoint-metadata.js';
import type {
  CheckpointContainerInfo,
  CheckpointInspection,
  CheckpointMount,
  OpenFile,
  ProcessFiles,
  ProcessMemory,
  ProcessNode,
  ProcessSockets,
  SocketInfo,
} from './model.js';

export interface ReadInspectionOptions {
  /** Where CRIU wrote stats-dump / stats-restore when not in the image directory (--work-path). */
  readonly workPath?: string;
  /** The pycriu package directory to take descriptors from. */
  readonly pycriuDir?: string;
  /** The page size of the dumped tasks; CRIU's images do not record it (4 KiB on x86-64). */
  readonly pageSize?: number;
}

const DEFAULT_PAGE_SIZE = 4096;

// pagemap_entry flags (criu/include/pagemap.h).
const PE_PARENT = 1n << 0n;
const PE_LAZY = 1n << 1n;
const PE_PRESENT = 1n << 2n;

/** The member of a files.img entry per fdinfo type, and the image older CRIU versions used. */
const fileKinds: Readonly<Record<string, { readonly field: string; readonly image: string }>> = {
  REG: { field: 'reg', image: 'reg-files.img' },
  PIPE: { field: 'pipe', image: 'pipes.img' },
  FIFO: { field: 'fifo', image: 'fifo.img' },
  UNIXSK: { field: 'usk', image: 'unixsk.img' },
  INETSK: { field: 'isk', image: 'inetsk.img' },
  PACKETSK: { field: 'psk', image: 'packetsk.img' },
  NETLINKSK: { field: 'nlsk', image: 'netlinksk.img' },
};

const socketTypes = new Set(['UNIXSK', 'INETSK', 'PACKETSK', 'NETLINKSK']);

type Int = number | bigint;

function int(value: CritJsonValue | undefined): number {
  return typeof value === 'number' || typeof value === 'bigint' ? Number(value) : 0;
}

function big(value: CritJsonValue | undefined): bigint {
  return typeof value === 'number' || typeof value === 'bigint' ? BigInt(value as Int) : 0n;
}

function object(value: CritJsonValue | undefined): CritJsonObject | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? value : undefined;
}

function text(value: CritJsonValue | undefined): string | undefined {
  if (typeof value === 'string') return value;
  if (Array.isArray(value) && typeof value[0] === 'string') return value[0];
  return undefined;
}

/** pycriu's get_task_id: the pid (or pgid, sid) field, else the first of its ns_ list. */
function taskId(entry: CritJsonObject, name: 'pid' | 'pgid' | 'sid'): number {
  return int(entry[name] ?? (entry[`ns_${name}`] as CritJsonValue[] | undefined)?.[0]);
}

function isMissing(error: unknown): boolean {
  return error instanceof ImageReadError && (error.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

/** The images of one directory, each decoded once; a missing image reads as undefined. */
class Images {
  private readonly cache = new Map<string, Promise<ImageEntry[] | undefined>>();
  constructor(
    readonly dir: string,
    private readonly pycriuDir: string | undefined,
  ) {}

  entries(name: string, pretty = false): Promise<ImageEntry[] | undefined> {
    const key = `${pretty ? 'pretty:' : ''}${name}`;
    let loaded = this.cache.get(key);
    if (!loaded) {
      loaded = decodeImage(path.join(this.dir, name), { pretty, ...(this.pycriuDir ? { pycriuDir: this.pycriuDir } : {}) }).then(
        (image) => image.entries,
        (error: unknown) => {
          if (isMissing(error)) return undefined;
          throw error;
        },
      );
      this.cache.set(key, loaded);
    }
    return loaded;
  }

  async first(name: string): Promise<ImageEntry | undefined> {
    return (await this.entries(name))?.[0];
  }
}

/** File entries by id, from files.img (pretty, for socket names) or the per-type images of older CRIU. */
class FileTable {
  private table: Promise<Map<string, { type: string; entry: CritJsonObject }>> | undefined;
  constructor(private readonly images: Images) {}

  async get(id: Int): Promise<{ type: string; entry: CritJsonObject } | undefined> {
    this.table ??= this.load();
    return (await this.table).get(String(id));
  }

  private async load(): Promise<Map<string, { type: string; entry: CritJsonObject }>> {
    const table = new Map<string, { type: string; entry: CritJsonObject }>();
    const files = await this.images.entries('files.img', true);
    if (files && files.length > 0) {
      for (const file of files) {
        const type = String(file.type);
        const member = object(file[fileKinds[type]?.field ?? '']);
        table.set(String(file.id), { type, entry: member ?? file });
      }
      return table;
    }
    for (const [type, kind] of Object.entries(fileKinds)) {
      for (const entry of (await this.images.entries(kind.image, true)) ?? []) table.set(String(entry.id), { type, entry });
    }
    return table;
  }
}

function unixName(value: CritJsonValue | undefined): string | undefined {
  if (typeof value !== 'string' || value === '') return undefined;
  // pycriu writes unix names quoted-printable (opts.proto conv "unix_name"), with the trailing NUL.
  let bytes = Buffer.from(quopriDecode(value));
  while (bytes.length > 0 && bytes[bytes.length - 1] === 0) bytes = bytes.subarray(0, -1);
  if (bytes.length === 0) return undefined;
  return bytes[0] === 0 ? `@${bytes.subarray(1).toString('utf8')}` : bytes.toString('utf8');
}

function inetAddress(family: string, address: CritJsonValue | undefined, port: CritJsonValue | undefined): string {
  const host = text(address) ?? (family === 'INET6' ? '::' : '0.0.0.0');
  return family === 'INET6' ? `[${host}]:${int(port)}` : `${host}:${int(port)}`;
}

/** A socket's description from its (pretty) files.img member. */
export function describeSocket(fd: number, type: string, sk: CritJsonObject | undefined): SocketInfo {
  if (!sk) return { fd, family: type.replace(/SK$/, ''), type: 'unknown' };
  const kind = String(sk.type ?? 'unknown');
  if (type === 'UNIXSK') {
    const name = unixName(sk.name);
    const peer = int(sk.peer);
    return {
      fd,
      family: 'UNIX',
      type: kind,
      ...(sk.state !== undefined ? { state: String(sk.state) } : {}),
      ...(name ? { local: sk.deleted === true ? `${name} (deleted)` : name } : {}),
      ...(peer !== 0 ? { remote: `unix[${peer}]` } : {}),
      inode: int(sk.ino),
    };
  }
  if (type === 'INETSK') {
    const family = String(sk.family ?? 'INET');
    return {
      fd,
      family,
      type: kind,
      ...(sk.proto !== undefined ? { protocol: String(sk.proto) } : {}),
      ...(sk.state !== undefined ? { state: String(sk.state) } : {}),
      local: inetAddress(family, sk.src_addr, sk.src_port),
      remote: inetAddress(family, sk.dst_addr, sk.dst_port),
      inode: int(sk.ino),
    };
  }
  if (type === 'PACKETSK')
    return { fd, family: 'PACKET', type: kind, ...(sk.protocol !== undefined ? { protocol: String(sk.protocol) } : {}), inode: int(sk.ino) };
  return { fd, family: 'NETLINK', type: kind, ...(sk.protocol !== undefined ? { protocol: String(sk.protocol) } : {}), inode: int(sk.ino) };
}

/** What CRIT's `x fds` prints for a file, with more types spelled out. */
function describeFile(type: string, id: Int, file: { type: string; entry: CritJsonObject } | undefined): string {
  const entry = file?.entry;
  switch (type) {
    case 'REG':
      return typeof entry?.name === 'string' && entry.name !== '' ? entry.name : 'unknown path';
    case 'PIPE':
      return entry ? `pipe[${int(entry.pipe_id)}]` : 'pipe[?]';
    case 'FIFO':
      return entry ? `fifo[${int(entry.pipe_id)}]` : 'fifo[?]';
    case 'UNIXSK': {
      if (!entry) return 'unix[?]';
      const name = unixName(entry.name);
      return `unix[${int(entry.ino)} (${int(entry.peer)})${name ? ` ${name}` : ''}]`;
    }
    case 'INETSK': {
      if (!entry) return 'inet[?]';
      const s = describeSocket(0, type, entry);
      return `${s.protocol ?? s.family.toLowerCase()}[${s.local} -> ${s.remote}]`;
    }
    default:
      return `${type}.${String(id)}`;
  }
}

function buildTree(nodes: Map<number, ProcessNode>): ProcessNode | undefined {
  let root: ProcessNode | undefined;
  for (const node of nodes.values()) {
    if (node.ppid === 0 || !nodes.has(node.ppid)) root ??= node;
    else nodes.get(node.ppid)!.children.push(node);
  }
  return root;
}

async function readProcesses(images: Images, files: FileTable): Promise<{ nodes: ProcessNode[]; tree: ProcessNode | undefined }> {
  const nodes = new Map<number, ProcessNode>();
  for (const p of (await images.entries('pstree.img')) ?? []) {
    const pid = taskId(p, 'pid');
    const tc = object((await images.first(`core-${pid}.img`))?.tc);
    const mm = await images.first(`mm-${pid}.img`);
    const exeId = mm?.exe_file_id;
    const exe = exeId !== undefined ? describeFile('REG', exeId as Int, await files.get(exeId as Int)) : undefined;
    nodes.set(pid, {
      pid,
      ppid: int(p.ppid),
      pgid: taskId(p, 'pgid'),
      sid: taskId(p, 'sid'),
      comm: typeof tc?.comm === 'string' ? tc.comm : '',
      ...(exe !== undefined ? { exe } : {}),
      ...(tc?.task_state !== undefined ? { state: taskState(tc.task_state) } : {}),
      threads: Array.isArray(p.threads) ? p.threads.length : 1,
      children: [],
    });
  }
  return { nodes: [...nodes.values()], tree: buildTree(nodes) };
}

function taskState(value: CritJsonValue): string {
  const names: Readonly<Record<number, string>> = { 1: 'Alive', 3: 'Zombie', 6: 'Stopped' };
  return typeof value === 'number' ? (names[value] ?? String(value)) : String(value);
}

async function readFiles(images: Images, files: FileTable, nodes: readonly ProcessNode[]): Promise<{ files: ProcessFiles[]; sockets: ProcessSockets[] }> {
  const out: ProcessFiles[] = [];
  const sockets: ProcessSockets[] = [];
  for (const node of nodes) {
    const ids = await images.first(`ids-${node.pid}.img`);
    if (!ids) continue;
    const open: OpenFile[] = [];
    const taskSockets: SocketInfo[] = [];
    for (const fd of (await images.entries(`fdinfo-${int(ids.files_id)}.img`)) ?? []) {
      const type = String(fd.type);
      const file = await files.get(fd.id as Int);
      open.push({ fd: int(fd.fd), type, path: describeFile(type, fd.id as Int, file) });
      if (socketTypes.has(type)) taskSockets.push(describeSocket(int(fd.fd), type, file?.entry));
    }
    const fs = await images.first(`fs-${node.pid}.img`);
    const where = async (id: CritJsonValue | undefined): Promise<string | undefined> =>
      id === undefined ? undefined : describeFile('REG', id as Int, await files.get(id as Int));
    const cwd = await where(fs?.cwd_id);
    const root = await where(fs?.root_id);
    out.push({ pid: node.pid, comm: node.comm, files: open, ...(cwd !== undefined ? { cwd } : {}), ...(root !== undefined ? { root } : {}) });
    if (taskSockets.length > 0) sockets.push({ pid: node.pid, comm: node.comm, sockets: taskSockets });
  }
  return { files: out, sockets };
}

/** Memory per task: VMAs from mm-<pid>.img, pages from pagemap-<pid>.img (its first entry is the head). */
async function readMemory(images: Images, nodes: readonly ProcessNode[], pageSize: number): Promise<ProcessMemory[]> {
  const out: ProcessMemory[] = [];
  for (const node of nodes) {
    const mm = await images.first(`mm-${node.pid}.img`);
    const pagemap = await images.entries(`pagemap-${node.pid}.img`);
    if (!mm && !pagemap) continue;
    const vmas = (Array.isArray(mm?.vmas) ? mm.vmas : []) as CritJsonObject[];
    let mapped = 0n;
    for (const vma of vmas) mapped += big(vma.end) - big(vma.start);
    let present = 0n;
    let parent = 0n;
    let lazy = 0n;
    for (const entry of (pagemap ?? []).slice(1)) {
      // CRIU 4.2 writes the count in nr_pages; older images have it in field 2, now compat_nr_pages.
      const pages = big(entry.nr_pages ?? entry.compat_nr_pages);
      // Images before CRIU 3.x have in_parent instead of flags.
      const flags = entry.flags !== undefined ? big(entry.flags) : entry.in_parent === true ? PE_PARENT : PE_PRESENT;
      if (flags & PE_PRESENT) present += pages;
      if (flags & PE_PARENT) parent += pages;
      if (flags & PE_LAZY) lazy += pages;
    }
    out.push({
      pid: node.pid,
      comm: node.comm,
      vmas: vmas.length,
      mappedBytes: Number(mapped),
      pagesPresent: Number(present),
      presentBytes: Number(present) * pageSize,
      pagesInParent: Number(parent),
      pagesLazy: Number(lazy),
    });
  }
  return out;
}

/** CRIU's fstype enum in lower case; UNSUPPORTED only means CRIU has no special handling for it (ext4, xfs, ...). */
function fstypeName(name: string | undefined, value: CritJsonValue | undefined): string {
  if (name === undefined) return String(value);
  return name === 'UNSUPPORTED' ? 'other' : name.toLowerCase();
}

async function readMounts(images: Images, names: readonly string[], pycriuDir: string | undefined): Promise<CheckpointMount[]> {
  const fstypes = loadImageCatalog(pycriuDir).registry.enums.get('.fstype')?.byNumber;
  const out: CheckpointMount[] = [];
  for (const name of names) {
    const namespace = Number(/^mountpoints-(\d+)\.img$/.exec(name)![1]);
    for (const m of (await images.entries(name)) ?? []) {
      const fsname = typeof m.fsname === 'string' && m.fsname !== '' ? m.fsname : undefined;
      const external = typeof m.ext_key === 'string' && m.ext_key !== '' ? m.ext_key : m.ext_mount === true ? String(m.root ?? '') : undefined;
      out.push({
        namespace,
        mountpoint: String(m.mountpoint ?? ''),
        fstype: fsname ?? fstypeName(fstypes?.get(int(m.fstype)), m.fstype),
        source: String(m.source ?? ''),
        root: String(m.root ?? ''),
        options: String(m.options ?? ''),
        ...(external !== undefined ? { external } : {}),
      });
    }
  }
  return out.sort((a, b) => a.namespace - b.namespace || a.mountpoint.localeCompare(b.mountpoint));
}

async function readContainer(dir: string): Promise<CheckpointContainerInfo | undefined> {
  let metadata: CheckpointMetadata;
  try {
    metadata = JSON.parse(await readFile(path.join(dir, METADATA_FILE), 'utf8')) as CheckpointMetadata;
  } catch {
    return undefined;
  }
  return {
    id: metadata.id,
    created: metadata.created,
    bundle: metadata.bundle,
    rootfs: metadata.rootfs,
    ociRuntime: metadata.ociRuntime,
    criuVersion: metadata.criuVersion,
    leftRunning: metadata.leftRunning,
    externalMounts: Array.isArray(metadata.externalMounts) ? metadata.externalMounts.length : 0,
  };
}

/** Reads the checkpoint in `dir`; the directory must exist (callers check it holds inventory.img). */
export async function readInspection(dir: string, options: ReadInspectionOptions = {}): Promise<CheckpointInspection> {
  const imagePath = path.resolve(dir);
  const pageSize = options.pageSize ?? DEFAULT_PAGE_SIZE;
  const images = new Images(imagePath, options.pycriuDir);
  const files = new FileTable(images);
  const names = (await readdir(imagePath, { withFileTypes: true }))
    .filter((e) => e.isFile())
    .map((e) => e.name)
    .sort();

  let totalBytes = 0;
  let pagesBytes = 0;
  for (const name of names) {
    const { size } = await stat(path.join(imagePath, name));
    totalBytes += size;
    if (/^pages-\d+\.img$/.test(name)) pagesBytes += size;
  }

  const { nodes, tree } = await readProcesses(images, files);
  const { files: openFiles, sockets } = await readFiles(images, files, nodes);
  const memory = await readMemory(images, nodes, pageSize);
  const mounts = await readMounts(
    images,
    names.filter((n) => /^mountpoints-\d+\.img$/.test(n)),
    options.pycriuDir,
  );
  const statsDirs = options.workPath ? [path.resolve(options.workPath), imagePath] : [imagePath];
  const dumpStatistics = await readDumpStatistics(statsDirs, options);
  const restoreStatistics = await readRestoreStatistics(statsDirs, options);
  const container = await readContainer(imagePath);

  return {
    imagePath,
    ...(container ? { container } : {}),
    size: { totalBytes, pagesBytes },
    pageSize,
    ...(tree ? { processTree: tree } : {}),
    files: openFiles,
    sockets,
    memory,
    mounts,
    ...(dumpStatistics ? { dumpStatistics } : {}),
    ...(restoreStatistics ? { restoreStatistics } : {}),
  };
}
