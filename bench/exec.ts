/**
 * Running the measured commands: spawn to exit, timed, output to a log file (never to a stream
 * this process must drain: a detached monitor may inherit it and outlive the command).
 */
import { spawn } from 'node:child_process';
import { closeSync, constants, openSync, readFileSync } from 'node:fs';
import net from 'node:net';

export class BenchError extends Error {
  readonly code: string;
  /** What the user can do about it. */
  readonly hint: string | undefined;
  constructor(code: string, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.hint = options.hint;
  }
}

export class CommandFailedError extends BenchError {
  constructor(
    readonly argv: readonly string[],
    how: string,
    readonly logPath: string,
  ) {
    super('BENCH_COMMAND_FAILED', `\`${argv.join(' ')}\` failed (${how}); the end of ${logPath}:\n${tail(logPath)}`);
  }
}

export function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no output)';
  }
}

export interface CommandOptions {
  readonly env?: NodeJS.ProcessEnv;
  /** The command's output goes here (appended), and error reports quote its end. */
  readonly logPath: string;
  /** The command's stdin, stdout, stderr as descriptors; default: none in, output to logPath. */
  readonly stdio?: readonly [number, number, number];
  readonly timeoutMs?: number;
}

/** Runs argv to its exit; returns the wall time from spawn to exit in milliseconds. */
export async function timedCommand(argv: readonly string[], options: CommandOptions): Promise<number> {
  const logFd = openSync(options.logPath, 'a', 0o600);
  let started: bigint;
  let child;
  try {
    started = process.hrtime.bigint();
    child = spawn(argv[0]!, argv.slice(1), {
      stdio: options.stdio ? [...options.stdio] : ['ignore', logFd, logFd],
      env: options.env ?? process.env,
    });
  } finally {
    closeSync(logFd);
  }
  const timeoutMs = options.timeoutMs ?? 60_000;
  const outcome = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      resolve({ code: null, signal: null, error });
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
  });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (outcome.error) throw new CommandFailedError(argv, outcome.error.message, options.logPath);
  if (outcome.signal)
    throw new CommandFailedError(argv, `killed by ${outcome.signal}${ms >= timeoutMs ? ` after the ${timeoutMs} ms timeout` : ''}`, options.logPath);
  if (outcome.code !== 0) throw new CommandFailedError(argv, `exit status ${outcome.code}`, options.logPath);
  return ms;
}

/** Times an in-process call. */
export async function timed<T>(call: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const started = process.hrtime.bigint();
  const value = await call();
  return { ms: Number(process.hrtime.bigint() - started) / 1e6, value };
}

/**
 * Two anonymous pipes held by this process, for a container's stdio: stdin reads one, stdout and
 * stderr write the other. CRIU cannot dump a file on a host path or one end of a socketpair
 * (Node's 'pipe' stdio), but it dumps pipes, and `runc restore` hands its own stdio back to the
 * restored process (CRIU inherit_fd). Made the way runc's integration tests make them
 * (tests/integration/helpers.bash, `exec 3<> <(:)`), since Node has no pipe(2): a bash holds the
 * pipes while this process opens both ends through /proc.
 */
export class StdioPipes {
  private drain: net.Socket | undefined;

  private constructor(
    private readonly inRead: number,
    private readonly inWrite: number,
    private readonly outRead: number,
    private readonly outWrite: number,
  ) {}

  static async open(): Promise<StdioPipes> {
    const keeper = spawn('bash', ['-c', 'exec 3<> <(:); exec 4<> <(:); echo ready; exec sleep 600'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise<void>((resolve) => keeper.once('exit', () => resolve()));
    try {
      await new Promise<void>((resolve, reject) => {
        keeper.once('error', reject);
        keeper.once('exit', () => reject(new BenchError('BENCH_PIPES', 'bash ended before it made the stdio pipes')));
        keeper.stdout.once('data', () => resolve());
      });
      // The keeper holds each pipe read-write, so opening one end alone does not block.
      const fd = (n: number, flags: number): number => openSync(`/proc/${keeper.pid}/fd/${n}`, flags);
      return new StdioPipes(fd(3, constants.O_RDONLY), fd(3, constants.O_WRONLY), fd(4, constants.O_RDONLY), fd(4, constants.O_WRONLY));
    } finally {
      keeper.kill('SIGKILL');
      await exited;
    }
  }

  /** The descriptors to give runc as stdin, stdout, stderr. */
  get stdio(): [number, number, number] {
    if (!this.drain) {
      // Reading the output keeps the pipe from filling, through a socket (a pending fs read would hold a libuv thread).
      this.drain = new net.Socket({ fd: this.outRead, readable: true, writable: false });
      this.drain.on('error', () => undefined);
      this.drain.resume();
    }
    return [this.inRead, this.outWrite, this.outWrite];
  }

  close(): void {
    if (this.drain) this.drain.destroy();
    else closeQuietly(this.outRead);
    for (const fd of [this.inRead, this.inWrite, this.outWrite]) closeQuietly(fd);
  }
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
}
