/**
 * Where an image comes from, as the user names it: `oci:DIR[:TAG]` for an OCI image layout
 * (skopeo, buildah, umoci) and `docker-archive:FILE[:NAME[:TAG]|:@INDEX]` for a `docker save` /
 * `podman save` tar. The syntax is skopeo's (containers/image transports), so a reference that
 * `skopeo copy` wrote an image to reads it back here. resolveImage hands the reference to its
 * reader, which verifies what it reads, and returns the image for the layer store.
 */
import path from 'node:path';
import os from 'node:os';
import { normalizeImageName, readDockerArchive, type ArchiveSelector } from './docker-archive.js';
import { ImageReferenceError, NoMatchingPlatformError } from './errors.js';
import { platformRank, readOciLayout } from './oci-layout.js';
import type { Platform, ResolvedImage } from './types.js';

export type { ArchiveSelector };

export type ImageReference =
  | {
      readonly transport: 'oci';
      /** The reference as the user wrote it. */
      readonly text: string;
      /** The layout directory, absolute. */
      readonly path: string;
      /** The org.opencontainers.image.ref.name to pick; absent: the layout's only image. */
      readonly tag?: string;
    }
  | {
      readonly transport: 'docker-archive';
      readonly text: string;
      /** The archive file, absolute. */
      readonly path: string;
      /** Absent: the archive's only image. */
      readonly selector?: ArchiveSelector;
    };

/**
 * An OCI ref.name annotation (image-spec annotations.md): components of alphanumerics joined by
 * one of -._:@+ (or --), separated by slashes. A tag such as "7" or "v1.2-alpine" is one.
 */
const refNamePattern = /^[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*(?:\/[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*)*$/;

/**
 * Parses a reference. The first colon after the transport ends the path, as skopeo splits it:
 * a path with a colon in it cannot be named (rename it, or link to it).
 */
export function parseImageReference(text: string): ImageReference {
  const colon = text.indexOf(':');
  const transport = colon < 0 ? '' : text.slice(0, colon);
  const rest = text.slice(colon + 1);
  if (transport !== 'oci' && transport !== 'docker-archive') {
    throw new ImageReferenceError(text, colon < 0 ? 'no transport' : `unknown transport ${JSON.stringify(transport)}`);
  }
  const split = rest.indexOf(':');
  const file = split < 0 ? rest : rest.slice(0, split);
  const suffix = split < 0 ? undefined : rest.slice(split + 1);
  if (file === '') throw new ImageReferenceError(text, `no ${transport === 'oci' ? 'directory' : 'file'} after "${transport}:"`);
  const absolute = path.resolve(file);

  if (transport === 'oci') {
    if (suffix === undefined) return { transport, text, path: absolute };
    if (!refNamePattern.test(suffix)) {
      throw new ImageReferenceError(text, `${JSON.stringify(suffix)} is not a valid tag (letters, digits and -._:@+/ between them)`);
    }
    return { transport, text, path: absolute, tag: suffix };
  }
  if (suffix === undefined) return { transport, text, path: absolute };
  if (suffix.startsWith('@')) {
    const digits = suffix.slice(1);
    if (!/^\d+$/.test(digits) || !Number.isSafeInteger(Number(digits))) {
      throw new ImageReferenceError(text, `${JSON.stringify(suffix)}: @ must be followed by the image's index in the archive (@0, @1, ...)`);
    }
    return { transport, text, path: absolute, selector: { kind: 'index', index: Number(digits) } };
  }
  return { transport, text, path: absolute, selector: { kind: 'name', name: normalizeImageName(suffix, text) } };
}

/** Node's process.arch as OCI (GOARCH) names it. */
const architectures: Readonly<Record<string, string>> = {
  x64: 'amd64',
  arm64: 'arm64',
  arm: 'arm',
  ia32: '386',
  ppc64: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
  loong64: 'loong64',
  mips64el: 'mips64le',
  mipsel: 'mipsle',
};

/** This machine's platform, as image indexes name platforms. */
export function hostPlatform(): Platform {
  const arch = process.arch;
  if (arch === 'arm64') return { os: 'linux', architecture: 'arm64', variant: 'v8' };
  if (arch === 'arm') {
    // Node's own build says which ARM it runs on; v7 (armhf) is what distributions ship.
    const version = (process.config.variables as Readonly<Record<string, unknown>>)['arm_version'];
    return { os: 'linux', architecture: 'arm', variant: `v${typeof version === 'string' && /^[5-8]$/.test(version) ? version : '7'}` };
  }
  // Node reports big-endian and little-endian ppc64 alike; the OCI names differ.
  if (arch === 'ppc64' && os.endianness() === 'BE') return { os: 'linux', architecture: 'ppc64' };
  return { os: 'linux', architecture: architectures[arch] ?? arch };
}

/** Reads, and verifies, the image a reference names; the platform picks from image indexes. */
export async function resolveImage(reference: ImageReference | string, platform: Platform = hostPlatform()): Promise<ResolvedImage> {
  const ref = typeof reference === 'string' ? parseImageReference(reference) : reference;
  const image =
    ref.transport === 'oci'
      ? await readOciLayout({ dir: ref.path, ...(ref.tag === undefined ? {} : { tag: ref.tag }), platform, reference: ref.text })
      : await readDockerArchive({ file: ref.path, ...(ref.selector === undefined ? {} : { selector: ref.selector }), reference: ref.text });
  // An image of one manifest says its platform only in its config: one built for another
  // machine is refused here, not by an "exec format error" once it runs.
  if (platformRank(platform, image.platform) === undefined) throw new NoMatchingPlatformError(ref.text, platform, [image.platform]);
  return image;
}

/**
 * The reference as the store records it: the path absolute, the tag or selector as given
 * ("oci:/srv/images/redis:7", "docker-archive:/srv/redis.tar:docker.io/library/redis:7"), so
 * the same image named from two directories is one name.
 */
export function canonicalReference(reference: ImageReference): string {
  if (reference.transport === 'oci') return `oci:${reference.path}${reference.tag === undefined ? '' : `:${reference.tag}`}`;
  const selector = reference.selector;
  const suffix = selector === undefined ? '' : selector.kind === 'index' ? `:@${selector.index}` : `:${selector.name}`;
  return `docker-archive:${reference.path}${suffix}`;
}
