/**
 * A container's own tmpfs mounts (runc's /dev, /dev/shm and, on cgroup v1, /sys/fs/cgroup) are
 * dumped by CRIU as tar archives (tmpfs-dev-<dev>.tar.gz.img), and every restore runs tar and
 * gzip to fill each one again: about 15 ms apiece on a quiet machine here and 25 ms or more under
 * load, nearly half of a small container's restore, on every restore and every reset.
 *
 * After a dump, each such tmpfs is made external instead: its archive is unpacked once into a
 * directory beside the images (tmpfs-content-<dev>/tree, root's alone), its entry in the mountpoints
 * image is given an external key (TMPFS_KEY_PREFIX + dev), as CRIU itself records a mount it was
 * told is external, and the archive is removed. A restore then mounts a fresh tmpfs with the same
 * options, fills it from that directory (rootfs/tmpfs-copy.ts) and maps the key to it; CRIU binds
 * it in place and remounts it with the mount's own flags, as for any external mount.
 *
 * Only a plain private tmpfs is converted: the whole filesystem mounted at its root, not shared
 * or slave, read-write at the superblock, every other mount of the same filesystem already
 * external (runc binds /dev/null over masked files), its archive present, in a dump of one mount
 * namespace, its files neither sparse nor more than MAX_COPIED_BYTES (reasonToKeepArchive).
 * Anything else, and any failure, leaves the images exactly as CRIU wrote them.
 */
import { chmod, lstat, mkdir, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { trackChild } from '../system/spawned.js';
import { decodeImage, writeImage, type ImageEntry } from './images/index.js';

export const TMPFS_KEY_PREFIX = 'runtime-tmpfs:';
/** The tree inside a content directory: that directory stays root's alone (0700) whatever the tree's root allows. */
export const TMPFS_TREE = 'tree';

/** mnt.proto's fstype for tmpfs. */
const FSTYPE_TMPFS = 5;
const MS_RDONLY = 0x1;

/** A tmpfs made external: what a restore needs to mount and fill a new one. */
export interface CopiedTmpfs {
  /** The external key in the mountpoints image. */
  readonly key: string;
  /** Where it is mounted in the container. */
  readonly mountPoint: string;
  /** The mount's source ("tmpfs", "shm"), as mountinfo shows it. */
  readonly source: string;
  /** The superblock's options (size=65536k,mode=755). */
  readonly options: string;
  /** The mount's flags (MS_NOSUID, MS_STRICTATIME, ...), as CRIU recorded them. */
  readonly flags: number;
  /** The directory beside the images holding its files. */
  readonly content: string;
}

export interface MountEntry {
  readonly fstype: number;
  readonly mnt_id: number;
  readonly root_dev: number;
  readonly flags: number;
  readonly root: string;
  readonly mountpoint: string;
  readonly source: string;
  readonly options: string;
  readonly shared_id?: number;
  readonly master_id?: number;
  readonly sb_flags?: number;
  readonly ext_key?: string;
  readonly ext_mount?: boolean;
  readonly deleted?: boolean;
  readonly with_plugin?: boolean;
}

export function tmpfsArchive(dev: number): string {
  return `tmpfs-dev-${dev}.tar.gz.img`;
}

export function tmpfsContent(dev: number): string {
  return `tmpfs-content-${dev}`;
}

/** The tmpfs mounts of one mountpoints image that can be made external, given the files present. */
export function convertibleTmpfs(entries: readonly MountEntry[], files: ReadonlySet<string>): MountEntry[] {
  return entries.filter(
    (entry) =>
      entry.fstype === FSTYPE_TMPFS &&
      entry.root === '/' &&
      entry.ext_key === undefined &&
      !entry.ext_mount &&
      !entry.deleted &&
      !entry.with_plugin &&
      !entry.shared_id &&
      !entry.master_id &&
      ((entry.sb_flags ?? 0) & MS_RDONLY) === 0 &&
      files.has(tmpfsArchive(entry.root_dev)) &&
      entries.every((other) => other === entry || other.root_dev !== entry.root_dev || other.ext_key !== undefined),
  );
}

/** Unpacks one archive into an empty directory, owners and modes as they were (numeric ids). */
export type ArchiveExtractor = (archive: string, directory: string) => Promise<void>;

export const extractWithTar: ArchiveExtractor = async (archive, directory) => {
  // Minded as Node's own child: a stray sweep of the same process must not reap it.
  await trackChild(
    execa(
      'tar',
      [
        '--extract',
        '--gzip',
        '--numeric-owner',
        '--same-owner',
        '--preserve-permissions',
        '--no-unquote',
        '--no-wildcards',
        '--directory',
        directory,
        '--file',
        archive,
      ],
      {
        stdin: 'ignore',
      },
    ),
  );
};

/** Converted tmpfs mounts, written aside: commit() swaps them in, discard() leaves CRIU's images. */
export interface PreparedTmpfs {
  readonly copied: readonly CopiedTmpfs[];
  /** The tmpfs mounts left to CRIU's archives, each with why. */
  readonly kept: readonly string[];
  /** Replaces the mountpoints images and removes the archives (the images use the directories). */
  commit(): Promise<void>;
  /** Removes what was written; the images stay as CRIU wrote them. */
  discard(): Promise<void>;
}

/** A tree the runtime copies on every restore: a few small files, as runc's mounts hold. */
export const MAX_COPIED_BYTES = 16 * 2 ** 20;

/**
 * Why a tree unpacked from an archive stays CRIU's to restore, if it does: a sparse file (the
 * copy would write its holes out, and tmpfs lets a file's size pass the mount's size=), or more
 * than MAX_COPIED_BYTES in all (copied by the runtime's own process at every restore, charged
 * to its memory cgroup rather than the container's, as CRIU's tar in the container's cgroups was).
 */
export async function reasonToKeepArchive(tree: string): Promise<string | undefined> {
  let total = 0;
  const walk = async (directory: string): Promise<string | undefined> => {
    for (const entry of await readdir(directory, { withFileTypes: true })) {
      const file = path.join(directory, entry.name);
      if (entry.isDirectory()) {
        const reason = await walk(file);
        if (reason) return reason;
      } else if (entry.isFile()) {
        const info = await lstat(file);
        if (info.blocks * 512 < info.size) return `${path.relative(tree, file)} is sparse`;
        total += info.size;
        if (total > MAX_COPIED_BYTES) return `it holds more than ${MAX_COPIED_BYTES / 2 ** 20} MiB`;
      }
    }
    return undefined;
  };
  return walk(tree);
}

/**
 * Unpacks every convertible tmpfs of the images and writes the new mountpoints image aside (see
 * above); a tree reasonToKeepArchive names is left to CRIU, with the reason in `kept`. Only for a
 * dump of one mount namespace (a container's): the check that no other mount uses a filesystem
 * is made within one image. On a failure what was written is removed and the error thrown.
 */
export async function prepareTmpfsExternal(imageDir: string, extract: ArchiveExtractor = extractWithTar): Promise<PreparedTmpfs> {
  const files = new Set(await readdir(imageDir));
  const copied: CopiedTmpfs[] = [];
  const kept: string[] = [];
  const rewritten: string[] = [];
  const unpacked = new Map<number, string>();
  const discard = async () => {
    for (const file of rewritten) await rm(path.join(imageDir, `${file}.tmpfs`), { force: true });
    for (const directory of unpacked.values()) await rm(directory, { recursive: true, force: true });
  };
  const images = [...files].filter((name) => /^mountpoints-\d+\.img$/.test(name));
  try {
    const file = images.length === 1 ? images[0]! : undefined;
    const image = file === undefined ? undefined : await decodeImage(path.join(imageDir, file));
    const entries = (image?.entries ?? []) as unknown as MountEntry[];
    const chosen = new Map<MountEntry, string>();
    for (const entry of convertibleTmpfs(entries, files)) {
      const content = tmpfsContent(entry.root_dev);
      const directory = path.join(imageDir, content);
      if (!unpacked.has(entry.root_dev)) {
        await rm(directory, { recursive: true, force: true });
        await mkdir(path.join(directory, TMPFS_TREE), { recursive: true, mode: 0o700 });
        unpacked.set(entry.root_dev, directory);
        await extract(path.join(imageDir, tmpfsArchive(entry.root_dev)), path.join(directory, TMPFS_TREE));
      }
      const reason = await reasonToKeepArchive(path.join(directory, TMPFS_TREE));
      if (reason !== undefined) {
        kept.push(`${entry.mountpoint}: ${reason}`);
        unpacked.delete(entry.root_dev);
        await rm(directory, { recursive: true, force: true });
        continue;
      }
      const key = `${TMPFS_KEY_PREFIX}${entry.root_dev}`;
      chosen.set(entry, key);
      copied.push({ key, mountPoint: entry.mountpoint, source: entry.source, options: entry.options, flags: entry.flags, content });
    }
    if (file !== undefined && image !== undefined && chosen.size > 0) {
      const changed = entries.map((entry) => {
        const key = chosen.get(entry);
        return (key === undefined ? entry : { ...entry, ext_key: key }) as unknown as ImageEntry;
      });
      rewritten.push(file);
      await writeImage(path.join(imageDir, `${file}.tmpfs`), { magic: image.magic, entries: changed });
      await chmod(path.join(imageDir, `${file}.tmpfs`), 0o600);
    }
  } catch (error) {
    await discard();
    throw error;
  }
  return {
    copied,
    kept,
    discard,
    async commit() {
      for (const file of rewritten) await rename(path.join(imageDir, `${file}.tmpfs`), path.join(imageDir, file));
      for (const dev of unpacked.keys()) await rm(path.join(imageDir, tmpfsArchive(dev)), { force: true });
    },
  };
}
