/**
 * A checkpoint directory as CRIT's explorers (`crit x DIR ...`) read it: images decoded in plain
 * form, each once, and file descriptions ("/bin/sh", "pipe[123]", "unix[...]", "TTY.5") resolved
 * through files.img, falling back to the per-type images of older CRIU versions.
 */
import path from 'node:path';
import { decodeImage } from '../image.js';
import type { CritJsonObject, CritJsonValue, ImageEntry } from '../types.js';
import { d } from './printf.js';

export interface ExploreOptions {
  /** The pycriu package directory to take descriptors from. */
  readonly pycriuDir?: string;
}

interface FileType {
  /** The image of older CRIU versions that holds this type's entries. */
  readonly image: string;
  /** The member of a files.img entry that holds this type's entry. */
  readonly field: string;
  describe(entry: CritJsonObject | undefined): string;
}

function truthy(value: CritJsonValue | undefined): boolean {
  return value !== undefined && value !== null && value !== '' && value !== 0 && value !== false;
}

const fileTypes: Readonly<Record<string, FileType>> = {
  REG: {
    image: 'reg-files.img',
    field: 'reg',
    describe: (rf) => (rf && Object.keys(rf).length > 0 && truthy(rf.name) ? String(rf.name) : 'unknown path'),
  },
  PIPE: {
    image: 'pipes.img',
    field: 'pipe',
    describe: (p) => (p && Object.keys(p).length > 0 ? `pipe[${d(p.pipe_id as number)}]` : 'pipe[?]'),
  },
  UNIXSK: {
    image: 'unixsk.img',
    field: 'usk',
    describe: (ux) => {
      if (!ux || Object.keys(ux).length === 0) return 'unix[?]';
      const name = truthy(ux.name) ? ` ${String(ux.name)}` : '';
      return `unix[${d(ux.ino as number)} (${d(ux.peer as number)})${name}]`;
    },
  },
};

function sameId(a: CritJsonValue | undefined, b: number | bigint): boolean {
  return (typeof a === 'number' || typeof a === 'bigint') && BigInt(a) === BigInt(b);
}

export class CheckpointDir {
  private readonly images = new Map<string, Promise<ImageEntry[]>>();
  private filesImage: Promise<ImageEntry[]> | undefined;
  private readonly typeImages = new Map<string, Promise<ImageEntry[]>>();
  private readonly described = new Map<string, string>();

  constructor(
    readonly dir: string,
    private readonly options: ExploreOptions = {},
  ) {}

  /** The entries of an image in this directory (plain form, as the explorers use). */
  entries(name: string): Promise<ImageEntry[]> {
    let loaded = this.images.get(name);
    if (!loaded) {
      loaded = decodeImage(path.join(this.dir, name), { pycriuDir: this.options.pycriuDir }).then((image) => image.entries);
      this.images.set(name, loaded);
    }
    return loaded;
  }

  /** What CRIT prints for a file of `type` with `id`. */
  async describeFile(type: string, id: number | bigint): Promise<string> {
    const key = `${type}/${id}`;
    const cached = this.described.get(key);
    if (cached !== undefined) return cached;
    const fileType = fileTypes[type];
    const text = fileType ? fileType.describe(await this.find(fileType, id)) : `${type}.${d(id)}`;
    this.described.set(key, text);
    return text;
  }

  private async find(type: FileType, id: number | bigint): Promise<CritJsonObject | undefined> {
    // files.img, when it exists and is not empty, answers for every type; a type image otherwise.
    this.filesImage ??= this.entries('files.img').catch(() => []);
    const files = await this.filesImage;
    if (files.length > 0) {
      const file = files.find((f) => sameId(f.id, id));
      if (file) return file[type.field] as CritJsonObject | undefined;
    }
    let entries = this.typeImages.get(type.image);
    if (!entries) {
      entries = this.entries(type.image);
      this.typeImages.set(type.image, entries);
    }
    return (await entries).find((f) => sameId(f.id, id));
  }
}

/** pycriu's get_task_id: the pid (or pgid, sid) field, else the first of its ns_ list. */
export function taskId(entry: CritJsonObject, name: 'pid' | 'pgid' | 'sid'): number {
  const value = entry[name] ?? (entry[`ns_${name}`] as CritJsonValue[] | undefined)?.[0];
  return Number(value);
}
