/**
 * Files as the runtime changes them. replaceFile: the new bytes are written beside the file (a
 * name of this process's, created exclusively), given the replaced file's mode and owner, and
 * renamed over it, so a reader sees the old file or the new one, never half of either, and a
 * failure leaves the old one as it was. canonicalPath: a path as the mount table names it.
 */
import { readlinkSync, realpathSync } from 'node:fs';
import { chmod, chown, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * The absolute path with every symbolic link resolved, as /proc/self/mountinfo names mount points
 * (a path that does not exist yet: its longest existing start resolved, the rest as given).
 * Compared with the mount table through a symbolic link, a mount below would go unseen, and a
 * recursive removal would go on through it.
 */
export function canonicalPath(file: string, depth = 0): string {
  const absolute = path.resolve(file);
  try {
    return realpathSync(absolute);
  } catch (error) {
    const parent = path.dirname(absolute);
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || parent === absolute || depth > 40) return absolute;
    // A link to what does not exist yet (a state root made on first use) names its target.
    const target = readLinkOrUndefined(absolute);
    if (target !== undefined) return canonicalPath(path.resolve(parent, target), depth + 1);
    return path.join(canonicalPath(parent, depth + 1), path.basename(absolute));
  }
}

function readLinkOrUndefined(file: string): string | undefined {
  try {
    return readlinkSync(file);
  } catch {
    return undefined;
  }
}

export async function replaceFile(file: string, bytes: Uint8Array): Promise<void> {
  const previous = await stat(file).catch(() => undefined);
  const aside = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    await writeFile(aside, bytes, { flag: 'wx', mode: previous ? previous.mode & 0o7777 : 0o666 });
    if (previous) {
      await chown(aside, previous.uid, previous.gid);
      await chmod(aside, previous.mode & 0o7777);
    }
    await rename(aside, file);
  } catch (error) {
    await rm(aside, { force: true });
    throw error;
  }
}
