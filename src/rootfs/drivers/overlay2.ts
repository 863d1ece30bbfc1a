/**
 * Docker's overlay2 (moby daemon/graphdriver/overlay2/overlay.go, Driver.Get), reproduced:
 *  - home is <storage root>/overlay2; a layer is <home>/<id> with diff/, link, lower, work/, merged/.
 *  - No `lower` file: the layer has no parent and Get returns diff/ without mounting. Here that
 *    becomes a bind of diff/ onto itself, so CRIU still finds a mount point.
 *  - lowerdir is each `lower` entry joined to home ("<home>/l/NAME", the short links themselves,
 *    not their targets), in the file's order: uppermost first.
 *  - A layer with a `committed` file (a parent of another layer) mounts read-only:
 *    lowerdir=<diff>:<lowers>, no upperdir/workdir. Otherwise upperdir=<id>/diff, workdir=<id>/work.
 *  - Options start with "index=off" when /sys/module/overlay/parameters/index exists, then
 *    "userxattr" when running in a user namespace (overlayutils.NeedsUserXAttr; moby also probes
 *    the kernel version there, not repeated here). No SELinux mount label is added.
 *  - When the data is longer than pageSize-1, the same options are made relative to home (lowerdir
 *    = the `lower` file verbatim, upperdir=<id>/diff, workdir=<id>/work) and mounted from home
 *    (mountFrom: a child that chdirs there). Still too long: "mount label too large" error.
 *  - Put unmounts with MNT_DETACH.
 */
import path from 'node:path';
import { BrokenLayoutError, LayerNotFoundError, MountDataTooLongError } from '../errors.js';
import { checkOverlaySupport } from '../kernel-support.js';
import { PlannedMountDriver } from './base.js';
import { isDirectory, readTextOrUndefined, statOrUndefined, validateLayerId } from './layout.js';
import { parseLowerFile, requireLowerLink } from './overlay-links.js';
import type { MountPlan } from './types.js';

/** Bytes of a mount data string, as the kernel counts them. */
export function dataLength(options: readonly string[]): number {
  return Buffer.byteLength(options.join(','));
}

export class Overlay2Driver extends PlannedMountDriver {
  readonly name = 'overlay2' as const;

  async plan(storageRoot: string, layerId: string): Promise<MountPlan> {
    validateLayerId(layerId);
    const home = path.join(path.resolve(storageRoot), 'overlay2');
    const dir = path.join(home, layerId);
    if (!(await isDirectory(dir))) throw new LayerNotFoundError('overlay2', layerId, dir);
    const diff = path.join(dir, 'diff');
    if (!(await isDirectory(diff))) throw new BrokenLayoutError('overlay2', dir, 'the layer has no diff/ directory');

    const lowerFile = path.join(dir, 'lower');
    const lowerText = await readTextOrUndefined(lowerFile);
    if (lowerText === undefined) {
      return { driver: 'overlay2', type: 'bind', source: diff, target: diff, options: ['rbind'], steps: [], rootfs: diff };
    }
    const lowers = parseLowerFile('overlay2', lowerFile, lowerText);
    for (const entry of lowers) await requireLowerLink('overlay2', home, layerId, entry);

    const readonly = (await statOrUndefined(path.join(dir, 'committed'))) !== undefined;
    const work = path.join(dir, 'work');
    if (!readonly && !(await isDirectory(work))) {
      throw new BrokenLayoutError('overlay2', dir, 'the layer has a lower file but no work/ directory');
    }

    const { kernel } = this.deps;
    const prefix: string[] = [];
    if (await kernel.pathExists('/sys/module/overlay/parameters/index')) prefix.push('index=off');
    if (!(await kernel.inInitialUserNamespace())) prefix.push('userxattr');

    const absLowers = lowers.map((entry) => path.join(home, entry));
    let options = readonly
      ? [...prefix, `lowerdir=${[diff, ...absLowers].join(':')}`]
      : [...prefix, `lowerdir=${absLowers.join(':')}`, `upperdir=${diff}`, `workdir=${work}`];
    const target = path.join(dir, 'merged');
    const pageSize = kernel.pageSize();
    if (dataLength(options) <= pageSize - 1) {
      return { driver: 'overlay2', type: 'overlay', source: 'overlay', target, options, steps: [], rootfs: target };
    }

    const relLowers = lowers.join(':');
    options = readonly
      ? [...prefix, `lowerdir=${path.join(layerId, 'diff')}:${relLowers}`]
      : [...prefix, `lowerdir=${relLowers}`, `upperdir=${path.join(layerId, 'diff')}`, `workdir=${path.join(layerId, 'work')}`];
    if (dataLength(options) > pageSize - 1) throw new MountDataTooLongError('overlay2', dataLength(options), pageSize);
    return { driver: 'overlay2', type: 'overlay', source: 'overlay', target, options, steps: [], cwd: home, rootfs: target };
  }

  async checkKernel(): Promise<void> {
    await checkOverlaySupport(this.deps.kernel, 'overlay2');
  }

  protected override detachOnUnmount(): boolean {
    return true;
  }
}
