import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

// Tests run compiled from dist/test/runtime/; the fixtures are not compiled, so they are read from
// the source tree.
const fixtureDir = fileURLToPath(new URL('../../../test/fixtures/core/', import.meta.url));

export function coreFixturePath(name: string): string {
  return `${fixtureDir}${name}`;
}

export function readCoreFixture(name: string): string {
  return readFileSync(coreFixturePath(name), 'utf8');
}

/** A fresh directory under the system temp dir, removed when the test ends (even when it fails). */
export async function tempDir(t: { teardown(fn: () => Promise<void>): void }, prefix = 'runtime-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}
