/**
 * CRIU's lazy-pages daemon serving a checkpoint's pages locally through userfaultfd: a restore
 * with lazy_pages returns before the memory is copied, and the daemon fills it in on demand and
 * in the background, then exits. The runtime starts it, waits for its socket, and stops it if
 * the container ends first.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { access, rm } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CriuRequestError } from './errors.js';
import { criuLogTail } from './log.js';
import { trackChild } from '../system/spawned.js';

const SOCKET = 'lazy-pages.socket';
const LOG = 'lazy-pages.log';

export class LazyPagesDaemon {
  private stopping = false;

  private constructor(
    private readonly child: ChildProcess,
    readonly exited: Promise<number | null>,
    private readonly logPath: string,
  ) {}

  onFailure(callback: (detail: string) => void): void {
    void this.exited.then(async (code) => {
      if (this.stopping || code === 0) return;
      const how = code === null ? `was killed by ${this.child.signalCode ?? 'a signal'}` : `exited with code ${code}`;
      const tail = (await criuLogTail(this.logPath)).join(' | ');
      callback(`the lazy-pages daemon ${how} before it filled in all the memory (log: ${this.logPath}${tail ? `; ${tail}` : ''})`);
    });
  }

  static async start(binary: string, imagePath: string, workPath: string, timeoutMs = 5000): Promise<LazyPagesDaemon> {
    await rm(path.join(workPath, SOCKET), { force: true });
    const child = trackChild(spawn(binary, ['lazy-pages', '--images-dir', imagePath, '--work-dir', workPath, '-o', LOG, '-v4'], { stdio: 'ignore' }));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (
        await access(path.join(workPath, SOCKET)).then(
          () => true,
          () => false,
        )
      )
        return new LazyPagesDaemon(child, exited, path.join(workPath, LOG));
      const ended = await Promise.race([exited.then(() => true), sleep(2).then(() => false)]);
      if (ended || Date.now() > deadline) {
        child.kill('SIGKILL');
        const logPath = path.join(workPath, LOG);
        throw new CriuRequestError({
          request: 'lazy-pages',
          criuMessage: ended ? 'the lazy-pages daemon exited before it was ready' : 'the lazy-pages daemon did not become ready',
          logPath,
          logTail: await criuLogTail(logPath),
        });
      }
    }
  }

  pause(): void {
    if (this.running) this.child.kill('SIGSTOP');
  }

  resume(): void {
    if (this.running) this.child.kill('SIGCONT');
  }

  private get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Stops the daemon if it still runs (it exits by itself once every page is delivered). */
  async stop(): Promise<void> {
    this.stopping = true;
    // A paused daemon would not see SIGTERM until continued.
    this.resume();
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    await Promise.race([this.exited, sleep(2000)]);
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}
