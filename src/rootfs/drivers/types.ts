/**
 * One interface for every storage layout: plan the exact mount from the files on disk (no side
 * effects), check the kernel, mount, ask whether it is mounted, unmount. A plan is plain data, so
 * `runtime rootfs plan` can print it and a test can compare it with the engine's mount exactly.
 */
import type { MountService } from '../mount-service.js';
import type { KernelSupport } from '../kernel-support.js';

export const DRIVER_NAMES = ['dir', 'overlay2', 'overlay', 'aufs', 'devicemapper', 'image'] as const;
export type DriverName = (typeof DRIVER_NAMES)[number];

/** When a step runs: before mount(2), right after it, or after umount(2). */
export type StepPhase = 'before-mount' | 'after-mount' | 'after-unmount';

/** An extra action around the mount(2) call itself. */
export type PlanStep =
  | {
      readonly kind: 'command';
      readonly phase: StepPhase;
      readonly description: string;
      readonly argv: readonly string[];
      /** Skipped when this path exists (e.g. the device is already active). */
      readonly skipIfExists?: string;
      /** Run only when this path exists (e.g. deactivate a device that is active). */
      readonly onlyIfExists?: string;
    }
  | {
      /** mount(2) again with MS_REMOUNT on the target (aufs appends branches this way). */
      readonly kind: 'remount';
      readonly phase: StepPhase;
      readonly description: string;
      readonly fsType: string;
      readonly target: string;
      readonly options: readonly string[];
    };

export interface MountPlan {
  readonly driver: DriverName;
  /** Filesystem type for mount(2); "bind" for a bind mount. */
  readonly type: string;
  readonly source: string;
  /** Absolute mount point. */
  readonly target: string;
  /** Mount options; flag words (nodev, ro, ...) become MS_* flags, the rest is the data string. */
  readonly options: readonly string[];
  /** Extra actions in order, each with its phase (device activation, aufs appends, deactivation). */
  readonly steps: readonly PlanStep[];
  /** mountFrom: mount(2) runs with this cwd and relative paths in `options` resolve there. */
  readonly cwd?: string;
  /** mountFrom with descriptors: directories handed to the mounting process as fds 3, 4, ... */
  readonly fds?: readonly string[];
  /** The container's root filesystem once mounted (devicemapper: <target>/rootfs). */
  readonly rootfs: string;
}

/** Engine settings that live in the daemon's configuration, not on disk. */
export interface PlanOptions {
  /** Extra mount options: containers/storage `mountopt`, Docker `dm.mountopt`. */
  readonly mountOptions?: readonly string[];
  /** Docker `dm.thinpooldev`: the thin pool's name when the engine did not create it. */
  readonly thinPoolDevice?: string;
}

export interface RootfsDriver {
  readonly name: DriverName;
  /**
   * The exact mount for layer `layerId` under the engine's storage root (/var/lib/docker,
   * /var/lib/containers/storage). For `dir`, `storageRoot` is the bundle's root.path and
   * `layerId` is ignored.
   */
  plan(storageRoot: string, layerId: string, options?: PlanOptions): Promise<MountPlan>;
  /** Throws KernelSupportError naming what is missing and what to do. */
  checkKernel(): Promise<void>;
  /** Mounts unless already mounted; true when this call mounted it. */
  mount(plan: MountPlan): Promise<boolean>;
  isMounted(plan: MountPlan): Promise<boolean>;
  /** Unmounts when mounted, then runs the after-unmount steps; true when this call unmounted it. */
  unmount(plan: MountPlan): Promise<boolean>;
}

/** Runs a plan's extra commands (dmsetup, auplink). Swapped for a recording fake in tests. */
export interface CommandRunner {
  run(argv: readonly string[]): Promise<void>;
}

export interface DriverDeps {
  readonly mounts: MountService;
  readonly kernel: KernelSupport;
  readonly commands: CommandRunner;
}

/** Where a container's rootfs comes from, as `--storage-driver --storage-root --layer` give it. */
export interface StorageSpec {
  readonly driver: string;
  /** The engine's storage root (/var/lib/docker, /var/lib/containers/storage). */
  readonly storageRoot: string;
  readonly layer: string;
}
