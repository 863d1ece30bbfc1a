/** What `runtime inspect` shows of a checkpoint: the text tree and `--format json` both print this. */
import type { DumpStatistics, RestoreStatistics } from '../../criu/images/stats.js';

export interface ProcessNode {
  readonly pid: number;
  readonly ppid: number;
  readonly pgid: number;
  readonly sid: number;
  /** The task's comm (core image), "" when its core image is missing. */
  readonly comm: string;
  /** The executable (mm image's exe_file_id resolved through files.img). */
  readonly exe?: string;
  /** Alive, Zombie or Stopped (core image). */
  readonly state?: string;
  readonly threads: number;
  readonly children: ProcessNode[];
}

export interface OpenFile {
  readonly fd: number;
  /** The file type of fdinfo (REG, PIPE, UNIXSK, INETSK, ...). */
  readonly type: string;
  /** A path, or what CRIT prints for it ("pipe[123]", "unix[...]", "TTY.5"). */
  readonly path: string;
}

export interface ProcessFiles {
  readonly pid: number;
  readonly comm: string;
  readonly files: readonly OpenFile[];
  readonly cwd?: string;
  readonly root?: string;
}

export interface SocketInfo {
  readonly fd: number;
  /** UNIX, INET, INET6, PACKET or NETLINK. */
  readonly family: string;
  /** STREAM, DGRAM, SEQPACKET, RAW, ... */
  readonly type: string;
  /** TCP, UDP, ... for INET sockets. */
  readonly protocol?: string;
  /** LISTEN, ESTABLISHED, CLOSE, ... */
  readonly state?: string;
  /** The bound address: "0.0.0.0:8080", "[::1]:53", a unix path ("@name" when abstract). */
  readonly local?: string;
  /** The peer address, or the peer's inode for a unix socket. */
  readonly remote?: string;
  readonly inode?: number;
}

export interface ProcessSockets {
  readonly pid: number;
  readonly comm: string;
  readonly sockets: readonly SocketInfo[];
}

export interface ProcessMemory {
  readonly pid: number;
  readonly comm: string;
  /** VMAs of the mm image and the bytes they span. */
  readonly vmas: number;
  readonly mappedBytes: number;
  /** Pages of the pagemap with PE_PRESENT: the pages this checkpoint holds for the task. */
  readonly pagesPresent: number;
  /** pagesPresent × the page size. */
  readonly presentBytes: number;
  /** Pages left to a parent checkpoint (PE_PARENT, incremental dumps). */
  readonly pagesInParent: number;
  /** Pages CRIU marked PE_LAZY (private anonymous memory a lazy-pages restore may fetch on demand). */
  readonly pagesLazy: number;
}

export interface CheckpointMount {
  /** The mount namespace image the mount comes from (mountpoints-<n>.img). */
  readonly namespace: number;
  readonly mountpoint: string;
  readonly fstype: string;
  readonly source: string;
  /** The path inside the source file system that is mounted ("/" for a whole file system). */
  readonly root: string;
  readonly options: string;
  /** The key of an external (bind) mount the restore must supply (--external mnt[KEY]:PATH). */
  readonly external?: string;
}

export interface CheckpointContainerInfo {
  readonly id: string;
  readonly created: string;
  readonly bundle: string;
  readonly rootfs: string;
  readonly ociRuntime: string;
  readonly criuVersion: string;
  readonly leftRunning: boolean;
  readonly externalMounts: number;
}

export interface CheckpointInspection {
  readonly imagePath: string;
  /** From the runtime's runtime-checkpoint.json, when the runtime wrote the checkpoint. */
  readonly container?: CheckpointContainerInfo;
  readonly size: { readonly totalBytes: number; readonly pagesBytes: number };
  readonly pageSize: number;
  readonly processTree?: ProcessNode;
  readonly files: readonly ProcessFiles[];
  readonly sockets: readonly ProcessSockets[];
  readonly memory: readonly ProcessMemory[];
  readonly mounts: readonly CheckpointMount[];
  readonly dumpStatistics?: DumpStatistics;
  readonly restoreStatistics?: RestoreStatistics;
}
