/**
 * Tests that need root: skipped with a loud warning when not root, failed when CI is set (a CI run
 * that silently skips the real mounts would prove nothing).
 */
import test, { type ExecutionContext } from 'ava';
import { isRoot } from './layouts.js';

export function rootTest(title: string, implementation: (t: ExecutionContext) => Promise<void>): void {
  if (isRoot) {
    test.serial(title, implementation);
    return;
  }
  const message = `NOT ROOT (uid ${process.geteuid?.()}): "${title}" mounts for real and needs root`;
  console.warn(`\n!!!!!!!!!! ${message} !!!!!!!!!!\n`);
  if (process.env['CI']) {
    test(title, (t) => t.fail(`${message}; CI is set, so this fails instead of skipping`));
  } else {
    test.skip(title, implementation);
  }
}
