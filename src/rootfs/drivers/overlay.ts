/**
 * containers/storage's overlay (Podman, CRI-O, Buildah: drivers/overlay/overlay.go, Driver.get, and
 * mount.go, mountOverlayFromMain), reproduced:
 *  - home is <storage root>/overlay; a layer is <home>/<id> with diff/, link, lower, work/, merged/,
 *    and empty/ for a layer without parent.
 *  - lowerdir: first the layer's own diff1/, diff2/, ... if present; then for each `lower` entry
 *    "<home>/l/NAME" (the link itself) followed by "<home>/l/NAME/../diffN" for each extra diffN/
 *    of that layer (the path is left uncleaned so the kernel follows the link, as dumbJoin does).
 *    No lowers at all: lowerdir=<id>/empty. More than 500 entries: "max depth exceeded".
 *  - rw mount: lowerdir=...,upperdir=<id>/diff,workdir=<id>/work, then the configured `mountopt`
 *    options, then "userxattr" when rootless. No "index=off" (that is Docker's).
 *  - Data of pageSize bytes or more: upperdir/workdir become relative ("<id>/diff", "<id>/work")
 *    and the mount runs from home (the lowers stay absolute). If that is still too long, the lowers
 *    are opened and named by descriptor: lowerdir=3:4:..., cwd /proc/self/fd, and the option order
 *    upperdir,workdir,lowerdir,others. Here the descriptors are opened by the runtime and handed to
 *    the mounting child as fds 3, 4, ... so the plan is exact; containers/storage gets whatever
 *    numbers open(2) returns in its re-exec child.
 *  - Missing links: containers/storage recreates them from the layers' `link` files and retries;
 *    this runtime does not write to the engine's storage and reports them instead.
 *  - Not supported: composefs layers, additional image/layer stores, mount_program
 *    (fuse-overlayfs), idmapped lowers, volatile.
 *  - Put unmounts with MNT_DETACH.
 */
import path from 'node:path';
import { BrokenLayoutError, LayerNotFoundError, MountDataTooLongError, UnsupportedLayoutError } from '../errors.js';
import { checkOverlaySupport } from '../kernel-support.js';
import { PlannedMountDriver } from './base.js';
import { isDirectory, readTextOrUndefined, statOrUndefined, validateLayerId } from './layout.js';
import { parseLowerFile, requireLowerLink } from './overlay-links.js';
import { dataLength } from './overlay2.js';
import type { MountPlan, PlanOptions } from './types.js';

/** containers/storage's maxDepth: the kernel's overlay stack limit. */
export const MAX_LOWERS = 500;

async function extraDiffs(base: string): Promise<string[]> {
  const found: string[] = [];
  for (let n = 1; (await statOrUndefined(`${base}/diff${n}`)) !== undefined; n += 1) found.push(`${base}/diff${n}`);
  return found;
}

export class ContainersOverlayDriver extends PlannedMountDriver {
  readonly name = 'overlay' as const;

  async plan(storageRoot: string, layerId: string, planOptions: PlanOptions = {}): Promise<MountPlan> {
    validateLayerId(layerId);
    const home = path.join(path.resolve(storageRoot), 'overlay');
    const dir = path.join(home, layerId);
    if (!(await isDirectory(dir))) throw new LayerNotFoundError('overlay', layerId, dir);
    await this.refuseComposefs(home, layerId);
    const diff = path.join(dir, 'diff');
    if (!(await isDirectory(diff))) throw new BrokenLayoutError('overlay', dir, 'the layer has no diff/ directory');
    const work = path.join(dir, 'work');
    if (!(await isDirectory(work))) throw new BrokenLayoutError('overlay', dir, 'the layer has no work/ directory');

    const lowerFile = path.join(dir, 'lower');
    const lowerText = await readTextOrUndefined(lowerFile);
    const lowers = lowerText === undefined || lowerText === '' ? [] : parseLowerFile('overlay', lowerFile, lowerText);
    if (lowers.length > MAX_LOWERS) {
      throw new BrokenLayoutError('overlay', lowerFile, `max depth exceeded: ${lowers.length} lower layers, the limit is ${MAX_LOWERS}`);
    }

    const absLowers = await extraDiffs(dir);
    for (const entry of lowers) {
      const linkTarget = await requireLowerLink('overlay', home, layerId, entry);
      await this.refuseComposefs(home, path.basename(path.dirname(linkTarget)));
      const lower = path.join(home, entry);
      absLowers.push(lower, ...(await extraDiffs(`${lower}/..`)));
    }
    if (absLowers.length === 0) {
      const empty = path.join(dir, 'empty');
      if (!(await isDirectory(empty))) throw new BrokenLayoutError('overlay', dir, 'the layer has neither a lower file nor an empty/ directory');
      absLowers.push(empty);
    }

    const { kernel } = this.deps;
    const others = [...(planOptions.mountOptions ?? [])];
    if (!(await kernel.inInitialUserNamespace())) others.push('userxattr');

    const lowerdir = `lowerdir=${absLowers.join(':')}`;
    const target = path.join(dir, 'merged');
    const pageSize = kernel.pageSize();
    const base = { driver: 'overlay', type: 'overlay', source: 'overlay', target, steps: [], rootfs: target } as const;

    let options = [lowerdir, `upperdir=${diff}`, `workdir=${work}`, ...others];
    if (dataLength(options) < pageSize) return { ...base, options };

    options = [lowerdir, `upperdir=${path.join(layerId, 'diff')}`, `workdir=${path.join(layerId, 'work')}`, ...others];
    if (dataLength(options) < pageSize) return { ...base, options, cwd: home };

    options = [`upperdir=${diff}`, `workdir=${work}`, `lowerdir=${absLowers.map((_, i) => i + 3).join(':')}`, ...others];
    if (dataLength(options) >= pageSize) throw new MountDataTooLongError('overlay', dataLength(options), pageSize);
    return { ...base, options, cwd: '/proc/self/fd', fds: absLowers };
  }

  async checkKernel(): Promise<void> {
    await checkOverlaySupport(this.deps.kernel, 'overlay');
  }

  protected override detachOnUnmount(): boolean {
    return true;
  }

  private async refuseComposefs(home: string, layerId: string): Promise<void> {
    if ((await statOrUndefined(path.join(home, layerId, 'composefs-data'))) !== undefined) {
      throw new UnsupportedLayoutError(
        'overlay',
        `layer ${layerId} is a composefs layer`,
        'disable composefs in storage.conf (use_composefs = "false") and pull the image again',
      );
    }
  }
}
