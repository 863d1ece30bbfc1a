/** The repository's test/fixtures, found from the compiled file's place (under dist/test). */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export function fixturePath(...parts: string[]): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('package.json not found above the test');
    dir = parent;
  }
  return path.join(dir, 'test', 'fixtures', ...parts);
}
