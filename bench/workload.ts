/**
 * The workload: a busybox bundle whose init is memhog (bench/fixtures/memhog.c), a static
 * program holding N MiB of touched, non-zero memory. busybox alone cannot allocate an exact amount.
 * The images benchmark also runs mapshog (bench/fixtures/mapshog.c): many processes with many
 * mappings each.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, copyFile, mkdir, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { BenchError } from './exec.js';

/** Where memhog writes "<pid> <mib>" once all its memory is touched (inside the container). */
export const readyFileInContainer = '/tmp/memhog.ready';

/** Compiles memhog statically into cacheDir, once per source version; returns the binary's path. */
export function buildMemhog(source: string, cacheDir: string): Promise<string> {
  return buildStatic(source, cacheDir);
}

/** Compiles a fixture (bench/fixtures/NAME.c) statically into cacheDir, once per source version. */
export async function buildStatic(source: string, cacheDir: string): Promise<string> {
  const text = await readFile(source);
  const name = path.basename(source, '.c');
  const binary = path.join(cacheDir, `${name}-${createHash('sha256').update(text).digest('hex').slice(0, 12)}`);
  if (existsSync(binary)) return binary;
  await mkdir(cacheDir, { recursive: true });
  const probe = spawnSync('cc', ['--version'], { encoding: 'utf8' });
  if (probe.error) {
    throw new BenchError('BENCH_NO_CC', `the benchmark compiles its workload (${path.relative(process.cwd(), source)}) and found no C compiler \`cc\``, {
      hint: 'install one: apt-get install gcc libc6-dev',
    });
  }
  const partial = `${binary}.partial`;
  const build = spawnSync('cc', ['-static', '-O2', '-o', partial, source], { encoding: 'utf8' });
  if (build.status !== 0) {
    const output = `${build.stdout}${build.stderr}`.trim();
    const noStaticLibc = /cannot find -lc|libc\.a/.test(output);
    throw new BenchError('BENCH_CC_FAILED', `\`cc -static -O2 ${source}\` failed:\n${output}`, {
      hint: noStaticLibc ? 'the static C library is missing: apt-get install libc6-dev (glibc) or musl-tools' : 'check the compiler output above',
    });
  }
  await rename(partial, binary);
  return binary;
}

/** Where memhog, asked to, writes the longest time in µs it went without waking (memhog.c). */
const gapFileInContainer = '/tmp/memhog.gap';

/**
 * Makes a busybox bundle (scripts/make-busybox-bundle.sh) whose init holds `mib` MiB; with
 * `gaps`, memhog wakes every 5 ms and notes the longest time it did not (longestGapMs).
 */
export function makeBundle(repoRoot: string, dir: string, memhog: string, mib: number, options: { readonly gaps?: boolean } = {}): Promise<void> {
  return makeBundleRunning(repoRoot, dir, memhog, [String(mib), readyFileInContainer, ...(options.gaps ? [gapFileInContainer] : [])]);
}

/** The longest time in ms the memhog of bundle (made with gaps) went without waking so far; 0 before its first note. */
export async function longestGapMs(bundle: string): Promise<number> {
  const text = await readIfExists(hostPath(bundle, gapFileInContainer));
  return text === undefined ? 0 : Number(text.trim()) / 1000;
}

/**
 * Waits for the memhog of bundle to note a gap longer than `above` ms (its first wake after a
 * freeze, there or on another host) and returns it.
 */
export function gapAbove(bundle: string, above: number, timeoutMs = 60_000): Promise<number> {
  return poll(`memhog in ${bundle} to note a gap longer than ${above} ms`, timeoutMs, async () => {
    const gap = await longestGapMs(bundle);
    return gap > above ? gap : undefined;
  });
}

/** Makes a busybox bundle whose init is `binary` (copied to /bin/<its name>) run with `args`. */
export async function makeBundleRunning(repoRoot: string, dir: string, binary: string, args: readonly string[]): Promise<void> {
  const inContainer = `/bin/${path.basename(binary).replace(/-[0-9a-f]{12}$/, '')}`;
  const made = spawnSync('bash', [path.join(repoRoot, 'scripts/make-busybox-bundle.sh'), dir, inContainer, ...args], {
    encoding: 'utf8',
  });
  if (made.status !== 0) {
    throw new BenchError('BENCH_BUNDLE', `scripts/make-busybox-bundle.sh failed:\n${`${made.stdout}${made.stderr}`.trim()}`, {
      hint: 'it needs busybox-static and runc on PATH',
    });
  }
  const target = path.join(dir, 'rootfs', inContainer);
  await copyFile(binary, target);
  await chmod(target, 0o755);
}

/** The bundle's rootfs is a plain directory, so the container's /tmp is visible from here. */
function hostPath(bundle: string, inContainer: string): string {
  return path.join(bundle, 'rootfs', inContainer);
}

export async function clearReady(bundle: string): Promise<void> {
  await rm(hostPath(bundle, readyFileInContainer), { force: true });
  await rm(hostPath(bundle, `${readyFileInContainer}.verified`), { force: true });
}

async function poll<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new BenchError('BENCH_TIMEOUT', `timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** Waits until the workload has written its ready file (readyFileInContainer); returns its text. */
export function readyText(bundle: string, what: string, timeoutMs: number): Promise<string> {
  return poll(what, timeoutMs, () => readIfExists(hostPath(bundle, readyFileInContainer)));
}

/** Waits until memhog has touched all its memory. */
export async function waitReady(bundle: string, mib: number, timeoutMs = 30_000): Promise<void> {
  const text = await readyText(bundle, `memhog in ${bundle} to touch ${mib} MiB`, timeoutMs);
  if (Number(text.trim().split(/\s+/)[1]) !== mib) throw new BenchError('BENCH_WORKLOAD', `memhog reports "${text.trim()}", expected ${mib} MiB`);
}

/** Has memhog check every byte (SIGUSR1) and throws unless they are all as written. */
export async function verifyMemory(bundle: string, pid: number, mib: number): Promise<void> {
  const file = hostPath(bundle, `${readyFileInContainer}.verified`);
  await rm(file, { force: true });
  process.kill(pid, 'SIGUSR1');
  const text = await poll(`memhog (pid ${pid}) to verify its memory`, 30_000, () => readIfExists(file));
  if (text.trim() !== `ok ${mib}`) throw new BenchError('BENCH_MEMORY_LOST', `memory of the restored memhog (pid ${pid}) is wrong: ${text.trim()}`);
}

export async function readPidFile(file: string): Promise<number> {
  const pid = Number((await readFile(file, 'utf8')).trim());
  if (!Number.isInteger(pid) || pid <= 0) throw new BenchError('BENCH_PID', `no pid in ${file}`);
  return pid;
}

/** The process's resident memory in MiB (/proc/<pid>/status VmRSS); throws if it is gone. */
export async function residentMiB(pid: number): Promise<number> {
  let status: string;
  try {
    status = await readFile(`/proc/${pid}/status`, 'utf8');
  } catch (error) {
    throw new BenchError('BENCH_NOT_RUNNING', `process ${pid} is not running`, { cause: error });
  }
  const kib = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN);
  return kib / 1024;
}

/** Alive and not a zombie. */
export function isAlive(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

export interface ImageSize {
  /** All files of the image directory. */
  readonly totalMiB: number;
  /** The memory pages alone (pages-*.img). */
  readonly pagesMiB: number;
}

export async function imageSize(dir: string): Promise<ImageSize> {
  let total = 0;
  let pages = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const { size } = await stat(path.join(entry.parentPath, entry.name));
    total += size;
    if (/^pages-\d+\.img$/.test(entry.name)) pages += size;
  }
  return { totalMiB: total / 2 ** 20, pagesMiB: pages / 2 ** 20 };
}
