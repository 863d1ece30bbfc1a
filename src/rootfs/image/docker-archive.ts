/**
 * Reads an image from a docker archive: the tar `docker save`, `podman save` and
 * `skopeo copy ... docker-archive:` write. Its manifest.json lists the images it holds, each as
 * {Config, RepoTags, Layers}, naming members of the tar: the config JSON and the layer tars. Two
 * layouts exist and manifest.json reads both: the old one (`<id>/layer.tar`, `<hex>.json`, with
 * podman's `<hex>.tar` and symlinks between them) and Docker 25's, which is an OCI layout inside
 * the tar (`blobs/sha256/<hex>`, with an index.json this reader does not need).
 *
 * What is verified, and against what, since an archive carries fewer digests than a layout:
 * - the config: its sha256 is the image's config digest; when the member is named by a digest
 *   (`<hex>.json`, `blobs/sha256/<hex>`) the two must agree;
 * - a layer named by a digest (`blobs/sha256/<hex>`): its bytes against that digest, as they stream;
 * - an uncompressed layer named otherwise (`<id>/layer.tar`): its bytes against its diff id from
 *   the config (for a plain tar the blob is the diff), as they stream;
 * - a gzip layer named otherwise: the archive gives no digest of the compressed bytes, so its
 *   LayerBlob.digest is its diff id and the stream checks the size only. The diff id is checked
 *   by the layer store on the uncompressed stream (store.ts), as for every layer.
 * manifestDigest is the sha256 of the chosen manifest.json entry in canonical JSON (keys sorted,
 * no spaces): an archive has no manifest blob, and this stays the same when the archive is
 * re-saved with its images in another order.
 *
 * Members are found through the tar index of tar.ts and read in place: the archive is never
 * unpacked to disk.
 */
import { open, stat } from 'node:fs/promises';
import { posix } from 'node:path';
import { z } from 'zod';
import { RuntimeError } from '../../system/errors.js';
import { DigestMismatchError, ImageNotFoundError, ImageReferenceError, MalformedImageError, UnsupportedImageError } from './errors.js';
import { isGzip, parseJson, sha256, validate, validateConfig, verifiedStream, type BlobCheck } from './oci-layout.js';
import { indexTarFile, readTarFileMember, type TarMember } from './tar.js';
import type { LayerBlob, ResolvedImage } from './types.js';

/** Which entry of a docker archive: by repository name and tag, or by position in manifest.json. */
export type ArchiveSelector =
  /** A normalized name and tag, "docker.io/library/redis:7" (see normalizeImageName). */
  { readonly kind: 'name'; readonly name: string } | { readonly kind: 'index'; readonly index: number };

export interface DockerArchiveRequest {
  /** The archive file (absolute). */
  readonly file: string;
  /** Absent: the archive's only image. */
  readonly selector?: ArchiveSelector;
  /** The reference as the user gave it, for ResolvedImage and the errors. */
  readonly reference: string;
}

const ArchiveManifestSchema = z.array(
  z.looseObject({
    Config: z.string().min(1, 'must not be empty'),
    // Docker writes null for an image saved by id.
    RepoTags: z.array(z.string()).nullish(),
    Layers: z.array(z.string().min(1, 'must not be empty')),
  }),
);
type ArchiveEntry = z.infer<typeof ArchiveManifestSchema>[number];

/** manifest.json and configs are small; a bigger member is not one. */
const maxJsonMember = 32 * 1024 * 1024;

/** Symbolic links followed from a manifest.json name to a file member. */
const maxLinks = 16;

/** Layers named by what docker-archive layers are; OCI's names, since Docker's own .tar type is not in its spec. */
const layerMediaType = { none: 'application/vnd.oci.image.layer.v1.tar', gzip: 'application/vnd.oci.image.layer.v1.tar+gzip' } as const;

const nameComponent = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const tagPattern = /^\w[\w.-]{0,127}$/;
const domainPattern = /^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::\d+)?$/;

/**
 * A repository name with its tag, normalized as Docker's reference library does ("redis:7" is
 * "docker.io/library/redis:7"; no tag is ":latest", as skopeo reads docker-archive:FILE:NAME),
 * so the short names `docker save` writes and the full ones skopeo and podman write match either
 * way. Digest references are refused: RepoTags hold none. `reference` is what errors quote.
 */
export function normalizeImageName(name: string, reference: string = name): string {
  if (name.includes('@'))
    throw new ImageReferenceError(reference, `${JSON.stringify(name)}: a docker archive's images are named by NAME:TAG, not by digest`);
  const slash = name.lastIndexOf('/');
  const tagColon = name.indexOf(':', slash + 1);
  const repository = tagColon < 0 ? name : name.slice(0, tagColon);
  const tag = tagColon < 0 ? 'latest' : name.slice(tagColon + 1);
  if (!tagPattern.test(tag)) throw new ImageReferenceError(reference, `${JSON.stringify(tag)} is not a valid tag`);

  const parts = repository.split('/');
  let domain = 'docker.io';
  // Docker's rule: a first component with a dot or a port, or "localhost", is a registry.
  const first = parts[0]!;
  if (parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    if (!domainPattern.test(first)) throw new ImageReferenceError(reference, `${JSON.stringify(first)} is not a valid registry host`);
    domain = parts.shift()!;
  }
  if (domain === 'index.docker.io') domain = 'docker.io';
  if (domain === 'docker.io' && parts.length === 1) parts.unshift('library');
  for (const part of parts) {
    if (!nameComponent.test(part)) {
      throw new ImageReferenceError(
        reference,
        `${JSON.stringify(repository)} is not a valid repository name (lower-case letters and digits, joined by . _ -)`,
      );
    }
  }
  return `${domain}/${parts.join('/')}:${tag}`;
}

/** A RepoTags entry normalized, or as written when it does not parse (it then matches nothing). */
function normalizedTag(tag: string): string {
  try {
    return normalizeImageName(tag);
  } catch {
    return tag;
  }
}

/** The keys of every object sorted, no spaces: one text for one value, whatever wrote it. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const object = value as Record<string, unknown>;
    return `{${Object.keys(object)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonicalJson(object[key])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

/** Reads and verifies the image an archive holds under the selector, down to its layers' members. */
export async function readDockerArchive(request: DockerArchiveRequest): Promise<ResolvedImage> {
  const { file, reference: source } = request;
  await checkArchiveFile(file, source);
  const members = await indexTarFile(file).catch((error: unknown) => {
    // The tar reader's own error says where the tar is broken; this one says which image it was.
    if (error instanceof RuntimeError) throw new MalformedImageError(source, file, error.message, { cause: error });
    throw error;
  });
  const archive = new Archive(file, source, members);

  const manifestMember = archive.find('manifest.json', 'manifest.json', {
    hint: 'it is not a docker archive (docker save, podman save): for an OCI image layout use oci:DIR[:TAG]',
  });
  const rawManifest = parseJson(await archive.readSmall(manifestMember.member, 'manifest.json'), source, 'manifest.json');
  const entries = validate(ArchiveManifestSchema, rawManifest, source, 'manifest.json');
  if (entries.length === 0) throw new MalformedImageError(source, 'manifest.json', 'lists no images');
  const position = selectEntry(entries, request.selector, source);
  const entry = entries[position]!;
  const entryPart = `manifest.json: [${position}]`;

  const config = archive.find(entry.Config, `${entryPart}.Config`);
  const configBytes = await archive.readSmall(config.member, config.name);
  const configDigest = sha256(configBytes);
  const named = digestInName(config.name, /\.json$/);
  if (named !== undefined && named !== configDigest) throw new DigestMismatchError(source, config.name, 'digest', named, configDigest);
  const imageConfig = validateConfig(parseJson(configBytes, source, config.name), entry.Layers.length, source, config.name);

  const layers: LayerBlob[] = [];
  for (const [index, name] of entry.Layers.entries()) {
    layers.push(await archive.layerBlob(name, `${entryPart}.Layers[${index}]`, imageConfig.rootfs.diff_ids[index]!));
  }
  return {
    reference: source,
    manifestDigest: sha256(Buffer.from(canonicalJson((rawManifest as unknown[])[position]))),
    configDigest,
    config: imageConfig,
    layers,
    platform: imageConfig.variant
      ? { os: imageConfig.os, architecture: imageConfig.architecture, variant: imageConfig.variant }
      : { os: imageConfig.os, architecture: imageConfig.architecture },
  };
}

/** The archive must be a file, and a tar as it is: its members are read in place. */
async function checkArchiveFile(file: string, source: string): Promise<void> {
  const info = await stat(file).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') throw new ImageNotFoundError(source, `there is no file ${file}`);
    throw error;
  });
  if (info.isDirectory()) {
    throw new ImageNotFoundError(source, `${file} is a directory, not a docker archive`, [], { hint: 'for an OCI image layout, use oci:DIR[:TAG]' });
  }
  const handle = await open(file, 'r');
  let head: Buffer;
  try {
    head = Buffer.alloc(6);
    head = head.subarray(0, (await handle.read(head, 0, head.length, 0)).bytesRead);
  } finally {
    await handle.close();
  }
  const compression = compressionOf(head);
  if (compression !== undefined) {
    throw new UnsupportedImageError(
      source,
      file,
      `the archive is ${compression}-compressed: its members are read in place, which needs the plain tar`,
      `decompress it first (${compression === 'gzip' ? 'gunzip -k' : compression === 'zstd' ? 'zstd -d' : compression === 'xz' ? 'xz -dk' : 'bunzip2 -k'} FILE) and name the .tar`,
    );
  }
}

function compressionOf(head: Buffer): 'gzip' | 'zstd' | 'xz' | 'bzip2' | undefined {
  if (isGzip(head)) return 'gzip';
  if (head.subarray(0, 4).equals(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))) return 'zstd';
  if (head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (head.subarray(0, 3).toString('latin1') === 'BZh') return 'bzip2';
  return undefined;
}

/** "nginx:1.27" or "untagged", for the lists errors give. */
function describeEntry(entry: ArchiveEntry, index: number): string {
  const tags = entry.RepoTags ?? [];
  return `@${index} (${tags.length > 0 ? tags.join(', ') : 'untagged'})`;
}

function selectEntry(entries: readonly ArchiveEntry[], selector: ArchiveSelector | undefined, source: string): number {
  const listing = entries.map(describeEntry);
  if (selector === undefined) {
    if (entries.length === 1) return 0;
    throw new ImageNotFoundError(source, `the archive holds ${entries.length} images: name one by NAME:TAG or @INDEX`, listing);
  }
  if (selector.kind === 'index') {
    if (selector.index < entries.length) return selector.index;
    throw new ImageNotFoundError(
      source,
      `the archive holds ${entries.length} image${entries.length === 1 ? '' : 's'}, so there is no @${selector.index}`,
      listing,
    );
  }
  const wanted = normalizedTag(selector.name);
  const found = entries.findIndex((entry) => (entry.RepoTags ?? []).some((tag) => normalizedTag(tag) === wanted));
  if (found >= 0) return found;
  const tags = entries.flatMap((entry) => entry.RepoTags ?? []);
  throw new ImageNotFoundError(source, `no image in the archive is tagged ${wanted}`, tags.length > 0 ? tags : listing);
}

/** The digest a member's name gives: blobs/sha256/<hex>, or <hex> followed by the suffix. */
function digestInName(name: string, suffix?: RegExp): string | undefined {
  const blob = /^blobs\/sha256\/([a-f0-9]{64})$/.exec(name);
  if (blob) return `sha256:${blob[1]}`;
  if (suffix === undefined) return undefined;
  const base = posix.basename(name);
  const hex = base.replace(suffix, '');
  return hex !== base && /^[a-f0-9]{64}$/.test(hex) ? `sha256:${hex}` : undefined;
}

class Archive {
  constructor(
    readonly file: string,
    readonly source: string,
    readonly members: ReadonlyMap<string, TarMember>,
  ) {}

  /**
   * The file member a manifest.json name leads to, through symbolic and hard links (podman's
   * archives link `<id>/layer.tar` to `<hex>.tar`; a hard link's data is its target's).
   */
  find(name: string, part: string, options: { readonly hint?: string } = {}): { readonly name: string; readonly member: TarMember } {
    let current = posix.normalize(name).replace(/^(\.\/)+/, '');
    for (let links = 0; links <= maxLinks; links++) {
      const member = this.members.get(current);
      if (!member) {
        const via = current === name ? '' : ` (reached through links as ${JSON.stringify(current)})`;
        throw new MalformedImageError(this.source, part, `${JSON.stringify(name)}${via} is not in the archive`, options);
      }
      switch (member.entry.type) {
        case 'file':
          if (member.entry.sparse)
            throw new MalformedImageError(this.source, part, `${JSON.stringify(current)} is a sparse file, which image tools never write`);
          return { name: current, member };
        case 'symlink':
          current = posix.normalize(posix.join(posix.dirname(current), member.entry.linkname));
          break;
        case 'hardlink':
          current = posix.normalize(member.entry.linkname).replace(/^(\.\/)+/, '');
          break;
        default:
          throw new MalformedImageError(this.source, part, `${JSON.stringify(current)} is a ${member.entry.type}, not a file`);
      }
    }
    throw new MalformedImageError(this.source, part, `${JSON.stringify(name)}: more than ${maxLinks} links in a row`);
  }

  async readSmall(member: TarMember, part: string): Promise<Buffer> {
    if (member.size > maxJsonMember) throw new MalformedImageError(this.source, part, `${member.size} bytes: too large for JSON metadata`);
    const chunks: Buffer[] = [];
    for await (const chunk of readTarFileMember(this.file, member)) chunks.push(chunk);
    return Buffer.concat(chunks);
  }

  async layerBlob(name: string, part: string, diffId: string): Promise<LayerBlob> {
    const found = this.find(name, part);
    const head = await this.head(found.member);
    if (compressionOf(head) === 'zstd') {
      throw new UnsupportedImageError(
        this.source,
        found.name,
        'a zstd-compressed layer',
        'recompress its layers with gzip: skopeo copy --dest-compress-format gzip SOURCE oci:DIR:TAG',
      );
    }
    const compression = isGzip(head) ? 'gzip' : 'none';
    const named = digestInName(found.name);
    // See the header: a gzip layer with no digest in its name has none to check but its diff id.
    const digest = named ?? diffId;
    const checkDigest = named !== undefined || compression === 'none';
    const check: BlobCheck = { source: this.source, blob: found.name, size: found.member.size, ...(checkDigest ? { digest } : {}) };
    const { file } = this;
    const member = found.member;
    return {
      digest,
      mediaType: layerMediaType[compression],
      compression,
      size: member.size,
      diffId,
      open: () => verifiedStream(readTarFileMember(file, member), check),
    };
  }

  /** The first bytes of a member, to tell its compression. */
  private async head(member: TarMember): Promise<Buffer> {
    const handle = await open(this.file, 'r');
    try {
      const head = Buffer.alloc(Math.min(6, member.size));
      const { bytesRead } = await handle.read(head, 0, head.length, member.offset);
      return head.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
  }
}
