/** Reading CRIU's log after a failure: the last error lines are what the user needs first. */
import { copyFile, open } from 'node:fs/promises';

const TAIL_BYTES = 64 * 1024;

/**
 * The last `limit` lines that CRIU marked as errors (its "Error (file:line): ..." lines), or the
 * last lines of the log when none is marked. Empty when the log cannot be read.
 */
export async function criuLogTail(logPath: string, limit = 5): Promise<string[]> {
  let text: string;
  try {
    const handle = await open(logPath, 'r');
    try {
      const { size } = await handle.stat();
      const start = Math.max(0, size - TAIL_BYTES);
      const buffer = Buffer.alloc(size - start);
      await handle.read(buffer, 0, buffer.length, start);
      text = buffer.toString('utf8');
    } finally {
      await handle.close();
    }
  } catch {
    return [];
  }
  return tailOfLog(text, limit);
}

export function tailOfLog(text: string, limit = 5): string[] {
  const lines = text
    .split('\n')
    .map((line) => line.trimEnd())
    .filter((line) => line !== '');
  const errors = lines.filter((line) => /\bError\b/.test(line));
  return (errors.length > 0 ? errors : lines).slice(-limit);
}

/** Copies a log out of a directory about to be removed; the new path, or undefined if none was there. */
export async function keepLog(logPath: string, destination: string): Promise<string | undefined> {
  try {
    await copyFile(logPath, destination);
    return destination;
  } catch {
    return undefined;
  }
}
