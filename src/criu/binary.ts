/**
 * Finding the criu binary: the --criu flag, then RUNTIME_CRIU, then the configuration, then PATH
 * (the resolved configuration already holds the first three in that order), then the project's
 * prefix (scripts/install-criu.sh), then the system's sbin directories.
 */
import { access, constants, stat } from 'node:fs/promises';
import path from 'node:path';
import { CriuNotFoundError } from './errors.js';

async function isExecutable(file: string): Promise<boolean> {
  try {
    await access(file, constants.X_OK);
    // access(X_OK) also succeeds on a directory.
    return (await stat(file)).isFile();
  } catch {
    return false;
  }
}

/** Where scripts/install-criu.sh installs criu. */
export const PREFIX_CRIU_DIR = '/opt/runtime/criu/sbin';

/** An explicitly configured path must exist; otherwise `criu` is looked up on PATH (plus the prefix and /usr/sbin). */
export async function locateCriu(configured: string | undefined, searchPath = process.env.PATH ?? ''): Promise<string> {
  if (configured) {
    if (configured.includes('/')) {
      if (await isExecutable(configured)) return path.resolve(configured);
      throw new CriuNotFoundError(`${configured} is not an executable file`);
    }
    return locateOnPath(configured, searchPath);
  }
  return locateOnPath('criu', searchPath);
}

async function locateOnPath(name: string, searchPath: string): Promise<string> {
  const directories = [...searchPath.split(':').filter((d) => d !== ''), PREFIX_CRIU_DIR, '/usr/local/sbin', '/usr/sbin', '/sbin'];
  for (const directory of directories) {
    const candidate = path.join(directory, name);
    if (await isExecutable(candidate)) return candidate;
  }
  throw new CriuNotFoundError(`no executable "${name}" on PATH`);
}
