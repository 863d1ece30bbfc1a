/**
 * Named snapshots of a container, under <checkpointRoot>/<id>/snapshots/<name>/:
 *   images/         CRIU's images and the runtime's checkpoint metadata
 *   rootfs/         the snapshot's own read-only rootfs layer
 *   snapshot.json   when, which layers (top first), and sizes
 * A reset only reads them, so the thousandth reset starts from the same bytes as the first.
 */
import { readFileSync } from 'node:fs';
import { readdir, rm, stat, rename, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { s } from '../../system/schema.js';
import { RuntimeError, UsageError } from '../errors.js';
import { checkJson } from '../json.js';
import { writePrivateFile } from '../checkpoint-metadata.js';
import { diskUsage } from '../../rootfs/layers.js';

export interface SnapshotInfo {
  readonly formatVersion: 1;
  readonly name: string;
  readonly id: string;
  readonly created: string;
  /** Read-only layers of the rootfs, top first: this snapshot's own, then the ones it sits on. */
  readonly layers: readonly string[];
  /** Bytes of memory pages in the images. */
  readonly memoryBytes: number;
  /** Bytes on disk of this snapshot's own rootfs layer. */
  readonly rootfsBytes: number;
  readonly leftRunning: boolean;
}

export interface SnapshotPaths {
  readonly dir: string;
  readonly images: string;
  readonly rootfs: string;
  readonly info: string;
}

const namePattern = /^[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$/;
const IN_PROGRESS = '.new';

export class InvalidSnapshotNameError extends RuntimeError {
  readonly code = 'INVALID_SNAPSHOT_NAME' as const;
  constructor(
    readonly snapshot: string,
    reason?: string,
  ) {
    super(`invalid snapshot name ${JSON.stringify(snapshot)}${reason ? `: ${reason}` : ''}`, {
      hint: 'names are 1 to 128 letters, digits, "_", ".", "+" and "-", starting with a letter or digit and not ending in ".new"',
    });
  }
}

export class SnapshotNotFoundError extends RuntimeError {
  readonly code = 'SNAPSHOT_NOT_FOUND' as const;
  constructor(
    readonly id: string,
    readonly snapshot: string | undefined,
    known: readonly string[],
  ) {
    super(
      snapshot === undefined
        ? `container ${JSON.stringify(id)} has no snapshots`
        : `container ${JSON.stringify(id)} has no snapshot ${JSON.stringify(snapshot)}`,
      {
        hint: known.length > 0 ? `its snapshots are: ${known.join(', ')}` : `take one with \`runtime checkpoint --name NAME --leave-running ${id}\``,
      },
    );
  }
}

export class SnapshotInUseError extends RuntimeError {
  readonly code = 'SNAPSHOT_IN_USE' as const;
  constructor(
    readonly snapshot: string,
    readonly users: readonly string[],
  ) {
    super(`snapshot ${JSON.stringify(snapshot)} is a layer of ${users.map((u) => JSON.stringify(u)).join(', ')}`, {
      hint: 'remove the snapshots built on it first, or reset the containers that run on it to another snapshot',
    });
  }
}

export class CorruptSnapshotError extends RuntimeError {
  readonly code = 'CORRUPT_SNAPSHOT' as const;
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(`the snapshot file ${file} is unusable: ${reason}`, { hint: 'remove the snapshot with `runtime snapshots rm` and take it again' });
  }
}

const snapshotSchema = s.object({
  formatVersion: s.literal(1),
  name: s.string().min(1),
  id: s.string().min(1),
  created: s.string(),
  layers: s.array(s.string()),
  memoryBytes: s.number().nonnegative(),
  rootfsBytes: s.number().nonnegative(),
  leftRunning: s.boolean(),
});

export class SnapshotExistsError extends RuntimeError {
  readonly code = 'SNAPSHOT_EXISTS' as const;
  constructor(
    readonly id: string,
    readonly snapshot: string,
  ) {
    super(`container ${JSON.stringify(id)} already has a snapshot ${JSON.stringify(snapshot)}`, {
      hint: `choose another name, or remove it with \`runtime snapshots rm ${id} ${snapshot}\``,
    });
  }
}

/**
 * A snapshot's images are never changed, so every reset starts from the same bytes: CRIU's
 * auto_dedup, which punches holes in the images it reads, is refused wherever a snapshot is used.
 */
export function refuseAutoDedup(options: { readonly autoDedup?: boolean }, message = '--auto-dedup cannot be used with a named snapshot'): void {
  if (options.autoDedup) throw new UsageError(message, "a named snapshot's images are never changed, so every reset starts from the same bytes");
}

/** A reset or restore --name takes the snapshot's own images: no image or work directory, no dedup. */
export function refuseImageOptions(request: { readonly imagePath?: string; readonly workPath?: string; readonly autoDedup?: boolean }): void {
  if (request.imagePath || request.workPath) throw new UsageError('a named snapshot has its own images: --image-path and --work-path do not apply');
  refuseAutoDedup(request);
}

export function validateSnapshotName(name: string): string {
  if (!namePattern.test(name)) throw new InvalidSnapshotNameError(name);
  // <name>.new is where a snapshot is written before it is moved in place (begin/commit).
  if (name.endsWith(IN_PROGRESS)) throw new InvalidSnapshotNameError(name, `"${IN_PROGRESS}" ends the name of a snapshot being written`);
  return name;
}

export class SnapshotStore {
  constructor(readonly checkpointRoot: string) {}

  root(id: string): string {
    return path.join(this.checkpointRoot, id, 'snapshots');
  }

  paths(id: string, name: string): SnapshotPaths {
    const dir = path.join(this.root(id), validateSnapshotName(name));
    return { dir, images: path.join(dir, 'images'), rootfs: path.join(dir, 'rootfs'), info: path.join(dir, 'snapshot.json') };
  }

  /** Where a snapshot is built before `commit` moves it into place. */
  building(id: string, name: string): SnapshotPaths {
    const dir = `${this.paths(id, name).dir}${IN_PROGRESS}`;
    return { dir, images: path.join(dir, 'images'), rootfs: path.join(dir, 'rootfs'), info: path.join(dir, 'snapshot.json') };
  }

  /** A directory to build a snapshot in; `commit` moves it into place. */
  async begin(id: string, name: string): Promise<SnapshotPaths> {
    if (await exists(this.paths(id, name).info)) throw new SnapshotExistsError(id, name);
    const building = this.building(id, name);
    await rm(building.dir, { recursive: true, force: true });
    await mkdir(building.images, { recursive: true, mode: 0o700 });
    return building;
  }

  /** The snapshot built in `building`: its memory and rootfs copy measured, its layers the copy over `lowers`. */
  async describe(id: string, name: string, building: SnapshotPaths, lowers: readonly string[], leftRunning: boolean): Promise<SnapshotInfo> {
    return {
      formatVersion: 1,
      name,
      id,
      created: new Date().toISOString(),
      layers: [this.paths(id, name).rootfs, ...lowers],
      memoryBytes: await memoryBytes(building.images),
      rootfsBytes: await diskUsage(building.rootfs),
      leftRunning,
    };
  }

  async commit(id: string, building: SnapshotPaths, info: SnapshotInfo): Promise<void> {
    await writePrivateFile(building.info, `${JSON.stringify(info, null, 2)}\n`);
    await rename(building.dir, this.paths(id, info.name).dir);
  }

  async abandon(building: SnapshotPaths): Promise<void> {
    await rm(building.dir, { recursive: true, force: true });
  }

  async read(id: string, name: string): Promise<SnapshotInfo> {
    const file = this.paths(id, name).info;
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new SnapshotNotFoundError(id, name, await this.names(id));
      throw error;
    }
    const checked = checkJson(snapshotSchema, text, 'the file');
    if (!checked.ok) throw new CorruptSnapshotError(file, checked.reason);
    return checked.value as SnapshotInfo;
  }

  /** The snapshots of a container, oldest first. */
  async list(id: string): Promise<SnapshotInfo[]> {
    const infos: SnapshotInfo[] = [];
    for (const name of await this.names(id)) infos.push(await this.read(id, name));
    return infos.sort((a, b) => a.created.localeCompare(b.created));
  }

  /** The newest snapshot, for `runtime reset <id>` without a name. */
  async latest(id: string): Promise<SnapshotInfo> {
    const all = await this.list(id);
    if (all.length === 0) throw new SnapshotNotFoundError(id, undefined, []);
    return all.at(-1)!;
  }

  /** Removes a snapshot, unless another snapshot or a running layer stack sits on its layer. */
  async remove(id: string, name: string, layersInUse: readonly { readonly user: string; readonly layers: readonly string[] }[]): Promise<void> {
    const info = await this.read(id, name);
    const own = this.paths(id, name).rootfs;
    const users = [
      ...(await this.list(id)).filter((s) => s.name !== name && s.layers.includes(own)).map((s) => `snapshot ${s.name}`),
      ...layersInUse.filter((u) => u.layers.includes(own)).map((u) => u.user),
    ];
    if (users.length > 0) throw new SnapshotInUseError(info.name, users);
    await rm(this.paths(id, name).dir, { recursive: true, force: true });
  }

  private async names(id: string): Promise<string[]> {
    try {
      const entries = await readdir(this.root(id));
      const names: string[] = [];
      for (const entry of entries) {
        if (entry.endsWith(IN_PROGRESS) || !namePattern.test(entry)) continue;
        if (await exists(path.join(this.root(id), entry, 'snapshot.json'))) names.push(entry);
      }
      return names.sort();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
  }
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

/** Bytes of memory pages in a CRIU image directory (the pages-*.img files). */
export async function memoryBytes(images: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(images)) {
    if (/^pages-\d+\.img$/.test(entry)) total += (await stat(path.join(images, entry))).size;
  }
  return total;
}
