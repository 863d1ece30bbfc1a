/**
 * The rootfs storage drivers, selected per container by name. This file only wires: the layouts
 * are read in one file per driver.
 */
import { LinuxMountService } from '../mount-service.js';
import { ProcKernelSupport } from '../kernel-support.js';
import { PlanStepError, UnknownDriverError } from '../errors.js';
import { AufsDriver } from './aufs.js';
import { DeviceMapperDriver } from './devicemapper.js';
import { DirDriver } from './dir.js';
import { ImageDriver } from './image.js';
import { ContainersOverlayDriver } from './overlay.js';
import { Overlay2Driver } from './overlay2.js';
import { DRIVER_NAMES, type CommandRunner, type DriverDeps, type DriverName, type MountPlan, type PlanOptions, type RootfsDriver } from './types.js';
import { trackChild } from '../../system/spawned.js';

/** execa is loaded only when a command is run: it is slow to load, and most runs need none. */
const loadExeca = async () => (await import('execa')).execa;

export * from './types.js';
export { AufsDriver, ContainersOverlayDriver, DeviceMapperDriver, DirDriver, ImageDriver, Overlay2Driver };

/** Runs plan commands with execa; a missing program gets a hint naming its package. */
export class ExecaCommandRunner implements CommandRunner {
  async run(argv: readonly string[]): Promise<void> {
    const [file, ...args] = argv;
    if (file === undefined) return;
    const result = await trackChild((await loadExeca())(file, args, { reject: false }));
    if (!result.failed) return;
    const missing = (result.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
    const packages: Readonly<Record<string, string>> = { dmsetup: 'dmsetup (device-mapper)', auplink: 'aufs-tools' };
    const stderr = typeof result.stderr === 'string' ? result.stderr.trim() : '';
    throw new PlanStepError(argv, missing ? `${file} is not installed` : stderr || result.shortMessage || 'failed', {
      cause: result.cause ?? result,
      hint: missing ? `install ${packages[file] ?? file}` : "see the command's message above; `dmesg | tail` may say more",
    });
  }
}

export function isDriverName(name: string): name is DriverName {
  return (DRIVER_NAMES as readonly string[]).includes(name);
}

/** The host's services: mount(2) through libc, /proc and /sys as they are, commands via execa. */
export function defaultDriverDeps(): DriverDeps {
  return { mounts: new LinuxMountService(), kernel: new ProcKernelSupport(), commands: new ExecaCommandRunner() };
}

/** The driver named `name`; an unknown name is an error listing the known ones. */
export function driverFor(name: string, deps: Partial<DriverDeps> = {}): RootfsDriver {
  if (!isDriverName(name)) throw new UnknownDriverError(name, DRIVER_NAMES);
  const all: DriverDeps = { ...defaultDriverDeps(), ...deps };
  switch (name) {
    case 'dir':
      return new DirDriver(all);
    case 'overlay2':
      return new Overlay2Driver(all);
    case 'overlay':
      return new ContainersOverlayDriver(all);
    case 'aufs':
      return new AufsDriver(all);
    case 'devicemapper':
      return new DeviceMapperDriver(all);
    case 'image':
      return new ImageDriver(all);
  }
}

export interface PlanRequest {
  readonly driver: string;
  readonly storageRoot: string;
  readonly layer: string;
  readonly options?: PlanOptions;
}

/** `runtime rootfs plan --driver --storage-root --layer`: the plan, computed without mounting. */
export async function planRootfs(request: PlanRequest, deps: Partial<DriverDeps> = {}): Promise<MountPlan> {
  return driverFor(request.driver, deps).plan(request.storageRoot, request.layer, request.options);
}

/**
 * The plan as the CLI prints it: {"type","source","target","options","steps"} first, then
 * "cwd"/"fds" for a mount from a directory and "rootfs" (the container's root inside the mount).
 */
export function planToJson(plan: MountPlan): Record<string, unknown> {
  return {
    type: plan.type,
    source: plan.source,
    target: plan.target,
    options: plan.options,
    steps: plan.steps,
    ...(plan.cwd === undefined ? {} : { cwd: plan.cwd }),
    ...(plan.fds === undefined ? {} : { fds: plan.fds }),
    rootfs: plan.rootfs,
    driver: plan.driver,
  };
}
