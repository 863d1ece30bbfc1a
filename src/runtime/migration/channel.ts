/**
 * The command channel between a live migration's source and destination: one TLS connection,
 * both ends authenticated, carrying the protocol's messages (protocol.ts) and the data streams
 * (images, rootfs) between them.
 *
 * Identity is "holds a certificate signed by the CA both hosts were given" (--tls-ca): the server
 * requires a client certificate, the client checks the server's, and no host name is checked
 * (`checkServerIdentity` accepts any name), because hosts are often reached by an address that is
 * not in their certificate, and a cluster's private CA already says who may migrate to whom. A
 * peer with another CA's certificate, or none, is refused on both sides; the listener reports it
 * and goes on.
 *
 * Frames: a 1-byte kind, a 4-byte big-endian length, then the payload (at most 1 MiB):
 *   'M'  a message, JSON
 *   'D'  a chunk of a data stream
 *   'E'  the end of a data stream
 *   'X'  the sender aborts its data stream; the payload is its error, as an `error` message
 *   'R'  (empty, server to client, once) the server has accepted the client's certificate.
 * 'R' exists because with TLS 1.3 the client finishes its handshake before the server has checked
 * the client's certificate, and a Node server that refuses one closes the connection without a TLS
 * alert: without it, a refused client would only learn of it as an unexplained close later on.
 *
 * The protocol alternates strictly (one side speaks, the other answers), so there is one reader at a
 * time and no multiplexing. The one exception is a receiver that fails in the middle of a data
 * stream: it sends its `error` at once, and the sender, which watches for anything arriving while
 * it streams, stops and raises it rather than stream the rest into a peer that stopped reading.
 */
import { readFile } from 'node:fs/promises';
import type { AddressInfo, Socket } from 'node:net';
import tls from 'node:tls';
import { RuntimeError } from '../errors.js';
import {
  ChannelClosedError,
  ChannelProtocolError,
  checkMessage,
  errorFrom,
  errorMessage,
  expect,
  MigrationAbortedError,
  MigrationPeerError,
  parseMessage,
  type MigrationMessage,
} from './protocol.js';

/** PEM files: this host's certificate and key, and the CA that signs both hosts' certificates. */
export interface TlsFiles {
  /** --tls-cert: this host's certificate (used as server and as client). */
  readonly cert: string;
  /** --tls-key: its private key. */
  readonly key: string;
  /** --tls-ca: the CA certificate a peer's certificate must be signed by. */
  readonly ca: string;
}

/** The largest payload of one frame; a data stream is cut into frames of at most this. */
export const MAX_FRAME_BYTES = 1024 * 1024;
const HEADER_BYTES = 5;
/** Received bytes held before the socket is paused: above one whole frame, so a paused reader always has one to take. */
const READ_HIGH_WATER = 4 * MAX_FRAME_BYTES;
const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;
/** How long close() waits for the peer to close its side before it cuts the connection. */
const CLOSE_GRACE_MS = 5_000;

export type FrameKind = 'M' | 'D' | 'E' | 'X' | 'R';
const frameKinds: ReadonlySet<string> = new Set<FrameKind>(['M', 'D', 'E', 'X', 'R']);
const frameNames: Readonly<Record<FrameKind, string>> = {
  M: 'message',
  D: 'data',
  E: 'end-of-stream',
  X: 'stream-abort',
  R: 'ready',
};

interface Frame {
  readonly kind: FrameKind;
  readonly payload: Buffer;
}

/** A frame as it goes on the wire (exported for tests that play a peer by hand). */
export function encodeFrame(kind: string, payload: Buffer = Buffer.alloc(0)): Buffer {
  const header = Buffer.alloc(HEADER_BYTES);
  header.write(kind, 0, 1, 'latin1');
  header.writeUInt32BE(payload.length, 1);
  return Buffer.concat([header, payload]);
}

/** A TLS file that cannot be read, is not PEM, or does not go with the others. */
export class TlsFilesError extends RuntimeError {
  readonly code = 'MIGRATION_TLS_FILES' as const;
  constructor(
    /** The file at fault (or the files, when they do not go together). */
    readonly file: string,
    detail: string,
    cause?: unknown,
  ) {
    super(detail, {
      cause,
      hint: "pass PEM files: --tls-cert (this host's certificate), --tls-key (its key) and --tls-ca (the CA that signed both hosts' certificates)",
    });
  }
}

/** The TLS handshake failed: the peer's certificate is not signed by our CA, or the peer refused ours. */
export class PeerRefusedError extends RuntimeError {
  readonly code = 'MIGRATION_PEER_REFUSED' as const;
  constructor(
    /** What TLS said, in words. */
    readonly reason: string,
    readonly remote: string,
    cause?: unknown,
  ) {
    super(`the migration peer ${remote} and this host did not accept each other: ${reason}`, {
      cause,
      hint: 'both hosts need a certificate (--tls-cert, --tls-key) signed by the one CA both pass as --tls-ca; a certificate of another CA, or none, is refused',
    });
  }
}

/** No connection to the peer at all (nothing listens, no route, no answer in time). */
export class MigrationConnectError extends RuntimeError {
  readonly code = 'MIGRATION_CONNECT' as const;
  constructor(remote: string, detail: string, cause?: unknown) {
    super(`cannot reach the migration peer ${remote}: ${detail}`, {
      cause,
      hint: 'start `runtime migrate receive` on the destination first, and check the address, the port and the firewall between the hosts',
    });
  }
}

/** The listener could not listen (the port is taken, the address is not this host's). */
export class MigrationListenError extends RuntimeError {
  readonly code = 'MIGRATION_LISTEN' as const;
  constructor(at: string, cause: unknown) {
    super(`cannot listen for migrations on ${at}: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
      hint: 'choose another port, or an address of this host',
    });
  }
}

/** The peer said nothing for longer than the caller would wait; the channel is closed. */
export class ChannelTimeoutError extends RuntimeError {
  readonly code = 'MIGRATION_TIMEOUT' as const;
  constructor(awaited: string, timeoutMs: number, remote: string) {
    super(`the migration peer ${remote} sent nothing for ${timeoutMs / 1000} s while this host waited for ${awaited}`, {
      hint: "the other host is stuck or gone: read its runtime's output",
    });
  }
}

interface LoadedTls {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly ca: Buffer;
}

const pemBlocks: Readonly<Record<keyof TlsFiles, { readonly flag: string; readonly pattern: RegExp; readonly what: string }>> = {
  cert: { flag: '--tls-cert', pattern: /-----BEGIN CERTIFICATE-----/, what: 'a PEM certificate' },
  key: { flag: '--tls-key', pattern: /-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----/, what: 'a PEM private key' },
  ca: { flag: '--tls-ca', pattern: /-----BEGIN CERTIFICATE-----/, what: 'a PEM CA certificate' },
};

/** Reads the three files, each checked to be the PEM it should be, then all three checked together by OpenSSL. */
export async function loadTlsFiles(files: TlsFiles): Promise<LoadedTls> {
  const read = async (which: keyof TlsFiles): Promise<Buffer> => {
    const file = files[which];
    const { flag, pattern, what } = pemBlocks[which];
    let content: Buffer;
    try {
      content = await readFile(file);
    } catch (error) {
      throw new TlsFilesError(file, `cannot read ${file} (${flag}): ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, error);
    }
    if (!pattern.test(content.toString('latin1'))) throw new TlsFilesError(file, `${file} (${flag}) is not ${what}`);
    return content;
  };
  const [cert, key, ca] = await Promise.all([read('cert'), read('key'), read('ca')]);
  try {
    // Finds a key that is not the certificate's, or a PEM block OpenSSL cannot parse, before any peer is involved.
    tls.createSecureContext({ cert, key, ca });
  } catch (error) {
    const reason = (error as { reason?: string }).reason ?? (error as Error).message;
    throw new TlsFilesError(
      `${files.cert}, ${files.key}, ${files.ca}`,
      `the TLS files ${files.cert}, ${files.key} and ${files.ca} do not go together: ${reason}`,
      error,
    );
  }
  return { cert, key, ca };
}

const networkErrors = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL', 'EHOSTDOWN']);

/** A TLS failure in words: whose certificate was refused, and what OpenSSL said. */
function refusalReason(error: unknown, ca: string): string {
  const { code, reason, message } = error as { code?: string; reason?: string; message?: string };
  const said = reason ?? message ?? String(error);
  if (code?.startsWith('ERR_SSL_') && code.includes('ALERT')) return `the peer refused this host's certificate (${said})`;
  if (code === 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE') return 'the peer sent no certificate';
  // OpenSSL's certificate verification codes (UNABLE_TO_GET_ISSUER_CERT, SELF_SIGNED_CERT_IN_CHAIN, CERT_HAS_EXPIRED...).
  if (code && /^[A-Z][A-Z0-9_]+$/.test(code) && !code.startsWith('ERR_') && !/^E[A-Z]+$/.test(code)) {
    return `this host does not accept the peer's certificate, which must be signed by the CA in ${ca} (${said}, ${code})`;
  }
  return said;
}

/** Received bytes cut into frames; the socket is paused while too many wait, which is what makes the sender wait. */
class FrameReader {
  private readonly chunks: Buffer[] = [];
  private buffered = 0;
  private listeners = new Set<() => void>();
  /** The socket ended; `error` is why, when it failed. */
  ended = false;
  error: Error | undefined;

  constructor(private readonly socket: tls.TLSSocket) {
    socket.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
      if (this.buffered > READ_HIGH_WATER) socket.pause();
      this.notify();
    });
    const end = (error?: Error) => {
      this.error ??= error;
      this.ended = true;
      this.notify();
    };
    socket.on('end', () => end());
    socket.on('close', () => end());
    socket.on('error', end);
  }

  /** Something arrived that a reader has not taken yet (or the connection ended). */
  get pending(): boolean {
    return this.buffered > 0 || this.ended;
  }

  /** Calls listener at the next data or end; returns its removal. */
  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves true at the next data or end, false after timeoutMs. */
  wait(timeoutMs: number | undefined): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = timeoutMs === undefined ? undefined : setTimeout(() => (unsubscribe(), resolve(false)), Math.max(0, timeoutMs));
      const unsubscribe = this.subscribe(() => {
        clearTimeout(timer);
        unsubscribe();
        resolve(true);
      });
    });
  }

  /** The next whole frame, undefined while it is still incomplete; a header no peer of ours writes is a ChannelProtocolError. */
  take(): Frame | undefined {
    if (this.buffered < HEADER_BYTES) return undefined;
    const header = this.peek(HEADER_BYTES);
    const kind = String.fromCharCode(header[0]!);
    if (!frameKinds.has(kind)) {
      throw new ChannelProtocolError(
        `a frame of unknown kind 0x${header[0]!.toString(16).padStart(2, '0')} (the peer is not this runtime's migration channel)`,
      );
    }
    const length = header.readUInt32BE(1);
    // Refused on the header alone, before a byte of the payload is held.
    if (length > MAX_FRAME_BYTES)
      throw new ChannelProtocolError(`a ${frameNames[kind as FrameKind]} frame of ${length} bytes, above the limit of ${MAX_FRAME_BYTES}`);
    if (this.buffered < HEADER_BYTES + length) return undefined;
    this.consume(HEADER_BYTES);
    const payload = this.consume(length);
    if (this.buffered <= READ_HIGH_WATER && this.socket.isPaused()) this.socket.resume();
    return { kind: kind as FrameKind, payload };
  }

  private notify(): void {
    for (const listener of [...this.listeners]) listener();
  }

  private peek(bytes: number): Buffer {
    if (this.chunks[0]!.length >= bytes) return this.chunks[0]!.subarray(0, bytes);
    return Buffer.concat(this.chunks).subarray(0, bytes);
  }

  /** The first `bytes` buffered bytes, removed; copies only when they span chunks. */
  private consume(bytes: number): Buffer {
    this.buffered -= bytes;
    if (bytes === 0) return Buffer.alloc(0);
    const first = this.chunks[0]!;
    if (first.length === bytes) return this.chunks.shift()!;
    if (first.length > bytes) {
      this.chunks[0] = first.subarray(bytes);
      return first.subarray(0, bytes);
    }
    const out = Buffer.allocUnsafe(bytes);
    let at = 0;
    while (at < bytes) {
      const chunk = this.chunks[0]!;
      const used = Math.min(chunk.length, bytes - at);
      chunk.copy(out, at, 0, used);
      at += used;
      if (used === chunk.length) this.chunks.shift();
      else this.chunks[0] = chunk.subarray(used);
    }
    return out;
  }
}

export interface ReceiveOptions {
  /** Give up (and close the channel) after this long without the message. */
  readonly timeoutMs?: number;
  /** What is awaited, for the error when the connection closes or times out ("the welcome message"). */
  readonly awaiting?: string;
}

/** One migration's connection, either end. Made by connectChannel and listenChannel. */
export class MessageChannel {
  /** The peer's IP address. */
  readonly remoteAddress: string | undefined;
  /**
   * This host's address on the connection: the one the peer reaches it at (for a page server).
   * Empty only if the connection was gone before the channel was made.
   */
  readonly localAddress: string;
  /** The subject of the peer's certificate ("CN=source-1"), which the CA vouched for; for logs. */
  readonly peerCertificateSubject: string | undefined;
  private readonly reader: FrameReader;
  private readonly remote: string;
  /** Set once the peer broke the framing: every later call throws it. */
  private broken: RuntimeError | undefined;
  private reading = false;

  /** @internal made by connectChannel and listenChannel, on a socket whose handshake is done. */
  constructor(private readonly socket: tls.TLSSocket) {
    this.remoteAddress = socket.remoteAddress;
    this.localAddress = socket.localAddress ?? '';
    this.remote = `${socket.remoteAddress ?? 'unknown'}:${socket.remotePort ?? '?'}`;
    const subject = socket.getPeerCertificate()?.subject as Record<string, string | string[]> | undefined;
    this.peerCertificateSubject = subject
      ? Object.entries(subject)
          .map(([key, value]) => `${key}=${Array.isArray(value) ? value.join('+') : value}`)
          .join(', ') || undefined
      : undefined;
    this.reader = new FrameReader(socket);
    // Messages are small and each is waited for: Nagle's delay would go straight into the downtime.
    socket.setNoDelay(true);
    // A peer that vanishes (power off, cable) is found without the caller's timeout.
    socket.setKeepAlive(true, 10_000);
  }

  async send(message: MigrationMessage): Promise<void> {
    // Checked as the peer will check it: a bad message is this host's bug, found here.
    const checked = checkMessage(message);
    const payload = Buffer.from(JSON.stringify(checked));
    if (payload.length > MAX_FRAME_BYTES) throw new ChannelProtocolError(`a ${message.type} message of ${payload.length} bytes, above the frame limit`);
    await this.write(encodeFrame('M', payload), `the peer to read the ${message.type} message`);
  }

  async receive(options: ReceiveOptions = {}): Promise<MigrationMessage> {
    const frame = await this.readFrame(options.awaiting ?? 'a message', options.timeoutMs);
    if (frame.kind !== 'M') throw this.breakWith(new ChannelProtocolError(`a ${frameNames[frame.kind]} frame where a message was expected`));
    return parseMessage(frame.payload.toString('utf8'));
  }

  /**
   * Sends source as one data stream and returns its size in bytes. Waits for the socket to drain
   * after each frame, so a slow peer slows the source down rather than fill memory. A source that
   * fails is reported to the peer ('X') and its error rethrown here.
   */
  async sendStream(source: AsyncIterable<Buffer>): Promise<number> {
    let bytes = 0;
    const chunks = source[Symbol.asyncIterator]();
    try {
      for (;;) {
        let next: IteratorResult<Buffer>;
        try {
          next = await chunks.next();
        } catch (error) {
          await this.write(encodeFrame('X', Buffer.from(JSON.stringify(errorMessage(error)))), 'the peer to read the end of the data stream').catch(
            () => {},
          );
          throw error;
        }
        if (next.done) break;
        for (let at = 0; at < next.value.length; at += MAX_FRAME_BYTES) {
          const piece = next.value.subarray(at, at + MAX_FRAME_BYTES);
          if (this.reader.pending) await this.interrupted();
          if (this.broken) throw this.broken;
          if (!this.socket.write(encodeFrame('D', piece))) await this.drained();
          bytes += piece.length;
        }
      }
    } catch (error) {
      // The source is let go of (a tar process ended), whatever it says about it.
      await Promise.resolve(chunks.return?.()).catch(() => {});
      throw error;
    }
    await this.write(encodeFrame('E'), 'the peer to read the data stream');
    return bytes;
  }

  /** The chunks of the peer's data stream, up to its end; the peer's error if it aborts the stream. */
  async *receiveStream(options: ReceiveOptions = {}): AsyncIterable<Buffer> {
    const awaiting = options.awaiting ?? 'a data stream';
    for (;;) {
      const frame = await this.readFrame(awaiting, options.timeoutMs);
      switch (frame.kind) {
        case 'D':
          yield frame.payload;
          break;
        case 'E':
          return;
        case 'X':
          throw errorFrom(expect(parseMessage(frame.payload.toString('utf8')), 'error'));
        default:
          throw this.breakWith(new ChannelProtocolError(`a ${frameNames[frame.kind]} frame in the middle of a data stream`));
      }
    }
  }

  /** Ends the connection once what was sent is flushed; cut after a grace period if the peer does not close its side. */
  async close(): Promise<void> {
    if (this.socket.destroyed) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS);
      this.socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      this.socket.end();
      // Anything the peer still sends is not read: let it flow so that its end arrives.
      this.socket.resume();
    });
  }

  /** Cuts the connection now; waits of either side end with a ChannelClosedError whose cause is error. */
  destroy(error?: Error): void {
    this.reader.error ??= error;
    this.socket.destroy();
  }

  /** @internal the server's 'R' frame. */
  async sendReady(): Promise<void> {
    await this.write(encodeFrame('R'), 'the peer to read the ready frame');
  }

  /** @internal the client's wait for 'R'; false when the connection ended first. */
  async awaitReady(timeoutMs: number): Promise<boolean> {
    try {
      const frame = await this.readFrame("the peer's acceptance of this host's certificate", timeoutMs);
      if (frame.kind !== 'R') throw this.breakWith(new ChannelProtocolError(`a ${frameNames[frame.kind]} frame before the ready frame`));
      return true;
    } catch (error) {
      if (error instanceof ChannelClosedError) return false;
      throw error;
    }
  }

  /** @internal why the connection ended, when it failed. */
  get endError(): Error | undefined {
    return this.reader.error;
  }

  private breakWith(error: RuntimeError): RuntimeError {
    this.broken ??= error;
    this.socket.destroy();
    return error;
  }

  private async readFrame(awaited: string, timeoutMs: number | undefined): Promise<Frame> {
    if (this.reading) throw new Error('MessageChannel: a second read while one is under way (the protocol alternates: one reader at a time)');
    this.reading = true;
    try {
      const deadline = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
      for (;;) {
        if (this.broken) throw this.broken;
        let frame: Frame | undefined;
        try {
          frame = this.reader.take();
        } catch (error) {
          throw this.breakWith(error as RuntimeError);
        }
        if (frame) return frame;
        if (this.reader.ended) throw new ChannelClosedError(awaited, { cause: this.reader.error, remote: this.remote });
        if (!(await this.reader.wait(deadline === undefined ? undefined : deadline - Date.now()))) {
          const error = new ChannelTimeoutError(awaited, timeoutMs!, this.remote);
          // The protocol is out of step once an answer is given up on: nothing more can be said on this connection.
          this.broken = error;
          this.socket.destroy();
          throw error;
        }
      }
    } finally {
      this.reading = false;
    }
  }

  private async write(frame: Buffer, awaited: string): Promise<void> {
    if (this.broken) throw this.broken;
    if (this.socket.destroyed || this.socket.writableEnded) throw new ChannelClosedError(awaited, { cause: this.reader.error, remote: this.remote });
    await new Promise<void>((resolve, reject) => {
      this.socket.write(frame, (error) => (error ? reject(new ChannelClosedError(awaited, { cause: error, remote: this.remote })) : resolve()));
    });
  }

  /** Waits for the socket to take more, or for the peer to say something (it only does to stop the stream). */
  private async drained(): Promise<void> {
    await new Promise<void>((resolve) => {
      const done = () => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        unsubscribe();
        resolve();
      };
      const unsubscribe = this.reader.subscribe(done);
      this.socket.on('drain', done);
      this.socket.on('close', done);
    });
    if (this.reader.pending) await this.interrupted();
    if (this.socket.destroyed) throw new ChannelClosedError('the peer to read the data stream', { cause: this.reader.error, remote: this.remote });
  }

  /** The peer spoke in the middle of our stream: its error or abort, raised. */
  private async interrupted(): Promise<never> {
    const message = await this.receive({ awaiting: 'the peer to read the data stream' });
    if (message.type === 'error') throw errorFrom(message);
    if (message.type === 'abort') throw new MigrationAbortedError(message.reason);
    throw this.breakWith(new ChannelProtocolError(`a ${message.type} message in the middle of this host's data stream`));
  }
}

/**
 * Connects to a listening peer and waits until it has accepted this host's certificate. A
 * handshake either side refuses is a PeerRefusedError; no connection at all, a MigrationConnectError.
 */
export async function connectChannel(
  to: { readonly host: string; readonly port: number },
  files: TlsFiles,
  options: { readonly timeoutMs?: number } = {},
): Promise<MessageChannel> {
  const { cert, key, ca } = await loadTlsFiles(files);
  const remote = `${to.host}:${to.port}`;
  const timeoutMs = options.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const started = Date.now();
  const socket = tls.connect({
    host: to.host,
    port: to.port,
    cert,
    key,
    ca,
    // Both ends are this runtime: no older protocol to speak.
    minVersion: 'TLSv1.3',
    // Identity is the CA's signature, not a name: see the header.
    checkServerIdentity: () => undefined,
  });
  const socketError = new Promise<never>((_, reject) => {
    socket.once('error', (error: NodeJS.ErrnoException) => {
      const code = error.code ?? '';
      reject(
        networkErrors.has(code) ? new MigrationConnectError(remote, code, error) : new PeerRefusedError(refusalReason(error, files.ca), remote, error),
      );
    });
  });
  socketError.catch(() => {});
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      socket.destroy();
      reject(new MigrationConnectError(remote, `no TLS connection within ${timeoutMs / 1000} s`));
    }, timeoutMs);
  });
  try {
    await Promise.race([new Promise<void>((resolve) => socket.once('secureConnect', () => resolve())), socketError, timeout]);
  } finally {
    clearTimeout(timer);
  }
  const channel = new MessageChannel(socket);
  const ready = await channel.awaitReady(Math.max(1, timeoutMs - (Date.now() - started))).catch((error: unknown) => {
    if (error instanceof ChannelTimeoutError)
      throw new MigrationConnectError(remote, `the peer did not accept the connection within ${timeoutMs / 1000} s`, error);
    throw error;
  });
  if (!ready) {
    // With TLS 1.3 our handshake is over before the server judged our certificate: a server that
    // refuses it closes the connection, with an alert or without a word.
    const cause = channel.endError;
    const reason =
      cause && (cause as NodeJS.ErrnoException).code !== 'ECONNRESET'
        ? refusalReason(cause, files.ca)
        : "the peer closed the connection without accepting this host's certificate";
    throw new PeerRefusedError(reason, remote, cause);
  }
  return channel;
}

export interface ListenOptions {
  /** A connection refused by the TLS handshake: why, and from where. The listener goes on. */
  readonly onRefused?: (reason: string, remote?: string) => void;
  /** A handler's error (after it was sent to the peer when the channel still could). */
  readonly onError?: (error: unknown, remote?: string) => void;
}

export interface ChannelListener {
  /** The port listened on (the one asked for, or the one chosen for port 0). */
  readonly port: number;
  /** Stops accepting, drops connections still waiting their turn, and waits for the one being handled. */
  close(): Promise<void>;
}

/**
 * Listens for sources. Each accepted connection gets the ready frame at once, then waits its turn:
 * the handler runs for one connection at a time, in order of arrival, because a host receives one
 * migration after another. A handler's error is sent to the peer as an `error` message when the
 * channel can still carry it; the channel is closed when the handler returns.
 */
export async function listenChannel(
  at: { readonly host: string; readonly port: number },
  files: TlsFiles,
  handler: (channel: MessageChannel) => Promise<void>,
  options: ListenOptions = {},
): Promise<ChannelListener> {
  const { cert, key, ca } = await loadTlsFiles(files);
  const server = tls.createServer({
    cert,
    key,
    ca,
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.3',
    handshakeTimeout: 30_000,
  });
  const waiting = new Set<MessageChannel>();
  let turn: Promise<void> = Promise.resolve();
  let closing = false;

  const serve = async (channel: MessageChannel): Promise<void> => {
    waiting.delete(channel);
    if (closing) return channel.destroy();
    try {
      await handler(channel);
    } catch (error) {
      // The peer already knows its own error, and a closed channel carries nothing.
      if (!(error instanceof MigrationPeerError) && !(error instanceof ChannelClosedError)) await channel.send(errorMessage(error)).catch(() => {});
      options.onError?.(error, channel.remoteAddress);
    } finally {
      await channel.close().catch(() => {});
    }
  };

  server.on('secureConnection', (socket: tls.TLSSocket) => {
    const channel = new MessageChannel(socket);
    waiting.add(channel);
    channel.sendReady().catch(() => {});
    // serve() catches the handler's errors; a throwing onError must not stop the queue either.
    turn = turn.then(() => serve(channel)).catch(() => {});
  });
  // The address of a connection refused in its handshake: Node has destroyed the TLS socket by
  // then and its remoteAddress is gone, so the address is noted as the TCP connection arrives and
  // found again through the TLS socket's link to it (`_parent`, which Node does not document:
  // without it the refusal is still reported, without an address).
  const addresses = new WeakMap<object, string>();
  server.on('connection', (raw: Socket) => {
    if (raw.remoteAddress) addresses.set(raw, raw.remoteAddress);
  });
  server.on('tlsClientError', (error: NodeJS.ErrnoException, socket: tls.TLSSocket) => {
    const parent = (socket as unknown as { _parent?: object | null })._parent;
    const remote = socket.remoteAddress ?? (parent ? addresses.get(parent) : undefined);
    // A Node server refuses a certificate by closing the connection (no TLS alert), after it noted
    // why in authorizationError; a client that sends none fails inside OpenSSL with a reason.
    const authorization = socket.authorizationError as unknown as string | Error | null | undefined;
    const reason =
      authorization !== undefined && authorization !== null
        ? `the client's certificate is not signed by the CA in ${files.ca} (${String(authorization)})`
        : error.code === 'ECONNRESET'
          ? "the client closed the connection during the TLS handshake (it may have refused this host's certificate)"
          : refusalReason(error, files.ca);
    options.onRefused?.(reason, remote);
    socket.destroy();
  });

  const where = `${at.host}:${at.port}`;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error) => reject(new MigrationListenError(where, error)));
    server.listen(at.port, at.host, () => resolve());
  });
  // Errors after listening (rare: EMFILE) are per connection and must not end the listener.
  server.on('error', () => {});
  const { port } = server.address() as AddressInfo;
  return {
    port,
    async close() {
      closing = true;
      // server.close() waits for every connection to end: the waiting ones are cut first.
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const channel of waiting) channel.destroy();
      await turn;
      await closed;
    },
  };
}
