/**
 * Checkpoint and restore options, with runc's flag names, and their mapping onto criu_opts.
 * The mapping is pure: what the runtime found about the container comes in as a context.
 */
import { UsageError } from '../system/errors.js';
import { CgroupMode, NetworkLockMethod, type CgroupRoot, type CriuOpts, type ExtMountMap, type InheritFd, type JoinNamespace } from './rpc/messages.js';

export const cgroupsModes = ['soft', 'full', 'strict', 'ignore'] as const;
export type CgroupsModeName = (typeof cgroupsModes)[number];

export const networkLocks = ['iptables', 'nftables', 'skip'] as const;
export type NetworkLockName = (typeof networkLocks)[number];

/** Options shared by checkpoint and restore. */
export interface CommonCriuOptions {
  /** Directory of the images → images_dir_fd (an opened directory handed to CRIU). */
  readonly imagePath?: string;
  /** Directory for CRIU's log and work files → work_dir_fd; the image directory when unset. */
  readonly workPath?: string;
  /** Checkpoint/restore established TCP connections → tcp_established. */
  readonly tcpEstablished?: boolean;
  /** Allow external unix sockets → ext_unix_sk. */
  readonly extUnixSk?: boolean;
  /** The tree is a shell job (session and process group outside it) → shell_job. */
  readonly shellJob?: boolean;
  /** Checkpoint/restore file locks → file_locks. */
  readonly fileLocks?: boolean;
  /** cgroups handling → manage_cgroups_mode (soft, full, strict, ignore; CRIU's default when unset). */
  readonly manageCgroupsMode?: CgroupsModeName;
  /** Punch holes in parent images as pages are read or written → auto_dedup. */
  readonly autoDedup?: boolean;
  /** Restore memory on demand through userfaultfd, or dump leaving pages for it → lazy_pages. */
  readonly lazyPages?: boolean;
  /** ADDRESS:PORT of a CRIU page server to send pages to (dump) or take them from → ps. */
  readonly pageServer?: string;
  /**
   * The page server connection over TLS, both ends with a certificate the CA signed → tls,
   * tls_cacert, tls_cert, tls_key, and tls_no_cn_verify: a peer is who the CA says it is, as on
   * the migration's command channel (the address it is reached at is not in its certificate).
   */
  readonly tls?: TlsFiles;
  /**
   * A lazy restore's pages come from this page server (a migration's source, where the dump
   * serves them) instead of the images → the lazy-pages daemon's --page-server --address --port.
   */
  readonly lazyPageServer?: { readonly host: string; readonly port: number };
}

/** PEM files: this end's certificate and key, and the CA that signed both ends'. */
export interface TlsFiles {
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
}

/** criu_opts for a TLS page server connection. */
export function tlsOpts(tls: TlsFiles | undefined): Pick<CriuOpts, 'tls' | 'tls_cacert' | 'tls_cert' | 'tls_key' | 'tls_no_cn_verify'> {
  if (!tls) return {};
  return { tls: true, tls_cacert: tls.ca, tls_cert: tls.cert, tls_key: tls.key, tls_no_cn_verify: true };
}

export interface CheckpointOptions extends CommonCriuOptions {
  /** Keep the container running after the dump → leave_running. */
  readonly leaveRunning?: boolean;
  /** Dump memory only, to be the parent of a later dump → request type PRE_DUMP. */
  readonly preDump?: boolean;
  /** Image directory of a previous pre-dump, relative to the image directory → parent_img (+ track_mem). */
  readonly parentPath?: string;
  /** Do not dump data still in flight on TCP sockets → tcp_skip_in_flight. */
  readonly tcpSkipInFlight?: boolean;
  /** Allow dumping files that were unlinked but are still open → link_remap. */
  readonly linkRemap?: boolean;
  /**
   * How CRIU cuts the container's own network namespace off while it dumps → network_lock. The
   * images record it and the restore unlocks the same way. Unset: nftables when this CRIU has it
   * (rules set in-process, where iptables costs CRIU several iptables-restore runs), else iptables.
   */
  readonly networkLock?: NetworkLockName;
}

export type RestoreCriuOptions = CommonCriuOptions;

export function parseNetworkLock(value: string): NetworkLockName {
  if ((networkLocks as readonly string[]).includes(value)) return value as NetworkLockName;
  throw new UsageError(`invalid --network-lock ${JSON.stringify(value)}`, `use one of: ${networkLocks.join(', ')}`);
}

const networkLockValues: Readonly<Record<NetworkLockName, NetworkLockMethod>> = {
  iptables: NetworkLockMethod.IPTABLES,
  nftables: NetworkLockMethod.NFTABLES,
  skip: NetworkLockMethod.SKIP,
};

export function parseCgroupsMode(value: string): CgroupsModeName {
  if ((cgroupsModes as readonly string[]).includes(value)) return value as CgroupsModeName;
  throw new UsageError(`invalid --manage-cgroups-mode ${JSON.stringify(value)}`, `use one of: ${cgroupsModes.join(', ')}`);
}

/** As runc: no mode means CRIU's DEFAULT; the names map to criu_cg_mode. */
export function cgroupModeValue(mode: CgroupsModeName | undefined): CgroupMode {
  switch (mode) {
    case undefined:
      return CgroupMode.DEFAULT;
    case 'soft':
      return CgroupMode.SOFT;
    case 'full':
      return CgroupMode.FULL;
    case 'strict':
      return CgroupMode.STRICT;
    case 'ignore':
      return CgroupMode.IGNORE;
  }
}

export function parsePageServer(value: string): { address: string; port: number } {
  const colon = value.lastIndexOf(':');
  const portText = value.slice(colon + 1);
  const port = /^\d+$/.test(portText) ? Number(portText) : NaN;
  if (colon <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new UsageError(`invalid --page-server ${JSON.stringify(value)}`, 'give it as ADDRESS:PORT, for example 10.0.0.2:27');
  }
  return { address: value.slice(0, colon).replace(/^\[(.*)\]$/, '$1'), port };
}

/**
 * criu_opts without the directory fds. CRIU opens images_dir_fd and work_dir_fd as
 * /proc/<requester>/fd/N, so they are fds of the runtime's own process, filled in by the service
 * once it has opened the directories (runc passes its own fd numbers the same way).
 */
export type DirectorylessOpts = Omit<CriuOpts, 'images_dir_fd' | 'work_dir_fd'>;

export interface DumpContext {
  /** The container's init on the host. */
  readonly pid: number;
  /** The container's root filesystem on the host. */
  readonly root: string;
  /** The container's freezer cgroup directory (v1), which CRIU freezes the tree with. */
  readonly freezeCgroup?: string;
  readonly extMounts: readonly ExtMountMap[];
  /** external resources, e.g. "net[4026532]:extRootNetNS" for a namespace joined by path. */
  readonly external?: readonly string[];
}

/** criu_opts for DUMP or PRE_DUMP. runc's fixed choices are kept: log level 4, notify scripts on. */
export function dumpOpts(options: CheckpointOptions, context: DumpContext): DirectorylessOpts {
  const opts: DirectorylessOpts = {
    pid: context.pid,
    root: context.root,
    log_level: 4,
    log_file: options.preDump ? 'pre-dump.log' : 'dump.log',
    notify_scripts: true,
    manage_cgroups: true,
    manage_cgroups_mode: cgroupModeValue(options.manageCgroupsMode),
    ext_mnt: [...context.extMounts],
    leave_running: options.leaveRunning === true || options.preDump === true,
    tcp_established: options.tcpEstablished === true,
    ext_unix_sk: options.extUnixSk === true,
    shell_job: options.shellJob === true,
    file_locks: options.fileLocks === true,
    auto_dedup: options.autoDedup === true,
  };
  if (context.freezeCgroup) opts.freeze_cgroup = context.freezeCgroup;
  if (context.external && context.external.length > 0) opts.external = [...context.external];
  if (options.parentPath) {
    opts.parent_img = options.parentPath;
    opts.track_mem = true;
  }
  if (options.preDump) opts.track_mem = true;
  if (options.tcpSkipInFlight) opts.tcp_skip_in_flight = true;
  if (options.networkLock) opts.network_lock = networkLockValues[options.networkLock];
  if (options.linkRemap) opts.link_remap = true;
  if (options.lazyPages) opts.lazy_pages = true;
  if (options.pageServer) opts.ps = parsePageServer(options.pageServer);
  Object.assign(opts, tlsOpts(options.tls));
  return opts;
}

export interface RestoreContext {
  /** A mount point holding the rootfs (CRIU pivots into it). */
  readonly root: string;
  readonly extMounts: readonly ExtMountMap[];
  /** The container's new stdio pipes, by the key CRIU knows the old ones by ("pipe:[ino]"). */
  readonly inheritFds: readonly InheritFd[];
  /** Where the tree's cgroups go: the container's cgroup, per controller. */
  readonly cgroupRoots: readonly CgroupRoot[];
  readonly joinNamespaces?: readonly JoinNamespace[];
  /** Leave the restored tree stopped (SIGSTOP) instead of running: a standby → leave_stopped. */
  readonly leaveStopped?: boolean;
}

/**
 * criu_opts for RESTORE. rst_sibling makes the restored init a child of the process that started
 * `criu swrk`, i.e. of the runtime (runc and crun do the same). Unlike runc, no notifications:
 * runc runs its prestart hooks and reads the pid at them, the runtime has nothing to do there
 * (the pid comes in the answer), and each is a round trip to the runtime's process while the
 * restore waits (seven per restore, about 1 ms each on a quiet machine, more when the monitor
 * is busy with another instance).
 */
export function restoreOpts(options: RestoreCriuOptions, context: RestoreContext): DirectorylessOpts {
  const opts: DirectorylessOpts = {
    root: context.root,
    log_level: 4,
    log_file: 'restore.log',
    notify_scripts: false,
    rst_sibling: true,
    evasive_devices: true,
    manage_cgroups: true,
    manage_cgroups_mode: cgroupModeValue(options.manageCgroupsMode),
    ext_mnt: [...context.extMounts],
    inherit_fd: [...context.inheritFds],
    tcp_established: options.tcpEstablished === true,
    ext_unix_sk: options.extUnixSk === true,
    shell_job: options.shellJob === true,
    file_locks: options.fileLocks === true,
    auto_dedup: options.autoDedup === true,
  };
  if (context.cgroupRoots.length > 0) opts.cg_root = [...context.cgroupRoots];
  if (context.joinNamespaces && context.joinNamespaces.length > 0) opts.join_ns = [...context.joinNamespaces];
  if (context.leaveStopped) opts.leave_stopped = true;
  if (options.lazyPages) opts.lazy_pages = true;
  if (options.pageServer) opts.ps = parsePageServer(options.pageServer);
  return opts;
}
