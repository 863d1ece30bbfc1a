/**
 * JSON entries back to image bytes, as pycriu's images.dump(): the magics, then for each entry a
 * u32 size, the message and the payload. Unlike CRIT, IPCNS_SHM and BPFMAP_DATA payloads encode
 * (pycriu passes a str where bytes are needed and fails), and GHOST_FILE without chunks rejects
 * entries it would silently drop.
 */
import type { ImageCatalog } from '../catalog.js';
import { EncodeError, encodeMessage } from '../codec/encode-message.js';
import { decodeMessage } from '../codec/decode-message.js';
import { InvalidImageJsonError, UnknownMagicError, UnsupportedImageError } from '../errors.js';
import { handlerSpecs, roundUp, type ExtraKind, type HandlerSpec } from '../handlers.js';
import { headMagicFor } from '../magic.js';
import { pyTruthy } from '../pretty/python-int.js';
import { Base64Error, decodeBytesPython } from '../text/base64.js';
import type { CritJsonObject, CritJsonValue, ImageEntry } from '../types.js';
import type { MessageSchema } from '../descriptors/schema.js';

function u32(value: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, value >>> 0, true);
  return out;
}

function invalid(error: unknown): never {
  if (error instanceof EncodeError) throw new InvalidImageJsonError(error.path, error.reason, { cause: error });
  throw error;
}

function base64(value: CritJsonValue | undefined, path: string): Uint8Array {
  if (typeof value !== 'string') throw new InvalidImageJsonError(path, 'expected a base64 string');
  try {
    return decodeBytesPython(value);
  } catch (cause) {
    if (cause instanceof Base64Error) throw new InvalidImageJsonError(path, cause.message, { cause });
    throw cause;
  }
}

function zeros(n: number): Uint8Array {
  return new Uint8Array(Math.max(0, n));
}

function integer(plain: CritJsonObject, name: string, path: string, required: boolean): number {
  const value = plain[name];
  if (value === undefined) {
    if (required) throw new InvalidImageJsonError(path, `the entry has no ${name}`);
    return 0;
  }
  return Number(value);
}

/** Turns entries into chunks of image bytes; keeps the state PAGEMAP and GHOST_FILE need. */
export class EntryEncoder {
  private index = 0;
  private ghostChunks: boolean | undefined;

  constructor(
    private readonly catalog: ImageCatalog,
    readonly magicName: string,
    private readonly spec: HandlerSpec,
  ) {}

  /** Resolves the magic name of a JSON image to its encoder (the name is checked before anything is written). */
  static for(catalog: ImageCatalog, magicName: unknown): EntryEncoder {
    if (typeof magicName !== 'string') throw new InvalidImageJsonError('magic', 'expected the image type name, such as "CORE"');
    const value = catalog.magics.byName.get(magicName);
    if (value === undefined) throw new InvalidImageJsonError('magic', `unknown image type ${JSON.stringify(magicName)}`);
    const spec = handlerSpecs.get(magicName);
    if (!spec) throw new UnsupportedImageError('<json>', magicName, 'pycriu has no handler for it');
    return new EntryEncoder(catalog, magicName, spec);
  }

  /** The head and type magics. */
  header(): Uint8Array {
    const value = this.catalog.magics.byName.get(this.magicName);
    if (value === undefined) throw new UnknownMagicError('<json>', 0);
    const head = headMagicFor(this.magicName);
    return head === undefined ? u32(value) : Buffer.concat([u32(head), u32(value)]);
  }

  private message(schema: MessageSchema, entry: CritJsonValue, path: string): { bytes: Uint8Array; chunks: Uint8Array[] } {
    let bytes: Uint8Array;
    try {
      bytes = encodeMessage(schema, entry, path);
    } catch (error) {
      invalid(error);
    }
    return { bytes, chunks: [u32(bytes.length), bytes] };
  }

  /** The bytes of one entry. */
  push(entry: ImageEntry): Uint8Array[] {
    const i = this.index++;
    const path = `entries[${i}]`;
    const spec = this.spec;
    if (spec.kind === 'pagemap') {
      return this.message(this.catalog.type(i === 0 ? 'pagemap_head' : 'pagemap_entry'), entry, path).chunks;
    }
    if (spec.kind === 'ghost') return this.ghost(entry, i, path);
    const schema = this.catalog.type(spec.type);
    const { bytes, chunks } = this.message(schema, entry, path);
    const extra = (entry as CritJsonObject | null)?.extra;
    if (spec.extra && pyTruthy(extra)) chunks.push(...this.extra(spec.extra, extra!, decodeMessage(schema, bytes), `${path}.extra`));
    return chunks;
  }

  private ghost(entry: ImageEntry, i: number, path: string): Uint8Array[] {
    const extra = (entry as CritJsonObject | null)?.extra;
    if (i === 0) {
      const schema = this.catalog.type('ghost_file_entry');
      const { bytes, chunks } = this.message(schema, entry, path);
      this.ghostChunks = decodeMessage(schema, bytes).chunks === true;
      if (!this.ghostChunks) chunks.push(base64(extra, `${path}.extra`));
      return chunks;
    }
    if (!this.ghostChunks) {
      throw new InvalidImageJsonError(path, "a ghost file without chunks has a single entry (its data is in the first entry's extra)");
    }
    const { chunks } = this.message(this.catalog.type('ghost_chunk_entry'), entry, path);
    chunks.push(base64(extra, `${path}.extra`));
    return chunks;
  }

  private extra(kind: ExtraKind, extra: CritJsonValue, plain: CritJsonObject, path: string): Uint8Array[] {
    switch (kind) {
      case 'pipes':
      case 'skQueues':
      case 'bpfmap':
        return [base64(extra, path)];
      case 'tcpStream': {
        const queues = extra as CritJsonObject;
        if (typeof queues !== 'object' || Array.isArray(queues)) throw new InvalidImageJsonError(path, 'expected {"inq": ..., "outq": ...}');
        return [base64(queues.inq, `${path}.inq`), base64(queues.outq, `${path}.outq`)];
      }
      case 'ipcSem': {
        const nsems = integer(plain, 'nsems', path, true);
        if (!Array.isArray(extra)) throw new InvalidImageJsonError(path, 'expected a list of semaphore values');
        if (extra.length !== nsems) throw new InvalidImageJsonError(path, 'number of semaphores mismatch');
        const data = new Uint8Array(roundUp(2 * nsems, 8));
        extra.forEach((v, k) => {
          if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffff) {
            throw new InvalidImageJsonError(`${path}[${k}]`, 'a semaphore value is an integer from 0 to 65535');
          }
          data[2 * k] = v & 0xff;
          data[2 * k + 1] = v >> 8;
        });
        return [data];
      }
      case 'ipcShm': {
        const size = integer(plain, 'size', path, true);
        const data = base64(extra, path).subarray(0, size);
        // As pycriu: the data (at most size bytes), then the padding of size to 4.
        return [data, zeros(roundUp(size, 4) - size)];
      }
      case 'ipcMsg': {
        if (!Array.isArray(extra)) throw new InvalidImageJsonError(path, 'expected alternating message dicts and base64 data');
        const schema = this.catalog.type('ipc_msg');
        const out: Uint8Array[] = [];
        for (let k = 0; k < extra.length; k += 2) {
          const { bytes, chunks } = this.message(schema, extra[k]!, `${path}[${k}]`);
          out.push(...chunks);
          const msize = integer(decodeMessage(schema, bytes), 'msize', `${path}[${k}]`, false);
          if (k + 1 >= extra.length) throw new InvalidImageJsonError(`${path}[${k + 1}]`, 'the message has no data after it');
          out.push(base64(extra[k + 1], `${path}[${k + 1}]`).subarray(0, msize), zeros(roundUp(msize, 8) - msize));
        }
        return out;
      }
    }
  }
}
