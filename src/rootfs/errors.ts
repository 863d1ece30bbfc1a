/**
 * Errors of the rootfs storage drivers. Each names the layout, layer or kernel feature that is
 * wrong and, in `hint`, what the user can do about it.
 */
import { RuntimeError, describeError, type RuntimeErrorOptions } from '../system/errors.js';

export class UnknownDriverError extends RuntimeError {
  readonly code = 'ROOTFS_UNKNOWN_DRIVER' as const;
  constructor(
    readonly driver: string,
    known: readonly string[],
  ) {
    super(`unknown rootfs storage driver ${JSON.stringify(driver)}`, {
      hint: `use one of: ${known.join(', ')}`,
    });
  }
}

/** The layer (or its directory/metadata) is not in the storage root at all. */
export class LayerNotFoundError extends RuntimeError {
  readonly code = 'ROOTFS_LAYER_NOT_FOUND' as const;
  constructor(
    readonly driver: string,
    readonly layerId: string,
    readonly path: string,
    options: RuntimeErrorOptions = {},
  ) {
    super(`${driver} layer ${JSON.stringify(layerId)} not found: ${path} does not exist`, {
      hint:
        options.hint ??
        `check --storage-root (the engine's root, e.g. /var/lib/docker or /var/lib/containers/storage) and --layer (the container's layer id)`,
      cause: options.cause,
    });
  }
}

/** A layer the container needs (a parent/lower layer, a link to it) is missing. */
export class MissingLayerError extends RuntimeError {
  readonly code = 'ROOTFS_MISSING_LAYER' as const;
  constructor(
    readonly driver: string,
    readonly layerId: string,
    detail: string,
    options: RuntimeErrorOptions = {},
  ) {
    super(`${driver} layer ${JSON.stringify(layerId)} refers to a missing layer: ${detail}`, {
      hint: options.hint ?? "the engine's storage is incomplete; let the engine repair it (restart the daemon), or pull the image again",
      cause: options.cause,
    });
  }
}

/** A file of the layout is there but unreadable as the engine writes it. */
export class BrokenLayoutError extends RuntimeError {
  readonly code = 'ROOTFS_BROKEN_LAYOUT' as const;
  constructor(
    readonly driver: string,
    readonly path: string,
    detail: string,
    options: RuntimeErrorOptions = {},
  ) {
    super(`${driver} storage is broken at ${path}: ${detail}`, {
      hint: options.hint ?? 'the file was not written by the engine or was damaged; compare it with a healthy layer of the same engine',
      cause: options.cause,
    });
  }
}

/** A layout feature the engines have but this runtime does not mount (composefs, ...). */
export class UnsupportedLayoutError extends RuntimeError {
  readonly code = 'ROOTFS_UNSUPPORTED_LAYOUT' as const;
  constructor(
    readonly driver: string,
    detail: string,
    hint: string,
  ) {
    super(`${driver} layout not supported: ${detail}`, { hint });
  }
}

export class InvalidLayerIdError extends RuntimeError {
  readonly code = 'ROOTFS_INVALID_LAYER_ID' as const;
  constructor(readonly layerId: string) {
    super(`invalid layer id ${JSON.stringify(layerId)}: it must be one path component of letters, digits, "_", "-" and "."`, {
      hint: 'pass the layer id as the engine names it, e.g. the 64 hex digits of `docker inspect -f {{.GraphDriver.Data}}`',
    });
  }
}

/** The mount data does not fit in one page even in the engines' short form. */
export class MountDataTooLongError extends RuntimeError {
  readonly code = 'ROOTFS_MOUNT_DATA_TOO_LONG' as const;
  constructor(
    readonly driver: string,
    readonly length: number,
    readonly pageSize: number,
  ) {
    super(`${driver} mount data is ${length} bytes even in its shortest form; mount(2) takes at most ${pageSize - 1}`, {
      hint: 'the layer chain is too long for one mount; squash the image (fewer layers) or move the storage root to a shorter path',
    });
  }
}

/** The running kernel lacks a feature the driver needs. */
export class KernelSupportError extends RuntimeError {
  readonly code = 'ROOTFS_KERNEL_UNSUPPORTED' as const;
  constructor(
    readonly driver: string,
    readonly missing: string,
    hint: string,
  ) {
    super(`the ${driver} driver cannot mount on this kernel: ${missing}`, { hint });
  }
}

/** A device-mapper device cannot be used as the engine would. */
export class DeviceStateError extends RuntimeError {
  readonly code = 'ROOTFS_DEVICE_STATE' as const;
  constructor(
    readonly layerId: string,
    detail: string,
    hint: string,
  ) {
    super(`devicemapper device for layer ${JSON.stringify(layerId)} ${detail}`, { hint });
  }
}

/** Something other than the planned filesystem is mounted on the target. */
export class TargetBusyError extends RuntimeError {
  readonly code = 'ROOTFS_TARGET_BUSY' as const;
  constructor(
    readonly target: string,
    mountedType: string,
    plannedType: string,
  ) {
    super(`${target} is already a mount point of type ${mountedType}, not the planned ${plannedType}`, {
      hint: `unmount it first (umount ${target}) or check that --layer names the right container layer`,
    });
  }
}

export class RootfsMountError extends RuntimeError {
  readonly code = 'ROOTFS_MOUNT_FAILED' as const;
  constructor(
    readonly driver: string,
    readonly target: string,
    options: RuntimeErrorOptions,
  ) {
    super(`mounting the ${driver} rootfs on ${target} failed: ${describeError(options.cause)}`, options);
  }
}

export class RootfsUnmountError extends RuntimeError {
  readonly code = 'ROOTFS_UNMOUNT_FAILED' as const;
  constructor(
    readonly driver: string,
    readonly target: string,
    options: RuntimeErrorOptions,
  ) {
    super(`unmounting the ${driver} rootfs at ${target} failed: ${describeError(options.cause)}`, options);
  }
}

/** An extra command of a plan (dmsetup, ...) failed or is not installed. */
export class PlanStepError extends RuntimeError {
  readonly code = 'ROOTFS_STEP_FAILED' as const;
  constructor(
    readonly argv: readonly string[],
    detail: string,
    options: RuntimeErrorOptions,
  ) {
    super(`\`${argv.join(' ')}\` failed: ${detail}`, options);
  }
}

/** A plan made by one driver was handed to another. */
export class PlanMismatchError extends RuntimeError {
  readonly code = 'ROOTFS_PLAN_MISMATCH' as const;
  constructor(planDriver: string, driver: string) {
    super(`a ${planDriver} mount plan was given to the ${driver} driver`, {
      hint: `use driverFor(${JSON.stringify(planDriver)}) for this plan`,
    });
  }
}

export class SymlinkLoopError extends RuntimeError {
  readonly code = 'ROOTFS_SYMLINK_LOOP' as const;
  constructor(
    readonly unsafePath: string,
    readonly root: string,
  ) {
    super(`too many symlinks resolving ${unsafePath} in ${root}`, { hint: 'a symlink in the rootfs points back at itself' });
  }
}

/** A mount that failed in the mount helper without an errno, or a mount table that cannot be read. */
export class MountError extends RuntimeError {
  readonly code = 'MOUNT_FAILED' as const;
  constructor(message: string) {
    super(message, { hint: 'check the kernel log (`dmesg`) and the paths involved' });
  }
}
