/**
 * The container store: one directory per container under the state root, holding state.json
 * (written atomically), a lock file (flock, so a crashed holder never leaves it taken), the
 * effective bundle given to the OCI runtime, and the container's log.
 */
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ContainerExistsError, ContainerNotFoundError, InvalidIdError, RuntimeError } from '../errors.js';
import { validateId } from '../id.js';
import { withFlock } from '../../system/flock.js';
import { canonicalPath } from '../../system/files.js';
import { containerRecordSchema, type ContainerRecord, type CheckpointedRecord, type CreatingRecord } from './record.js';
import { transition, type RecordEvent } from './status.js';
import { checkJson } from '../json.js';

export interface ContainerPaths {
  readonly dir: string;
  readonly stateFile: string;
  readonly lockFile: string;
  /** Held by a command that starts a monitor for a container that has none (reset.ts). */
  readonly launchLockFile: string;
  /** The bundle the OCI runtime is given: config.json with the runtime's adjustments. */
  readonly effectiveBundle: string;
  /** The OCI runtime's own --root, private to this container. */
  readonly ociRoot: string;
  readonly ociLog: string;
  readonly containerLog: string;
  readonly monitorLog: string;
  /** Where the rootfs is bind-mounted for CRIU on restore (CRIU needs a mount point). */
  readonly criuRoot: string;
  /** The monitor's control socket (monitor/control.ts). */
  readonly controlSocket: string;
}

export const CONTROL_SOCKET_NAME = 'monitor.sock';
/** sun_path holds 108 bytes, the last one the terminating NUL. */
const MAX_SOCKET_PATH = 107;

export class CorruptStateError extends RuntimeError {
  readonly code = 'CORRUPT_STATE' as const;
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(`the state file ${file} is unreadable: ${reason}`, {
      hint: 'remove the container with `runtime delete -f <id>`: it stops the processes of the cgroups the file still names',
    });
  }
}

export class LockTimeoutError extends RuntimeError {
  readonly code = 'LOCK_TIMEOUT' as const;
  constructor(
    readonly id: string,
    waitedMs: number,
  ) {
    super(`container ${JSON.stringify(id)} is busy: another runtime command has held its lock for ${Math.round(waitedMs / 1000)} s`, {
      hint: 'wait for the other command to finish, then try again',
    });
  }
}

export class ContainerStore {
  /** The state root as the mount table names it (a mount below is found, never removed through). */
  readonly root: string;

  constructor(root: string) {
    this.root = canonicalPath(root);
  }

  paths(id: string): ContainerPaths {
    const dir = path.join(this.root, validateId(id));
    return {
      dir,
      stateFile: path.join(dir, 'state.json'),
      lockFile: path.join(dir, 'lock'),
      launchLockFile: path.join(dir, 'launch.lock'),
      effectiveBundle: path.join(dir, 'bundle'),
      ociRoot: path.join(dir, 'oci'),
      ociLog: path.join(dir, 'oci.log'),
      containerLog: path.join(dir, 'container.log'),
      monitorLog: path.join(dir, 'monitor.log'),
      criuRoot: path.join(dir, 'criu-root'),
      controlSocket: path.join(dir, CONTROL_SOCKET_NAME),
    };
  }

  /** Makes the container's directory; fails when the id is taken. */
  async reserve(id: string): Promise<ContainerPaths> {
    const paths = this.paths(id);
    const bytes = Buffer.byteLength(paths.controlSocket);
    if (bytes > MAX_SOCKET_PATH) {
      const most = id.length - (bytes - MAX_SOCKET_PATH);
      throw new InvalidIdError(
        id,
        `its monitor's control socket ${paths.controlSocket} would be longer than the ${MAX_SOCKET_PATH} bytes a socket address holds (with the state root ${this.root}, ids of at most ${Math.max(most, 0)} characters)`,
      );
    }
    await mkdir(this.root, { recursive: true, mode: 0o711 });
    try {
      await mkdir(paths.dir, { mode: 0o700 });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new ContainerExistsError(id);
      throw error;
    }
    return paths;
  }

  async exists(id: string): Promise<boolean> {
    try {
      await readFile(this.paths(id).stateFile);
      return true;
    } catch {
      return false;
    }
  }

  async load(id: string): Promise<ContainerRecord> {
    const file = this.paths(id).stateFile;
    let text: string;
    try {
      // Synchronously: a small file on a tmpfs, read several times in every reset.
      text = readFileSync(file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new ContainerNotFoundError(id, this.root);
      throw error;
    }
    const checked = checkJson(containerRecordSchema, text, 'the record');
    if (!checked.ok) {
      throw new CorruptStateError(file, checked.path === 'id' || checked.path === 'status' ? 'id or status is missing or wrong' : checked.reason);
    }
    if (checked.value.id !== id) throw new CorruptStateError(file, 'id or status is missing or wrong');
    return checked.value as ContainerRecord;
  }

  /** Records a new container (its directory reserved first). */
  async create(record: CreatingRecord | CheckpointedRecord): Promise<void> {
    await this.write(record);
  }

  /**
   * Records what happened to a container: the one way an existing record changes. The caller
   * holds the container's lock and passes the record it read under it.
   */
  async commit(current: ContainerRecord, event: RecordEvent): Promise<ContainerRecord> {
    const next = transition(current, event);
    await this.write(next);
    return next;
  }

  /** Writes state.json atomically: a reader sees the old record or the new one, never half. */
  private async write(record: ContainerRecord): Promise<void> {
    const file = this.paths(record.id).stateFile;
    const temporary = `${file}.${process.pid}.tmp`;
    await writeFile(temporary, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
    await rename(temporary, file);
  }

  /** Ids of all containers with a state file, sorted. */
  async ids(): Promise<string[]> {
    let entries: string[];
    try {
      entries = await readdir(this.root);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    const ids: string[] = [];
    for (const entry of entries.sort()) {
      if (await this.exists(entry).catch(() => false)) ids.push(entry);
    }
    return ids;
  }

  async remove(id: string): Promise<void> {
    await rm(this.paths(id).dir, { recursive: true, force: true });
  }

  /**
   * Runs fn while holding the container's lock. Every command that changes a container's state
   * takes it, and so does the monitor for a reset and when it records an exit, so they never
   * write over each other, nor stop or kill a tree another is dumping or restoring. `launch` is a
   * second lock, for starting a monitor (held while the monitor takes the first).
   */
  async withLock<T>(id: string, fn: () => Promise<T>, timeoutMs = 120_000, which: 'state' | 'launch' = 'state'): Promise<T> {
    const paths = this.paths(id);
    // Opened and closed synchronously: a small file on a tmpfs, taken on every reset, where an
    // async open waits its turn in the thread pool behind a standby's restore.
    let fd: number;
    try {
      fd = openSync(which === 'state' ? paths.lockFile : paths.launchLockFile, 'a', 0o600);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new ContainerNotFoundError(id, this.root);
      throw error;
    }
    try {
      return await withFlock(fd, fn, { timeoutMs, onTimeout: (waited) => new LockTimeoutError(id, waited) });
    } finally {
      closeSync(fd);
    }
  }
}
