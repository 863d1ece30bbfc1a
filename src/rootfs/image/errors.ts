/**
 * Errors of the image sources (an OCI image layout, a docker archive): a reference that does not
 * parse, an image that is not there, a file of it that is not what the formats say, a blob whose
 * bytes are not the ones its digest names, a format this runtime does not read, and an index with
 * nothing for this machine. Each names the file or part at fault and, in `hint`, what to do next.
 */
import { RuntimeError, type RuntimeErrorOptions } from '../../system/errors.js';
import type { Platform } from './types.js';

/** The forms a reference takes, for the hints. */
const referenceForms = 'oci:DIR[:TAG] (an OCI image layout) or docker-archive:FILE[:NAME[:TAG]|:@INDEX] (docker save, podman save)';

/** "linux/arm64/v8", as docker and containerd print a platform. */
export function formatPlatform(platform: Platform): string {
  return [platform.os, platform.architecture, platform.variant].filter((part) => part !== undefined && part !== '').join('/');
}

export class ImageReferenceError extends RuntimeError {
  readonly code = 'IMAGE_REFERENCE' as const;
  constructor(
    readonly reference: string,
    detail: string,
  ) {
    super(`bad image reference ${JSON.stringify(reference)}: ${detail}`, { hint: `write ${referenceForms}` });
  }
}

/** No such layout, archive, tag or archive entry. `available` lists what there is instead. */
export class ImageNotFoundError extends RuntimeError {
  readonly code = 'IMAGE_NOT_FOUND' as const;
  constructor(
    readonly reference: string,
    detail: string,
    readonly available: readonly string[] = [],
    options: RuntimeErrorOptions = {},
  ) {
    super(`image ${reference} not found: ${detail}${available.length > 0 ? ` (there are: ${available.join(', ')})` : ''}`, {
      hint: options.hint ?? (available.length > 0 ? `name one of those in the reference: ${referenceForms}` : `check the path; write ${referenceForms}`),
      cause: options.cause,
    });
  }
}

/**
 * A file of the image is not what its format says: `part` names it as the image has it
 * ("index.json", "blobs/sha256/<hex> (manifest)", "manifest.json") and `detail` what is wrong,
 * with the place in the JSON when there is one ("manifests[0].digest: not a sha256 digest").
 */
export class MalformedImageError extends RuntimeError {
  readonly code = 'IMAGE_MALFORMED' as const;
  constructor(
    readonly source: string,
    readonly part: string,
    readonly detail: string,
    options: RuntimeErrorOptions = {},
  ) {
    super(`malformed image ${source}: ${part}: ${detail}`, {
      hint: options.hint ?? 'the image is damaged or was not written by an image tool: write it again (skopeo copy, docker save, podman save)',
      cause: options.cause,
    });
  }
}

/** A blob's bytes are not the ones its descriptor names: its size or its digest differ. */
export class DigestMismatchError extends RuntimeError {
  readonly code = 'IMAGE_DIGEST_MISMATCH' as const;
  constructor(
    readonly source: string,
    /** The blob as the image names it ("blobs/sha256/<hex> (layer 2)"). */
    readonly blob: string,
    readonly what: 'digest' | 'size',
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`image ${source}: ${blob}: ${what} is ${actual}, but the image says ${expected}`, {
      hint: 'the image was modified or damaged after it was written: copy or save it again',
    });
  }
}

/** A media type, digest algorithm or format version this runtime does not read. */
export class UnsupportedImageError extends RuntimeError {
  readonly code = 'IMAGE_UNSUPPORTED' as const;
  constructor(
    readonly source: string,
    readonly part: string,
    detail: string,
    hint = 'convert the image with skopeo copy (it writes OCI image manifests with sha256 digests and gzip layers)',
  ) {
    super(`unsupported image ${source}: ${part}: ${detail}`, { hint });
  }
}

/** An image index offers no manifest for the wanted platform. */
export class NoMatchingPlatformError extends RuntimeError {
  readonly code = 'IMAGE_NO_MATCHING_PLATFORM' as const;
  constructor(
    readonly source: string,
    readonly wanted: Platform,
    readonly offered: readonly Platform[],
  ) {
    const list = offered.length > 0 ? offered.map(formatPlatform).join(', ') : 'none';
    super(`image ${source} has no manifest for ${formatPlatform(wanted)}: its index offers ${list}`, {
      hint: `copy the image for this machine's platform (skopeo copy --override-arch ${wanted.architecture}${wanted.variant ? ` --override-variant ${wanted.variant}` : ''}), or run it on a machine of one of those`,
    });
  }
}
