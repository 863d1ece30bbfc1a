/**
 * CRIU's lazy-pages daemon serving a checkpoint's pages locally through userfaultfd: a restore
 * with lazy_pages returns before the memory is copied, and the daemon copies a page in when a task
 * faults on it. Two ways it can run:
 *
 *   on demand    (--no-lazy-pages-background, the project's CRIU patch) only pages the tasks touch
 *                are ever copied, so an instance costs what it used, not what it holds; the
 *                daemon serves until stopped, which the runtime does when the instance ends
 *   background   (a CRIU without the patch) once the restore has finished the daemon also copies
 *                every other page, then exits; a standby's daemon is held still (SIGSTOP) so that
 *                its copy does not compete with the instance in use
 *
 * The runtime starts it, waits for its socket, and stops it when the container ends.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { access, rm } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CriuRequestError } from './errors.js';
import { criuLogTail } from './log.js';
import { trackChild } from '../system/spawned.js';
import type { TlsFiles } from './options.js';

/** Where a lazy restore's pages come from when they are not in its images: a migration's source. */
export interface RemotePages {
  readonly pageServer: { readonly host: string; readonly port: number };
  readonly tls?: TlsFiles;
}

const SOCKET = 'lazy-pages.socket';
const LOG = 'lazy-pages.log';

export class LazyPagesDaemon {
  private stopping = false;

  private constructor(
    private readonly child: ChildProcess,
    readonly exited: Promise<number | null>,
    private readonly logPath: string,
    /** Copies pages only on fault (--no-lazy-pages-background). */
    readonly onDemand: boolean,
  ) {}

  onFailure(callback: (detail: string) => void): void {
    void this.exited.then(async (code) => {
      if (this.stopping || code === 0) return;
      const how = code === null ? `was killed by ${this.child.signalCode ?? 'a signal'}` : `exited with code ${code}`;
      const tail = (await criuLogTail(this.logPath)).join(' | ');
      callback(`the lazy-pages daemon ${how} while it served the memory not yet copied (log: ${this.logPath}${tail ? `; ${tail}` : ''})`);
    });
  }

  static async start(
    binary: string,
    imagePath: string,
    workPath: string,
    options: { readonly onDemand: boolean; readonly timeoutMs?: number; readonly remote?: RemotePages },
  ): Promise<LazyPagesDaemon> {
    const timeoutMs = options.timeoutMs ?? 5000;
    await rm(path.join(workPath, SOCKET), { force: true });
    const args = [
      'lazy-pages',
      ...(options.onDemand ? ['--no-lazy-pages-background'] : []),
      '--images-dir',
      imagePath,
      '--work-dir',
      workPath,
      '-o',
      LOG,
      '-v4',
      ...remoteArgs(options.remote),
    ];
    // A session of its own, as CRIU's swrk has a process group of its own: a Ctrl-C at the
    // foreground restore's terminal goes to the container's init, never to its memory's server.
    const child = trackChild(spawn(binary, args, { stdio: 'ignore', detached: true }));
    // A daemon that could not be started is told by 'error' alone (no 'exit'), which unheard would end this process.
    let spawnError: Error | undefined;
    const exited = new Promise<number | null>((resolve) => {
      child.once('exit', (code) => resolve(code));
      child.on('error', (error) => {
        spawnError ??= error;
        resolve(null);
      });
    });
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (
        await access(path.join(workPath, SOCKET)).then(
          () => true,
          () => false,
        )
      )
        return new LazyPagesDaemon(child, exited, path.join(workPath, LOG), options.onDemand);
      const ended = await Promise.race([exited.then(() => true), sleep(2).then(() => false)]);
      if (ended || Date.now() > deadline) {
        child.kill('SIGKILL');
        const logPath = path.join(workPath, LOG);
        throw new CriuRequestError({
          request: 'lazy-pages',
          criuMessage: spawnError
            ? `the lazy-pages daemon could not be started: ${spawnError.message}`
            : ended
              ? 'the lazy-pages daemon exited before it was ready'
              : 'the lazy-pages daemon did not become ready',
          logPath,
          logTail: await criuLogTail(logPath),
        });
      }
    }
  }

  /**
   * On demand there is nothing to hold back (a stopped tree faults on nothing), and a daemon
   * waiting in epoll_wait(2) fails with EINTR once continued (signal(7)). A background daemon
   * waits there too until it has read the restore's end, so pausing it can kill it in that
   * window (a CRIU without the project's patch only; the monitor logs it).
   */
  pause(): void {
    if (!this.onDemand && this.running) this.child.kill('SIGSTOP');
  }

  resume(): void {
    if (!this.onDemand && this.running) this.child.kill('SIGCONT');
  }

  private get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Stops the daemon if it still runs (a background copy exits by itself once every page is in). */
  async stop(): Promise<void> {
    this.stopping = true;
    // A paused daemon would not see SIGTERM until continued.
    this.resume();
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    await Promise.race([this.exited, sleep(2000)]);
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

/** The daemon asks a remote page server for the pages (over TLS when given), as `criu lazy-pages --page-server` does. */
function remoteArgs(remote: RemotePages | undefined): string[] {
  if (!remote) return [];
  const args = ['--page-server', '--address', remote.pageServer.host, '--port', String(remote.pageServer.port)];
  if (remote.tls) args.push('--tls', '--tls-cacert', remote.tls.ca, '--tls-cert', remote.tls.cert, '--tls-key', remote.tls.key, '--tls-no-cn-verify');
  return args;
}
