/** Fixture paths of the inspection tests, and their prerequisite: pycriu's descriptors. */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestFn } from 'ava';
import { loadImageCatalog } from '../../../src/criu/images/catalog.js';
import { requiring } from '../../criu/images/helpers.js';

const fixtures = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../test/fixtures/images');

/** A whole checkpoint of a busybox container (sh, syslogd, two sleeps; /data/a.txt open), pages left out. */
export const inspectImagesDir = path.join(fixtures, 'inspect');
/** Some images of another checkpoint (most tasks' images are missing). */
export const partialImagesDir = path.join(fixtures, 'real');

function pycriuMissing(): string | undefined {
  try {
    loadImageCatalog();
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

/** Tests that decode images need pycriu's descriptors (python3-pycriu). */
export function withPycriu<T>(test: TestFn<T>, what: string): TestFn<T> {
  return requiring(test, what, pycriuMissing());
}
