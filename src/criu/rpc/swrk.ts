/**
 * One `criu swrk 3` process and its SOCK_SEQPACKET socket: one packet, one bare protobuf message,
 * no length prefix (as runc and libcriu speak it). Notifications arriving during a request are
 * handed to a callback and acknowledged before CRIU goes on.
 */
import { closeSync, read, write, close } from 'node:fs';
import { promisify } from 'node:util';
import { seqpacketPair, shutdownSocket } from '../../system/libc.js';
import { rpcCodec, type RpcCodec } from './proto.js';
import { ReqType, reqTypeNames, type CriuNotify, type CriuReq, type CriuResp } from './messages.js';
import { spawnDirect, type DirectChild, type Exit } from '../../system/direct-spawn.js';

const readAsync = promisify(read);
const writeAsync = promisify(write);
const closeAsync = promisify(close);

/** Large enough for any response CRIU sends (runc reads with 40 KiB). */
const RESPONSE_BUFFER_BYTES = 64 * 1024;

export type StdioTarget = number | 'ignore' | 'pipe';

export interface SwrkStartOptions {
  readonly binary: string;
  /**
   * CRIU's own fds 0-2. On restore these are what the restored tree inherits through inherit_fd,
   * so the runtime passes the container's new stdio pipes here.
   */
  readonly stdio?: readonly [StdioTarget, StdioTarget, StdioTarget];
  /** Further fds CRIU gets from fd 4 on, in order (images directory, work directory, ...). */
  readonly extraFds?: readonly number[];
  readonly cwd?: string;
}

/** Called for each notification; throwing makes the runtime answer notify_success=false. */
export type NotifyHandler = (notify: CriuNotify) => void | Promise<void>;

export class SwrkConnectionClosedError extends Error {
  constructor(
    readonly request: string,
    readonly exit: string,
    readonly stderr: string,
  ) {
    super(`criu swrk ended before answering ${request} (${exit})${stderr ? `: ${stderr.trim()}` : ''}`);
  }
}

export class SwrkSession {
  private socketFd: number;
  private stderrText = '';

  private constructor(
    private readonly child: DirectChild,
    socketFd: number,
    private readonly codec: RpcCodec,
  ) {
    this.socketFd = socketFd;
    // The tasks CRIU forks to restore inherit its end of the socket: a CRIU killed mid-restore
    // leaves them holding it, and a read waiting for CRIU's answer would never see end of file.
    // Once CRIU is gone, our end is shut down so that the read ends (what was sent stays readable).
    void child.exited.then(() => {
      if (this.socketFd >= 0) shutdownSocket(this.socketFd);
    });
    child.pipes
      .get(2)
      ?.setEncoding('utf8')
      .on('data', (chunk: string) => {
        this.stderrText = (this.stderrText + chunk).slice(-8192);
      });
    child.pipes.get(1)?.resume();
  }

  private get exited(): Promise<Exit> {
    return this.child.exited;
  }

  /**
   * Starts `criu swrk 3` with one end of a fresh socketpair as its fd 3, through posix_spawn
   * (system/direct-spawn.ts: a fork of the runtime's process costs milliseconds per restore), in
   * a process group of its own: a Ctrl-C meant for the runtime's command must never reach a
   * CRIU that holds a tree frozen (the command decides what an interruption does).
   */
  static start(options: SwrkStartOptions): Promise<SwrkSession> {
    const codec = rpcCodec();
    const [ours, theirs] = seqpacketPair();
    try {
      const child = spawnDirect(options.binary, ['swrk', '3'], {
        fds: [...(options.stdio ?? ['ignore', 'ignore', 'pipe']), theirs, ...(options.extraFds ?? [])],
        ...(options.cwd ? { cwd: options.cwd } : {}),
        newProcessGroup: true,
      });
      return Promise.resolve(new SwrkSession(child, ours, codec));
    } catch (error) {
      closeSync(ours);
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    } finally {
      // Our copy of CRIU's end must go, or a dead CRIU would never read as EOF.
      closeSync(theirs);
    }
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** What CRIU printed on stderr, when it was captured (the last 8 KiB). */
  get stderr(): string {
    return this.stderrText;
  }

  /**
   * Sends one request and returns CRIU's final answer to it, answering notifications on the way.
   * A response with success=false is returned, not thrown: the caller knows which log to read.
   */
  async call(request: CriuReq, onNotify?: NotifyHandler): Promise<CriuResp> {
    const name = reqTypeNames[request.type] ?? String(request.type);
    await this.send(this.codec.encodeRequest(request), name);
    for (;;) {
      const response = await this.receive(name);
      if (response.type !== ReqType.NOTIFY) return response;
      try {
        await onNotify?.(response.notify ?? {});
      } catch (error) {
        // CRIU is told, so it rolls back (a dump resumes the tree) before the error surfaces.
        await this.send(this.codec.encodeRequest({ type: ReqType.NOTIFY, notify_success: false }));
        throw error;
      }
      await this.send(this.codec.encodeRequest({ type: ReqType.NOTIFY, notify_success: true }));
    }
  }

  /** Closes the socket (CRIU exits on EOF) and waits for CRIU to end. */
  async close(): Promise<Exit> {
    if (this.socketFd >= 0) {
      const fd = this.socketFd;
      this.socketFd = -1;
      await closeAsync(fd);
    }
    return this.exited;
  }

  /** Kills CRIU (used when the caller gives up on a request). */
  kill(): void {
    this.child.kill('SIGKILL');
  }

  private async send(bytes: Uint8Array, requestName = 'request'): Promise<void> {
    let bytesWritten: number;
    try {
      ({ bytesWritten } = await writeAsync(this.socketFd, bytes, 0, bytes.length));
    } catch (error) {
      if (!peerGone(error)) throw error;
      throw new SwrkConnectionClosedError(requestName, await this.exitDescription(), this.stderrText);
    }
    if (bytesWritten !== bytes.length) throw new Error(`short write to criu swrk: ${bytesWritten} of ${bytes.length} bytes`);
  }

  private async receive(requestName: string): Promise<CriuResp> {
    const buffer = Buffer.allocUnsafe(RESPONSE_BUFFER_BYTES);
    let bytesRead: number;
    try {
      ({ bytesRead } = await readAsync(this.socketFd, buffer, 0, buffer.length, null));
    } catch (error) {
      // A CRIU killed with our request unread resets the connection rather than ending it.
      if (!peerGone(error)) throw error;
      bytesRead = 0;
    }
    if (bytesRead === 0) throw new SwrkConnectionClosedError(requestName, await this.exitDescription(), this.stderrText);
    return this.codec.decodeResponse(buffer.subarray(0, bytesRead));
  }

  private async exitDescription(): Promise<string> {
    const exit = await Promise.race([this.exited, new Promise<undefined>((r) => setTimeout(r, 2000, undefined))]);
    if (!exit) return 'still running';
    return exit.signal ? `killed by ${exit.signal}` : `exit status ${exit.code}`;
  }
}

/** The errors a socket gives once the process at its other end is gone. */
function peerGone(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'EPIPE' || code === 'ECONNRESET';
}
