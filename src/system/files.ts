/**
 * Replacing a file whole: the new bytes are written beside it (a name of this process's, created
 * exclusively), given the replaced file's mode and owner, and renamed over it, so a reader sees
 * the old file or the new one, never half of either, and a failure leaves the old one as it was.
 */
import { chmod, chown, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';

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
