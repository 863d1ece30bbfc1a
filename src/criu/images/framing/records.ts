/**
 * The image framing: an optional head magic (IMG_COMMON or IMG_SERVICE), the type magic, then
 * records of a u32 size and that many bytes of message. CRIU writes the words in host byte order;
 * like go-criu, this reads them little-endian, which is the host order on x86-64 and arm64.
 * Unlike pycriu, which reads short records silently, a truncated record is an error.
 */
import { CorruptImageError, UnknownMagicError, UnsupportedImageError } from '../errors.js';
import type { ImageCatalog } from '../catalog.js';
import { handlerSpecs, type HandlerSpec } from '../handlers.js';
import { IMG_COMMON, IMG_SERVICE } from '../magic.js';
import type { ByteReader } from './byte-reader.js';

export interface ImageHeader {
  readonly name: string;
  readonly magic: number;
  readonly spec: HandlerSpec;
}

function u32(bytes: Uint8Array): number {
  return (bytes[0]! | (bytes[1]! << 8) | (bytes[2]! << 16) | (bytes[3]! << 24)) >>> 0;
}

async function word(reader: ByteReader, what: string): Promise<number> {
  const at = reader.offset;
  if (!(await reader.ensure(4))) {
    throw new CorruptImageError(reader.name, at, `the file ends ${reader.available ? `${reader.available} bytes into` : 'before'} the ${what}`);
  }
  return u32(reader.take(4));
}

/** Reads the magics, as pycriu's __rhandler: the head magic is optional and either kind is accepted. */
export async function readHeader(reader: ByteReader, catalog: ImageCatalog): Promise<ImageHeader> {
  let magic = await word(reader, 'image magic');
  if (magic === IMG_COMMON || magic === IMG_SERVICE) magic = await word(reader, 'type magic');
  const name = catalog.magics.byValue.get(magic);
  if (name === undefined) throw new UnknownMagicError(reader.name, magic);
  const spec = handlerSpecs.get(name);
  if (!spec) throw new UnsupportedImageError(reader.name, name, 'pycriu has no handler for it');
  return { name, magic, spec };
}

export interface RawRecord {
  /** Offset of the record's size word in the file. */
  readonly offset: number;
  readonly bytes: Uint8Array;
}

/** The next record, or null at a clean end of the file; synchronous when the record is buffered. */
export function readRecord(reader: ByteReader): RawRecord | null | Promise<RawRecord | null> {
  return reader.takeBufferedRecord() ?? readRecordSlowly(reader);
}

async function readRecordSlowly(reader: ByteReader): Promise<RawRecord | null> {
  const offset = reader.offset;
  if (!(await reader.ensure(4))) {
    if (reader.available === 0) return null;
    throw new CorruptImageError(reader.name, offset, `the file ends ${reader.available} bytes into an entry size`);
  }
  const size = u32(reader.take(4));
  if (size > 0x7fffffff) throw new CorruptImageError(reader.name, offset, `entry size ${size | 0} is negative`);
  if (!(await reader.ensure(size))) {
    throw new CorruptImageError(reader.name, offset, `entry of ${size} bytes is cut short after ${reader.available}`);
  }
  return { offset, bytes: reader.take(size) };
}

/** Skips the next record; returns false at a clean end of the file. */
export async function skipRecord(reader: ByteReader): Promise<boolean> {
  const offset = reader.offset;
  if (!(await reader.ensure(4))) {
    if (reader.available === 0) return false;
    throw new CorruptImageError(reader.name, offset, `the file ends ${reader.available} bytes into an entry size`);
  }
  const size = u32(reader.take(4));
  if (size > 0x7fffffff) throw new CorruptImageError(reader.name, offset, `entry size ${size | 0} is negative`);
  const skipped = await reader.skip(size);
  if (skipped < size) throw new CorruptImageError(reader.name, offset, `entry of ${size} bytes is cut short after ${skipped}`);
  return true;
}

/** Exactly `n` payload bytes. */
export async function readPayload(reader: ByteReader, n: number, what: string): Promise<Uint8Array> {
  const offset = reader.offset;
  if (!(await reader.ensure(n))) {
    throw new CorruptImageError(reader.name, offset, `${what} of ${n} bytes is cut short after ${reader.available}`);
  }
  return reader.take(n);
}

/** Exactly `n` payload bytes skipped. */
export async function skipPayload(reader: ByteReader, n: number, what: string): Promise<void> {
  const offset = reader.offset;
  const skipped = await reader.skip(n);
  if (skipped < n) throw new CorruptImageError(reader.name, offset, `${what} of ${n} bytes is cut short after ${skipped}`);
}
