/**
 * What the runtime writes beside CRIU's images, so a checkpoint restores on its own (bare, under
 * a new id, or on another host): the container's description, the external mounts CRIU named,
 * and the init's stdio (descriptors.json, in runc's format) for inherit_fd.
 */
import { readFileSync } from 'node:fs';
import { access, lstat, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { RuntimeError } from './errors.js';
import type { ExternalMount } from './external-mounts.js';
import { ociRuntimes, type OciRuntimeName } from './config.js';
import { s, type Validator } from '../system/schema.js';
import { checkValue } from './json.js';
import { canonicalPath } from '../system/files.js';

export const METADATA_FILE = 'runtime-checkpoint.json';
export const DESCRIPTORS_FILE = 'descriptors.json';
export const SPEC_FILE = 'config.json';

export interface CheckpointMetadata {
  readonly formatVersion: 1;
  readonly id: string;
  readonly created: string;
  /** The bundle the container ran from. */
  readonly bundle: string;
  readonly rootfs: string;
  readonly cgroupPath: string;
  readonly ociRuntime: OciRuntimeName;
  readonly criuVersion: string;
  readonly leftRunning: boolean;
  readonly externalMounts: readonly ExternalMount[];
  readonly annotations: Readonly<Record<string, string>>;
}

export class CheckpointNotFoundError extends RuntimeError {
  readonly code = 'CHECKPOINT_NOT_FOUND' as const;
  constructor(
    readonly imagePath: string,
    reason: string,
  ) {
    super(`no checkpoint at ${imagePath}: ${reason}`, {
      hint: 'pass the --image-path a checkpoint was written to, or checkpoint the container first',
    });
  }
}

export class CorruptCheckpointError extends RuntimeError {
  readonly code = 'CORRUPT_CHECKPOINT' as const;
  constructor(
    readonly file: string,
    reason: string,
    options: { cause?: unknown } = {},
  ) {
    super(`the checkpoint file ${file} is unusable: ${reason}`, {
      ...options,
      hint: 'take a new checkpoint; this one cannot be restored by this runtime',
    });
  }
}

export async function writeCheckpointMetadata(
  imagePath: string,
  metadata: CheckpointMetadata,
  descriptors: readonly string[],
  specText: string,
): Promise<void> {
  await writePrivateFile(path.join(imagePath, METADATA_FILE), `${JSON.stringify(metadata, null, 2)}\n`);
  await writePrivateFile(path.join(imagePath, DESCRIPTORS_FILE), JSON.stringify(descriptors));
  await writePrivateFile(path.join(imagePath, SPEC_FILE), specText);
}

/** Replaces the metadata at once (written aside, then renamed over it). */
export async function replaceCheckpointMetadata(imagePath: string, metadata: CheckpointMetadata): Promise<void> {
  const file = path.join(imagePath, METADATA_FILE);
  await writePrivateFile(`${file}.new`, `${JSON.stringify(metadata, null, 2)}\n`);
  await rename(`${file}.new`, file);
}

/**
 * Writes a file only its owner (root) reads: the metadata holds the container's environment and
 * paths, as the images hold its memory. Whatever stood at that name (an older file, a symlink
 * planted there) is removed first, and the file is then created exclusively, so nothing is
 * written through a link.
 */
export async function writePrivateFile(file: string, text: string): Promise<void> {
  await rm(file, { force: true });
  await writeFile(file, text, { mode: 0o600, flag: 'wx' });
}

export interface CheckpointFiles {
  readonly metadata: CheckpointMetadata;
  readonly descriptors: readonly string[];
}

/** Reads what a restore needs, after checking that the directory holds CRIU images at all. */
export async function readCheckpoint(imagePath: string): Promise<CheckpointFiles> {
  try {
    await access(imagePath);
  } catch {
    throw new CheckpointNotFoundError(imagePath, 'the directory does not exist');
  }
  try {
    await access(path.join(imagePath, 'inventory.img'));
  } catch {
    throw new CheckpointNotFoundError(imagePath, 'it holds no CRIU images (inventory.img is missing)');
  }
  const metadataFile = path.join(imagePath, METADATA_FILE);
  const raw = await readJson(metadataFile);
  const version = (raw as { formatVersion?: unknown } | null)?.formatVersion;
  if (version !== 1) throw new CorruptCheckpointError(metadataFile, `unknown format ${String(version)}`);
  const metadata = validated(metadataSchema, raw, metadataFile) as CheckpointMetadata;
  const descriptorsFile = path.join(imagePath, DESCRIPTORS_FILE);
  const descriptors = await readJson(descriptorsFile);
  if (!Array.isArray(descriptors)) throw new CorruptCheckpointError(descriptorsFile, 'not a JSON array');
  return { metadata, descriptors: validated(s.array(s.string()), descriptors, descriptorsFile) };
}

const metadataSchema = s.object({
  formatVersion: s.literal(1),
  id: s.string().min(1),
  created: s.string(),
  bundle: s.string(),
  rootfs: s.string(),
  cgroupPath: s.string(),
  ociRuntime: s.enum(ociRuntimes),
  criuVersion: s.string(),
  leftRunning: s.boolean(),
  externalMounts: s.array(
    s
      .object({
        kind: s.enum(['bind', 'cgroup', 'masked', 'masked-directory', 'device', 'tmpfs']),
        mountPoint: s.string(),
        name: s.string(),
        tmpfs: s
          .object({
            source: s.string(),
            options: s.string(),
            flags: s.number().int().nonnegative(),
            // A directory beside the images, by the name the dump gave it: never a path elsewhere.
            content: s.string().regex(/^tmpfs-content-\d+$/),
          })
          .optional(),
      })
      .refine((mount) => (mount.kind === 'tmpfs') === (mount.tmpfs !== undefined), 'a tmpfs mount, and only one, describes its tmpfs'),
  ),
  annotations: s.record(s.string()),
});

function validated<T>(schema: Validator<T>, value: unknown, file: string): T {
  const checked = checkValue(schema, value, 'the file');
  if (!checked.ok) throw new CorruptCheckpointError(file, checked.reason);
  return checked.value;
}

async function readJson(file: string): Promise<unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new CorruptCheckpointError(file, 'it is missing (was this checkpoint written by runtime?)', { cause });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (cause) {
    throw new CorruptCheckpointError(file, (cause as Error).message, { cause });
  }
}

export class UnsafeImageDirectoryError extends RuntimeError {
  readonly code = 'UNSAFE_IMAGE_DIRECTORY' as const;
  constructor(
    readonly imagePath: string,
    purpose: string,
    reason: string,
  ) {
    super(`${imagePath} cannot ${purpose}: ${reason}`, {
      hint: "images are trusted only in a directory of root's (or the runtime user's) that no one else may write in, nor any directory above it: give a new directory (the runtime makes it, root's alone), or one of root's that only root may write in",
    });
  }
}

/**
 * A directory of images the runtime trusts: it belongs to the runtime's user and no one else may
 * write in it, nor rename it away and put their own in its place (every directory above it is
 * root's or the runtime user's, and writable by no one else unless sticky, as /tmp is). What is
 * in it holds process memory, and a restore runs what its metadata says (bundle, mounts).
 */
export async function requireTrustedDirectory(imagePath: string, uid: number, purpose: string): Promise<void> {
  const info = await lstat(imagePath).catch(() => undefined);
  if (!info) return;
  if (!info.isDirectory()) throw new UnsafeImageDirectoryError(imagePath, purpose, 'it is not a directory (a symbolic link?)');
  if (info.uid !== uid) throw new UnsafeImageDirectoryError(imagePath, purpose, `it belongs to uid ${info.uid}, not to the runtime's user (${uid})`);
  if ((info.mode & 0o022) !== 0)
    throw new UnsafeImageDirectoryError(imagePath, purpose, `others may write in it (mode ${(info.mode & 0o7777).toString(8).padStart(4, '0')})`);
  // The directories above it as named (a link there belongs to root or the runtime's user: its
  // mode says nothing), and as they really are (/var/run is a link to /run).
  await requireTrustedParents(imagePath, uid, purpose, true);
  await requireTrustedParents(canonicalPath(imagePath), uid, purpose, false);
}

async function requireTrustedParents(imagePath: string, uid: number, purpose: string, linksAllowed: boolean): Promise<void> {
  for (let dir = path.dirname(imagePath); ; dir = path.dirname(dir)) {
    const above = await lstat(dir);
    const owned = above.uid === 0 || above.uid === uid;
    const others = (above.mode & 0o022) !== 0 && (above.mode & 0o1000) === 0;
    if (above.isSymbolicLink() ? !linksAllowed || !owned : !owned || others)
      throw new UnsafeImageDirectoryError(imagePath, purpose, `${dir} above it belongs to uid ${above.uid} or others may write in it`);
    if (dir === path.dirname(dir)) break;
  }
}
