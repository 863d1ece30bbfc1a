/**
 * The contenders, behind one interface: `runtime` through its CLI (a process per operation, as
 * runc), `runtime` as a library in this process, and runc itself. Each keeps its state in its own
 * directory under the benchmark's temporary directory.
 */
import path from 'node:path';
import { mkdir, readFile } from 'node:fs/promises';
import { Runtime } from '../src/index.js';
import { StdioPipes, timed, timedCommand } from './exec.js';

export type ToolName = 'runtime-cli' | 'runtime-library' | 'runc';

export interface Tool {
  readonly name: ToolName;
  /** Starts the container detached; the init's host pid goes to pidFile. */
  start(id: string, bundle: string, pidFile: string): Promise<void>;
  /** Checkpoints (the container stops); returns the milliseconds it took. */
  checkpoint(id: string, imagePath: string): Promise<number>;
  /** Restores detached, returning once the container runs; returns the milliseconds it took. */
  restore(id: string, imagePath: string, bundle: string, pidFile: string): Promise<number>;
  /** Deletes the container whatever its state; no error if there is none. */
  remove(id: string): Promise<void>;
  close(): Promise<void>;
}

/** `node bin/runtime.js …`, with its state and logs under `dir`. */
export class RuntimeCli implements Tool {
  readonly name = 'runtime-cli';
  private readonly env: NodeJS.ProcessEnv;
  private readonly logPath: string;

  static async create(repoRoot: string, dir: string): Promise<RuntimeCli> {
    await mkdir(dir, { recursive: true });
    return new RuntimeCli(repoRoot, dir);
  }

  private constructor(
    private readonly repoRoot: string,
    dir: string,
  ) {
    const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('RUNTIME_')));
    this.env = {
      ...env,
      RUNTIME_ROOT: path.join(dir, 'state'),
      RUNTIME_CHECKPOINT_ROOT: path.join(dir, 'checkpoints'),
      RUNTIME_LOG_LEVEL: 'warn',
    };
    this.logPath = path.join(dir, 'commands.log');
  }

  private command(args: readonly string[]): Promise<number> {
    return timedCommand([process.execPath, path.join(this.repoRoot, 'bin/runtime.js'), ...args], { env: this.env, logPath: this.logPath });
  }

  async start(id: string, bundle: string, pidFile: string): Promise<void> {
    await this.command(['run', '-d', '--bundle', bundle, '--pid-file', pidFile, id]);
  }

  checkpoint(id: string, imagePath: string): Promise<number> {
    return this.command(['checkpoint', '--image-path', imagePath, id]);
  }

  // The container still exists (checkpointed), so unlike runc no --bundle: it keeps its own.
  restore(id: string, imagePath: string, _bundle: string, pidFile: string): Promise<number> {
    return this.command(['restore', '-d', '--image-path', imagePath, '--pid-file', pidFile, id]);
  }

  async remove(id: string): Promise<void> {
    await this.command(['delete', '--force', id]).catch(() => undefined);
  }

  async close(): Promise<void> {}
}

/** The library API in this process: the same work without a Node start per operation. */
export class RuntimeLibrary implements Tool {
  readonly name = 'runtime-library';
  private readonly runtime: Runtime;

  constructor(dir: string) {
    this.runtime = Runtime.create({ stateRoot: path.join(dir, 'state'), checkpointRoot: path.join(dir, 'checkpoints'), logLevel: 'warn' });
  }

  async start(id: string, bundle: string, pidFile: string): Promise<void> {
    await this.runtime.run({ id, bundle, pidFile });
  }

  async checkpoint(id: string, imagePath: string): Promise<number> {
    return (await timed(() => this.runtime.checkpoint({ id, imagePath }))).ms;
  }

  async restore(id: string, imagePath: string, _bundle: string, pidFile: string): Promise<number> {
    return (await timed(() => this.runtime.restore({ id, imagePath, pidFile }))).ms;
  }

  async remove(id: string): Promise<void> {
    await this.runtime.delete(id, { force: true }).catch(() => undefined);
  }

  async close(): Promise<void> {}
}

/**
 * `runc --root <dir>/state …`. The container's stdio are pipes this process holds, as in runc's
 * own checkpoint tests: runc checkpoint records them (descriptors.json) and runc restore passes its
 * stdio, the same pipes, back to CRIU (inherit_fd).
 */
export class Runc implements Tool {
  readonly name = 'runc';
  private readonly root: string;
  private readonly logPath: string;

  private constructor(
    dir: string,
    private readonly pipes: StdioPipes,
  ) {
    this.root = path.join(dir, 'state');
    this.logPath = path.join(dir, 'runc.log');
  }

  static async create(dir: string): Promise<Runc> {
    await mkdir(path.join(dir, 'state'), { recursive: true });
    return new Runc(dir, await StdioPipes.open());
  }

  private command(args: readonly string[], withPipes = false): Promise<number> {
    // --log: runc's errors, also when its stderr is the container's pipe.
    return timedCommand(['runc', '--root', this.root, '--log', this.logPath, ...args], {
      logPath: this.logPath,
      ...(withPipes ? { stdio: this.pipes.stdio } : {}),
    });
  }

  async start(id: string, bundle: string, pidFile: string): Promise<void> {
    await this.command(['run', '-d', '--bundle', bundle, '--pid-file', pidFile, id], true);
  }

  checkpoint(id: string, imagePath: string): Promise<number> {
    return this.command(['checkpoint', '--image-path', imagePath, id]);
  }

  async restore(id: string, imagePath: string, bundle: string, pidFile: string): Promise<number> {
    try {
      return await this.command(['restore', '-d', '--image-path', imagePath, '--bundle', bundle, '--pid-file', pidFile, id], true);
    } catch (error) {
      // runc only says "criu failed"; CRIU's own errors are in the images' restore.log.
      const log = await readFile(path.join(imagePath, 'restore.log'), 'utf8').catch(() => '');
      const errors = log
        .split('\n')
        .filter((line) => /Error|error/.test(line))
        .slice(-8);
      if (errors.length > 0 && error instanceof Error) error.message += `\nCRIU's restore.log:\n${errors.join('\n')}`;
      throw error;
    }
  }

  async remove(id: string): Promise<void> {
    await this.command(['delete', '--force', id]).catch(() => undefined);
  }

  async close(): Promise<void> {
    this.pipes.close();
  }
}
