/**
 * Builds images in temporary folders for the image source tests, as the tools write them: OCI
 * image layouts (blobs stored by digest, index.json, oci-layout) and docker archives in both
 * layouts (docker save before 25 and after). Layer tars come from GNU tar, gzip from node:zlib;
 * nothing here checks anything, so a test can write any broken variant it needs.
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { execa } from 'execa';
import type { ExecutionContext } from 'ava';

export const media = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: { os: string; architecture: string; variant?: string };
  [key: string]: unknown;
}

export async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'runtime-image-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

export function sha256(bytes: Buffer | string): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

export function hexOf(digest: string): string {
  return digest.slice('sha256:'.length);
}

/** A tar of the files (path -> content), made by GNU tar with fixed owners and times. */
export async function layerTar(files: Readonly<Record<string, string>>): Promise<Buffer> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'runtime-layer-'));
  try {
    for (const [name, content] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
      await writeFile(path.join(dir, name), content);
    }
    const result = await execa(
      'tar',
      ['--create', '--file=-', '--sort=name', '--mtime=@0', '--owner=0', '--group=0', '--numeric-owner', '-C', dir, ...Object.keys(files).sort()],
      { encoding: 'buffer' },
    );
    return Buffer.from(result.stdout);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export function gzip(bytes: Buffer): Buffer {
  return gzipSync(bytes);
}

/** Stores bytes under blobs/sha256/<hex> of the layout; returns a descriptor of them. */
export async function writeBlob(layout: string, bytes: Buffer | string, mediaType: string, extra: Partial<Descriptor> = {}): Promise<Descriptor> {
  const buffer = typeof bytes === 'string' ? Buffer.from(bytes) : bytes;
  const digest = sha256(buffer);
  await mkdir(path.join(layout, 'blobs', 'sha256'), { recursive: true });
  await writeFile(blobPath(layout, digest), buffer);
  return { mediaType, digest, size: buffer.length, ...extra };
}

export function blobPath(layout: string, digest: string): string {
  return path.join(layout, 'blobs', 'sha256', hexOf(digest));
}

export async function writeJsonBlob(layout: string, value: unknown, mediaType: string, extra: Partial<Descriptor> = {}): Promise<Descriptor> {
  return writeBlob(layout, JSON.stringify(value), mediaType, extra);
}

export interface LayerSpec {
  readonly files: Readonly<Record<string, string>>;
  readonly gzip?: boolean;
  /** The descriptor's media type; by default OCI's for the compression. */
  readonly mediaType?: string;
}

export interface ImageSpec {
  readonly architecture?: string;
  readonly os?: string;
  readonly variant?: string;
  readonly layers: readonly LayerSpec[];
  /** Docker's manifest and config media types instead of OCI's. */
  readonly docker?: boolean;
  readonly cmd?: readonly string[];
}

export interface WrittenImage {
  readonly manifest: Descriptor;
  readonly config: Descriptor;
  readonly configValue: Record<string, unknown>;
  readonly layers: readonly { readonly descriptor: Descriptor; readonly diffId: string; readonly bytes: Buffer; readonly tar: Buffer }[];
}

export function imageConfig(spec: ImageSpec, diffIds: readonly string[]): Record<string, unknown> {
  return {
    architecture: spec.architecture ?? 'amd64',
    os: spec.os ?? 'linux',
    ...(spec.variant ? { variant: spec.variant } : {}),
    created: '2024-01-01T00:00:00Z',
    config: { Env: ['PATH=/usr/bin:/bin'], Cmd: spec.cmd ?? ['/bin/sh'], Labels: null, WorkingDir: '/' },
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: [{ created_by: 'test' }],
  };
}

/** Writes an image's layers, config and manifest as blobs of the layout (not index.json). */
export async function writeImage(layout: string, spec: ImageSpec): Promise<WrittenImage> {
  const layers = [];
  for (const layer of spec.layers) {
    const tar = await layerTar(layer.files);
    const bytes = layer.gzip ? gzip(tar) : tar;
    const mediaType = layer.mediaType ?? (spec.docker ? media.dockerLayerGzip : layer.gzip ? media.ociLayerGzip : media.ociLayer);
    layers.push({ descriptor: await writeBlob(layout, bytes, mediaType), diffId: sha256(tar), bytes, tar });
  }
  const configValue = imageConfig(
    spec,
    layers.map((l) => l.diffId),
  );
  const config = await writeJsonBlob(layout, configValue, spec.docker ? media.dockerConfig : media.ociConfig);
  const manifestValue = {
    schemaVersion: 2,
    mediaType: spec.docker ? media.dockerManifest : media.ociManifest,
    config,
    layers: layers.map((l) => l.descriptor),
  };
  const manifest = await writeJsonBlob(layout, manifestValue, spec.docker ? media.dockerManifest : media.ociManifest);
  return { manifest, config, configValue, layers };
}

/** Writes oci-layout and index.json listing the descriptors. */
export async function writeIndex(layout: string, manifests: readonly Descriptor[]): Promise<void> {
  await mkdir(layout, { recursive: true });
  await writeFile(path.join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(path.join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: media.ociIndex, manifests }));
}

export function tagged(descriptor: Descriptor, tag: string): Descriptor {
  return { ...descriptor, annotations: { 'org.opencontainers.image.ref.name': tag } };
}

/** A layout holding one image under the tag; returns the layout's directory and the image. */
export async function singleImageLayout(t: ExecutionContext, spec: ImageSpec, tag = 'latest'): Promise<{ dir: string; image: WrittenImage }> {
  const dir = path.join(await tempDir(t), 'layout');
  const image = await writeImage(dir, spec);
  await writeIndex(dir, [tagged(image.manifest, tag)]);
  return { dir, image };
}

/** Reads a stream to its end. */
export async function collect(chunks: AsyncIterable<Buffer>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const chunk of chunks) out.push(chunk);
  return Buffer.concat(out);
}

export interface ArchiveImage {
  readonly repoTags: readonly string[] | null;
  readonly layers: readonly LayerSpec[];
  readonly architecture?: string;
}

export interface ArchiveLayout {
  /**
   * old: docker save before 25 (<id>/layer.tar, <hex>.json); blobs: Docker 25+ (blobs/sha256/<hex>,
   * index.json); podman: containers/image's (<diff id>.tar, <id>/layer.tar symlinks to it, named by the link).
   */
  readonly layout: 'old' | 'blobs' | 'podman';
}

export interface WrittenArchive {
  readonly file: string;
  readonly manifest: readonly Record<string, unknown>[];
  readonly images: readonly {
    readonly configDigest: string;
    readonly configName: string;
    readonly layers: readonly { readonly name: string; readonly diffId: string; readonly bytes: Buffer; readonly tar: Buffer }[];
  }[];
}

/**
 * Packs a docker archive with GNU tar (members named "./manifest.json" and so on, as tar -C dir .
 * writes them). `mangle` may change the staged files before they are packed.
 */
export async function writeDockerArchive(
  t: ExecutionContext,
  images: readonly ArchiveImage[],
  options: ArchiveLayout,
  mangle?: (staging: string, written: Omit<WrittenArchive, 'file'>) => Promise<void>,
): Promise<WrittenArchive> {
  const dir = await tempDir(t);
  const staging = path.join(dir, 'staging');
  await mkdir(staging);
  const manifest: Record<string, unknown>[] = [];
  const written: WrittenArchive['images'][number][] = [];
  for (const [index, image] of images.entries()) {
    const layers = [];
    for (const [position, layer] of image.layers.entries()) {
      const tar = await layerTar(layer.files);
      const bytes = layer.gzip ? gzip(tar) : tar;
      const diffId = sha256(tar);
      let name: string;
      if (options.layout === 'blobs') {
        name = `blobs/sha256/${hexOf(sha256(bytes))}`;
        await mkdir(path.join(staging, 'blobs', 'sha256'), { recursive: true });
      } else if (options.layout === 'podman') {
        const id = hexOf(sha256(`${index}/${position}/link`));
        await mkdir(path.join(staging, id));
        await symlink(`../${hexOf(diffId)}.tar`, path.join(staging, id, 'layer.tar'));
        await writeFile(path.join(staging, `${hexOf(diffId)}.tar`), bytes);
        layers.push({ name: `${id}/layer.tar`, diffId, bytes, tar });
        continue;
      } else {
        const id = hexOf(sha256(`${index}/${position}`));
        await mkdir(path.join(staging, id));
        name = `${id}/layer.tar`;
      }
      await writeFile(path.join(staging, name), bytes);
      layers.push({ name, diffId, bytes, tar });
    }
    const config = Buffer.from(
      JSON.stringify(
        imageConfig(
          { layers: image.layers, architecture: image.architecture ?? 'amd64' },
          layers.map((l) => l.diffId),
        ),
      ),
    );
    const configDigest = sha256(config);
    const configName = options.layout === 'blobs' ? `blobs/sha256/${hexOf(configDigest)}` : `${hexOf(configDigest)}.json`;
    await mkdir(path.dirname(path.join(staging, configName)), { recursive: true });
    await writeFile(path.join(staging, configName), config);
    manifest.push({ Config: configName, RepoTags: image.repoTags, Layers: layers.map((l) => l.name) });
    written.push({ configDigest, configName, layers });
  }
  await writeFile(path.join(staging, 'manifest.json'), JSON.stringify(manifest));
  if (options.layout === 'blobs') {
    await writeFile(path.join(staging, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    await writeFile(path.join(staging, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: media.ociIndex, manifests: [] }));
  }
  if (mangle) await mangle(staging, { manifest, images: written });
  const file = path.join(dir, 'image.tar');
  await execa('tar', ['--create', `--file=${file}`, '-C', staging, '.']);
  return { file, manifest, images: written };
}
