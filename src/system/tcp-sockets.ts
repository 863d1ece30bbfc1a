/**
 * This network namespace's TCP sockets as the kernel lists them in /proc/net/tcp and /proc/net/tcp6
 * (what `ss -t -a` shows), read in one place: a migration watches its page server's port and its
 * link through them. The columns are the kernel's (get_tcp4_sock in net/ipv4/tcp_ipv4.c):
 *
 *   sl  local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...
 *
 * Addresses are the raw 32-bit words in host order (little-endian on every machine this runs on),
 * ports, the timer and the retransmit count hex; the `timeout` column (the kernel's count of
 * unanswered keepalive or zero-window probes, icsk_probes_out) and the inode decimal.
 *
 * keepAlive turns TCP keepalive on for a socket another process holds (CRIU's, which sets none):
 * an idle connection then sends probes, so that a peer gone silent shows here as unanswered
 * probes, as one that is sent data shows as retransmissions.
 */
import { closeSync, fstatSync } from 'node:fs';
import { readdir, readFile, readlink } from 'node:fs/promises';
import { SystemCallError } from './errors.js';
import { processTree, threadChildren } from './processes.js';
import { IPPROTO_TCP, pidfdGetFd, pidfdOpen, setSocketOption, SO_KEEPALIVE, SOL_SOCKET, TCP_KEEPCNT, TCP_KEEPIDLE, TCP_KEEPINTVL } from './libc.js';

/** The kernel's TCP states (include/net/tcp_states.h), by their code in the `st` column less one. */
const states = [
  'ESTABLISHED',
  'SYN_SENT',
  'SYN_RECV',
  'FIN_WAIT1',
  'FIN_WAIT2',
  'TIME_WAIT',
  'CLOSE',
  'CLOSE_WAIT',
  'LAST_ACK',
  'LISTEN',
  'CLOSING',
] as const;

export type TcpState = (typeof states)[number];

/** The socket's pending timer (`tr`), by its code: a retransmission (or tail loss probe), keepalive, TIME_WAIT's end, a zero-window probe. */
const timers = ['none', 'retransmit', 'keepalive', 'time-wait', 'zero-window-probe'] as const;

export type TcpTimer = (typeof timers)[number];

export interface TcpSocket {
  /** IPv4 dotted, IPv6 compressed (RFC 5952), an IPv4-mapped one as ::ffff:a.b.c.d. */
  readonly local: { readonly address: string; readonly port: number };
  /** 0.0.0.0 or :: port 0 for a listening socket. */
  readonly remote: { readonly address: string; readonly port: number };
  readonly state: TcpState;
  /** Retransmission timeouts in a row without an answer (`retrnsmt`): above zero, the peer has gone silent. */
  readonly retransmits: number;
  /** Keepalive or zero-window probes sent without an answer (`timeout`): above zero, the peer has gone silent (any ACK resets it). */
  readonly unansweredProbes: number;
  /** The timer pending; `none` for a code this does not know. */
  readonly timer: TcpTimer;
  /** The socket's inode (a process's fd links to `socket:[inode]`); 0 for one no process holds (TIME_WAIT, SYN_RECV). */
  readonly inode: number;
  /** Which table it came from: tcp6 also lists IPv4 connections of dual-stack sockets, as IPv4-mapped addresses. */
  readonly family: 4 | 6;
}

/** The sockets of /proc/net/tcp (family 4) or /proc/net/tcp6 (family 6); the header, and a line this does not know, are passed over. */
export function parseTcpTable(text: string, family: 4 | 6): TcpSocket[] {
  const address = family === 4 ? '[0-9A-F]{8}' : '[0-9A-F]{32}';
  // sl, local_address, rem_address, st, tx_queue:rx_queue (not kept), tr (tm->when not kept), retrnsmt, uid, timeout, inode.
  const row = new RegExp(
    `^\\s*\\d+:\\s+(?<local>${address}):(?<localPort>[0-9A-F]{4})\\s+(?<remote>${address}):(?<remotePort>[0-9A-F]{4})\\s+(?<st>[0-9A-F]{2})` +
      `\\s+\\S+\\s+(?<tr>[0-9A-F]{2}):\\S+\\s+(?<retransmits>[0-9A-F]+)\\s+\\d+\\s+(?<probes>-?\\d+)\\s+(?<inode>\\d+)`,
    'i',
  );
  const sockets: TcpSocket[] = [];
  for (const line of text.split('\n')) {
    const fields = row.exec(line)?.groups;
    const state = fields && states[parseInt(fields.st, 16) - 1];
    if (!fields || !state) continue;
    sockets.push({
      local: { address: formatAddress(fields.local), port: parseInt(fields.localPort, 16) },
      remote: { address: formatAddress(fields.remote), port: parseInt(fields.remotePort, 16) },
      state,
      retransmits: parseInt(fields.retransmits, 16),
      unansweredProbes: Math.max(0, Number(fields.probes)),
      timer: timers[parseInt(fields.tr, 16)] ?? 'none',
      inode: Number(fields.inode),
      family,
    });
  }
  return sockets;
}

/** The TCP sockets of this network namespace, IPv4 then IPv6; a table that is not there (no IPv6) lists none. */
export async function tcpSockets(): Promise<TcpSocket[]> {
  const [tcp, tcp6] = await Promise.all(['/proc/net/tcp', '/proc/net/tcp6'].map(readTable));
  return [...parseTcpTable(tcp, 4), ...parseTcpTable(tcp6, 6)];
}

/** Whether the peer of this connection has gone silent: what this host sent it, data or probes, goes unanswered. */
export function silent(socket: TcpSocket): boolean {
  return socket.retransmits > 0 || socket.unansweredProbes > 0;
}

/**
 * Turns keepalive on for the TCP socket with this inode that process pid, or a descendant of it,
 * holds (CRIU forks for a pre-dump): after intervalS seconds with nothing received, a probe every
 * intervalS seconds; the kernel gives up by itself after 127 unanswered ones. Through a copy of
 * the holder's descriptor (pidfd_getfd), checked to be that socket (a descriptor number may be
 * reused between reading it and copying it), closed at once. False when no such process holds
 * it (it closed it, or ended).
 */
export async function keepAlive(pid: number, inode: number, intervalS = 1): Promise<boolean> {
  for (const holder of await processTree(pid, (parent) => [...(threadChildren(parent) ?? [])])) {
    let pidfd: number;
    try {
      pidfd = pidfdOpen(holder);
    } catch {
      continue;
    }
    try {
      const dir = `/proc/${holder}/fd`;
      for (const name of await readdir(dir).catch(() => [])) {
        if ((await readlink(`${dir}/${name}`).catch(() => '')) !== `socket:[${inode}]`) continue;
        let fd: number;
        try {
          fd = pidfdGetFd(pidfd, Number(name));
        } catch (error) {
          // Gone meanwhile, or the descriptor closed: not held there.
          if (error instanceof SystemCallError && (error.errno === ESRCH || error.errno === EBADF)) continue;
          throw error;
        }
        try {
          if (fstatSync(fd).ino !== inode) continue;
          setSocketOption(fd, IPPROTO_TCP, TCP_KEEPIDLE, intervalS);
          setSocketOption(fd, IPPROTO_TCP, TCP_KEEPINTVL, intervalS);
          setSocketOption(fd, IPPROTO_TCP, TCP_KEEPCNT, 127);
          setSocketOption(fd, SOL_SOCKET, SO_KEEPALIVE, 1);
          return true;
        } finally {
          closeSync(fd);
        }
      }
    } finally {
      closeSync(pidfd);
    }
  }
  return false;
}

const ESRCH = 3;
const EBADF = 9;

async function readTable(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw error;
  }
}

/** Hex words in little-endian order, as text: 8 digits an IPv4 address, 32 an IPv6 one. */
function formatAddress(hex: string): string {
  const bytes = Buffer.from(hex, 'hex').swap32();
  if (bytes.length === 4) return bytes.join('.');
  if (bytes.subarray(0, 10).every((byte) => byte === 0) && bytes.readUInt16BE(10) === 0xffff) return `::ffff:${bytes.subarray(12).join('.')}`;
  const groups = Array.from({ length: 8 }, (_, i) => bytes.readUInt16BE(2 * i));
  // The longest run of two or more zero groups becomes `::`, the first of equal runs (RFC 5952 4.2).
  let run = { start: 0, length: 0 };
  for (let start = 0; start < 8; start++) {
    let length = 0;
    while (start + length < 8 && groups[start + length] === 0) length++;
    if (length > run.length) run = { start, length };
  }
  const text = groups.map((group) => group.toString(16));
  if (run.length < 2) return text.join(':');
  return `${text.slice(0, run.start).join(':')}::${text.slice(run.start + run.length).join(':')}`;
}
