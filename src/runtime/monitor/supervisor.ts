/**
 * The parent of a container's init: the detached monitor process, or the CLI itself in the
 * foreground. It owns the container's stdio (three pipes: a file on a host path could not be
 * dumped), appends the output to the container's log, reaps the init when it ends and records
 * the exit in the state, so no zombie is ever left behind.
 */
import { closeSync, createWriteStream, type WriteStream } from 'node:fs';
import net from 'node:net';
import type { Writable } from 'node:stream';
import { pipe, type WaitStatus } from '../../system/libc.js';
import type { ChildReaper } from '../../system/reaper.js';
import type { ContainerStore } from '../state/store.js';
import type { ExitRecord } from '../state/record.js';
import { signalName } from '../signals.js';

export interface SupervisorOptions {
  readonly id: string;
  readonly store: ContainerStore;
  readonly reaper: ChildReaper;
  /** True when the CLI itself is the parent (no monitor process is recorded). */
  readonly foreground: boolean;
  /** Also copy the output here (the foreground CLI's own stdout and stderr). */
  readonly echo?: { readonly stdout: Writable; readonly stderr: Writable };
}

export class Supervisor {
  /** The ends the container gets: stdin's read end, stdout's and stderr's write ends. */
  readonly childStdio: readonly [number, number, number];
  private readonly stdinWrite: number;
  private readonly outputReads: readonly [number, number];
  private childEndsClosed = false;
  private readonly log: WriteStream;
  private readonly sockets: net.Socket[] = [];
  private readonly closers: (() => Promise<void>)[] = [];
  /** The output's read ends belong to the pumping sockets once pumping started. */
  private pumping = false;
  /** The stdin write end belongs to the socket that forwards input, once there is one. */
  private stdinSocket: net.Socket | undefined;
  private closing: Promise<void> | undefined;

  constructor(private readonly options: SupervisorOptions) {
    const [stdinRead, stdinWrite] = pipe();
    const [stdoutRead, stdoutWrite] = pipe();
    const [stderrRead, stderrWrite] = pipe();
    this.childStdio = [stdinRead, stdoutWrite, stderrWrite];
    this.stdinWrite = stdinWrite;
    this.outputReads = [stdoutRead, stderrRead];
    this.log = createWriteStream(options.store.paths(options.id).containerLog, { flags: 'a' });
  }

  get foreground(): boolean {
    return this.options.foreground;
  }

  /**
   * After the init (or CRIU, which hands them on) has its ends, ours go, and the output starts
   * flowing to the log. The stdin write end stays open so the container never reads EOF.
   */
  startPumping(): void {
    this.closeChildEnds();
    this.pumping = true;
    const [stdoutRead, stderrRead] = this.outputReads;
    this.pump(stdoutRead, this.options.echo?.stdout);
    this.pump(stderrRead, this.options.echo?.stderr);
  }

  /**
   * Starts the container's init with this supervisor's stdio (through the OCI runtime, or CRIU),
   * then starts copying its output; the supervisor is closed again if the start fails.
   */
  async startInit(start: (supervisor: Supervisor) => Promise<number>): Promise<number> {
    let pid: number;
    try {
      pid = await start(this);
    } catch (error) {
      await this.close();
      throw error;
    }
    this.startPumping();
    return pid;
  }

  /** Forwards a readable (the foreground CLI's stdin) into the container's stdin. */
  forwardInput(input: NodeJS.ReadableStream): void {
    const socket = new net.Socket({ fd: this.stdinWrite, readable: false, writable: true });
    socket.on('error', () => undefined);
    this.stdinSocket = socket;
    this.sockets.push(socket);
    input.pipe(socket);
  }

  closeChildEnds(): void {
    if (this.childEndsClosed) return;
    this.childEndsClosed = true;
    for (const fd of this.childStdio) closeSync(fd);
  }

  /** Reaps pid, then records its exit unless the container moved on (checkpointed, restored). */
  async superviseInit(pid: number): Promise<WaitStatus> {
    const status = await this.options.reaper.wait(pid);
    const exit: ExitRecord =
      status.kind === 'exited'
        ? { code: status.code, time: new Date().toISOString() }
        : { signal: signalName(status.signal), time: new Date().toISOString() };
    const { store, id } = this.options;
    await store.withLock(id, async () => {
      const record = await store.load(id).catch(() => undefined);
      if (!record || record.status !== 'running' || record.init.pid !== pid) return;
      await store.commit(record, { kind: 'exited', exit });
    });
    return status;
  }

  /** Something to stop when this instance is closed (a lazy-pages daemon). */
  onClose(closer: () => Promise<void>): void {
    this.closers.push(closer);
  }

  /**
   * Waits for the output to drain (the writers are gone once the tree is), then closes all. Each
   * fd is closed exactly once, however often close is called: a second close(2) of a number could
   * close whatever file reused it meanwhile.
   */
  close(): Promise<void> {
    this.closing ??= this.closeOnce();
    return this.closing;
  }

  private async closeOnce(): Promise<void> {
    for (const closer of this.closers.splice(0)) await closer().catch(() => undefined);
    this.closeChildEnds();
    await Promise.all(
      this.sockets.map(
        (socket) =>
          new Promise<void>((resolve) => {
            if (socket.destroyed || socket.readableEnded) return resolve();
            const timer = setTimeout(() => {
              socket.destroy();
              resolve();
            }, 2000);
            socket.once('close', () => {
              clearTimeout(timer);
              resolve();
            });
          }),
      ),
    );
    if (!this.pumping) for (const fd of this.outputReads) closeSync(fd);
    if (this.stdinSocket) this.stdinSocket.destroy();
    else closeSync(this.stdinWrite);
    await new Promise<void>((resolve) => this.log.end(resolve));
  }

  private pump(fd: number, echo: Writable | undefined): void {
    const socket = new net.Socket({ fd, readable: true, writable: false });
    this.sockets.push(socket);
    // A reader that went away (`runtime restore web1 | head`) ends the echo, never the container.
    let echoing = echo !== undefined;
    echo?.on('error', () => (echoing = false));
    socket.on('data', (chunk: Buffer) => {
      this.log.write(chunk);
      if (echoing) echo!.write(chunk);
    });
    socket.on('error', () => undefined);
  }
}
