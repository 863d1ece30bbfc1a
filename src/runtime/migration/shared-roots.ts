/**
 * Two "hosts" on one machine (network namespaces, as the tests make) see one file system: a
 * receiver left with the source's state, checkpoint or image root would take the source's
 * container for its own (the id is taken), or clear the source's checkpoints as what a failed
 * migration left. The source marks each of its roots with a file named by the migration's token
 * (random, per migration); a receiver that finds one in its own roots shares that root, and
 * refuses before it touches anything. Nothing is compared across hosts: real ones never see
 * each other's marks.
 */
import { existsSync } from 'node:fs';
import { realpath, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { RuntimeConfig } from '../config.js';

type Roots = Pick<RuntimeConfig, 'stateRoot' | 'checkpointRoot' | 'imageRoot'>;

/** Each root, with its name for an operator and the setting that moves it. */
function roots(config: Roots): { readonly name: string; readonly setting: string; readonly dir: string }[] {
  return [
    { name: 'state root', setting: 'RUNTIME_ROOT (--root)', dir: config.stateRoot },
    { name: 'checkpoint root', setting: 'RUNTIME_CHECKPOINT_ROOT', dir: config.checkpointRoot },
    { name: 'image root', setting: 'RUNTIME_IMAGE_ROOT (--image-root)', dir: config.imageRoot },
  ];
}

function markOf(dir: string, token: string): string {
  return path.join(dir, `.migration-${token}`);
}

/**
 * Marks each of this host's roots that exists, and storeRoot (the image store an image container
 * lives in, when not the configured one), once each (two settings may name one directory);
 * resolves with what removes the marks. A mark that cannot be made takes those made with it.
 */
export async function markRoots(config: Roots, token: string, storeRoot?: string): Promise<() => Promise<void>> {
  const made: string[] = [];
  const unmark = async () => {
    await Promise.all(made.map((mark) => rm(mark, { force: true })));
  };
  try {
    const dirs = new Set<string>();
    for (const dir of [...roots(config).map((root) => root.dir), ...(storeRoot ? [storeRoot] : [])]) {
      const real = await realpath(dir).catch(() => undefined);
      if (real !== undefined) dirs.add(real);
    }
    for (const dir of dirs) {
      await writeFile(markOf(dir, token), '', { mode: 0o600, flag: 'wx' });
      made.push(markOf(dir, token));
    }
  } catch (error) {
    await unmark();
    throw error;
  }
  return unmark;
}

/** The roots of this host that hold the source's mark of this migration: shared with the source. */
export function sharedRoots(config: Roots, token: string): { readonly name: string; readonly setting: string }[] {
  return roots(config)
    .filter(({ dir }) => existsSync(markOf(dir, token)))
    .map(({ name, setting }) => ({ name, setting }));
}
