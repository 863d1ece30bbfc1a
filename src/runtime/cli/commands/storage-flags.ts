/** --storage-driver, --storage-root and --layer go together. */
import { UsageError } from '../../errors.js';
import type { StorageSpec } from '../../storage.js';

export function storageOptions(flags: { readonly 'storage-driver'?: string; readonly 'storage-root'?: string; readonly layer?: string }): {
  storage?: StorageSpec;
} {
  const driver = flags['storage-driver'];
  const storageRoot = flags['storage-root'];
  const layer = flags.layer;
  if (driver === undefined && storageRoot === undefined && layer === undefined) return {};
  if (driver === undefined || storageRoot === undefined || (layer === undefined && driver !== 'dir')) {
    throw new UsageError(
      '--storage-driver, --storage-root and --layer go together',
      'for example: --storage-driver overlay2 --storage-root /var/lib/docker --layer <layer id>',
    );
  }
  return { storage: { driver, storageRoot, layer: layer ?? '' } };
}
