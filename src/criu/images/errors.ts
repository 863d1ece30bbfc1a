/** Errors of the CRIU image codec. Each names the file (or "<buffer>") and what to do next. */
import { RuntimeError, type RuntimeErrorOptions } from '../../system/errors.js';

/** Formats a 32-bit magic the way CRIT does (`%#x`), but always unsigned. */
export function hexMagic(value: number): string {
  return `0x${(value >>> 0).toString(16)}`;
}

/** The first word of the file is no image magic: a raw image (pages-*.img, *.tar.gz.img) or not an image. */
export class UnknownMagicError extends RuntimeError {
  readonly code = 'IMAGE_UNKNOWN_MAGIC' as const;
  constructor(
    readonly file: string,
    readonly magic: number,
  ) {
    super(`${file}: unknown image magic ${hexMagic(magic)}`, {
      hint: 'raw images (pages-*.img, tmpfs-*.tar.gz.img, network dumps) have no magic and cannot be decoded; ' + 'CRIT rejects them the same way',
    });
  }
}

/** The magic is known but pycriu has no handler for it (CRIT fails the same way). */
export class UnsupportedImageError extends RuntimeError {
  readonly code = 'IMAGE_UNSUPPORTED' as const;
  constructor(
    readonly file: string,
    readonly magicName: string,
    reason: string,
  ) {
    super(`${file}: images of type ${magicName} cannot be handled: ${reason}`, {
      hint: 'CRIT has no handler for this type either; inspect it with criu itself',
    });
  }
}

/** Truncated or garbage input: where it went wrong and why. */
export class CorruptImageError extends RuntimeError {
  readonly code = 'IMAGE_CORRUPT' as const;
  constructor(
    readonly file: string,
    readonly offset: number,
    readonly reason: string,
    options: RuntimeErrorOptions = {},
  ) {
    super(`${file}: corrupt image at byte ${offset}: ${reason}`, {
      hint: 'the image is truncated or damaged; take the checkpoint again',
      ...options,
    });
  }
}

/** JSON handed to the encoder does not describe a valid image (CRIT's `encode` would fail too). */
export class InvalidImageJsonError extends RuntimeError {
  readonly code = 'IMAGE_JSON_INVALID' as const;
  constructor(
    readonly path: string,
    reason: string,
    options: RuntimeErrorOptions = {},
  ) {
    super(`invalid image JSON at ${path}: ${reason}`, {
      hint: 'the JSON must have the shape `crit decode` prints: {"magic": NAME, "entries": [...]}',
      ...options,
    });
  }
}

/** pycriu's compiled protobuf descriptors, the source of every image message type, are missing. */
export class ImageDescriptorsNotFoundError extends RuntimeError {
  readonly code = 'IMAGE_DESCRIPTORS_NOT_FOUND' as const;
  constructor(
    readonly tried: readonly string[],
    reason: string,
    options: RuntimeErrorOptions = {},
  ) {
    super(`CRIU image descriptors not found (${reason}); looked in ${tried.join(', ') || 'nowhere'}`, {
      hint:
        "run `bash scripts/install-criu.sh` as root (it installs pycriu into /opt/runtime/criu/lib/pycriu), or a python3-pycriu of criu's version, " +
        'or set RUNTIME_PYCRIU_DIR to the pycriu package directory (the one with images/magic.py)',
      ...options,
    });
  }
}

/** The image file could not be opened or read (a system error, not damaged content). */
export class ImageReadError extends RuntimeError {
  readonly code = 'IMAGE_READ_FAILED' as const;
  constructor(
    readonly file: string,
    reason: string,
    options: RuntimeErrorOptions = {},
  ) {
    super(`${file}: cannot read the image: ${reason}`, {
      hint: 'check the path and that this user may read it (checkpoint images are usually root-only)',
      ...options,
    });
  }
}

/** The image could not be written. */
export class ImageWriteError extends RuntimeError {
  readonly code = 'IMAGE_WRITE_FAILED' as const;
  constructor(
    readonly file: string,
    reason: string,
    options: RuntimeErrorOptions = {},
  ) {
    super(`${file}: cannot write the image: ${reason}`, { hint: 'check the directory exists and is writable', ...options });
  }
}

/** A Node system error (ENOENT, EACCES, EIO, ...). */
export function isSystemError(error: unknown): error is NodeJS.ErrnoException {
  return (
    error instanceof Error && typeof (error as NodeJS.ErrnoException).code === 'string' && typeof (error as NodeJS.ErrnoException).syscall === 'string'
  );
}
