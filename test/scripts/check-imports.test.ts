/**
 * scripts/check-imports.mjs, the lint step of `npm test`, run as npm runs it (a node process) on small
 * src/ trees written into a temp dir: what it must let through, and each kind of violation it must name.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository, found from the compiled file's place (dist/test/scripts) by walking up to package.json. */
function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('package.json not found above the test');
    dir = parent;
  }
  return dir;
}

const checker = path.join(repoRoot(), 'scripts', 'check-imports.mjs');

interface Check {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Writes files (paths relative to src/) into a fresh temp dir, removed when the test ends, and returns the dir. */
async function tree(t: { teardown(fn: () => Promise<void>): void }, files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'check-imports-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  for (const [name, text] of Object.entries(files)) {
    const file = path.join(dir, 'src', name);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, text);
  }
  return dir;
}

/** Runs the checker on dir/src from dir, so the paths it prints start with src/. */
function check(dir: string, root = 'src'): Check {
  const result = spawnSync(process.execPath, [checker, root], { cwd: dir, encoding: 'utf8' });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

function lines(output: string): string[] {
  return output.split('\n').filter((line) => line !== '');
}

test('a tree that keeps the layering passes with one summary line', async (t) => {
  const dir = await tree(t, {
    // Files directly in src/ may import any layer; runtime/ may import the three below it.
    'index.ts': "export { run } from './runtime/run.js';\nexport type { Options } from './criu/options.js';\n",
    'runtime/run.ts':
      "import { dump } from '../criu/dump.js';\nimport { mount } from '../rootfs/mount.js';\nimport { libc } from '../system/libc.js';\n" +
      "import config from '../../config/defaults.json' with { type: 'json' };\nimport { readFile } from 'node:fs/promises';\n" +
      'export const run = () => [dump, mount, libc, config, readFile];\n',
    // criu/ and rootfs/ may import each other (in one direction) and system/.
    'criu/options.ts': 'export interface Options { readonly tcp: boolean }\n',
    'criu/dump.ts':
      "import type { Options } from './options.js';\nimport { libc } from '../system/libc.js';\nexport const dump = (o: Options) => [o, libc];\n",
    'rootfs/mount.ts': "import { dump } from '../criu/dump.js';\nimport { errno } from '../system/index.js';\nexport const mount = () => [dump, errno];\n",
    'system/libc.ts': "import { errno } from './errno.js';\nexport const libc = { errno };\n",
    'system/errno.ts': 'export const errno = 2;\n',
    'system/index.ts': "export * from './errno.js';\n",
    // An import in a comment or a string is no import.
    'system/doc.ts': "// import { run } from '../runtime/run.js';\nexport const example = \"import { run } from '../runtime/run.js'\";\n",
  });
  const result = check(dir);
  t.is(result.stdout, 'imports: 9 files, no cycles, no upward imports\n');
  t.is(result.stderr, '');
  t.is(result.code, 0);
});

test('a cycle a.ts -> b.ts -> a.ts fails and names both files with the importing lines', async (t) => {
  const dir = await tree(t, {
    'runtime/a.ts': "import { b } from './b.js';\nexport const a = () => b;\n",
    'runtime/b.ts': "// b needs a\n\nimport { a } from './a.js';\nexport const b = () => a;\n",
    'runtime/c.ts': "import { a } from './a.js';\nexport const c = a;\n",
  });
  const result = check(dir);
  t.is(result.code, 1);
  t.deepEqual(lines(result.stdout), [
    'cycle: src/runtime/a.ts:1 -> src/runtime/b.ts:3 -> src/runtime/a.ts',
    'imports: 3 files, 1 cycle, 0 upward imports',
  ]);
});

test('a cycle made only of `import type` fails too', async (t) => {
  const dir = await tree(t, {
    'runtime/state.ts': "import type {\n  Context,\n} from './context.js';\nexport interface State { readonly context: Context }\n",
    'runtime/context.ts': "import type { State } from './state.js';\nexport interface Context { readonly state: State }\n",
  });
  const result = check(dir);
  t.is(result.code, 1);
  t.deepEqual(lines(result.stdout), [
    // The line is the specifier's: the third line of a multi-line import.
    'cycle: src/runtime/context.ts:1 -> src/runtime/state.ts:3 -> src/runtime/context.ts',
    'imports: 2 files, 1 cycle, 0 upward imports',
  ]);
});

test('re-exports, dynamic import() and import() types close cycles, and a directory import is its index.ts', async (t) => {
  const dir = await tree(t, {
    'runtime/index.ts': "export * from './job.js';\n",
    'runtime/job.ts': "export type Control = import('./control.js').Control;\nexport const job = 1;\n",
    'runtime/control.ts': "export interface Control { readonly id: string }\nexport const load = () => import('./index.js');\n",
    'criu/monitor.ts': "export { job } from '../runtime';\n",
  });
  const result = check(dir);
  t.is(result.code, 1);
  t.deepEqual(lines(result.stdout), [
    'cycle: src/runtime/control.ts:2 -> src/runtime/index.ts:1 -> src/runtime/job.ts:1 -> src/runtime/control.ts',
    'upward: src/criu/monitor.ts:1 imports src/runtime/index.ts (criu/ must not import from runtime/)',
    'imports: 4 files, 1 cycle, 1 upward import',
  ]);
});

test('a component larger than the loop printed names its other files', async (t) => {
  const dir = await tree(t, {
    'runtime/a.ts': "import './b.js';\n",
    'runtime/b.ts': "import './a.js';\nimport './c.js';\n",
    'runtime/c.ts': "import './b.js';\n",
  });
  const result = check(dir);
  t.is(result.code, 1);
  t.deepEqual(lines(result.stdout), [
    'cycle: src/runtime/a.ts:1 -> src/runtime/b.ts:1 -> src/runtime/a.ts (the same component also holds src/runtime/c.ts)',
    'imports: 3 files, 1 cycle, 0 upward imports',
  ]);
});

test('criu/x.ts importing ../runtime/y.js fails as upward', async (t) => {
  const dir = await tree(t, {
    'criu/x.ts': "import { RuntimeError } from '../runtime/y.js';\nexport class CriuError extends RuntimeError {}\n",
    'runtime/y.ts': 'export class RuntimeError extends Error {}\n',
  });
  const result = check(dir);
  t.is(result.code, 1);
  t.deepEqual(lines(result.stdout), [
    'upward: src/criu/x.ts:1 imports src/runtime/y.ts (criu/ must not import from runtime/)',
    'imports: 2 files, 0 cycles, 1 upward import',
  ]);
});

test('rootfs/ importing runtime/ fails as upward, a type-only import included', async (t) => {
  const dir = await tree(t, {
    'rootfs/mountpoints.ts': "import type { Spec } from '../runtime/oci/spec.js';\nexport const root = (spec: Spec) => spec.root;\n",
    'runtime/oci/spec.ts': 'export interface Spec { readonly root: string }\n',
  });
  const result = check(dir);
  t.is(result.code, 1);
  t.deepEqual(lines(result.stdout), [
    'upward: src/rootfs/mountpoints.ts:1 imports src/runtime/oci/spec.ts (rootfs/ must not import from runtime/)',
    'imports: 2 files, 0 cycles, 1 upward import',
  ]);
});

test('system/x.ts importing ../criu/y.js fails, and so do its imports of rootfs/ and runtime/', async (t) => {
  const dir = await tree(t, {
    'system/x.ts':
      "import { y } from '../criu/y.js';\nimport { z } from '../rootfs/z.js';\nimport { w } from '../runtime/w.js';\nexport const x = [y, z, w];\n",
    'criu/y.ts': 'export const y = 1;\n',
    'rootfs/z.ts': 'export const z = 2;\n',
    'runtime/w.ts': 'export const w = 3;\n',
  });
  const result = check(dir);
  t.is(result.code, 1);
  t.deepEqual(lines(result.stdout), [
    'upward: src/system/x.ts:1 imports src/criu/y.ts (system/ must not import from criu/)',
    'upward: src/system/x.ts:2 imports src/rootfs/z.ts (system/ must not import from rootfs/)',
    'upward: src/system/x.ts:3 imports src/runtime/w.ts (system/ must not import from runtime/)',
    'imports: 4 files, 0 cycles, 3 upward imports',
  ]);
});

test('the output carries no ✔ or ✘, which .ci/run counts as ava results', async (t) => {
  const clean = await tree(t, { 'index.ts': 'export const a = 1;\n' });
  const broken = await tree(t, { 'a.ts': "import './b.js';\n", 'b.ts': "import './a.js';\n", 'system/s.ts': "import '../criu/c.js';\n", 'criu/c.ts': '' });
  const [passing, failing] = [check(clean), check(broken)];
  t.is(passing.code, 0);
  t.is(failing.code, 1);
  for (const result of [passing, failing]) t.false(/[✔✘]/.test(result.stdout + result.stderr), result.stdout);
});

test('a root that is not a directory is a usage error (exit 2)', async (t) => {
  const dir = await tree(t, { 'index.ts': '' });
  const result = check(dir, 'no-such-dir');
  t.is(result.code, 2);
  t.is(result.stdout, '');
  t.regex(result.stderr, /no-such-dir is not a directory/);
});
