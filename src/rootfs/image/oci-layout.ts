/**
 * Reads an image from an OCI image layout (image-spec image-layout.md), the directory skopeo,
 * buildah, umoci and `docker buildx --output type=oci` write: `oci-layout`, `index.json`, and
 * every blob under blobs/<alg>/<hex>. The image is picked by its tag (the index's
 * org.opencontainers.image.ref.name annotation), then through nested image indexes (OCI's, and
 * Docker's manifest list) by platform, down to one manifest, its config and its layers.
 *
 * Nothing is trusted: every JSON blob is read whole and checked against its descriptor's size and
 * sha256 digest before it is parsed, then validated; a layer blob is checked as its stream is
 * consumed (LayerBlob.open), so a bit flipped anywhere fails the run with the blob named. Blob
 * paths come from digests that must be "sha256:" and 64 lowercase hex digits, so a descriptor
 * cannot name a file outside the layout.
 *
 * The pieces docker-archive.ts shares (the config's schema, JSON checking, the verifying stream,
 * the digest patterns) live here too: a docker archive's config is an OCI image config.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { DigestMismatchError, ImageNotFoundError, MalformedImageError, NoMatchingPlatformError, UnsupportedImageError } from './errors.js';
import type { ImageConfig, LayerBlob, Platform, ResolvedImage } from './types.js';

export const mediaTypes = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
} as const;

/** Docker's schema 1 manifests (signed or not): no config blob, no diff ids. */
const schema1MediaTypes: readonly string[] = [
  'application/vnd.docker.distribution.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v1+prettyjws',
];

const indexMediaTypes: readonly string[] = [mediaTypes.ociIndex, mediaTypes.dockerManifestList];
const manifestMediaTypes: readonly string[] = [mediaTypes.ociManifest, mediaTypes.dockerManifest];
const configMediaTypes: readonly string[] = [mediaTypes.ociConfig, mediaTypes.dockerConfig];

/**
 * Layer media types and how their blobs are compressed. Docker's are sniffed as well: tools have
 * labelled plain tars .tar.gzip (and Docker's .tar variant is not in its own spec).
 */
const layerMediaTypes: ReadonlyMap<string, { readonly compression: 'gzip' | 'none'; readonly sniff: boolean }> = new Map([
  ['application/vnd.oci.image.layer.v1.tar', { compression: 'none', sniff: false }],
  ['application/vnd.oci.image.layer.v1.tar+gzip', { compression: 'gzip', sniff: false }],
  ['application/vnd.oci.image.layer.nondistributable.v1.tar', { compression: 'none', sniff: false }],
  ['application/vnd.oci.image.layer.nondistributable.v1.tar+gzip', { compression: 'gzip', sniff: false }],
  ['application/vnd.docker.image.rootfs.diff.tar.gzip', { compression: 'gzip', sniff: true }],
  ['application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', { compression: 'gzip', sniff: true }],
  ['application/vnd.docker.image.rootfs.diff.tar', { compression: 'none', sniff: true }],
  ['application/vnd.docker.image.rootfs.foreign.diff.tar', { compression: 'none', sniff: true }],
]);

const zstdHint = 'recompress its layers with gzip: skopeo copy --dest-compress-format gzip SOURCE oci:DIR:TAG';

/** The annotation that tags a manifest in index.json. */
export const refNameAnnotation = 'org.opencontainers.image.ref.name';

/** Manifests and configs are small (registries cap manifests at 4 MiB): a larger one is not one. */
const maxJsonBlob = 32 * 1024 * 1024;

/** Nested indexes followed at most (an index of indexes is already unusual). */
const maxIndexDepth = 4;

export const sha256Pattern = /^sha256:([a-f0-9]{64})$/;
/** Any digest the image-spec grammar allows; those not sha256 parse, and are refused as unsupported when read. */
const otherDigestPattern = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
const notSha256 = 'not a sha256 digest ("sha256:" and 64 lowercase hex digits)';

export const Sha256Schema = z.string().regex(sha256Pattern, notSha256);
const DigestSchema = z.string().refine((d) => sha256Pattern.test(d) || (!d.startsWith('sha256:') && otherDigestPattern.test(d)), notSha256);

const PlatformSchema = z.looseObject({
  architecture: z.string(),
  os: z.string(),
  variant: z.string().optional(),
});

const DescriptorSchema = z.looseObject({
  mediaType: z.string().min(1, 'must not be empty'),
  digest: DigestSchema,
  size: z.number().int().nonnegative(),
  urls: z.array(z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  platform: PlatformSchema.optional(),
});
type Descriptor = z.infer<typeof DescriptorSchema>;

const OciLayoutSchema = z.looseObject({ imageLayoutVersion: z.string() });

const IndexSchema = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  manifests: z.array(DescriptorSchema),
});

const ManifestSchema = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  config: DescriptorSchema,
  layers: z.array(DescriptorSchema),
});

/** Docker writes null for an empty list or map; the runtime reads that as absent. */
function orNull<T extends z.ZodType>(schema: T) {
  return schema.nullish().transform((value) => value ?? undefined);
}

const RunConfigSchema = z.object({
  User: z.string().optional(),
  ExposedPorts: orNull(z.record(z.string(), z.looseObject({}))),
  Env: orNull(z.array(z.string())),
  Entrypoint: z.array(z.string()).nullish(),
  Cmd: z.array(z.string()).nullish(),
  Volumes: orNull(z.record(z.string(), z.looseObject({}))),
  WorkingDir: z.string().optional(),
  Labels: orNull(z.record(z.string(), z.string())),
  StopSignal: z.string().optional(),
});

/** The OCI image config as the runtime reads it; unknown keys (history, healthcheck) are dropped. */
export const ImageConfigSchema = z.object({
  architecture: z.string().min(1, 'must not be empty'),
  os: z.string().min(1, 'must not be empty'),
  variant: z.string().optional(),
  created: z.string().optional(),
  config: orNull(RunConfigSchema),
  rootfs: z.object({
    type: z.literal('layers'),
    diff_ids: z.array(Sha256Schema),
  }),
});

/** "manifests[0].digest", as a reader of the JSON would point at it. */
function formatPath(keys: readonly PropertyKey[]): string {
  return keys
    .map((key, index) => {
      if (typeof key === 'number') return `[${key}]`;
      const name = String(key);
      if (!/^[A-Za-z_$][\w$]*$/.test(name)) return `[${JSON.stringify(name)}]`;
      return index === 0 ? name : `.${name}`;
    })
    .join('');
}

/** Parses bytes as JSON, or throws MalformedImageError naming the part. */
export function parseJson(bytes: Buffer, source: string, part: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    throw new MalformedImageError(source, part, `not JSON: ${(error as Error).message}`, { cause: error });
  }
}

/** Validates a parsed value, or throws MalformedImageError naming the part and the place in it. */
export function validate<T>(schema: z.ZodType<T>, value: unknown, source: string, part: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const where = formatPath(issue.path);
  throw new MalformedImageError(source, part, where ? `${where}: ${issue.message}` : issue.message);
}

/** The config, checked against the layer count the manifest or archive gives. */
export function validateConfig(value: unknown, layerCount: number, source: string, part: string): ImageConfig {
  const config: ImageConfig = validate(ImageConfigSchema, value, source, part);
  if (config.rootfs.diff_ids.length !== layerCount) {
    throw new MalformedImageError(source, part, `rootfs.diff_ids lists ${config.rootfs.diff_ids.length} layers, but the image has ${layerCount}`);
  }
  return config;
}

export function sha256(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** What a blob's stream must add up to; no digest when the source gives none to check. */
export interface BlobCheck {
  readonly source: string;
  /** The blob as the image names it, for the error. */
  readonly blob: string;
  readonly size: number;
  readonly digest?: string;
}

/**
 * Passes chunks through, counting and hashing them. More bytes than the size fail at once; a
 * short blob or a different digest fails at the end, after the last chunk (the consumer has then
 * read everything, and must discard what it made of it).
 */
export async function* verifiedStream(chunks: AsyncIterable<Buffer>, check: BlobCheck): AsyncGenerator<Buffer, void, undefined> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of chunks) {
    size += chunk.length;
    if (size > check.size) throw new DigestMismatchError(check.source, check.blob, 'size', String(check.size), `more than ${check.size}`);
    hash.update(chunk);
    yield chunk;
  }
  if (size !== check.size) throw new DigestMismatchError(check.source, check.blob, 'size', String(check.size), String(size));
  if (check.digest !== undefined) {
    const actual = `sha256:${hash.digest('hex')}`;
    if (actual !== check.digest) throw new DigestMismatchError(check.source, check.blob, 'digest', check.digest, actual);
  }
}

/** Gzip's magic bytes (RFC 1952). */
export function isGzip(head: Buffer): boolean {
  return head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b;
}

/** Normalized as containerd's platforms.Normalize does: so "aarch64" is arm64, and arm64's v8 is no variant. */
export function normalizePlatform(platform: Platform): Platform {
  const os = platform.os.toLowerCase();
  let architecture = platform.architecture.toLowerCase();
  let variant = platform.variant ?? '';
  switch (architecture) {
    case 'i386':
      architecture = '386';
      variant = '';
      break;
    case 'x86_64':
    case 'x86-64':
    case 'amd64':
      architecture = 'amd64';
      if (variant === 'v1') variant = '';
      break;
    case 'aarch64':
    case 'arm64':
      architecture = 'arm64';
      if (variant === '8' || variant === 'v8' || variant === 'v8.0') variant = '';
      break;
    case 'armhf':
      architecture = 'arm';
      variant = 'v7';
      break;
    case 'armel':
      architecture = 'arm';
      variant = 'v6';
      break;
    case 'arm':
      if (variant === '' || variant === '7') variant = 'v7';
      else if (/^[5-8]$/.test(variant)) variant = `v${variant}`;
      break;
  }
  return variant === '' ? { os, architecture } : { os, architecture, variant };
}

/**
 * The variants a machine of this platform runs, best first, as containerd's platform matcher
 * orders them: an arm v7 runs v6 and v5 code, an amd64 v3 runs v2 and v1 (no variant).
 */
function runnableVariants(wanted: Platform): readonly string[] {
  const variant = wanted.variant ?? '';
  const level = /^v(\d+)$/.exec(variant);
  if (wanted.architecture === 'arm' && level) {
    const out: string[] = [];
    for (let n = Number(level[1]); n >= 5; n--) out.push(`v${n}`);
    return out;
  }
  if (wanted.architecture === 'amd64' && level) {
    const out: string[] = [];
    for (let n = Number(level[1]); n >= 2; n--) out.push(`v${n}`);
    return [...out, ''];
  }
  return [variant];
}

/** How well an offered platform suits the wanted one: 0 best, undefined when it does not run. */
export function platformRank(wanted: Platform, offered: Platform): number | undefined {
  const w = normalizePlatform(wanted);
  const o = normalizePlatform(offered);
  if (w.os !== o.os || w.architecture !== o.architecture) return undefined;
  const rank = runnableVariants(w).indexOf(o.variant ?? '');
  return rank < 0 ? undefined : rank;
}

/** Picks the best manifest of an index for the platform (the first of equals, as containerd does). */
function pickPlatform(descriptors: readonly Descriptor[], wanted: Platform, source: string): Descriptor {
  let best: { descriptor: Descriptor; rank: number } | undefined;
  for (const descriptor of descriptors) {
    if (!descriptor.platform) continue;
    const rank = platformRank(wanted, descriptor.platform);
    if (rank !== undefined && (best === undefined || rank < best.rank)) best = { descriptor, rank };
  }
  if (best) return best.descriptor;
  const offered = descriptors.flatMap((d) => (d.platform ? [d.platform] : []));
  throw new NoMatchingPlatformError(
    source,
    wanted,
    // buildx's attestation manifests say unknown/unknown: they are not images to offer.
    offered
      .filter((p) => p.os !== 'unknown')
      .map((p) => (p.variant ? { os: p.os, architecture: p.architecture, variant: p.variant } : { os: p.os, architecture: p.architecture })),
  );
}

export interface OciLayoutRequest {
  /** The layout's directory (absolute). */
  readonly dir: string;
  /** The org.opencontainers.image.ref.name to pick; none: the layout's only image. */
  readonly tag?: string;
  readonly platform: Platform;
  /** The reference as the user gave it, for ResolvedImage and the errors. */
  readonly reference: string;
}

/** Reads and verifies the image a layout holds under the tag, down to its layers' files. */
export async function readOciLayout(request: OciLayoutRequest): Promise<ResolvedImage> {
  const layout = new OciLayout(request.dir, request.reference);
  await layout.checkLayoutFile();
  const index = await layout.readIndexFile();
  const top = selectByTag(index.manifests, request.tag, request.platform, request.reference);
  const { descriptor, manifest, part } = await layout.resolveManifest(top.descriptor, top.part, request.platform, 0);

  if (!configMediaTypes.includes(manifest.config.mediaType)) {
    throw new UnsupportedImageError(
      request.reference,
      `${part}: config.mediaType`,
      `${JSON.stringify(manifest.config.mediaType)} is not a container image's config (an artifact?)`,
      `this runtime runs container images, whose config is ${mediaTypes.ociConfig}`,
    );
  }
  const configPart = layout.partOf(manifest.config.digest, 'config');
  const config = validateConfig(await layout.readJsonBlob(manifest.config, configPart), manifest.layers.length, request.reference, configPart);

  const layers: LayerBlob[] = [];
  for (const [index, layer] of manifest.layers.entries()) {
    layers.push(await layout.layerBlob(layer, config.rootfs.diff_ids[index]!, `layer ${index + 1}`));
  }
  return {
    reference: request.reference,
    manifestDigest: descriptor.digest,
    configDigest: manifest.config.digest,
    config,
    layers,
    platform: config.variant
      ? { os: config.os, architecture: config.architecture, variant: config.variant }
      : { os: config.os, architecture: config.architecture },
  };
}

/**
 * The entry of index.json the tag names. Without a tag: the only entry, or, when every entry
 * names a platform (an index written flat, as some builders do), the one for this machine.
 */
function selectByTag(
  manifests: readonly Descriptor[],
  tag: string | undefined,
  platform: Platform,
  source: string,
): { readonly descriptor: Descriptor; readonly part: string } {
  const tags = [...new Set(manifests.flatMap((d) => (d.annotations?.[refNameAnnotation] !== undefined ? [d.annotations[refNameAnnotation]] : [])))];
  const candidates = tag === undefined ? manifests : manifests.filter((d) => d.annotations?.[refNameAnnotation] === tag);
  const part = (d: Descriptor) => `index.json: manifests[${manifests.indexOf(d)}]`;
  if (candidates.length === 1) return { descriptor: candidates[0]!, part: part(candidates[0]!) };
  if (candidates.length > 1 && candidates.every((d) => d.platform !== undefined)) {
    const descriptor = pickPlatform(candidates, platform, source);
    return { descriptor, part: part(descriptor) };
  }
  if (tag !== undefined) {
    if (candidates.length === 0) throw new ImageNotFoundError(source, `no manifest in index.json is tagged ${JSON.stringify(tag)}`, tags);
    throw new MalformedImageError(
      source,
      'index.json',
      `${candidates.length} manifests are tagged ${JSON.stringify(tag)}, and not each for its own platform`,
    );
  }
  if (manifests.length === 0) throw new ImageNotFoundError(source, 'index.json lists no manifests: the layout is empty');
  throw new ImageNotFoundError(
    source,
    `the layout holds ${manifests.length} images${tags.length === 0 ? ', none of them tagged' : ''}: name one by its tag`,
    tags,
    tags.length === 0 ? { hint: 'tag the image when copying it: skopeo copy SOURCE oci:DIR:TAG' } : {},
  );
}

class OciLayout {
  constructor(
    readonly dir: string,
    readonly source: string,
  ) {}

  /** The blob's path, from a digest already checked to be sha256 and 64 hex digits. */
  blobFile(digest: string, part: string): string {
    const match = sha256Pattern.exec(digest);
    if (match) return path.join(this.dir, 'blobs', 'sha256', match[1]!);
    if (digest.startsWith('sha512:')) {
      throw new UnsupportedImageError(
        this.source,
        part,
        `digest ${digest.slice(0, 19)}…: only sha256 digests are supported`,
        'copy the image again with skopeo copy, which writes sha256 digests',
      );
    }
    throw new UnsupportedImageError(this.source, part, `digest ${JSON.stringify(digest)}: only sha256 digests are supported`);
  }

  /** "manifest blobs/sha256/<hex>", as errors name a blob. */
  partOf(digest: string, what: string): string {
    const match = sha256Pattern.exec(digest);
    return match ? `${what} blobs/sha256/${match[1]}` : `${what} ${digest}`;
  }

  async checkLayoutFile(): Promise<void> {
    const info = await stat(this.dir).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') throw new ImageNotFoundError(this.source, `there is no directory ${this.dir}`);
      throw error;
    });
    if (!info.isDirectory()) {
      throw new ImageNotFoundError(this.source, `${this.dir} is not a directory (an OCI image layout is one)`, [], {
        hint: 'for a tar archive written by docker save or podman save, use docker-archive:FILE',
      });
    }
    const bytes = await readFile(path.join(this.dir, 'oci-layout')).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') {
        throw new MalformedImageError(this.source, 'oci-layout', `missing: ${this.dir} is not an OCI image layout`, {
          hint: 'write one with skopeo copy SOURCE oci:DIR:TAG (or umoci, buildah push)',
        });
      }
      throw error;
    });
    const { imageLayoutVersion } = validate(OciLayoutSchema, parseJson(bytes, this.source, 'oci-layout'), this.source, 'oci-layout');
    if (imageLayoutVersion !== '1.0.0') {
      throw new UnsupportedImageError(this.source, 'oci-layout', `imageLayoutVersion ${JSON.stringify(imageLayoutVersion)}: this runtime reads "1.0.0"`);
    }
  }

  async readIndexFile(): Promise<z.infer<typeof IndexSchema>> {
    const bytes = await readFile(path.join(this.dir, 'index.json')).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') throw new MalformedImageError(this.source, 'index.json', 'missing');
      throw error;
    });
    const index = validate(IndexSchema, parseJson(bytes, this.source, 'index.json'), this.source, 'index.json');
    if (index.mediaType !== undefined && index.mediaType !== mediaTypes.ociIndex) {
      throw new MalformedImageError(this.source, 'index.json', `mediaType is ${JSON.stringify(index.mediaType)}, not ${mediaTypes.ociIndex}`);
    }
    return index;
  }

  /** Follows a descriptor through image indexes, by platform, to an image manifest. */
  async resolveManifest(
    descriptor: Descriptor,
    from: string,
    platform: Platform,
    depth: number,
  ): Promise<{ readonly descriptor: Descriptor; readonly manifest: z.infer<typeof ManifestSchema>; readonly part: string }> {
    if (schema1MediaTypes.includes(descriptor.mediaType)) throw this.schema1(from);
    const isIndex = indexMediaTypes.includes(descriptor.mediaType);
    if (!isIndex && !manifestMediaTypes.includes(descriptor.mediaType)) {
      const zstd = descriptor.mediaType.includes('zstd');
      throw new UnsupportedImageError(
        this.source,
        `${from}: mediaType`,
        `${JSON.stringify(descriptor.mediaType)} is neither an image index nor an image manifest`,
        zstd ? zstdHint : undefined,
      );
    }
    const part = this.partOf(descriptor.digest, isIndex ? 'index' : 'manifest');
    const value = await this.readJsonBlob(descriptor, part);
    if (typeof value === 'object' && value !== null && (value as { schemaVersion?: unknown }).schemaVersion === 1) throw this.schema1(part);

    if (!isIndex) {
      const manifest = validate(ManifestSchema, value, this.source, part);
      this.checkMediaType(manifest.mediaType, descriptor.mediaType, part);
      return { descriptor, manifest, part };
    }
    if (depth >= maxIndexDepth) throw new MalformedImageError(this.source, part, `image indexes nested more than ${maxIndexDepth} deep`);
    const index = validate(IndexSchema, value, this.source, part);
    this.checkMediaType(index.mediaType, descriptor.mediaType, part);
    const chosen = pickPlatform(index.manifests, platform, this.source);
    return this.resolveManifest(chosen, `${part}: manifests[${index.manifests.indexOf(chosen)}]`, platform, depth + 1);
  }

  /** A blob's own mediaType, when it gives one, must be its descriptor's (image-spec: a mismatch is an error). */
  private checkMediaType(own: string | undefined, described: string, part: string): void {
    if (own !== undefined && own !== described) {
      throw new MalformedImageError(this.source, part, `mediaType is ${JSON.stringify(own)}, but its descriptor says ${JSON.stringify(described)}`);
    }
  }

  private schema1(part: string): UnsupportedImageError {
    return new UnsupportedImageError(
      this.source,
      part,
      'a Docker schema 1 manifest (it has no config and no layer digests to check)',
      'convert it: skopeo copy --format oci SOURCE oci:DIR:TAG',
    );
  }

  /** A JSON blob's value, once its size and digest are the descriptor's. */
  async readJsonBlob(descriptor: Descriptor, part: string): Promise<unknown> {
    const file = this.blobFile(descriptor.digest, part);
    const info = await this.statBlob(file, part, descriptor);
    if (info.size !== descriptor.size) throw new DigestMismatchError(this.source, part, 'size', String(descriptor.size), String(info.size));
    if (info.size > maxJsonBlob) throw new MalformedImageError(this.source, part, `${info.size} bytes: too large for a manifest or config`);
    const bytes = await readFile(file);
    // The file may have changed since stat: the size is checked again on what was read.
    if (bytes.length !== descriptor.size) throw new DigestMismatchError(this.source, part, 'size', String(descriptor.size), String(bytes.length));
    const actual = sha256(bytes);
    if (actual !== descriptor.digest) throw new DigestMismatchError(this.source, part, 'digest', descriptor.digest, actual);
    return parseJson(bytes, this.source, part);
  }

  private async statBlob(file: string, part: string, descriptor: Descriptor) {
    const info = await stat(file).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
      const foreign = descriptor.urls !== undefined && descriptor.urls.length > 0;
      throw new MalformedImageError(this.source, part, 'missing from the layout', {
        hint: foreign
          ? 'it is a non-distributable layer that was not copied: copy the image again with skopeo copy --preserve-digests (it fetches such layers from their urls)'
          : 'the layout is incomplete: copy the image into it again',
      });
    });
    // A FIFO or a device would hang the read or never end: blobs are files.
    if (!info.isFile()) throw new MalformedImageError(this.source, part, 'not a regular file');
    return info;
  }

  /** A blob file's bytes; a blob removed since the image was resolved is named as missing. */
  private async *streamBlob(file: string, part: string): AsyncGenerator<Buffer, void, undefined> {
    try {
      for await (const chunk of createReadStream(file)) yield chunk as Buffer;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT')
        throw new MalformedImageError(this.source, part, 'missing from the layout', { cause: error });
      throw error;
    }
  }

  /** A layer's blob, its presence and size checked now, its bytes when it is opened. */
  async layerBlob(descriptor: Descriptor, diffId: string, what: string): Promise<LayerBlob> {
    const part = this.partOf(descriptor.digest, what);
    const kind = layerMediaTypes.get(descriptor.mediaType);
    if (!kind) {
      const zstd = descriptor.mediaType.includes('zstd');
      throw new UnsupportedImageError(
        this.source,
        part,
        zstd
          ? `layer media type ${descriptor.mediaType}: zstd-compressed layers are not supported`
          : `layer media type ${JSON.stringify(descriptor.mediaType)} is not supported`,
        zstd ? zstdHint : undefined,
      );
    }
    const file = this.blobFile(descriptor.digest, part);
    const info = await this.statBlob(file, part, descriptor);
    if (info.size !== descriptor.size) throw new DigestMismatchError(this.source, part, 'size', String(descriptor.size), String(info.size));
    const compression = kind.sniff ? ((await sniffGzip(file)) ? 'gzip' : 'none') : kind.compression;
    const check: BlobCheck = { source: this.source, blob: part, size: descriptor.size, digest: descriptor.digest };
    return {
      digest: descriptor.digest,
      mediaType: descriptor.mediaType,
      compression,
      size: descriptor.size,
      diffId,
      open: () => verifiedStream(this.streamBlob(file, part), check),
    };
  }
}

async function sniffGzip(file: string): Promise<boolean> {
  const handle = await open(file, 'r');
  try {
    const head = Buffer.alloc(2);
    const { bytesRead } = await handle.read(head, 0, 2, 0);
    return isGzip(head.subarray(0, bytesRead));
  } finally {
    await handle.close();
  }
}
