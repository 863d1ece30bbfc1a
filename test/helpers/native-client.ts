/**
 * Compiles the native front (src/runtime/cli/native/client.c) for a test, with the flags
 * scripts/build-client.sh uses and the test's own node binary, default state root and answer
 * timeout. A missing C compiler fails the test: CI has one (CRIU is built from source).
 */
import { execa } from 'execa';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const source = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../src/runtime/cli/native/client.c');

export interface NativeClientBuild {
  /** Where the binary goes; it hands over to <its directory>/../../bin/runtime.js. */
  readonly output: string;
  /** What it runs that script with. */
  readonly nodeBinary: string;
  readonly defaultStateRoot: string;
  readonly answerTimeoutMs?: number;
}

export async function buildNativeClient(build: NativeClientBuild): Promise<string> {
  await mkdir(path.dirname(build.output), { recursive: true });
  await execa(process.env.CC ?? 'cc', [
    '-O2',
    '-std=c11',
    '-Wall',
    '-Wextra',
    '-Werror',
    `-DDEFAULT_STATE_ROOT="${build.defaultStateRoot}"`,
    `-DNODE_BINARY="${build.nodeBinary}"`,
    ...(build.answerTimeoutMs !== undefined ? [`-DANSWER_TIMEOUT_MS=${build.answerTimeoutMs}`] : []),
    '-o',
    build.output,
    source,
  ]);
  return build.output;
}
