/**
 * A streaming tar reader for image layers and docker archives, written here rather than taken
 * from npm because a layer is untrusted input whose every field must be checked (header
 * checksums, numeric fields, an archive that ends early), and because the extractor needs the
 * whole of what image builders write: ustar, pax extended headers (per entry and global, with
 * xattrs as exact bytes), GNU long names, base-256 numbers, and the three GNU sparse encodings
 * (old GNU 'S' headers, pax 0.0/0.1 maps in records, pax 1.0 maps before the data).
 *
 * readTar streams an archive once; bodies are views of the source's chunks (no copy). Header
 * parsing is shared with indexTarFile, which reads only the headers of a tar file (a docker
 * save archive) with positioned reads, so that a member can then be read on its own.
 */
import { createReadStream } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { RuntimeError } from '../../system/errors.js';
import type { TarEntry, TarEntryType } from './types.js';

const BLOCK = 512;
const EMPTY = Buffer.alloc(0);
const ZERO_BLOCK = Buffer.alloc(BLOCK);
/** Pax records and GNU long names are held in memory: a bigger one is not a real archive. */
const META_LIMIT = 16 << 20;
/** A sparse map with more segments than this is refused rather than held in memory. */
const SPARSE_SEGMENTS_LIMIT = 1 << 20;

export class TarFormatError extends RuntimeError {
  readonly code = 'TAR_FORMAT' as const;
  constructor(
    readonly offset: number,
    readonly problem: string,
  ) {
    super(`tar archive, at byte ${offset}: ${problem}`, {
      hint: 'the archive is damaged, truncated or not a tar archive: fetch or export the image again',
    });
  }
}

/** Where a member's data sits in a tar file, for indexTarFile and readTarFileMember. */
export interface TarMember {
  readonly entry: TarEntry;
  /** The byte offset of the member's data in the file. */
  readonly offset: number;
  /** The data's length as stored (for a sparse member, its data segments only). */
  readonly size: number;
}

/** Sequential bytes of an archive, from a stream or from a file. */
interface ByteSource {
  /** The archive offset of the next byte. */
  readonly offset: number;
  /** length bytes, fewer only where the archive ends; the result may be a view of a source chunk. */
  read(length: number): Promise<Buffer>;
  /** Skips length bytes; returns how many there were. */
  skip(length: number): Promise<number>;
}

/** An async iterable of chunks as a ByteSource that hands out views of the chunks, never copies of big ones. */
class StreamSource implements ByteSource {
  offset = 0;
  private readonly iterator: AsyncIterator<Buffer>;
  private head: Buffer = EMPTY;
  private ended = false;

  constructor(source: AsyncIterable<Buffer>) {
    this.iterator = source[Symbol.asyncIterator]();
  }

  private async pull(): Promise<boolean> {
    while (!this.ended) {
      const next = await this.iterator.next();
      if (next.done) {
        this.ended = true;
        return false;
      }
      const value: Uint8Array = next.value;
      if (value.length === 0) continue;
      this.head = Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.length);
      return true;
    }
    return false;
  }

  async read(length: number): Promise<Buffer> {
    if (this.head.length >= length) return this.take(length);
    const parts: Buffer[] = [];
    let have = 0;
    while (have < length) {
      if (this.head.length === 0 && !(await this.pull())) break;
      const part = this.take(Math.min(length - have, this.head.length));
      parts.push(part);
      have += part.length;
    }
    // Only headers and metadata go through read(): the copy is small.
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts, have);
  }

  /** Up to max bytes as a view of the current chunk; empty at the end of the source. */
  async chunk(max: number): Promise<Buffer> {
    if (this.head.length === 0 && !(await this.pull())) return EMPTY;
    return this.take(Math.min(max, this.head.length));
  }

  async skip(length: number): Promise<number> {
    let left = length;
    while (left > 0) {
      const part = await this.chunk(left);
      if (part.length === 0) break;
      left -= part.length;
    }
    return length - left;
  }

  /**
   * Reads the source to its end (the zero padding after the end-of-archive blocks), so that a
   * stream that checks a digest as it goes sees every byte.
   */
  async drain(): Promise<void> {
    this.offset += this.head.length;
    this.head = EMPTY;
    while (await this.pull()) {
      this.offset += this.head.length;
      this.head = EMPTY;
    }
  }

  /** Ends the source early (the consumer stopped, or the archive is bad): closes a file stream. */
  async close(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    await this.iterator.return?.();
  }

  private take(length: number): Buffer {
    const out = this.head.subarray(0, length);
    this.head = this.head.subarray(length);
    this.offset += length;
    return out;
  }
}

/** A tar file read at offsets: headers are read, bodies are seeked over. */
class FileSource implements ByteSource {
  offset = 0;

  constructor(
    private readonly handle: FileHandle,
    private readonly fileSize: number,
  ) {}

  async read(length: number): Promise<Buffer> {
    const buffer = Buffer.alloc(Math.max(0, Math.min(length, this.fileSize - this.offset)));
    let got = 0;
    while (got < buffer.length) {
      const { bytesRead } = await this.handle.read(buffer, got, buffer.length - got, this.offset + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    this.offset += got;
    return got === buffer.length ? buffer : buffer.subarray(0, got);
  }

  async skip(length: number): Promise<number> {
    const skipped = Math.max(0, Math.min(length, this.fileSize - this.offset));
    this.offset += skipped;
    return skipped;
  }
}

/** A member's data as readTar yields it: read from the shared source while the member is current. */
class Body implements AsyncIterable<Buffer> {
  /** Stored bytes of this member not yet read. */
  remaining: number;
  current = true;

  constructor(
    private readonly input: StreamSource,
    private readonly name: string,
    size: number,
  ) {
    this.remaining = size;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    while (this.remaining > 0) {
      // The source has moved on to later members: these bytes are gone.
      if (!this.current) throw new TarFormatError(this.input.offset, `the data of "${this.name}" was read after the next entry was pulled`);
      const part = await this.input.chunk(this.remaining);
      if (part.length === 0) throw endedEarly(this.input.offset, `inside the data of "${this.name}"`);
      this.remaining -= part.length;
      yield part;
    }
  }
}

/**
 * The entries of a tar archive, in order, each with its data. A body need not be read: what is
 * left of it is skipped when the next entry is pulled (and can no longer be read then). A
 * sparse member's body holds its data segments only (entry.sparse says where they go).
 */
export async function* readTar(source: AsyncIterable<Buffer>): AsyncGenerator<{ entry: TarEntry; body: AsyncIterable<Buffer> }> {
  const input = new StreamSource(source);
  const globals = new Map<string, Buffer>();
  try {
    for (;;) {
      const header = await readHeader(input, globals);
      if (header === undefined) break;
      const body = new Body(input, header.entry.name, header.dataSize);
      yield { entry: header.entry, body };
      body.current = false;
      const rest = body.remaining + padding(header.dataSize);
      if ((await input.skip(rest)) < rest) throw endedEarly(input.offset, `inside the data of "${header.entry.name}"`);
    }
    await input.drain();
  } finally {
    await input.close();
  }
}

/**
 * The members of a tar file by name (a leading "./" removed; a later member of the same name
 * wins, as tar extracts it), from its headers alone: bodies are never read.
 */
export async function indexTarFile(file: string): Promise<Map<string, TarMember>> {
  const handle = await open(file, 'r');
  try {
    const input = new FileSource(handle, (await handle.stat()).size);
    const globals = new Map<string, Buffer>();
    const members = new Map<string, TarMember>();
    for (;;) {
      const header = await readHeader(input, globals);
      if (header === undefined) break;
      members.set(header.entry.name.replace(/^(\.\/)+/, ''), { entry: header.entry, offset: input.offset, size: header.dataSize });
      const span = header.dataSize + padding(header.dataSize);
      if ((await input.skip(span)) < span) throw endedEarly(input.offset, `inside the data of "${header.entry.name}"`);
    }
    return members;
  } finally {
    await handle.close();
  }
}

/** The stored bytes of one member of a tar file that indexTarFile indexed. */
export async function* readTarFileMember(file: string, member: TarMember): AsyncGenerator<Buffer> {
  if (member.size === 0) return;
  for await (const chunk of createReadStream(file, { start: member.offset, end: member.offset + member.size - 1, highWaterMark: 1 << 20 })) {
    yield chunk as Buffer;
  }
}

interface Header {
  readonly entry: TarEntry;
  /** Bytes of data stored after the header (and after a pax 1.0 sparse map). */
  readonly dataSize: number;
}

/** What extended headers said about the entry that follows them. */
interface Extensions {
  longName?: string;
  longLink?: string;
  pax?: Map<string, Buffer>;
  /** Pax sparse 0.0 gives its map as repeated records, in order. */
  sparseOffsets: number[];
  sparseLengths: number[];
}

/** The next entry with its extended headers applied, or undefined at the end of the archive. */
async function readHeader(input: ByteSource, globals: Map<string, Buffer>): Promise<Header | undefined> {
  const extensions: Extensions = { sparseOffsets: [], sparseLengths: [] };
  let pending = false;
  for (;;) {
    const at = input.offset;
    const block = await input.read(BLOCK);
    if (block.length === 0) throw endedEarly(at, pending ? 'after an extended header, before its entry' : 'without its two end-of-archive blocks');
    if (block.length < BLOCK) throw endedEarly(at, 'inside a header');
    if (block.equals(ZERO_BLOCK)) {
      if (pending) throw new TarFormatError(at, 'an end-of-archive block follows an extended header');
      // A lone zero block at the very end is accepted, as GNU tar and Go's archive/tar do.
      const second = await input.read(BLOCK);
      if (second.length === 0) return undefined;
      if (second.length < BLOCK) throw endedEarly(at + BLOCK, 'inside the second end-of-archive block');
      if (!second.equals(ZERO_BLOCK)) throw new TarFormatError(at, 'a zero block is followed by a header (a hole in the archive)');
      return undefined;
    }
    verifyChecksum(block, at);
    const flag = String.fromCharCode(block[156]!);
    const size = numeric(block, 124, 12, 'size', at);
    switch (flag) {
      case 'x':
        extensions.pax = parsePax(await readMeta(input, size, at), at, extensions.pax ?? new Map(), extensions);
        break;
      case 'g':
        // Global records apply to every later entry; an empty value removes one.
        for (const [key, value] of parsePax(await readMeta(input, size, at), at, new Map(), undefined)) {
          if (value.length === 0) globals.delete(key);
          else globals.set(key, value);
        }
        break;
      case 'L':
        extensions.longName = cString(await readMeta(input, size, at), 0, size);
        break;
      case 'K':
        extensions.longLink = cString(await readMeta(input, size, at), 0, size);
        break;
      default:
        return buildEntry(input, block, at, flag, size, mergePax(globals, extensions.pax), extensions);
    }
    pending = true;
  }
}

function mergePax(globals: ReadonlyMap<string, Buffer>, local: ReadonlyMap<string, Buffer> | undefined): Map<string, Buffer> {
  const merged = new Map(globals);
  // An empty value in a per-entry header cancels the global one (POSIX pax).
  for (const [key, value] of local ?? []) {
    if (value.length === 0) merged.delete(key);
    else merged.set(key, value);
  }
  return merged;
}

const typeFlags: Readonly<Record<string, TarEntryType>> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  S: 'file',
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'char',
  '4': 'block',
  '5': 'directory',
  '6': 'fifo',
};

async function buildEntry(
  input: ByteSource,
  block: Buffer,
  at: number,
  flag: string,
  headerSize: number,
  pax: ReadonlyMap<string, Buffer>,
  extensions: Extensions,
): Promise<Header> {
  let type = typeFlags[flag];
  if (type === undefined) throw new TarFormatError(at, `unknown entry type flag ${JSON.stringify(flag)} (0x${block[156]!.toString(16).padStart(2, '0')})`);
  const magic = block.toString('latin1', 257, 263);
  // Only POSIX ustar has the prefix field; GNU tar keeps its own fields (atime, sparse map) there.
  const prefix = magic === 'ustar\0' ? cString(block, 345, 155) : '';
  let name = cString(block, 0, 100);
  if (prefix !== '') name = `${prefix}/${name}`;
  name = paxString(pax, 'path') ?? extensions.longName ?? name;
  // Old archives mark a directory by a trailing slash on a plain file.
  if (flag === '\0' && name.endsWith('/')) type = 'directory';
  const linkname = paxString(pax, 'linkpath') ?? extensions.longLink ?? cString(block, 157, 100);
  const size = paxNumber(pax, 'size', at, true) ?? headerSize;
  const mtime = paxNumber(pax, 'mtime', at, false) ?? numeric(block, 136, 12, 'mtime', at, true);
  const atime = paxNumber(pax, 'atime', at, false);
  const xattrs = new Map<string, Buffer>();
  for (const [key, value] of pax) if (key.startsWith('SCHILY.xattr.')) xattrs.set(key.slice('SCHILY.xattr.'.length), value);

  // Link, device, directory and fifo entries carry no data whatever their size field says
  // (Go's archive/tar reads them so, and Docker writes layers with it).
  const hasData = type === 'file';
  let dataSize = hasData ? size : 0;
  let realSize = dataSize;
  let sparse: { offset: number; length: number }[] | undefined;
  let sparseName: string | undefined;
  if (flag === 'S') {
    ({ realSize, sparse } = await oldGnuSparse(input, block, at));
  } else if (hasData && pax.has('GNU.sparse.major')) {
    if (paxString(pax, 'GNU.sparse.major') !== '1' || paxString(pax, 'GNU.sparse.minor') !== '0') {
      throw new TarFormatError(at, `unsupported GNU sparse format ${paxString(pax, 'GNU.sparse.major')}.${paxString(pax, 'GNU.sparse.minor') ?? ''}`);
    }
    realSize = requiredPaxNumber(pax, 'GNU.sparse.realsize', at);
    const map = await pax1SparseMap(input, size, at);
    sparse = map.segments;
    dataSize = size - map.bytes;
    sparseName = paxString(pax, 'GNU.sparse.name');
  } else if (hasData && pax.has('GNU.sparse.map')) {
    realSize = requiredPaxNumber(pax, 'GNU.sparse.size', at);
    const numbers = paxString(pax, 'GNU.sparse.map')!
      .split(',')
      .map((n) => decimal(n, 'GNU.sparse.map', at));
    if (numbers.length % 2 !== 0) throw new TarFormatError(at, 'GNU.sparse.map has an odd count of numbers');
    sparse = pairs(numbers);
    sparseName = paxString(pax, 'GNU.sparse.name');
  } else if (hasData && (extensions.sparseOffsets.length > 0 || pax.has('GNU.sparse.numblocks'))) {
    realSize = requiredPaxNumber(pax, 'GNU.sparse.size', at);
    if (extensions.sparseOffsets.length !== extensions.sparseLengths.length)
      throw new TarFormatError(at, 'GNU.sparse.offset and numbytes records do not pair up');
    sparse = extensions.sparseOffsets.map((offset, i) => ({ offset, length: extensions.sparseLengths[i]! }));
    sparseName = paxString(pax, 'GNU.sparse.name');
  }
  if (sparse !== undefined) {
    sparse = checkSparse(sparse, realSize, dataSize, at);
    if (sparseName !== undefined) name = sparseName;
  }

  const entry: TarEntry = {
    name,
    type,
    mode: numeric(block, 100, 8, 'mode', at) & 0o7777,
    uid: paxNumber(pax, 'uid', at, true) ?? numeric(block, 108, 8, 'uid', at),
    gid: paxNumber(pax, 'gid', at, true) ?? numeric(block, 116, 8, 'gid', at),
    size: hasData ? realSize : 0,
    mtime,
    ...(atime === undefined ? {} : { atime }),
    linkname,
    devmajor: type === 'char' || type === 'block' ? numeric(block, 329, 8, 'devmajor', at) : 0,
    devminor: type === 'char' || type === 'block' ? numeric(block, 337, 8, 'devminor', at) : 0,
    xattrs,
    ...(sparse === undefined ? {} : { sparse }),
  };
  return { entry, dataSize };
}

/** Old GNU sparse ('S'): four map slots in the header, more in extension blocks, the real size at 483. */
async function oldGnuSparse(input: ByteSource, block: Buffer, at: number): Promise<{ realSize: number; sparse: { offset: number; length: number }[] }> {
  const numbers: number[] = [];
  const slots = (from: Buffer, start: number, count: number, where: number) => {
    for (let i = 0; i < count; i++) {
      const slot = start + i * 24;
      // An empty slot ends the map.
      if (from[slot] === 0) return;
      numbers.push(numeric(from, slot, 12, 'sparse offset', where), numeric(from, slot + 12, 12, 'sparse length', where));
    }
  };
  slots(block, 386, 4, at);
  const realSize = numeric(block, 483, 12, 'sparse real size', at);
  let extended = block[482] !== 0;
  while (extended) {
    const where = input.offset;
    const more = await input.read(BLOCK);
    if (more.length < BLOCK) throw endedEarly(where, 'inside a GNU sparse extension header');
    slots(more, 0, 21, where);
    extended = more[504] !== 0;
    if (numbers.length > 2 * SPARSE_SEGMENTS_LIMIT) throw new TarFormatError(where, 'the GNU sparse map is too long');
  }
  return { realSize, sparse: pairs(numbers) };
}

/** Pax sparse 1.0: the map is text at the start of the data ("count\n" then "offset\nlength\n" pairs), padded to a block. */
async function pax1SparseMap(input: ByteSource, size: number, at: number): Promise<{ segments: { offset: number; length: number }[]; bytes: number }> {
  const numbers: number[] = [];
  let count: number | undefined;
  let partial = '';
  let bytes = 0;
  while (count === undefined || numbers.length < 2 * count) {
    if (bytes + BLOCK > size) throw new TarFormatError(at, 'the pax 1.0 sparse map runs past the member data');
    const where = input.offset;
    const text = await input.read(BLOCK);
    if (text.length < BLOCK) throw endedEarly(where, 'inside a pax sparse map');
    bytes += BLOCK;
    const lines = (partial + text.toString('latin1')).split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      if (count !== undefined && numbers.length >= 2 * count) break;
      const value = decimal(line, 'pax sparse map', where);
      if (count === undefined) {
        if (value > SPARSE_SEGMENTS_LIMIT) throw new TarFormatError(where, `the pax sparse map claims ${value} segments`);
        count = value;
      } else numbers.push(value);
    }
    const done = count !== undefined && numbers.length >= 2 * count;
    if (!done && partial.length > 40) throw new TarFormatError(where, 'the pax sparse map has a line that is not a number');
  }
  return { segments: pairs(numbers), bytes };
}

function pairs(numbers: readonly number[]): { offset: number; length: number }[] {
  const out: { offset: number; length: number }[] = [];
  for (let i = 0; i + 1 < numbers.length; i += 2) out.push({ offset: numbers[i]!, length: numbers[i + 1]! });
  return out;
}

/** The segments in order, inside the file, adding up to the stored data; empty segments (GNU's end marker) dropped. */
function checkSparse(
  segments: readonly { offset: number; length: number }[],
  realSize: number,
  dataSize: number,
  at: number,
): { offset: number; length: number }[] {
  let end = 0;
  let total = 0;
  for (const { offset, length } of segments) {
    if (offset < end || offset + length > realSize) {
      throw new TarFormatError(at, `sparse segment ${offset}+${length} overlaps another or lies past the file's size ${realSize}`);
    }
    end = offset + length;
    total += length;
  }
  if (total !== dataSize) throw new TarFormatError(at, `the sparse map holds ${total} bytes of data, the member stores ${dataSize}`);
  return segments.filter((s) => s.length > 0);
}

/** The data of an extended header (pax records, a GNU long name), with its padding skipped. */
async function readMeta(input: ByteSource, size: number, at: number): Promise<Buffer> {
  if (size > META_LIMIT) throw new TarFormatError(at, `an extended header of ${size} bytes (at most ${META_LIMIT})`);
  const data = await input.read(size);
  if (data.length < size) throw endedEarly(input.offset, 'inside an extended header');
  const pad = padding(size);
  if ((await input.skip(pad)) < pad) throw endedEarly(input.offset, 'inside an extended header');
  return data;
}

/** Pax records ("<length> <key>=<value>\n"); values stay bytes, since xattr values are binary. */
function parsePax(data: Buffer, at: number, into: Map<string, Buffer>, extensions: Extensions | undefined): Map<string, Buffer> {
  let position = 0;
  while (position < data.length) {
    // Some writers pad the record area with NULs.
    if (data[position] === 0) break;
    const space = data.indexOf(0x20, position);
    const length = space < 0 ? NaN : Number(data.toString('latin1', position, space));
    if (!Number.isSafeInteger(length) || length <= space - position + 1 || position + length > data.length || data[position + length - 1] !== 0x0a) {
      throw new TarFormatError(at, `a malformed pax record at byte ${position} of its header`);
    }
    const equals = data.indexOf(0x3d, space + 1);
    if (equals < 0 || equals >= position + length) throw new TarFormatError(at, `a pax record without "=" at byte ${position} of its header`);
    const key = data.toString('utf8', space + 1, equals);
    // A copy: the value outlives the chunk it came in.
    const value = Buffer.from(data.subarray(equals + 1, position + length - 1));
    if (extensions !== undefined && key === 'GNU.sparse.offset') extensions.sparseOffsets.push(decimal(value.toString('latin1'), key, at));
    else if (extensions !== undefined && key === 'GNU.sparse.numbytes') extensions.sparseLengths.push(decimal(value.toString('latin1'), key, at));
    else into.set(key, value);
    position += length;
  }
  return into;
}

function paxString(pax: ReadonlyMap<string, Buffer>, key: string): string | undefined {
  return pax.get(key)?.toString('utf8');
}

/** A pax number: whole for sizes and ids, possibly fractional (and negative) for times. */
function paxNumber(pax: ReadonlyMap<string, Buffer>, key: string, at: number, whole: boolean): number | undefined {
  const text = paxString(pax, key);
  if (text === undefined) return undefined;
  if (whole) return decimal(text, `pax ${key}`, at);
  if (!/^-?\d+(\.\d+)?$/.test(text)) throw new TarFormatError(at, `pax ${key} is not a number: ${JSON.stringify(text)}`);
  return Number(text);
}

function requiredPaxNumber(pax: ReadonlyMap<string, Buffer>, key: string, at: number): number {
  const value = paxNumber(pax, key, at, true);
  if (value === undefined) throw new TarFormatError(at, `a GNU sparse member without ${key}`);
  return value;
}

function decimal(text: string, field: string, at: number): number {
  const value = /^\d{1,16}$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(value)) throw new TarFormatError(at, `${field} is not a whole number: ${JSON.stringify(text.slice(0, 40))}`);
  return value;
}

/**
 * A numeric header field: octal text (leading spaces, ended by a space or NUL), or GNU's base-256
 * (first byte's high bit set; the next bit is the sign of a two's complement number).
 */
function numeric(block: Buffer, start: number, length: number, field: string, at: number, signed = false): number {
  const first = block[start]!;
  if (first & 0x80) {
    let value = BigInt(first & 0x7f);
    for (let i = 1; i < length; i++) value = (value << 8n) | BigInt(block[start + i]!);
    const bits = BigInt(length * 8 - 1);
    if (first & 0x40) value -= 1n << bits;
    if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < -BigInt(Number.MAX_SAFE_INTEGER) || (value < 0n && !signed)) {
      throw new TarFormatError(at, `the ${field} field holds ${value}, out of range`);
    }
    return Number(value);
  }
  let i = start;
  const end = start + length;
  while (i < end && (block[i] === 0x20 || block[i] === 0)) i++;
  let value = 0;
  for (; i < end; i++) {
    const c = block[i]!;
    if (c === 0x20 || c === 0) break;
    if (c < 0x30 || c > 0x37)
      throw new TarFormatError(at, `the ${field} field is not an octal number: ${JSON.stringify(block.toString('latin1', start, end))}`);
    value = value * 8 + (c - 0x30);
  }
  return value;
}

/** The header checksum: its bytes summed with the checksum field as spaces, unsigned or (old tars) signed. */
function verifyChecksum(block: Buffer, at: number): void {
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const c = i >= 148 && i < 156 ? 0x20 : block[i]!;
    unsigned += c;
    signed += c > 127 ? c - 256 : c;
  }
  const stored = numeric(block, 148, 8, 'checksum', at);
  if (stored !== unsigned && stored !== signed) throw new TarFormatError(at, `header checksum ${stored} does not match the header (${unsigned})`);
}

/** A NUL-terminated string of a fixed-size field. */
function cString(block: Buffer, start: number, length: number): string {
  const nul = block.indexOf(0, start);
  const end = nul < 0 || nul > start + length ? start + length : nul;
  return block.toString('utf8', start, end);
}

function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

function endedEarly(at: number, where: string): TarFormatError {
  return new TarFormatError(at, `the archive ended early, ${where}`);
}
