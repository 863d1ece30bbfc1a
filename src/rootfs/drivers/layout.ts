/** Small file helpers shared by the layout readers. */
import { lstat, readFile, readlink, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { InvalidLayerIdError } from '../errors.js';

/** Engine layer ids are one path component (Docker: 64 hex digits, maybe "-init"). */
export function validateLayerId(id: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(id) || id.length > 255) throw new InvalidLayerIdError(id);
}

function isNotFound(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

export async function statOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await stat(path);
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

export async function lstatOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await lstat(path);
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

export async function isDirectory(path: string): Promise<boolean> {
  return (await statOrUndefined(path))?.isDirectory() ?? false;
}

/** The file's text, or undefined when it does not exist. */
export async function readTextOrUndefined(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

export async function readlinkOrUndefined(path: string): Promise<string | undefined> {
  try {
    return await readlink(path);
  } catch (error) {
    if (isNotFound(error) || (error as NodeJS.ErrnoException).code === 'EINVAL') return undefined;
    throw error;
  }
}
