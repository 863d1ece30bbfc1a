/**
 * The whole-image API: decode to the JSON `crit decode` prints, encode that JSON back to the same
 * bytes, and the JSON text itself (Python's json.dump formatting, exact big integers).
 */
import { open } from 'node:fs/promises';
import { loadImageCatalog } from './catalog.js';
import { decodeImageStream, type OpenOptions } from './decode/image-reader.js';
import { EntryEncoder } from './encode/image-encoder.js';
import { ImageWriteError, InvalidImageJsonError, isSystemError } from './errors.js';
import type { ImageSource } from './framing/byte-reader.js';
import { JsonSyntaxError, formatPythonJson, parsePythonJson } from './text/python-json.js';
import type { CritJsonObject, CritJsonValue, ImageEntry, ImageJson } from './types.js';

/** `crit decode`: the whole image as JSON. Use decodeImageStream for images with many entries. */
export async function decodeImage(source: ImageSource, options: OpenOptions = {}): Promise<ImageJson> {
  const stream = await decodeImageStream(source, options);
  const entries: ImageEntry[] = [];
  for await (const entry of stream) entries.push(entry);
  return { magic: stream.magic, entries };
}

function entriesOf(image: unknown): unknown {
  if (typeof image !== 'object' || image === null || Array.isArray(image)) {
    throw new InvalidImageJsonError('$', 'expected {"magic": ..., "entries": [...]}');
  }
  return (image as Record<string, unknown>).entries;
}

/** `crit encode`: the image bytes for a JSON image (plain or --pretty form). */
export function encodeImage(image: ImageJson, options: { readonly pycriuDir?: string } = {}): Buffer {
  const entries = entriesOf(image);
  const encoder = EntryEncoder.for(loadImageCatalog(options.pycriuDir), image.magic);
  if (!Array.isArray(entries)) throw new InvalidImageJsonError('entries', 'expected a list');
  const chunks: Uint8Array[] = [encoder.header()];
  for (const entry of entries as ImageEntry[]) chunks.push(...encoder.push(entry));
  return Buffer.concat(chunks);
}

/** An image whose entries arrive one at a time; an ImageStream from decodeImageStream is one too. */
export type ImageEntrySource =
  | { readonly magic: string; readonly entries: Iterable<ImageEntry> | AsyncIterable<ImageEntry> }
  | (AsyncIterable<ImageEntry> & { readonly magic: string });

/** Encodes entry by entry into a file, holding one entry at a time. */
export async function writeImage(file: string, image: ImageJson | ImageEntrySource, options: { readonly pycriuDir?: string } = {}): Promise<void> {
  const encoder = EntryEncoder.for(loadImageCatalog(options.pycriuDir), image.magic);
  const entries = Symbol.asyncIterator in image ? image : entriesOf(image);
  if (!entries || typeof entries !== 'object' || !(Symbol.iterator in entries || Symbol.asyncIterator in entries)) {
    throw new InvalidImageJsonError('entries', 'expected a list or an iterable of entries');
  }
  let handle;
  try {
    handle = await open(file, 'w');
  } catch (error) {
    throw isSystemError(error) ? new ImageWriteError(file, error.message, { cause: error }) : error;
  }
  try {
    const write = async (chunks: Uint8Array[]): Promise<void> => {
      try {
        await handle.writev(chunks);
      } catch (error) {
        throw isSystemError(error) ? new ImageWriteError(file, error.message, { cause: error }) : error;
      }
    };
    await write([encoder.header()]);
    for await (const entry of entries as AsyncIterable<ImageEntry>) await write(encoder.push(entry));
  } finally {
    await handle.close();
  }
}

/** The JSON text `crit decode` writes (without the newline it adds on stdout); `pretty` is `--pretty`. */
export function formatImageJson(image: ImageJson, options: { readonly pretty?: boolean } = {}): string {
  const value: CritJsonObject = { magic: image.magic, entries: image.entries };
  return formatPythonJson(value, options.pretty ? 4 : undefined);
}

/** Parses JSON from `crit decode` (or formatImageJson), keeping integers beyond 2^53 exact. */
export function parseImageJson(text: string): ImageJson {
  let value: CritJsonValue;
  try {
    value = parsePythonJson(text);
  } catch (cause) {
    if (cause instanceof JsonSyntaxError) throw new InvalidImageJsonError('$', cause.message, { cause });
    throw cause;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InvalidImageJsonError('$', 'expected an object');
  if (typeof value.magic !== 'string') throw new InvalidImageJsonError('magic', 'expected a string');
  if (!Array.isArray(value.entries)) throw new InvalidImageJsonError('entries', 'expected a list');
  return value as unknown as ImageJson;
}
