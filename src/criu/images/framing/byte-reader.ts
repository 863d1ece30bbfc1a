/**
 * Buffered, forward-only reading of an image from a file, a buffer or a stream of chunks. Only the
 * bytes of the current entry and one read-ahead chunk are held, so a multi-GiB image costs no more
 * memory than its largest entry.
 */
import { open, type FileHandle } from 'node:fs/promises';

/** Where image bytes come from: a path, the bytes themselves, or a stream (a Node Readable is one). */
export type ImageSource = string | Uint8Array | AsyncIterable<Uint8Array>;

const CHUNK = 64 * 1024;

interface ChunkSource {
  /** The next chunk, at least `min` bytes when the input has them; null at the end. */
  next(min: number): Promise<Uint8Array | null>;
  close(): Promise<void>;
}

class FileChunks implements ChunkSource {
  private position = 0;
  constructor(
    private readonly handle: FileHandle,
    private readonly size: number,
  ) {}

  async next(min: number): Promise<Uint8Array | null> {
    // Never allocate past the end of the file, whatever size a damaged entry claims.
    const length = Math.min(Math.max(min, CHUNK), this.size - this.position);
    if (length <= 0) return null;
    const buffer = Buffer.allocUnsafe(length);
    let filled = 0;
    while (filled < Math.min(min, length)) {
      const { bytesRead } = await this.handle.read(buffer, filled, length - filled, this.position);
      if (bytesRead === 0) break;
      filled += bytesRead;
      this.position += bytesRead;
    }
    return filled === 0 ? null : buffer.subarray(0, filled);
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}

class BufferChunks implements ChunkSource {
  constructor(private bytes: Uint8Array | null) {}
  async next(): Promise<Uint8Array | null> {
    const bytes = this.bytes;
    this.bytes = null;
    return bytes;
  }
  async close(): Promise<void> {
    this.bytes = null;
  }
}

class StreamChunks implements ChunkSource {
  private readonly iterator: AsyncIterator<Uint8Array>;
  constructor(stream: AsyncIterable<Uint8Array>) {
    this.iterator = stream[Symbol.asyncIterator]();
  }
  async next(): Promise<Uint8Array | null> {
    for (;;) {
      const { value, done } = await this.iterator.next();
      if (done) return null;
      const chunk = typeof value === 'string' ? Buffer.from(value, 'latin1') : value;
      if (chunk.length > 0) return chunk;
    }
  }
  async close(): Promise<void> {
    await this.iterator.return?.();
  }
}

/** A plain Uint8Array view: subarray() on a Node Buffer is several times slower. */
function plain(bytes: Uint8Array): Uint8Array {
  return Object.getPrototypeOf(bytes) === Uint8Array.prototype ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
}

export class ByteReader {
  private buf: Uint8Array = new Uint8Array(0);
  private start = 0;
  private eof = false;
  /** Absolute offset of buf[0] in the input. */
  private base = 0;

  private constructor(
    readonly name: string,
    private readonly source: ChunkSource,
  ) {}

  static async open(source: ImageSource, name?: string): Promise<ByteReader> {
    if (typeof source === 'string') {
      const handle = await open(source, 'r');
      try {
        const { size } = await handle.stat();
        return new ByteReader(name ?? source, new FileChunks(handle, size));
      } catch (error) {
        await handle.close();
        throw error;
      }
    }
    if (source instanceof Uint8Array) return new ByteReader(name ?? '<buffer>', new BufferChunks(source));
    return new ByteReader(name ?? '<stream>', new StreamChunks(source));
  }

  /** Absolute offset of the next unread byte. */
  get offset(): number {
    return this.base + this.start;
  }

  get available(): number {
    return this.buf.length - this.start;
  }

  /** Makes `n` bytes available unless the input ends first; returns whether they are. */
  async ensure(n: number): Promise<boolean> {
    if (this.available >= n || this.eof) return this.available >= n;
    const parts: Uint8Array[] = [this.buf.subarray(this.start)];
    let have = this.available;
    while (have < n) {
      const chunk = await this.source.next(n - have);
      if (!chunk) {
        this.eof = true;
        break;
      }
      parts.push(chunk);
      have += chunk.length;
    }
    this.base += this.start;
    this.start = 0;
    this.buf = plain(parts[0]!.length === 0 && parts.length === 2 ? parts[1]! : Buffer.concat(parts));
    return have >= n;
  }

  /**
   * The next record (u32 size, then that many bytes) when it is already buffered, else undefined:
   * lets the decoder go through buffered records without an await for each.
   */
  takeBufferedRecord(): { offset: number; bytes: Uint8Array } | undefined {
    const buf = this.buf;
    const at = this.start;
    if (buf.length - at < 4) return undefined;
    const size = (buf[at]! | (buf[at + 1]! << 8) | (buf[at + 2]! << 16) | (buf[at + 3]! << 24)) >>> 0;
    if (size > 0x7fffffff || buf.length - at - 4 < size) return undefined;
    const offset = this.base + at;
    this.start = at + 4 + size;
    return { offset, bytes: buf.subarray(at + 4, at + 4 + size) };
  }

  /** Takes `n` bytes made available by ensure(). The view stays valid: buffers are never reused. */
  take(n: number): Uint8Array {
    const out = this.buf.subarray(this.start, this.start + n);
    this.start += n;
    return out;
  }

  /** Skips up to `n` bytes without holding them; returns how many there were. */
  async skip(n: number): Promise<number> {
    let left = n;
    while (left > 0) {
      if (this.available === 0 && !(await this.ensure(Math.min(left, CHUNK)))) {
        if (this.available === 0) break;
      }
      const step = Math.min(left, this.available);
      this.start += step;
      left -= step;
    }
    return n - left;
  }

  async atEnd(): Promise<boolean> {
    return !(await this.ensure(1));
  }

  /** Everything left (pycriu's f.read() for an unchunked ghost file). */
  async rest(): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    for (;;) {
      if (this.available > 0) parts.push(this.take(this.available));
      if (!(await this.ensure(1))) break;
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  async close(): Promise<void> {
    await this.source.close();
  }
}
