/**
 * Streaming image decoding: the header, then one entry at a time in the shape `crit decode`
 * prints. Every failure is a RuntimeError (CorruptImageError for damaged input).
 */
import { loadImageCatalog, type ImageCatalog } from '../catalog.js';
import { CorruptImageError, ImageReadError, isSystemError } from '../errors.js';
import { ByteReader, type ImageSource } from '../framing/byte-reader.js';
import { readHeader, readPayload, readRecord, skipRecord, type ImageHeader } from '../framing/records.js';
import type { HandlerSpec } from '../handlers.js';
import { PrettyError, prettifyMessage } from '../pretty/prettify.js';
import { encodeBytesPython } from '../text/base64.js';
import type { CritJsonObject, DecodeOptions, ImageEntry } from '../types.js';
import type { MessageSchema } from '../descriptors/schema.js';
import type { RawRecord } from '../framing/records.js';
import { RuntimeError } from '../../../system/errors.js';
import { lengthField, loadExtra, skipExtra, skipExtraExactly } from './extras.js';
import { decodeRecord } from './records.js';

/** What to do with payloads: read them (decode), summarize them (`crit show --nopl`), or skip them exactly (count). */
type PayloadMode = 'load' | 'summary' | 'skip';

interface Context {
  readonly reader: ByteReader;
  readonly catalog: ImageCatalog;
  readonly pretty: boolean;
  readonly payload: PayloadMode;
}

function shape(ctx: Context, schema: MessageSchema, plain: CritJsonObject, record: RawRecord): CritJsonObject {
  if (!ctx.pretty) return plain;
  try {
    return prettifyMessage(schema, plain);
  } catch (cause) {
    if (cause instanceof PrettyError) throw new CorruptImageError(ctx.reader.name, record.offset, cause.message, { cause });
    throw cause;
  }
}

async function* plainEntries(ctx: Context, spec: Extract<HandlerSpec, { kind: 'entries' }>): AsyncGenerator<ImageEntry> {
  const schema = ctx.catalog.type(spec.type);
  const { reader } = ctx;
  if (!spec.extra && ctx.payload === 'skip') {
    while (await skipRecord(reader)) yield {};
    return;
  }
  for (;;) {
    const next = readRecord(reader);
    const record = next instanceof Promise ? await next : next;
    if (!record) return;
    const plain = decodeRecord(reader, schema, record);
    const entry = shape(ctx, schema, plain, record);
    if (spec.extra) {
      if (ctx.payload === 'load') entry.extra = await loadExtra(spec.extra, reader, ctx.catalog, plain, record.offset);
      else if (ctx.payload === 'summary') entry.extra = await skipExtra(spec.extra, reader, ctx.catalog, plain, record.offset);
      else await skipExtraExactly(spec.extra, reader, ctx.catalog, plain, record.offset);
    }
    yield entry;
  }
}

async function* pagemapEntries(ctx: Context): AsyncGenerator<ImageEntry> {
  let schema = ctx.catalog.type('pagemap_head');
  const entrySchema = ctx.catalog.type('pagemap_entry');
  for (;;) {
    const record = await readRecord(ctx.reader);
    if (!record) return;
    yield shape(ctx, schema, decodeRecord(ctx.reader, schema, record), record);
    schema = entrySchema;
  }
}

async function* ghostEntries(ctx: Context): AsyncGenerator<ImageEntry> {
  const { reader } = ctx;
  const fileSchema = ctx.catalog.type('ghost_file_entry');
  const first = await readRecord(reader);
  if (!first) throw new CorruptImageError(reader.name, reader.offset, 'a ghost file image without its ghost_file_entry');
  const plain = decodeRecord(reader, fileSchema, first);
  const head = shape(ctx, fileSchema, plain, first);
  if (plain.chunks !== true) {
    if (ctx.payload === 'load') head.extra = encodeBytesPython(await reader.rest());
    else await reader.skip(Number.MAX_SAFE_INTEGER);
    yield head;
    return;
  }
  yield head;
  const chunkSchema = ctx.catalog.type('ghost_chunk_entry');
  for (;;) {
    const record = await readRecord(reader);
    if (!record) return;
    const chunk = decodeRecord(reader, chunkSchema, record);
    const entry = shape(ctx, chunkSchema, chunk, record);
    const length = lengthField(reader, record.offset, chunk, 'len');
    if (ctx.payload === 'load') entry.extra = encodeBytesPython(await readPayload(reader, length, 'ghost file chunk'));
    else if ((await reader.skip(length)) < length && ctx.payload === 'skip') {
      throw new CorruptImageError(reader.name, record.offset, `ghost file chunk of ${length} bytes is cut short`);
    }
    yield entry;
  }
}

function entriesFor(ctx: Context, spec: HandlerSpec): AsyncGenerator<ImageEntry> {
  if (spec.kind === 'pagemap') return pagemapEntries(ctx);
  if (spec.kind === 'ghost') return ghostEntries(ctx);
  return plainEntries(ctx, spec);
}

/** Any failure as a RuntimeError: damaged input can trip more than the checks that expect it. */
function asRuntimeError(error: unknown, reader: ByteReader): RuntimeError {
  if (error instanceof RuntimeError) return error;
  if (isSystemError(error)) return new ImageReadError(reader.name, error.message, { cause: error });
  return new CorruptImageError(reader.name, reader.offset, (error as Error)?.message ?? String(error), { cause: error });
}

/** An open image: its type and its entries, read one at a time. Iterate once; the file closes at the end. */
export interface ImageStream extends AsyncIterable<ImageEntry> {
  /** The image type name from magic.py ("CORE", "PAGEMAP", ...). */
  readonly magic: string;
  /** The file name in errors ("<buffer>" or "<stream>" when not read from a path). */
  readonly name: string;
  /** Closes the file early; iterating to the end (or breaking out of a for-await) closes it too. */
  close(): Promise<void>;
}

export interface OpenOptions extends DecodeOptions {
  /** The name used in errors, for buffers and streams. */
  readonly name?: string;
}

async function openWith(source: ImageSource, options: OpenOptions, payload: PayloadMode): Promise<{ header: ImageHeader; stream: ImageStream }> {
  const catalog = loadImageCatalog(options.pycriuDir);
  let reader: ByteReader;
  try {
    reader = await ByteReader.open(source, options.name);
  } catch (error) {
    const name = options.name ?? (typeof source === 'string' ? source : '<input>');
    throw isSystemError(error) ? new ImageReadError(name, error.message, { cause: error }) : error;
  }
  let header: ImageHeader;
  try {
    header = await readHeader(reader, catalog);
  } catch (error) {
    await reader.close().catch(() => undefined);
    throw asRuntimeError(error, reader);
  }
  const ctx: Context = { reader, catalog, pretty: options.pretty === true, payload };
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await reader.close();
  };
  let used = false;
  const stream: ImageStream = {
    magic: header.name,
    name: reader.name,
    close,
    async *[Symbol.asyncIterator]() {
      if (used) throw new Error('an ImageStream can be iterated only once');
      used = true;
      try {
        const entries = entriesFor(ctx, header.spec);
        for (;;) {
          let next: IteratorResult<ImageEntry>;
          try {
            next = await entries.next();
          } catch (error) {
            throw asRuntimeError(error, reader);
          }
          if (next.done) return;
          yield next.value;
        }
      } finally {
        await close();
      }
    },
  };
  return { header, stream };
}

/** Opens an image and reads its header; entries are decoded as they are iterated. */
export async function decodeImageStream(source: ImageSource, options: OpenOptions = {}): Promise<ImageStream> {
  return (await openWith(source, options, options.noPayload ? 'summary' : 'load')).stream;
}

/** `crit info`: the image type and its number of entries (for PAGEMAP, not counting the head). */
export async function imageInfo(source: ImageSource, options: OpenOptions = {}): Promise<{ magic: string; count: number }> {
  const { header, stream } = await openWith(source, options, 'skip');
  let count = 0;
  for await (const _ of stream) count++;
  if (header.spec.kind === 'pagemap') count = Math.max(0, count - 1);
  return { magic: header.name, count };
}
