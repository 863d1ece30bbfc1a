/**
 * Extracts one image layer (an uncompressed tar) into an empty directory of the layer store, in
 * the form overlayfs stacks as a lowerdir: OCI whiteouts become overlay's (a `.wh.NAME` file a
 * character device 0:0, a `.wh..wh..opq` marker the `trusted.overlay.opaque` attribute on its
 * directory), owners, modes, times, xattrs, hard links and holes are kept.
 *
 * What Docker, containerd and umoci do, made strict, since a layer is untrusted input: a name that
 * is absolute or climbs with ".." refuses the whole image (they clean such names and go on); a
 * path is resolved inside the layer directory as if it were "/", following only the symbolic
 * links this layer made and never out of it (SecureJoin semantics, as runc and containerd
 * use); the last component is never followed. Hard links may only point at what this layer
 * holds; device nodes are refused outside dev/ and skipped under it (the container's /dev comes
 * from config.json). Nothing is written outside the target.
 *
 * The work is synchronous system calls between awaits of the tar stream: tens of thousands of
 * small files cost one round through the thread pool each otherwise, and nothing else writes in
 * the target (the caller made it, root-only and empty).
 */
import {
  chmodSync,
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  ftruncateSync,
  futimesSync,
  lchownSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { RuntimeError, SystemCallError } from '../../system/errors.js';
import { O_CLOEXEC, mknod, setXattr } from '../../system/libc.js';
import { readTar } from './tar.js';
import type { TarEntry } from './types.js';

export interface ExtractOptions {
  /** A user namespace's shift: every owner written goes through it (the identity when absent). */
  readonly mapIds?: (id: number, kind: 'uid' | 'gid') => number;
}

export interface ExtractResult {
  /** Tar entries applied (whiteouts and skipped devices included). */
  readonly entries: number;
  /** Regular files' content in bytes, holes included (hard links counted once). */
  readonly bytes: number;
  /** Device entries under dev/ that were not made, by name as the layer gives it. */
  readonly devicesSkipped: readonly string[];
}

export class HostileLayerError extends RuntimeError {
  readonly code = 'HOSTILE_LAYER' as const;
  constructor(
    readonly entry: string,
    readonly reason: string,
  ) {
    super(`layer entry ${JSON.stringify(entry)}: ${reason}`, {
      hint: 'the image is refused and nothing outside the layer store was touched; use an image from a source you trust, or rebuild it',
    });
  }
}

const S_IFCHR = 0o020000;
const S_IFIFO = 0o010000;
const EEXIST = 17;
const EPERM = 1;
const ENOTSUP = 95;
/** Aligned runs of this many zero bytes are left as holes. */
const HOLE_BLOCK = 4096;
const ZERO = Buffer.alloc(HOLE_BLOCK);
const CREATE_FILE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW | O_CLOEXEC;
/** Symbolic links followed in one resolution before it is called a loop (Linux's own limit). */
const MAX_LINKS = 40;

/** Extracts the layer tar into target, an existing empty directory; see the header for the rules. */
export async function extractLayer(tar: AsyncIterable<Buffer>, target: string, options: ExtractOptions = {}): Promise<ExtractResult> {
  const extractor = new Extractor(target, options.mapIds ?? ((id) => id));
  for await (const { entry, body } of readTar(tar)) await extractor.apply(entry, body);
  extractor.finish();
  return { entries: extractor.entries, bytes: extractor.bytes, devicesSkipped: extractor.devicesSkipped };
}

class Extractor {
  entries = 0;
  bytes = 0;
  readonly devicesSkipped: string[] = [];
  /** Paths (relative to target, symlinks resolved) known to be real directories. */
  private readonly knownDirs = new Set<string>(['']);
  /** An archive directory name -> its resolved path: most entries share their parent with the one before. */
  private readonly parents = new Map<string, string>();
  /** Symbolic links that a cached resolution went through. */
  private readonly followed = new Set<string>();
  /** Directories' times, set at the end: creating a child changes its directory's mtime. */
  private readonly dirTimes = new Map<string, readonly [number, number]>();
  /** The entry being applied, for error messages. */
  private current = '';

  constructor(
    private readonly target: string,
    private readonly mapIds: (id: number, kind: 'uid' | 'gid') => number,
  ) {}

  async apply(entry: TarEntry, body: AsyncIterable<Buffer>): Promise<void> {
    this.entries++;
    this.current = entry.name;
    for (const name of entry.xattrs.keys()) {
      if (name.startsWith('trusted.overlay.')) throw this.hostile(`sets the extended attribute ${name}, which only the runtime may set`);
    }
    const parts = this.clean(entry.name);
    if (parts.length === 0) {
      // The "./" entry: the layer root's own metadata.
      if (entry.type !== 'directory') throw this.hostile(`the layer root as a ${entry.type}`);
      this.metadata('', entry);
      return;
    }
    const base = parts[parts.length - 1]!;
    const dirParts = parts.slice(0, -1);
    if (base.startsWith('.wh.')) return this.whiteout(entry, dirParts, base);
    if (entry.type === 'char' || entry.type === 'block') {
      if (parts[0] === 'dev' && parts.length > 1) {
        this.devicesSkipped.push(entry.name);
        return;
      }
      throw this.hostile(`a ${entry.type} device ${entry.devmajor}:${entry.devminor} outside dev/`);
    }
    if (entry.type === 'hardlink') return this.hardlink(entry, dirParts, base);

    const rel = join(this.resolveDir(dirParts, true)!, base);
    const host = this.host(rel);
    switch (entry.type) {
      case 'directory':
        if (!this.knownDirs.has(rel)) {
          this.create(rel, () => mkdirSync(host, 0o700), true);
          this.knownDirs.add(rel);
        }
        this.metadata(rel, entry);
        return;
      case 'file': {
        const fd = this.create(rel, () => openSync(host, CREATE_FILE, 0o600))!;
        try {
          await writeContent(fd, entry, body);
          // The owner first: chown clears setuid, setgid and security.capability.
          fchownSync(fd, this.mapIds(entry.uid, 'uid'), this.mapIds(entry.gid, 'gid'));
          fchmodSync(fd, entry.mode);
          this.xattrs(host, entry);
          futimesSync(fd, entry.atime ?? entry.mtime, entry.mtime);
        } finally {
          closeSync(fd);
        }
        this.bytes += entry.size;
        return;
      }
      case 'symlink':
        // Any target text is data, resolved later inside the container.
        if (entry.linkname === '' || entry.linkname.includes('\0')) throw this.hostile('a symbolic link with an empty or NUL-holding target');
        this.create(rel, () => symlinkSync(entry.linkname, host));
        this.metadata(rel, entry);
        return;
      case 'fifo':
        this.create(rel, () => mknod(host, S_IFIFO | entry.mode, 0n));
        this.metadata(rel, entry);
        return;
    }
  }

  /** Directories' times, last: nothing below them changes any more. */
  finish(): void {
    const dirs = [...this.dirTimes].sort(([a], [b]) => depth(b) - depth(a));
    for (const [rel, [atime, mtime]] of dirs) lutimesSync(this.host(rel), atime, mtime);
  }

  /** OCI whiteouts as overlay reads them. */
  private whiteout(entry: TarEntry, dirParts: readonly string[], base: string): void {
    const dir = this.resolveDir(dirParts, true)!;
    if (base === '.wh..wh..opq') {
      setXattr(this.host(dir), 'trusted.overlay.opaque', Buffer.from('y'));
      return;
    }
    // Other .wh..wh. names are aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs): nothing for overlay.
    if (base.startsWith('.wh..wh.')) return;
    const hidden = base.slice('.wh.'.length);
    if (hidden === '' || hidden === '.' || hidden === '..') throw this.hostile(`a whiteout of ${JSON.stringify(hidden)}`);
    const rel = join(dir, hidden);
    this.create(rel, () => mknod(this.host(rel), S_IFCHR, 0n));
    lchownSync(this.host(rel), this.mapIds(entry.uid, 'uid'), this.mapIds(entry.gid, 'gid'));
  }

  /**
   * A hard link to a member this layer made earlier, resolved like any path (last component not
   * followed). The link shares its target's inode, whose metadata the target's entry set.
   */
  private hardlink(entry: TarEntry, dirParts: readonly string[], base: string): void {
    const targetParts = this.clean(entry.linkname, `hard link to ${JSON.stringify(entry.linkname)}`);
    if (targetParts.length === 0) throw this.hostile('a hard link to the layer root');
    const targetDir = this.resolveDir(targetParts.slice(0, -1), false);
    const targetRel = targetDir === undefined ? undefined : join(targetDir, targetParts[targetParts.length - 1]!);
    const found = targetRel === undefined ? undefined : lstatSync(this.host(targetRel), { throwIfNoEntry: false });
    if (targetRel === undefined || found === undefined) throw this.hostile(`hard link to ${entry.linkname}, which this layer does not hold`);
    if (found.isDirectory()) throw this.hostile(`hard link to ${entry.linkname}, a directory`);
    const rel = join(this.resolveDir(dirParts, true)!, base);
    if (rel === targetRel) return;
    this.create(rel, () => linkSync(this.host(targetRel), this.host(rel)));
  }

  /** Owner, then mode (not a symlink's: it has none), xattrs, and times (a directory's later). */
  private metadata(rel: string, entry: TarEntry): void {
    const host = this.host(rel);
    lchownSync(host, this.mapIds(entry.uid, 'uid'), this.mapIds(entry.gid, 'gid'));
    if (entry.type !== 'symlink') chmodSync(host, entry.mode);
    this.xattrs(host, entry);
    const times = [entry.atime ?? entry.mtime, entry.mtime] as const;
    if (entry.type === 'directory') this.dirTimes.set(rel, times);
    else lutimesSync(host, times[0], times[1]);
  }

  private xattrs(host: string, entry: TarEntry): void {
    for (const [name, value] of entry.xattrs) {
      try {
        setXattr(host, name, value);
      } catch (error) {
        // As Docker does: a filesystem that cannot hold the attribute (or a user.* one on a
        // symbolic link) does not fail the layer.
        if (error instanceof SystemCallError && (error.errno === ENOTSUP || error.errno === EPERM)) continue;
        throw error;
      }
    }
  }

  /**
   * Runs make, which creates rel; when something is there already it is removed first (a
   * directory with all below it), except that a directory stays for a directory (keepDirectory).
   */
  private create<T>(rel: string, make: () => T, keepDirectory = false): T | undefined {
    try {
      return make();
    } catch (error) {
      if (!isEexist(error)) throw error;
    }
    const host = this.host(rel);
    const existing = lstatSync(host);
    if (existing.isDirectory()) {
      if (keepDirectory) return undefined;
      rmSync(host, { recursive: true, force: true });
      this.forget(rel, true);
    } else {
      unlinkSync(host);
      if (existing.isSymbolicLink() && this.followed.has(rel)) this.forget(rel, false);
    }
    return make();
  }

  /**
   * Drops what the caches say about a removed directory or followed link. A cached resolution may
   * have gone through a link elsewhere into what was removed, so all of them go; removing either
   * is rare in a layer (it happens only when one entry replaces another).
   */
  private forget(rel: string, directory: boolean): void {
    this.knownDirs.clear();
    this.knownDirs.add('');
    this.parents.clear();
    this.followed.clear();
    if (!directory) return;
    for (const dir of this.dirTimes.keys()) if (dir === rel || dir.startsWith(`${rel}/`)) this.dirTimes.delete(dir);
  }

  /**
   * The directory an archive name's parent components lead to, inside target, as a path relative
   * to it with no symbolic link in it: links are followed as if target were "/" (".." stops at
   * it, an absolute target starts from it). Missing directories are made (0755, root) when
   * create is set, else the result is undefined, as it is for a component that is not a directory.
   */
  private resolveDir(dirParts: readonly string[], create: boolean): string | undefined {
    const key = dirParts.join('/');
    const cached = this.parents.get(key);
    if (cached !== undefined) return cached;
    const resolved: string[] = [];
    const pending = [...dirParts].reverse();
    let links = 0;
    while (pending.length > 0) {
      const part = pending.pop()!;
      if (part === '' || part === '.') continue;
      if (part === '..') {
        resolved.pop();
        continue;
      }
      resolved.push(part);
      const rel = resolved.join('/');
      if (this.knownDirs.has(rel)) continue;
      const host = this.host(rel);
      const found = lstatSync(host, { throwIfNoEntry: false });
      if (found === undefined) {
        if (!create) return undefined;
        mkdirSync(host, 0o755);
        // mkdir's mode is masked by the umask.
        chmodSync(host, 0o755);
        lchownSync(host, this.mapIds(0, 'uid'), this.mapIds(0, 'gid'));
        this.knownDirs.add(rel);
      } else if (found.isDirectory()) {
        this.knownDirs.add(rel);
      } else if (found.isSymbolicLink()) {
        if (++links > MAX_LINKS) throw this.hostile(`too many levels of symbolic links below ${key}`);
        const link = readlinkSync(host);
        this.followed.add(rel);
        resolved.pop();
        if (link.startsWith('/')) resolved.length = 0;
        const linkParts = link.split('/');
        for (let i = linkParts.length - 1; i >= 0; i--) pending.push(linkParts[i]!);
      } else {
        if (!create) return undefined;
        throw this.hostile(`its parent ${rel} is not a directory`);
      }
    }
    const real = resolved.join('/');
    this.parents.set(key, real);
    return real;
  }

  /** An archive name as components; absolute names, ".." and NUL refuse the layer. */
  private clean(name: string, what = 'a name'): string[] {
    if (name.includes('\0')) throw this.hostile(`${what} holding a NUL byte`);
    if (name.startsWith('/')) throw this.hostile(`${what} that is absolute`);
    const parts = name.split('/').filter((p) => p !== '' && p !== '.');
    if (parts.includes('..')) throw this.hostile(`${what} with a ".." component`);
    // Only "." or "./" names the root; an empty name names nothing.
    if (parts.length === 0 && !/^\.(\/+\.?)*\/*$/.test(name)) throw this.hostile(`${what} that is empty`);
    return parts;
  }

  private host(rel: string): string {
    return rel === '' ? this.target : `${this.target}/${rel}`;
  }

  private hostile(reason: string): HostileLayerError {
    return new HostileLayerError(this.current, reason);
  }
}

/**
 * A file's content into fd (a new, empty file): data at its offsets (a sparse map's, or in
 * order), aligned all-zero blocks skipped, then the size set, so holes stay holes.
 */
async function writeContent(fd: number, entry: TarEntry, body: AsyncIterable<Buffer>): Promise<void> {
  const segments = entry.sparse ?? [{ offset: 0, length: entry.size }];
  let segment = 0;
  let within = 0;
  for await (const chunk of body) {
    let used = 0;
    while (used < chunk.length) {
      while (segment < segments.length && within === segments[segment]!.length) {
        segment++;
        within = 0;
      }
      const current = segments[segment];
      if (current === undefined) throw new HostileLayerError(entry.name, 'its data runs past its sparse map');
      const length = Math.min(chunk.length - used, current.length - within);
      writeSkippingZeros(fd, chunk.subarray(used, used + length), current.offset + within);
      used += length;
      within += length;
    }
  }
  ftruncateSync(fd, entry.size);
}

/**
 * Writes data at position, leaving out every all-zero piece between 4 KiB boundaries of the file
 * (the file is new, so what is not written reads as zeros); the rest goes in as few writes as
 * there are runs of data.
 */
function writeSkippingZeros(fd: number, data: Buffer, position: number): void {
  let run = -1;
  let i = 0;
  while (i < data.length) {
    const end = Math.min(data.length, i + HOLE_BLOCK - ((position + i) % HOLE_BLOCK));
    if (data.compare(ZERO, 0, end - i, i, end) === 0) {
      if (run >= 0) writeAll(fd, data, run, i, position + run);
      run = -1;
    } else if (run < 0) run = i;
    i = end;
  }
  if (run >= 0) writeAll(fd, data, run, data.length, position + run);
}

function writeAll(fd: number, data: Buffer, start: number, end: number, position: number): void {
  while (start < end) {
    const written = writeSync(fd, data, start, end - start, position);
    start += written;
    position += written;
  }
}

function join(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}

function depth(rel: string): number {
  let count = 0;
  for (let i = rel.indexOf('/'); i >= 0; i = rel.indexOf('/', i + 1)) count++;
  return rel === '' ? -1 : count;
}

function isEexist(error: unknown): boolean {
  return (error instanceof SystemCallError && error.errno === EEXIST) || (error as NodeJS.ErrnoException | undefined)?.code === 'EEXIST';
}
