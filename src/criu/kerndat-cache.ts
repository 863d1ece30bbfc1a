/**
 * CRIU's cache of what it found out about the kernel. Every CRIU process probes the kernel first
 * (about 50 ms here) unless it finds an earlier probe's result in <RUNDIR>/criu.kdat, and it keeps
 * that file only on a tmpfs, so that it never outlives the kernel it describes. Where /run is not
 * a tmpfs (as on these machines), no CRIU ever keeps it, and every checkpoint, restore and reset
 * pays the probe.
 *
 * scripts/install-criu.sh builds CRIU with RUNDIR=/run/runtime-criu. Before the runtime first
 * starts a CRIU, this makes sure that directory is a tmpfs (mounting a small one there when it is
 * not), and removes a `criu.kdat.tmp` left by a CRIU that died while writing the cache: CRIU creates
 * that file exclusively and would otherwise never write the cache again. A CRIU built with another
 * RUNDIR does not use the directory; it does no harm.
 */
import { mkdirSync, statSync, statfsSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { mount } from '../system/libc.js';

export const KERNDAT_CACHE_DIR = '/run/runtime-criu';
const TMPFS_MAGIC = 0x01021994;
/** A criu.kdat.tmp older than this was left by a CRIU that died (writing it takes microseconds). */
const STALE_TMP_MS = 60_000;

/** The file system operations it needs, so that tests can record them. */
export interface KerndatCacheOps {
  /** statfs(2)'s f_type, or undefined when the directory does not exist. */
  fsType(dir: string): number | undefined;
  mkdir(dir: string): void;
  mountTmpfs(dir: string): void;
  /** The file's modification time (ms since the epoch), or undefined when there is none. */
  modifiedAt(file: string): number | undefined;
  remove(file: string): void;
}

export type KerndatCacheState = 'tmpfs' | 'mounted' | 'unavailable';

const linuxOps: KerndatCacheOps = {
  fsType(dir) {
    try {
      return statfsSync(dir).type;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  },
  mkdir: (dir) => mkdirSync(dir, { recursive: true, mode: 0o700 }),
  mountTmpfs: (dir) => mount('runtime-criu', dir, 'tmpfs', 0, 'size=1m,mode=0700'),
  modifiedAt(file) {
    try {
      return statSync(file).mtimeMs;
    } catch {
      return undefined;
    }
  },
  remove: (file) => unlinkSync(file),
};

/**
 * Makes dir a tmpfs CRIU can keep its cache on. Never throws: without the cache CRIU only probes
 * the kernel each time.
 */
export function prepareKerndatCache(dir = KERNDAT_CACHE_DIR, ops: KerndatCacheOps = linuxOps, now = Date.now()): KerndatCacheState {
  try {
    let state: KerndatCacheState = 'tmpfs';
    if (ops.fsType(dir) === undefined) ops.mkdir(dir);
    // A directory made on a tmpfs /run is one already.
    if (ops.fsType(dir) !== TMPFS_MAGIC) {
      ops.mountTmpfs(dir);
      state = 'mounted';
    }
    const leftover = path.join(dir, 'criu.kdat.tmp');
    const modified = ops.modifiedAt(leftover);
    if (modified !== undefined && now - modified > STALE_TMP_MS) ops.remove(leftover);
    return state;
  } catch {
    return 'unavailable';
  }
}
