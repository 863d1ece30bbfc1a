/**
 * The RPC messages this runtime sends and reads, typed after CRIU's rpc.proto. Field names keep
 * rpc.proto's snake_case (protobufjs is loaded with keepCase) so they can be checked against it.
 */
export const enum ReqType {
  EMPTY = 0,
  DUMP = 1,
  RESTORE = 2,
  CHECK = 3,
  PRE_DUMP = 4,
  PAGE_SERVER = 5,
  NOTIFY = 6,
  CPUINFO_DUMP = 7,
  CPUINFO_CHECK = 8,
  FEATURE_CHECK = 9,
  VERSION = 10,
  WAIT_PID = 11,
  PAGE_SERVER_CHLD = 12,
  SINGLE_PRE_DUMP = 13,
}

export const reqTypeNames: Readonly<Record<number, string>> = {
  0: 'EMPTY',
  1: 'DUMP',
  2: 'RESTORE',
  3: 'CHECK',
  4: 'PRE_DUMP',
  5: 'PAGE_SERVER',
  6: 'NOTIFY',
  7: 'CPUINFO_DUMP',
  8: 'CPUINFO_CHECK',
  9: 'FEATURE_CHECK',
  10: 'VERSION',
  11: 'WAIT_PID',
  12: 'PAGE_SERVER_CHLD',
  13: 'SINGLE_PRE_DUMP',
};

/** criu_cg_mode */
export const enum CgroupMode {
  IGNORE = 0,
  CG_NONE = 1,
  PROPS = 2,
  SOFT = 3,
  FULL = 4,
  STRICT = 5,
  DEFAULT = 6,
}

/** criu_network_lock_method */
export const enum NetworkLockMethod {
  IPTABLES = 1,
  NFTABLES = 2,
  SKIP = 3,
}

export interface ExtMountMap {
  readonly key: string;
  readonly val: string;
}

export interface InheritFd {
  readonly key: string;
  readonly fd: number;
}

export interface CgroupRoot {
  readonly ctrl?: string;
  readonly path: string;
}

export interface JoinNamespace {
  readonly ns: string;
  readonly ns_file: string;
}

export interface PageServerInfo {
  readonly address?: string;
  readonly port?: number;
  readonly pid?: number;
  readonly fd?: number;
}

/** criu_opts: only the fields this runtime sets. */
export interface CriuOpts {
  images_dir_fd: number;
  pid?: number;
  leave_running?: boolean;
  ext_unix_sk?: boolean;
  tcp_established?: boolean;
  evasive_devices?: boolean;
  shell_job?: boolean;
  file_locks?: boolean;
  log_level?: number;
  log_file?: string;
  ps?: PageServerInfo;
  notify_scripts?: boolean;
  root?: string;
  parent_img?: string;
  track_mem?: boolean;
  auto_dedup?: boolean;
  work_dir_fd?: number;
  link_remap?: boolean;
  ext_mnt?: ExtMountMap[];
  manage_cgroups?: boolean;
  cg_root?: CgroupRoot[];
  rst_sibling?: boolean;
  inherit_fd?: InheritFd[];
  manage_cgroups_mode?: CgroupMode;
  external?: string[];
  empty_ns?: number;
  join_ns?: JoinNamespace[];
  freeze_cgroup?: string;
  tcp_skip_in_flight?: boolean;
  lazy_pages?: boolean;
  status_fd?: number;
  orphan_pts_master?: boolean;
  tcp_close?: boolean;
  leave_stopped?: boolean;
  network_lock?: NetworkLockMethod;
  tls_cacert?: string;
  tls_cert?: string;
  tls_key?: string;
  tls?: boolean;
  tls_no_cn_verify?: boolean;
}

export interface CriuFeatures {
  mem_track?: boolean;
  lazy_pages?: boolean;
  pidfd_store?: boolean;
}

export interface CriuReq {
  type: ReqType;
  opts?: CriuOpts;
  notify_success?: boolean;
  keep_open?: boolean;
  features?: CriuFeatures;
}

export interface CriuNotify {
  readonly script?: string;
  readonly pid?: number;
}

export interface CriuVersionMessage {
  readonly major_number: number;
  readonly minor_number: number;
  readonly gitid?: string;
  readonly sublevel?: number;
}

export interface CriuResp {
  readonly type: ReqType;
  readonly success: boolean;
  readonly dump?: { readonly restored?: boolean };
  readonly restore?: { readonly pid: number };
  readonly notify?: CriuNotify;
  readonly ps?: PageServerInfo;
  readonly cr_errno?: number;
  readonly features?: CriuFeatures;
  readonly cr_errmsg?: string;
  readonly version?: CriuVersionMessage;
  readonly status?: number;
}
