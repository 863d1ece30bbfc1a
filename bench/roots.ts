/** What the benchmarks that run the runtime share: its CLI's environment, the mounts they leave, settings. */
import { readFile } from 'node:fs/promises';
import { BenchError } from './exec.js';

/** The environment for `node bin/runtime.js`: the benchmark's roots, no RUNTIME_* of the caller's. */
export function runtimeCliEnv(roots: { stateRoot: string; checkpointRoot: string; cgroupParent: string }): NodeJS.ProcessEnv {
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('RUNTIME_')));
  return {
    ...inherited,
    RUNTIME_ROOT: roots.stateRoot,
    RUNTIME_CHECKPOINT_ROOT: roots.checkpointRoot,
    RUNTIME_CGROUP_PARENT: roots.cgroupParent,
    RUNTIME_LOG_LEVEL: 'warn',
  };
}

/** Mount points at or below `dir`, deepest first (from /proc/self/mountinfo). */
export async function mountsBelow(dir: string): Promise<string[]> {
  const unescape = (field: string) => field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
  const points = (await readFile('/proc/self/mountinfo', 'utf8'))
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => unescape(line.split(' ')[4]!));
  return [...new Set(points.filter((point) => point === dir || point.startsWith(`${dir}/`)))].sort().reverse();
}

/** An integer setting from the environment, at least `minimum`. */
export function integerSetting(name: string, text: string, minimum: number): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < minimum) throw new BenchError('BENCH_SETTING', `${name}=${text}: expected an integer of at least ${minimum}`);
  return value;
}
