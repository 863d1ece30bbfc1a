/**
 * A container's rootfs seen as layers: what a snapshot copies (the writable part, while the tree
 * is frozen), what it sits on (read-only lowers), and how a reset puts it back (an overlay of
 * the snapshot's layers with an empty upper directory, mounted on the container's rootfs path).
 */
import path from 'node:path';
import type { RuntimeContext } from '../context.js';
import type { ContainerRecord } from '../state/record.js';
import { planStorage } from '../storage.js';
import type { LayeredRootfs } from '../../rootfs/layers.js';

export interface RootfsLayers {
  /** Read-only layers under the writable part, top first (empty for a plain directory). */
  readonly lowers: readonly string[];
  /** What a snapshot copies: an overlay's upper directory, or a plain rootfs as a whole. */
  readonly writable: string;
}

export async function currentLayers(context: RuntimeContext, record: ContainerRecord): Promise<RootfsLayers> {
  if (record.layers) return { lowers: record.layers.lowers, writable: record.layers.upper };
  if (record.storage && ['overlay2', 'overlay', 'image'].includes(record.storage.driver)) {
    const { plan } = await planStorage(context, record.storage);
    const option = (key: string) => plan.options.find((o) => o.startsWith(`${key}=`))?.slice(key.length + 1) ?? '';
    const resolve = (entry: string) => (path.isAbsolute(entry) ? entry : path.resolve(plan.cwd ?? '/', entry));
    const lowers = plan.fds
      ? [...plan.fds]
      : option('lowerdir')
          .split(':')
          .filter((l) => l !== '')
          .map(resolve);
    return { lowers, writable: resolve(option('upperdir')) };
  }
  // A plain directory, or a layout overlay cannot stack on (aufs, devicemapper): copied whole.
  return { lowers: [], writable: record.rootfs };
}

/** The writable pair a container's resets use, in its state directory. */
export function resetLayers(context: RuntimeContext, id: string, lowers: readonly string[], target: string): LayeredRootfs {
  const dir = context.store.paths(id).dir;
  return { lowers, upper: path.join(dir, 'upper'), work: path.join(dir, 'work'), target };
}
