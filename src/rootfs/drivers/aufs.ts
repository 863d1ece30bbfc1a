/**
 * Docker's aufs (moby daemon/graphdriver/aufs/aufs.go and dirs.go, last in moby v23), reproduced:
 *  - home is <storage root>/aufs with layers/<id> (the parent ids, one a line, nearest parent
 *    first), diff/<id> (the layer's files, whiteouts as .wh.<name>) and mnt/<id> (mount point).
 *  - No parents: Get returns diff/<id> without mounting. Here a bind of it onto itself.
 *  - Mount data: "br:<diff/id>=rw" then ":<diff/parent>=ro+wh" for as many parents as fit in
 *    pageSize - 54 bytes (54 leaves room for the options and an SELinux label; 9 more with
 *    dirperm1), then ",dio,xino=/dev/shm/aufs.xino" and ",dirperm1" when the kernel's aufs takes it
 *    (moby test-mounts a scratch aufs with dirperm1 once; so does this driver).
 *  - The parents that did not fit are added by remounting (MS_REMOUNT) with batches of
 *    "append:<diff/parent>=ro+wh," each batch within the same budget.
 *  - Unmount: `auplink <mnt> flush` (failure only warned about), then umount2(mnt, 0).
 *  - moby never passed "noplink"; neither does this driver.
 *  - A layer without a layers/<id> file is reported as not found (moby's Exists says the same;
 *    its Get would treat the layer as parentless).
 */
import path from 'node:path';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import { BrokenLayoutError, LayerNotFoundError, MissingLayerError, MountDataTooLongError } from '../errors.js';
import { checkAufsSupport } from '../kernel-support.js';
import { PlannedMountDriver } from './base.js';
import { isDirectory, readTextOrUndefined, validateLayerId } from './layout.js';
import type { MountPlan, PlanStep } from './types.js';

export const AUFS_XINO = 'xino=/dev/shm/aufs.xino';
/** Bytes moby keeps free in the page for ",dio,xino=/dev/shm/aufs.xino" and a label. */
export const AUFS_OPTIONS_RESERVE = 54;

export class AufsDriver extends PlannedMountDriver {
  readonly name = 'aufs' as const;
  private dirperm1: Promise<boolean> | undefined;

  async plan(storageRoot: string, layerId: string): Promise<MountPlan> {
    validateLayerId(layerId);
    const home = path.join(path.resolve(storageRoot), 'aufs');
    const layersFile = path.join(home, 'layers', layerId);
    const text = await readTextOrUndefined(layersFile);
    if (text === undefined) throw new LayerNotFoundError('aufs', layerId, layersFile);
    const rw = path.join(home, 'diff', layerId);
    if (!(await isDirectory(rw))) throw new LayerNotFoundError('aufs', layerId, rw);

    // bufio.Scanner lines: "\n" or "\r\n" separated, empty lines skipped.
    const parents = text
      .split('\n')
      .map((line) => line.replace(/\r$/, ''))
      .filter((line) => line !== '');
    const ro: string[] = [];
    for (const parent of parents) {
      if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(parent)) {
        throw new BrokenLayoutError('aufs', layersFile, `parent ${JSON.stringify(parent)} is not a layer id`);
      }
      const branch = path.join(home, 'diff', parent);
      if (!(await isDirectory(branch))) {
        throw new MissingLayerError('aufs', layerId, `parent layer ${parent} (listed in ${layersFile}) has no ${branch}`);
      }
      ro.push(branch);
    }
    if (ro.length === 0) {
      return { driver: 'aufs', type: 'bind', source: rw, target: rw, options: ['rbind'], steps: [], rootfs: rw };
    }

    const dirperm1 = await this.supportsDirperm1();
    const pageSize = this.deps.kernel.pageSize();
    const budget = pageSize - AUFS_OPTIONS_RESERVE - (dirperm1 ? ','.length + 'dirperm1'.length : 0);
    let branches = `br:${rw}=rw`;
    if (Buffer.byteLength(branches) > budget) throw new MountDataTooLongError('aufs', Buffer.byteLength(branches), pageSize);
    let index = 0;
    for (; index < ro.length; index += 1) {
      const layer = `:${ro[index]}=ro+wh`;
      if (Buffer.byteLength(branches) + Buffer.byteLength(layer) > budget) break;
      branches += layer;
    }
    const target = path.join(home, 'mnt', layerId);
    const steps: PlanStep[] = [];
    while (index < ro.length) {
      const batch: string[] = [];
      let used = 0;
      for (; index < ro.length; index += 1) {
        const append = `append:${ro[index]}=ro+wh`;
        if (used + Buffer.byteLength(append) + 1 > budget) break;
        batch.push(append);
        used += Buffer.byteLength(append) + 1;
      }
      if (batch.length === 0) throw new MountDataTooLongError('aufs', Buffer.byteLength(`append:${ro[index]}=ro+wh,`), pageSize);
      steps.push({
        kind: 'remount',
        phase: 'after-mount',
        description: `append ${batch.length} read-only branch${batch.length === 1 ? '' : 'es'} that did not fit in the first mount`,
        fsType: 'aufs',
        target,
        options: batch,
      });
    }
    const options = [branches, 'dio', AUFS_XINO, ...(dirperm1 ? ['dirperm1'] : [])];
    return { driver: 'aufs', type: 'aufs', source: 'none', target, options, steps, rootfs: target };
  }

  async checkKernel(): Promise<void> {
    await checkAufsSupport(this.deps.kernel);
  }

  protected override async beforeUnmount(plan: MountPlan): Promise<void> {
    if (plan.type !== 'aufs') return;
    // moby's Unmount: flush pseudo-links first; a missing auplink is only a warning there too.
    await this.deps.commands.run(['auplink', plan.target, 'flush']).catch(() => undefined);
  }

  /** moby's useDirperm: does a scratch aufs mount accept dirperm1? Asked once per driver. */
  private supportsDirperm1(): Promise<boolean> {
    this.dirperm1 ??= (async () => {
      if (!(await this.deps.kernel.filesystems()).includes('aufs')) return false;
      const base = await mkdtemp(path.join(os.tmpdir(), 'runtime-aufs-base'));
      const union = await mkdtemp(path.join(os.tmpdir(), 'runtime-aufs-union'));
      let supported = false;
      let clean = true;
      try {
        await this.deps.mounts.mount('none', union, 'aufs', 0, `br:${base},dirperm1,${AUFS_XINO}`);
        supported = true;
        await this.deps.mounts.unmount(union).catch(() => {
          clean = false;
        });
      } catch {
        supported = false;
      }
      await rm(base, { recursive: true, force: true });
      if (clean) await rm(union, { recursive: true, force: true });
      return supported;
    })();
    return this.dirperm1;
  }
}
