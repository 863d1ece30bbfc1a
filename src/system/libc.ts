/**
 * The few libc calls Node does not offer, through koffi (a prebuilt FFI; no compiler at install).
 * Node cannot make a SOCK_SEQPACKET socketpair (criu swrk needs one), raw pipes to hand to a
 * child at a chosen fd, a waitpid for a child it did not spawn (a restored init under
 * rst_sibling, or an orphan reparented to a subreaper), mount(2), mknod(2) of a device, flock(2),
 * process_vm_readv(2), the l*xattr(2) calls (layer extraction sets overlay and capability
 * attributes), or pidfd_getfd(2) and setsockopt(2) on a socket another process holds.
 *
 * Every wrapper throws SystemCallError with the errno; none is called at import time, and koffi
 * itself loads on the first call (it takes ~25 ms; `runtime state` makes none).
 */
import { createRequire } from 'node:module';
import type Koffi from 'koffi';
import { existsSync } from 'node:fs';
import { SystemCallError } from './errors.js';

let koffiModule: typeof Koffi | undefined;
function koffi(): typeof Koffi {
  koffiModule ??= createRequire(import.meta.url)('koffi') as typeof Koffi;
  return koffiModule;
}

interface LibcFunctions {
  socketpair(domain: number, type: number, protocol: number, sv: number[]): number;
  pipe2(fds: number[], flags: number): number;
  waitpid(pid: number, status: number[], options: number): number;
  prctl(option: number, a2: number, a3: number, a4: number, a5: number): number;
  flock(fd: number, operation: number): number;
  mount(source: string | null, target: string, fstype: string | null, flags: number, data: string | null): number;
  umount2(target: string, flags: number): number;
  setns(fd: number, nstype: number): number;
  socket(domain: number, type: number, protocol: number): number;
  shutdown(fd: number, how: number): number;
  process_vm_readv(pid: number, local: IoVec[], localCount: number, remote: IoVec[], remoteCount: number, flags: number): number;
  mkdirat(dirfd: number, path: string, mode: number): number;
  lsetxattr(path: string, name: string, value: Buffer, size: number, flags: number): number;
  lgetxattr(path: string, name: string, value: Buffer | null, size: number): number;
  llistxattr(path: string, list: Buffer | null, size: number): number;
  syscall(number: number, ...args: unknown[]): number;
  setsockopt(fd: number, level: number, name: number, value: Buffer, length: number): number;
}

interface IoVec {
  readonly base: bigint;
  readonly len: number;
}

let loaded: LibcFunctions | undefined;

function libc(): LibcFunctions {
  if (loaded) return loaded;
  const lib = koffi().load('libc.so.6');
  koffi().struct('iovec', { base: 'uint64_t', len: 'size_t' });
  loaded = {
    socketpair: lib.func('int socketpair(int domain, int type, int protocol, _Out_ int *sv)') as LibcFunctions['socketpair'],
    pipe2: lib.func('int pipe2(_Out_ int *fds, int flags)') as LibcFunctions['pipe2'],
    waitpid: lib.func('int waitpid(int pid, _Out_ int *status, int options)') as LibcFunctions['waitpid'],
    prctl: lib.func('int prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5)') as LibcFunctions['prctl'],
    flock: lib.func('int flock(int fd, int operation)') as LibcFunctions['flock'],
    mount: lib.func(
      'int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data)',
    ) as LibcFunctions['mount'],
    umount2: lib.func('int umount2(const char *target, int flags)') as LibcFunctions['umount2'],
    setns: lib.func('int setns(int fd, int nstype)') as LibcFunctions['setns'],
    socket: lib.func('int socket(int domain, int type, int protocol)') as LibcFunctions['socket'],
    shutdown: lib.func('int shutdown(int fd, int how)') as LibcFunctions['shutdown'],
    process_vm_readv: lib.func(
      'intptr_t process_vm_readv(int pid, const iovec *local, unsigned long liovcnt, const iovec *remote, unsigned long riovcnt, unsigned long flags)',
    ) as LibcFunctions['process_vm_readv'],
    mkdirat: lib.func('int mkdirat(int dirfd, const char *path, unsigned int mode)') as LibcFunctions['mkdirat'],
    lsetxattr: lib.func('int lsetxattr(const char *path, const char *name, const void *value, size_t size, int flags)') as LibcFunctions['lsetxattr'],
    lgetxattr: lib.func('intptr_t lgetxattr(const char *path, const char *name, void *value, size_t size)') as LibcFunctions['lgetxattr'],
    llistxattr: lib.func('intptr_t llistxattr(const char *path, void *list, size_t size)') as LibcFunctions['llistxattr'],
    syscall: lib.func('long syscall(long number, ...)') as LibcFunctions['syscall'],
    setsockopt: lib.func('int setsockopt(int fd, int level, int name, const void *value, unsigned int length)') as LibcFunctions['setsockopt'],
  };
  return loaded;
}

/**
 * Calls from newer glibc releases (mknod as a symbol 2.33, posix_spawn_file_actions_addclosefrom_np
 * 2.34; bookworm has 2.36), bound apart and only when first used: koffi fails on a missing
 * symbol, and that must not take every other call down with it on an older host.
 */
interface NewerLibcFunctions {
  mknod(path: string, mode: number, dev: bigint): number;
  posix_spawn(pid: number[], path: string, actions: Buffer, attributes: Buffer, argv: (string | null)[], envp: (string | null)[]): number;
  posix_spawn_file_actions_init(actions: Buffer): number;
  posix_spawn_file_actions_destroy(actions: Buffer): number;
  posix_spawn_file_actions_adddup2(actions: Buffer, fd: number, newfd: number): number;
  posix_spawn_file_actions_addclosefrom_np(actions: Buffer, from: number): number;
  posix_spawn_file_actions_addchdir_np(actions: Buffer, path: string): number;
  posix_spawnattr_init(attributes: Buffer): number;
  posix_spawnattr_destroy(attributes: Buffer): number;
  posix_spawnattr_setflags(attributes: Buffer, flags: number): number;
  posix_spawnattr_setsigdefault(attributes: Buffer, set: Buffer): number;
  posix_spawnattr_setsigmask(attributes: Buffer, set: Buffer): number;
  sigfillset(set: Buffer): number;
  sigemptyset(set: Buffer): number;
}

let newerLoaded: NewerLibcFunctions | undefined;

function newerLibc(): NewerLibcFunctions {
  if (newerLoaded) return newerLoaded;
  const lib = koffi().load('libc.so.6');
  newerLoaded = {
    mknod: lib.func('int mknod(const char *path, unsigned int mode, uint64_t dev)') as NewerLibcFunctions['mknod'],
    posix_spawn: lib.func(
      'int posix_spawn(_Out_ int *pid, const char *path, void *actions, void *attributes, const char **argv, const char **envp)',
    ) as NewerLibcFunctions['posix_spawn'],
    posix_spawn_file_actions_init: lib.func('int posix_spawn_file_actions_init(void *actions)') as NewerLibcFunctions['posix_spawn_file_actions_init'],
    posix_spawn_file_actions_destroy: lib.func(
      'int posix_spawn_file_actions_destroy(void *actions)',
    ) as NewerLibcFunctions['posix_spawn_file_actions_destroy'],
    posix_spawn_file_actions_adddup2: lib.func(
      'int posix_spawn_file_actions_adddup2(void *actions, int fd, int newfd)',
    ) as NewerLibcFunctions['posix_spawn_file_actions_adddup2'],
    posix_spawn_file_actions_addclosefrom_np: lib.func(
      'int posix_spawn_file_actions_addclosefrom_np(void *actions, int from)',
    ) as NewerLibcFunctions['posix_spawn_file_actions_addclosefrom_np'],
    posix_spawn_file_actions_addchdir_np: lib.func(
      'int posix_spawn_file_actions_addchdir_np(void *actions, const char *path)',
    ) as NewerLibcFunctions['posix_spawn_file_actions_addchdir_np'],
    posix_spawnattr_init: lib.func('int posix_spawnattr_init(void *attributes)') as NewerLibcFunctions['posix_spawnattr_init'],
    posix_spawnattr_destroy: lib.func('int posix_spawnattr_destroy(void *attributes)') as NewerLibcFunctions['posix_spawnattr_destroy'],
    posix_spawnattr_setflags: lib.func('int posix_spawnattr_setflags(void *attributes, short flags)') as NewerLibcFunctions['posix_spawnattr_setflags'],
    posix_spawnattr_setsigdefault: lib.func(
      'int posix_spawnattr_setsigdefault(void *attributes, const void *set)',
    ) as NewerLibcFunctions['posix_spawnattr_setsigdefault'],
    posix_spawnattr_setsigmask: lib.func(
      'int posix_spawnattr_setsigmask(void *attributes, const void *set)',
    ) as NewerLibcFunctions['posix_spawnattr_setsigmask'],
    sigfillset: lib.func('int sigfillset(void *set)') as NewerLibcFunctions['sigfillset'],
    sigemptyset: lib.func('int sigemptyset(void *set)') as NewerLibcFunctions['sigemptyset'],
  };
  return newerLoaded;
}

function check(result: number, syscall: string, detail: string): number {
  if (result < 0) throw new SystemCallError(syscall, koffi().errno(), detail);
  return result;
}

const AF_UNIX = 1;
const SOCK_SEQPACKET = 5;
export const O_CLOEXEC = 0o2000000;
const SOCK_CLOEXEC = O_CLOEXEC;

/** A connected AF_UNIX SOCK_SEQPACKET pair, both ends close-on-exec. */
export function seqpacketPair(): [number, number] {
  const sv = [-1, -1];
  check(libc().socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 'socketpair', 'AF_UNIX, SOCK_SEQPACKET');
  return [sv[0]!, sv[1]!];
}

const SHUT_RDWR = 2;

/**
 * shutdown(fd, SHUT_RDWR): a read blocked on the socket (in another thread) returns at once with
 * end of file, whoever else still holds the other end.
 */
export function shutdownSocket(fd: number): void {
  check(libc().shutdown(fd, SHUT_RDWR), 'shutdown', String(fd));
}

/** A pipe as [readEnd, writeEnd], both close-on-exec (a child gets an end only when handed it). */
export function pipe(): [number, number] {
  const fds = [-1, -1];
  check(libc().pipe2(fds, O_CLOEXEC), 'pipe2', 'O_CLOEXEC');
  return [fds[0]!, fds[1]!];
}

export const WNOHANG = 1;
export const WALL = 0x40000000;

/** How a reaped process ended. */
export type WaitStatus = { readonly kind: 'exited'; readonly code: number } | { readonly kind: 'signaled'; readonly signal: number };

export function decodeWaitStatus(status: number): WaitStatus {
  const signal = status & 0x7f;
  return signal === 0 ? { kind: 'exited', code: (status >> 8) & 0xff } : { kind: 'signaled', signal };
}

/**
 * waitpid(pid, WNOHANG|__WALL): the status when pid has ended and is now reaped, undefined while
 * it runs. ECHILD (not our child, or already reaped) is thrown for the caller to decide.
 */
export function reapIfExited(pid: number): WaitStatus | undefined {
  const status = [0];
  const result = check(libc().waitpid(pid, status, WNOHANG | WALL), 'waitpid', String(pid));
  return result === 0 ? undefined : decodeWaitStatus(status[0]!);
}

const PR_SET_CHILD_SUBREAPER = 36;

/** Orphans among our descendants are reparented to us instead of to pid 1, so we can reap them. */
export function becomeChildSubreaper(): void {
  check(libc().prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 'prctl', 'PR_SET_CHILD_SUBREAPER');
}

const LOCK_SH = 1;
const LOCK_EX = 2;
const LOCK_NB = 4;
const LOCK_UN = 8;
const EWOULDBLOCK = 11;

/** flock(LOCK_EX|LOCK_NB): true when taken, false when another holder has it. */
export function tryLockExclusive(fd: number): boolean {
  return tryFlock(fd, LOCK_EX, 'LOCK_EX');
}

/** flock(LOCK_SH|LOCK_NB): true when taken, false while an exclusive holder has it. */
export function tryLockShared(fd: number): boolean {
  return tryFlock(fd, LOCK_SH, 'LOCK_SH');
}

function tryFlock(fd: number, operation: number, name: string): boolean {
  const result = libc().flock(fd, operation | LOCK_NB);
  if (result === 0) return true;
  const errno = koffi().errno();
  if (errno === EWOULDBLOCK) return false;
  throw new SystemCallError('flock', errno, `fd ${fd}, ${name}`);
}

export function unlock(fd: number): void {
  check(libc().flock(fd, LOCK_UN), 'flock', `fd ${fd}, LOCK_UN`);
}

export const MS_RDONLY = 0x1;
export const MS_NOSUID = 0x2;
export const MS_NODEV = 0x4;
export const MS_NOEXEC = 0x8;
export const MS_REMOUNT = 0x20;
export const MS_BIND = 0x1000;
export const MS_REC = 0x4000;
export const MS_PRIVATE = 0x40000;
export const MS_SLAVE = 0x80000;
export const MNT_DETACH = 0x2;
export const MS_NOATIME = 0x400;
export const MS_NODIRATIME = 0x800;
export const MS_RELATIME = 0x200000;
export const MS_STRICTATIME = 0x1000000;

export function mount(source: string | null, target: string, fstype: string | null, flags: number, data: string | null): void {
  check(libc().mount(source, target, fstype, flags, data), 'mount', `${source ?? 'none'} on ${target}${fstype ? ` type ${fstype}` : ''}`);
}

export function umount(target: string, flags = 0): void {
  check(libc().umount2(target, flags), 'umount2', target);
}

/** openat2(2), on x86_64 and aarch64 alike; glibc has no wrapper for it. */
const SYS_OPENAT2 = 437;
const RESOLVE_NO_MAGICLINKS = 0x02;
const RESOLVE_IN_ROOT = 0x10;
export const O_PATH = 0o10000000;
export const O_DIRECTORY = 0o200000;
export const O_CREAT = 0o100;
export const O_EXCL = 0o200;
export const O_WRONLY = 0o1;

/**
 * openat2(2) of path below the directory rootFd with RESOLVE_IN_ROOT: the kernel resolves every
 * component as if rootFd were "/" (symbolic links and ".." never leave it; no /proc magic
 * links), in one call, so nothing can be swapped between a check and its use. Returns the fd.
 */
export function openInRoot(rootFd: number, path: string, flags: number, mode = 0): number {
  const how = Buffer.alloc(24);
  how.writeBigUInt64LE(BigInt(flags | O_CLOEXEC), 0);
  how.writeBigUInt64LE(BigInt(mode), 8);
  how.writeBigUInt64LE(BigInt(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS), 16);
  const fd = Number(libc().syscall(SYS_OPENAT2, 'int', rootFd, 'str', path, 'void *', how, 'size_t', how.length));
  return check(fd, 'openat2', path);
}

/** pidfd_open(2) and pidfd_getfd(2), the same numbers on every architecture (called through syscall(2) here, as openat2). */
const SYS_PIDFD_OPEN = 434;
const SYS_PIDFD_GETFD = 438;

/** A pidfd of process pid (pidfd_open(2)), close-on-exec: it names that process even once its pid is reused. The caller closes it. */
export function pidfdOpen(pid: number): number {
  return check(Number(libc().syscall(SYS_PIDFD_OPEN, 'int', pid, 'unsigned int', 0)), 'pidfd_open', String(pid));
}

/**
 * A copy, in this process and close-on-exec, of the file descriptor fd of the process pidfd
 * names (pidfd_getfd(2)): the same open file, so what is set on a socket through it holds for its
 * owner. Needs the right to ptrace that process (a descendant of ours, as root). The caller closes it.
 */
export function pidfdGetFd(pidfd: number, fd: number): number {
  return check(Number(libc().syscall(SYS_PIDFD_GETFD, 'int', pidfd, 'int', fd, 'unsigned int', 0)), 'pidfd_getfd', `fd ${fd}`);
}

export const SOL_SOCKET = 1;
export const SO_KEEPALIVE = 9;
export const IPPROTO_TCP = 6;
export const TCP_KEEPIDLE = 4;
export const TCP_KEEPINTVL = 5;
export const TCP_KEEPCNT = 6;

/** setsockopt(2) of an int option. */
export function setSocketOption(fd: number, level: number, name: number, value: number): void {
  // An Int32Array's bytes are in this machine's own order, as the kernel reads an int.
  const buffer = Buffer.from(new Int32Array([value]).buffer);
  check(libc().setsockopt(fd, level, name, buffer, 4), 'setsockopt', `fd ${fd}, level ${level}, option ${name} = ${value}`);
}

/** mkdirat(2): name alone, in the directory dirFd; a name that exists is EEXIST, whatever it is. */
export function mkdirAt(dirFd: number, name: string, mode: number): void {
  check(libc().mkdirat(dirFd, name, mode), 'mkdirat', name);
}

const ENODATA = 61;
const ERANGE = 34;

/** lsetxattr(2): sets an extended attribute of path itself (a symbolic link is not followed). */
export function setXattr(path: string, name: string, value: Buffer): void {
  check(libc().lsetxattr(path, name, value, value.length, 0), 'lsetxattr', `${path}, ${name}`);
}

/** lgetxattr(2): the attribute's value, or undefined when path has no such attribute. */
export function getXattr(path: string, name: string): Buffer | undefined {
  // The size is asked first; ERANGE means the value grew in between: ask again.
  for (;;) {
    const size = libc().lgetxattr(path, name, null, 0);
    if (size < 0) {
      const errno = koffi().errno();
      if (errno === ENODATA) return undefined;
      throw new SystemCallError('lgetxattr', errno, `${path}, ${name}`);
    }
    const value = Buffer.alloc(size);
    const got = size === 0 ? 0 : libc().lgetxattr(path, name, value, size);
    if (got >= 0) return value.subarray(0, got);
    const errno = koffi().errno();
    if (errno !== ERANGE) throw new SystemCallError('lgetxattr', errno, `${path}, ${name}`);
  }
}

/** llistxattr(2): the names of path's extended attributes (those this process may see). */
export function listXattrs(path: string): string[] {
  for (;;) {
    const size = check(libc().llistxattr(path, null, 0), 'llistxattr', path);
    if (size === 0) return [];
    const list = Buffer.alloc(size);
    const got = libc().llistxattr(path, list, size);
    const names = got >= 0 ? list.toString('utf8', 0, got).split('\0') : undefined;
    if (names) return names.filter((n) => n !== '');
    const errno = koffi().errno();
    if (errno !== ERANGE) throw new SystemCallError('llistxattr', errno, path);
  }
}

const POSIX_SPAWN_SETPGROUP = 0x02;
const POSIX_SPAWN_SETSIGDEF = 0x04;
const POSIX_SPAWN_SETSIGMASK = 0x08;
/** glibc's posix_spawn_file_actions_t is 80 bytes, posix_spawnattr_t 336, sigset_t 128: room to spare. */
const SPAWN_STRUCT_BYTES = 512;

/** posix_spawn's own result: 0, or an errno (it does not set errno). */
function spawnCheck(result: number, call: string, detail: string): void {
  if (result !== 0) throw new SystemCallError(call, result, detail);
}

/**
 * posix_spawn(3) of path with argv and envp: the child's fd i is a dup of sources[i], every fd
 * above them is closed, every signal is reset to its default and none is blocked; in a process
 * group of its own with newProcessGroup. Returns the pid.
 */
export function posixSpawn(
  path: string,
  argv: readonly string[],
  envp: readonly string[],
  sources: readonly number[],
  options: { readonly cwd?: string | undefined; readonly newProcessGroup?: boolean | undefined } = {},
): number {
  const { cwd } = options;
  const c = newerLibc();
  const actions = Buffer.alloc(SPAWN_STRUCT_BYTES);
  const attributes = Buffer.alloc(SPAWN_STRUCT_BYTES);
  const all = Buffer.alloc(SPAWN_STRUCT_BYTES);
  const none = Buffer.alloc(SPAWN_STRUCT_BYTES);
  spawnCheck(c.posix_spawn_file_actions_init(actions), 'posix_spawn_file_actions_init', path);
  try {
    spawnCheck(c.posix_spawnattr_init(attributes), 'posix_spawnattr_init', path);
    try {
      // Each source is first moved above every number in play, so no dup2 overwrites a source
      // another target still needs; dup2 also clears close-on-exec on the target.
      const high = Math.max(sources.length, ...sources) + 1;
      sources.forEach((fd, index) => spawnCheck(c.posix_spawn_file_actions_adddup2(actions, fd, high + index), 'posix_spawn_file_actions_adddup2', path));
      sources.forEach((_fd, index) =>
        spawnCheck(c.posix_spawn_file_actions_adddup2(actions, high + index, index), 'posix_spawn_file_actions_adddup2', path),
      );
      spawnCheck(c.posix_spawn_file_actions_addclosefrom_np(actions, sources.length), 'posix_spawn_file_actions_addclosefrom_np', path);
      if (cwd !== undefined) spawnCheck(c.posix_spawn_file_actions_addchdir_np(actions, cwd), 'posix_spawn_file_actions_addchdir_np', cwd);
      c.sigfillset(all);
      c.sigemptyset(none);
      spawnCheck(c.posix_spawnattr_setsigdefault(attributes, all), 'posix_spawnattr_setsigdefault', path);
      spawnCheck(c.posix_spawnattr_setsigmask(attributes, none), 'posix_spawnattr_setsigmask', path);
      // The attributes' process group is 0 from init: with SETPGROUP, the child's own pid.
      const flags = POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | (options.newProcessGroup ? POSIX_SPAWN_SETPGROUP : 0);
      spawnCheck(c.posix_spawnattr_setflags(attributes, flags), 'posix_spawnattr_setflags', path);
      const pid = [0];
      spawnCheck(c.posix_spawn(pid, path, actions, attributes, [...argv, null], [...envp, null]), 'posix_spawn', path);
      return pid[0]!;
    } finally {
      c.posix_spawnattr_destroy(attributes);
    }
  } finally {
    c.posix_spawn_file_actions_destroy(actions);
  }
}

/** mknod(2); `dev` as stat reports it (st_rdev), for a character or block device. */
export function mknod(path: string, mode: number, dev: bigint): void {
  check(newerLibc().mknod(path, mode, dev), 'mknod', path);
}

const CLONE_NEWNET = 0x40000000;
const SOCK_STREAM = 1;
export const AF_INET = 2;
export const AF_INET6 = 10;

/**
 * A TCP socket (not yet connected) that belongs to another network namespace: this thread enters
 * the namespace (netnsFd, an open /proc/<pid>/ns/net), creates the socket and returns to
 * hostNetnsFd before anything else runs. A socket stays in the namespace it was created in, so
 * Node can then connect it as usual. setns(CLONE_NEWNET) changes only the calling thread, and
 * no JavaScript runs between the two calls.
 */
export function tcpSocketInNetns(netnsFd: number, hostNetnsFd: number, family: number = AF_INET): number {
  check(libc().setns(netnsFd, CLONE_NEWNET), 'setns', `fd ${netnsFd}, CLONE_NEWNET`);
  let fd: number;
  let errno = 0;
  try {
    fd = libc().socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) errno = koffi().errno();
  } finally {
    check(libc().setns(hostNetnsFd, CLONE_NEWNET), 'setns', `fd ${hostNetnsFd} (back), CLONE_NEWNET`);
  }
  if (fd < 0) throw new SystemCallError('socket', errno, family === AF_INET6 ? 'AF_INET6, SOCK_STREAM' : 'AF_INET, SOCK_STREAM');
  return fd;
}

const SCRATCH_BYTES = 1 << 20;
const PAGE_BYTES = 4096;

/**
 * Reads [start, end) of pid's memory into a scratch buffer that nothing looks at, to make its
 * pages fault in: a page registered with userfaultfd is then copied in by whoever serves it, as if
 * the task had touched it (process_vm_readv(2) faults like the task would; reading /proc/PID/mem
 * does not wait for userfaultfd). A page that cannot be read (unmapped meanwhile) is skipped.
 * Returns false when pid is gone.
 *
 * The read runs in a thread of the pool (koffi's async call), so that a page whose server does
 * not answer blocks that thread and not the event loop: a monitor must go on answering while
 * one of its instances waits for its lazy-pages daemon. The buffer is the call's own, freed once
 * the call has returned.
 */
export async function faultInMemoryAsync(pid: number, start: number, end: number): Promise<boolean> {
  const size = Math.min(SCRATCH_BYTES, end - start);
  if (size <= 0) return true;
  const pointer = koffi().alloc('uint8_t', size);
  const address = koffi().address(pointer);
  const readv = libc().process_vm_readv as unknown as { async: (...args: unknown[]) => void };
  for (let at = start; at < end;) {
    const length = Math.min(size, end - at);
    const read = await new Promise<number>((resolve, reject) =>
      readv.async(pid, [{ base: address, len: length }], 1, [{ base: BigInt(at), len: length }], 1, 0, (error: unknown, result: number) =>
        error ? reject(error instanceof Error ? error : new Error(String(error))) : resolve(result),
      ),
    );
    // errno is the pool thread's, not ours: a task that is gone is told by /proc.
    if (read < 0 && !existsSync(`/proc/${pid}`)) {
      koffi().free(pointer);
      return false;
    }
    at += read > 0 ? read : PAGE_BYTES;
  }
  koffi().free(pointer);
  return true;
}
