/**
 * Finds the installed pycriu (the one scripts/install-criu.sh builds with criu, else Debian's
 * python3-pycriu: built from the same CRIU release as the criu binary) and reads what it ships as
 * data: the serialized FileDescriptorProtos embedded in
 * images/*_pb2.py and the magic table in images/magic.py. Reading them as text keeps the codec in
 * step with the installed CRIU without running Python.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ImageDescriptorsNotFoundError } from '../errors.js';
import { readFileDescriptor, type RawFile } from './descriptor-proto.js';
import { serializedFilesIn } from './python-bytes.js';

export interface PycriuData {
  /** The pycriu package directory the data came from. */
  readonly dir: string;
  readonly files: readonly RawFile[];
  /** magic.py's by_name table. */
  readonly magics: ReadonlyMap<string, number>;
}

/** Directories that may hold the pycriu package, most likely first. */
export function candidatePycriuDirs(): string[] {
  const dirs = ['/opt/runtime/criu/lib/pycriu', '/usr/lib/python3/dist-packages/pycriu'];
  for (const base of ['/usr/lib', '/usr/lib64', '/usr/local/lib', '/usr/local/lib64']) {
    let entries: string[];
    try {
      entries = readdirSync(base)
        .filter((name) => /^python3(\.\d+)?$/.test(name))
        .sort()
        .reverse();
    } catch {
      continue;
    }
    for (const python of entries) {
      dirs.push(path.join(base, python, 'dist-packages/pycriu'), path.join(base, python, 'site-packages/pycriu'));
    }
  }
  return [...new Set(dirs)];
}

export function findPycriuDir(explicit?: string): { dir: string | undefined; tried: string[] } {
  const wanted = explicit ?? process.env.RUNTIME_PYCRIU_DIR;
  const tried = wanted ? [wanted] : candidatePycriuDirs();
  return { dir: tried.find((dir) => existsSync(path.join(dir, 'images', 'magic.py'))), tried };
}

/** Parses magic.py (`by_name['NAME'] = 123` lines). */
export function parseMagicPy(source: string): Map<string, number> {
  const magics = new Map<string, number>();
  for (const match of source.matchAll(/^by_name\['([A-Za-z0-9_]+)'\]\s*=\s*(0[xX][0-9a-fA-F]+|\d+)\s*$/gm)) {
    magics.set(match[1]!, Number(match[2]));
  }
  return magics;
}

export function readPycriu(explicitDir?: string): PycriuData {
  const { dir, tried } = findPycriuDir(explicitDir);
  if (!dir) throw new ImageDescriptorsNotFoundError(tried, 'no pycriu/images/magic.py');
  const imagesDir = path.join(dir, 'images');
  try {
    const magics = parseMagicPy(readFileSync(path.join(imagesDir, 'magic.py'), 'utf8'));
    if (magics.size === 0) throw new Error('magic.py defines no magics');
    const files: RawFile[] = [];
    for (const name of readdirSync(imagesDir)
      .filter((n) => n.endsWith('_pb2.py'))
      .sort()) {
      for (const bytes of serializedFilesIn(readFileSync(path.join(imagesDir, name), 'utf8'))) {
        files.push(readFileDescriptor(bytes));
      }
    }
    if (files.length === 0) throw new Error('no *_pb2.py with serialized descriptors');
    return { dir, files, magics };
  } catch (cause) {
    throw new ImageDescriptorsNotFoundError([imagesDir], `cannot read pycriu's descriptors: ${(cause as Error).message}`, { cause });
  }
}
