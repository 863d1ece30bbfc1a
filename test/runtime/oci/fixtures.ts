import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// Tests run compiled from dist/test/runtime/oci/; the JSON fixtures are not compiled, so they are
// read from the source tree.
const fixtureDir = fileURLToPath(new URL('../../../../test/fixtures/oci/', import.meta.url));

export function fixturePath(name: string): string {
  return `${fixtureDir}${name}`;
}

export function readFixture(name: string): string {
  return readFileSync(fixturePath(name), 'utf8');
}
