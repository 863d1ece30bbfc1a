/**
 * What every driver does the same way once it has a plan: run the steps, mount(2) (directly, as a
 * bind, or from a directory), check mountinfo, unmount. The drivers only read their layout.
 */
import { mkdir, realpath } from 'node:fs/promises';
import { MS_REMOUNT, splitMountOptions } from '../mount-options.js';
import { PlanMismatchError, RootfsMountError, RootfsUnmountError, TargetBusyError } from '../errors.js';
import type { MountInfo } from '../mountinfo.js';
import type { DriverDeps, DriverName, MountPlan, PlanOptions, PlanStep, RootfsDriver, StepPhase } from './types.js';

async function canonical(path: string): Promise<string> {
  try {
    return await realpath(path);
  } catch {
    return path;
  }
}

export abstract class PlannedMountDriver implements RootfsDriver {
  abstract readonly name: DriverName;

  constructor(protected readonly deps: DriverDeps) {}

  abstract plan(storageRoot: string, layerId: string, options?: PlanOptions): Promise<MountPlan>;
  abstract checkKernel(): Promise<void>;

  /** umount2 flags: the engines detach overlay and devicemapper mounts (MNT_DETACH). */
  protected detachOnUnmount(): boolean {
    return false;
  }

  /** Hook after mount(2) and the after-mount steps (devicemapper creates rootfs/ and id). */
  protected async afterMount(_plan: MountPlan): Promise<void> {}

  /** Hook before umount(2) (aufs flushes pseudo-links with auplink). */
  protected async beforeUnmount(_plan: MountPlan): Promise<void> {}

  /** The top mount on the plan's target, if any. */
  private async topMount(plan: MountPlan): Promise<MountInfo | undefined> {
    const target = await canonical(plan.target);
    const mounts = await this.deps.mounts.mounts();
    return mounts.filter((m) => m.mountPoint === target).pop();
  }

  async isMounted(plan: MountPlan): Promise<boolean> {
    this.assertOwn(plan);
    const top = await this.topMount(plan);
    return top !== undefined && (plan.type === 'bind' || top.fsType === plan.type);
  }

  async mount(plan: MountPlan): Promise<boolean> {
    this.assertOwn(plan);
    await this.checkKernel();
    const top = await this.topMount(plan);
    if (top !== undefined) {
      if (plan.type === 'bind' || top.fsType === plan.type) return false;
      throw new TargetBusyError(plan.target, top.fsType, plan.type);
    }
    // Undo only what this call did: a device that was already active stays active.
    const activated = (await this.runSteps(plan, 'before-mount')) > 0;
    try {
      // The engines create the mount point at mount time (overlay2 merged/, devicemapper mnt/<id>).
      await mkdir(plan.target, { recursive: true, mode: 0o700 });
      await this.mountOnce(plan);
    } catch (error) {
      if (activated) await this.runSteps(plan, 'after-unmount').catch(() => undefined);
      throw error instanceof RootfsMountError ? error : new RootfsMountError(this.name, plan.target, { cause: error, hint: this.mountHint(plan) });
    }
    try {
      await this.runSteps(plan, 'after-mount');
      await this.afterMount(plan);
    } catch (error) {
      // As moby's aufsMount does: a half-built mount is taken down again.
      await this.deps.mounts.unmount(plan.target, { detach: true }).catch(() => undefined);
      if (activated) await this.runSteps(plan, 'after-unmount').catch(() => undefined);
      throw error instanceof RootfsMountError ? error : new RootfsMountError(this.name, plan.target, { cause: error, hint: this.mountHint(plan) });
    }
    return true;
  }

  async unmount(plan: MountPlan): Promise<boolean> {
    this.assertOwn(plan);
    if (!(await this.isMounted(plan))) return false;
    try {
      await this.beforeUnmount(plan);
      await this.deps.mounts.unmount(plan.target, { detach: this.detachOnUnmount() });
    } catch (error) {
      throw new RootfsUnmountError(this.name, plan.target, {
        cause: error,
        hint: `a process may still use it: \`fuser -vm ${plan.target}\` shows which; stop it and retry`,
      });
    }
    await this.runSteps(plan, 'after-unmount');
    return true;
  }

  protected mountHint(plan: MountPlan): string {
    return `run \`runtime rootfs plan --driver ${plan.driver} ...\` to see the mount, and \`dmesg | tail\` for the kernel's reason`;
  }

  private async mountOnce(plan: MountPlan): Promise<void> {
    const { mounts } = this.deps;
    if (plan.type === 'bind') {
      await mounts.bind(plan.source, plan.target);
      return;
    }
    const { flags, data } = splitMountOptions(plan.options);
    if (plan.cwd !== undefined) {
      await mounts.mountFrom(plan.cwd, plan.source, plan.target, plan.type, flags, data, plan.fds ?? []);
    } else {
      await mounts.mount(plan.source, plan.target, plan.type, flags, data);
    }
  }

  /** Runs the steps of one phase; how many actually ran (skipped ones do not count). */
  private async runSteps(plan: MountPlan, phase: StepPhase): Promise<number> {
    let ran = 0;
    for (const step of plan.steps) {
      if (step.phase === phase && (await this.runStep(step))) ran += 1;
    }
    return ran;
  }

  private async runStep(step: PlanStep): Promise<boolean> {
    if (step.kind === 'remount') {
      const { flags, data } = splitMountOptions(step.options);
      await this.deps.mounts.mount('none', step.target, step.fsType, flags | MS_REMOUNT, data);
      return true;
    }
    // Device nodes are kernel state: asked through KernelSupport, like the other kernel facts.
    const { kernel } = this.deps;
    if (step.skipIfExists !== undefined && (await kernel.pathExists(step.skipIfExists))) return false;
    if (step.onlyIfExists !== undefined && !(await kernel.pathExists(step.onlyIfExists))) return false;
    await this.deps.commands.run(step.argv);
    return true;
  }

  private assertOwn(plan: MountPlan): void {
    if (plan.driver !== this.name) throw new PlanMismatchError(plan.driver, this.name);
  }
}
