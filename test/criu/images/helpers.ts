/**
 * Helpers of the image codec tests: running crit, and registering tests that need tools (crit,
 * python3) or root. Without them such tests are skipped with a loud warning; in CI (CI set) they
 * fail instead.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestFn } from 'ava';
import { execa } from 'execa';

/** Checkpoint images stored as fixtures (tests run from dist/test/criu/images; fixtures stay in the source tree). */
export const storedImagesDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../test/fixtures/images/real');

export function hasCommand(tool: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * The test function to register with. When `missing` says why the tests cannot run, they are
 * skipped with a loud warning, and in CI one failing test reports it. Register hooks only when
 * nothing is missing.
 */
export function requiring<T>(test: TestFn<T>, what: string, missing: string | undefined): TestFn<T> {
  if (!missing) return test;
  if (process.env.CI) {
    test(`${what}: prerequisites are present`, (t) => t.fail(`${what.toUpperCase()} CANNOT RUN: ${missing}`));
  } else {
    console.warn(`\n!!! ${what.toUpperCase()} SKIPPED: ${missing} !!!\n`);
  }
  return test.skip as unknown as TestFn<T>;
}

export interface CritResult {
  readonly ok: boolean;
  readonly stdout: string;
  readonly stdoutBytes: Buffer;
  readonly stderr: string;
}

/** Runs crit with the arguments (and optional stdin). */
export async function crit(args: readonly string[], input?: string | Uint8Array): Promise<CritResult> {
  const result = await execa('crit', args, {
    reject: false,
    encoding: 'buffer',
    stripFinalNewline: false,
    timeout: 60_000,
    ...(input === undefined ? { stdin: 'ignore' as const } : { input }),
  });
  const stdoutBytes = Buffer.from(result.stdout);
  return { ok: result.exitCode === 0, stdout: stdoutBytes.toString(), stdoutBytes, stderr: Buffer.from(result.stderr).toString() };
}

/** Runs `fn` over `items` with at most `limit` at a time, keeping the order of the results. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!);
      }
    }),
  );
  return out;
}
