/**
 * End-to-end helpers: real runc, real CRIU, as root. Each test gets its own state and checkpoint
 * roots in a temporary directory and removes its containers even when it fails.
 */
import 'reflect-metadata';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ExecutionContext, TestFn } from 'ava';
import { execa } from 'execa';
import { Runtime } from '../../src/runtime/runtime.js';

/** The repository root (tests run from dist/test/e2e). */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
/** The `runtime` command as users run it: the native front, which hands most commands to bin/runtime.js. */
export const cliPath = path.join(repoRoot, 'dist/bin/runtime');

function missingPrerequisite(): string | undefined {
  if (process.geteuid?.() !== 0) return 'not running as root';
  for (const tool of ['criu', 'runc']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      return `${tool} is not installed (run scripts/install-system-deps.sh)`;
    }
  }
  if (!existsSync('/bin/busybox')) return 'busybox-static is not installed';
  return undefined;
}

const missing = missingPrerequisite();

/**
 * The test function to register end-to-end tests with. Without root or the tools they cannot run:
 * they are skipped with a loud warning, and in CI (CI=true) they fail instead.
 */
export function e2e<T>(test: TestFn<T>): TestFn<T>['serial'] {
  if (!missing) return test.serial;
  if (process.env.CI) {
    test('end-to-end prerequisites are present', (t) => t.fail(`END-TO-END TESTS CANNOT RUN: ${missing}`));
    return test.serial;
  }
  console.warn(`\n!!! END-TO-END TESTS SKIPPED: ${missing}. They need root, runc and CRIU 4.x. !!!\n`);
  return test.serial.skip as unknown as TestFn<T>['serial'];
}

export interface CliResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface Sandbox {
  readonly dir: string;
  readonly stateRoot: string;
  readonly checkpointRoot: string;
  readonly imageRoot: string;
  readonly runtime: Runtime;
  /** Runs the CLI with this sandbox's roots. */
  cli(args: readonly string[], options?: { env?: Record<string, string> }): Promise<CliResult>;
  /** Makes a busybox bundle; the command defaults to a counter loop with a child process. */
  bundle(name: string, command?: readonly string[], edit?: (spec: Record<string, any>) => void): Promise<string>;
}

export async function sandbox(t: ExecutionContext): Promise<Sandbox> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'runtime-e2e-'));
  const stateRoot = path.join(dir, 'state');
  const checkpointRoot = path.join(dir, 'checkpoints');
  const imageRoot = path.join(dir, 'images');
  // Each sandbox's containers get cgroups of their own: test files run side by side, and two
  // containers with the same id must not share (and freeze, dump or kill) each other's cgroup.
  const cgroupParent = `/runtime-test/${path.basename(dir)}`;
  const runtime = Runtime.create({ stateRoot, checkpointRoot, imageRoot, cgroupParent, logLevel: 'warn' });
  t.teardown(async () => {
    for (const id of await runtime.context.store.ids().catch(() => [])) {
      await runtime.delete(id, { force: true }).catch((error: unknown) => t.log(`cleanup of ${id}: ${String(error)}`));
    }
    await rm(dir, { recursive: true, force: true });
    const left = await runtime.context.cgroups.removeTree(cgroupParent).catch(() => []);
    if (left.length > 0) t.log(`cgroups left: ${left.join(', ')}`);
  });
  return {
    dir,
    stateRoot,
    checkpointRoot,
    imageRoot,
    runtime,
    async cli(args, options = {}) {
      const result = await execa(cliPath, args, {
        reject: false,
        env: {
          RUNTIME_ROOT: stateRoot,
          RUNTIME_CHECKPOINT_ROOT: checkpointRoot,
          RUNTIME_IMAGE_ROOT: imageRoot,
          RUNTIME_CGROUP_PARENT: cgroupParent,
          RUNTIME_LOG_LEVEL: 'warn',
          ...options.env,
        },
        stdin: 'ignore',
      });
      return { exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr) };
    },
    bundle: (name, command = [], edit) => bundleIn(dir, name, command, edit),
  };
}

/** A busybox bundle dir/name running command, its config.json changed by edit. */
export async function bundleIn(dir: string, name: string, command: readonly string[] = [], edit?: (spec: Record<string, any>) => void): Promise<string> {
  const bundleDir = path.join(dir, name);
  await makeBundle(bundleDir, command);
  if (edit) {
    const file = path.join(bundleDir, 'config.json');
    const spec = JSON.parse(await readFile(file, 'utf8')) as Record<string, any>;
    edit(spec);
    await writeFile(file, JSON.stringify(spec, null, 2));
  }
  return bundleDir;
}

/** A busybox bundle made with `runc spec` (scripts/make-busybox-bundle.sh) running command. */
export async function makeBundle(dir: string, command: readonly string[] = []): Promise<string> {
  await execa('bash', [path.join(repoRoot, 'scripts/make-busybox-bundle.sh'), dir, ...command]);
  return dir;
}

/** Polls until fn returns a value other than undefined, or fails after timeoutMs. */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/**
 * The counter a container's loop writes to file in its rootfs (the default bundle's /tmp/counter);
 * undefined while there is none, or while the shell has truncated the file and not yet written it.
 */
export async function readCounter(bundle: string, file = 'tmp/counter'): Promise<number | undefined> {
  const text = (await readFile(path.join(bundle, 'rootfs', file), 'utf8').catch(() => '')).trim();
  return text === '' ? undefined : Number(text);
}

/** The counter's value as soon as one can be read (readCounter). */
export function counterNow(bundle: string, file = 'tmp/counter'): Promise<number> {
  return waitFor(`the counter in ${bundle}`, () => readCounter(bundle, file));
}

/** Waits until the counter has moved past `above`. */
export function counterAbove(bundle: string, above: number): Promise<number> {
  return waitFor(`the counter to pass ${above}`, async () => {
    const value = await readCounter(bundle);
    return value !== undefined && value > above ? value : undefined;
  });
}

export async function parentOf(pid: number): Promise<{ pid: number; cmdline: string }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const ppid = Number(/^PPid:\s+(\d+)/m.exec(status)![1]);
  const cmdline = (await readFile(`/proc/${ppid}/cmdline`, 'utf8')).replace(/\0/g, ' ').trim();
  return { pid: ppid, cmdline };
}

export async function childrenOf(pid: number): Promise<number[]> {
  const text = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
  return text
    .split(' ')
    .filter((p) => p.trim() !== '')
    .map(Number);
}

export function isAlive(pid: number): boolean {
  try {
    return !/\) [ZX] /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}
