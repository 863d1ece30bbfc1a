/**
 * How each image type is laid out, mirroring the `handlers` table of pycriu's images.py (CRIU
 * 4.2.1, the same as 4.1.1's): most are a run of one message type, some carry a payload after each message, and
 * PAGEMAP and GHOST_FILE have their own shape. Magics without a handler here (SIGNAL, KDAT,
 * BINFMT_MISC, PIDFD, ...) are ones CRIT cannot decode either.
 */

/** The payload that follows each message. */
export type ExtraKind = 'pipes' | 'skQueues' | 'tcpStream' | 'bpfmap' | 'ipcSem' | 'ipcMsg' | 'ipcShm';

export type HandlerSpec =
  | { readonly kind: 'entries'; readonly type: string; readonly extra?: ExtraKind }
  /** A pagemap_head, then pagemap_entry messages. */
  | { readonly kind: 'pagemap' }
  /** A ghost_file_entry, then either the file's bytes to the end or ghost_chunk_entry messages each with its bytes. */
  | { readonly kind: 'ghost' };

const plain: [string, string][] = [
  ['INVENTORY', 'inventory_entry'],
  ['CORE', 'core_entry'],
  ['IDS', 'task_kobj_ids_entry'],
  ['CREDS', 'creds_entry'],
  ['UTSNS', 'utsns_entry'],
  ['TIMENS', 'timens_entry'],
  ['PIDNS', 'pidns_entry'],
  ['IPC_VAR', 'ipc_var_entry'],
  ['FS', 'fs_entry'],
  ['MM', 'mm_entry'],
  ['CGROUP', 'cgroup_entry'],
  ['STATS', 'stats_entry'],
  ['PSTREE', 'pstree_entry'],
  ['REG_FILES', 'reg_file_entry'],
  ['NS_FILES', 'ns_file_entry'],
  ['EVENTFD_FILE', 'eventfd_file_entry'],
  ['EVENTPOLL_FILE', 'eventpoll_file_entry'],
  ['EVENTPOLL_TFD', 'eventpoll_tfd_entry'],
  ['SIGNALFD', 'signalfd_entry'],
  ['TIMERFD', 'timerfd_entry'],
  ['INOTIFY_FILE', 'inotify_file_entry'],
  ['INOTIFY_WD', 'inotify_wd_entry'],
  ['FANOTIFY_FILE', 'fanotify_file_entry'],
  ['FANOTIFY_MARK', 'fanotify_mark_entry'],
  ['VMAS', 'vma_entry'],
  ['PIPES', 'pipe_entry'],
  ['FIFO', 'fifo_entry'],
  ['SIGACT', 'sa_entry'],
  ['NETLINK_SK', 'netlink_sk_entry'],
  ['REMAP_FPATH', 'remap_file_path_entry'],
  ['MNTS', 'mnt_entry'],
  ['TTY_FILES', 'tty_file_entry'],
  ['TTY_INFO', 'tty_info_entry'],
  ['TTY_DATA', 'tty_data_entry'],
  ['RLIMIT', 'rlimit_entry'],
  ['TUNFILE', 'tunfile_entry'],
  ['EXT_FILES', 'ext_file_entry'],
  ['IRMAP_CACHE', 'irmap_cache_entry'],
  ['FILE_LOCKS', 'file_lock_entry'],
  ['FDINFO', 'fdinfo_entry'],
  ['UNIXSK', 'unix_sk_entry'],
  ['INETSK', 'inet_sk_entry'],
  ['PACKETSK', 'packet_sock_entry'],
  ['ITIMERS', 'itimer_entry'],
  ['POSIX_TIMERS', 'posix_timer_entry'],
  ['NETDEV', 'net_device_entry'],
  ['NETNS', 'netns_entry'],
  ['USERNS', 'userns_entry'],
  ['SECCOMP', 'seccomp_entry'],
  ['AUTOFS', 'autofs_entry'],
  ['FILES', 'file_entry'],
  ['CPUINFO', 'cpuinfo_entry'],
  ['MEMFD_FILE', 'memfd_file_entry'],
  ['MEMFD_INODE', 'memfd_inode_entry'],
  ['BPFMAP_FILE', 'bpfmap_file_entry'],
  ['APPARMOR', 'apparmor_entry'],
];

const withExtra: [string, string, ExtraKind][] = [
  ['TCP_STREAM', 'tcp_stream_entry', 'tcpStream'],
  ['PIPES_DATA', 'pipe_data_entry', 'pipes'],
  ['FIFO_DATA', 'pipe_data_entry', 'pipes'],
  ['SK_QUEUES', 'sk_packet_entry', 'skQueues'],
  ['IPCNS_SHM', 'ipc_shm_entry', 'ipcShm'],
  ['IPCNS_SEM', 'ipc_sem_entry', 'ipcSem'],
  ['IPCNS_MSG', 'ipc_msg_entry', 'ipcMsg'],
  ['BPFMAP_DATA', 'bpfmap_data_entry', 'bpfmap'],
];

export const handlerSpecs: ReadonlyMap<string, HandlerSpec> = new Map<string, HandlerSpec>([
  ...plain.map(([magic, type]): [string, HandlerSpec] => [magic, { kind: 'entries', type }]),
  ...withExtra.map(([magic, type, extra]): [string, HandlerSpec] => [magic, { kind: 'entries', type, extra }]),
  ['PAGEMAP', { kind: 'pagemap' }],
  ['GHOST_FILE', { kind: 'ghost' }],
]);

/** pycriu's round_up. */
export function roundUp(x: number, y: number): number {
  return x === 0 ? 0 : Math.ceil(x / y) * y;
}
