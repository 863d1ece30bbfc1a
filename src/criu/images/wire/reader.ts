/**
 * Protocol-buffer wire reading over one buffer, with the semantics of the C++ parser pycriu runs
 * on: varints of up to ten bytes, unknown and mismatched fields skipped, groups skipped whole.
 * Problems throw WireError with the offset inside the buffer; the framing layer turns that into a
 * CorruptImageError naming the file and the absolute offset.
 */

export class WireError extends Error {
  constructor(
    readonly offset: number,
    readonly reason: string,
  ) {
    super(`${reason} (at byte ${offset} of the message)`);
    this.name = 'WireError';
  }
}

export const WIRE_VARINT = 0;
export const WIRE_FIXED64 = 1;
export const WIRE_LENGTH = 2;
export const WIRE_START_GROUP = 3;
export const WIRE_END_GROUP = 4;
export const WIRE_FIXED32 = 5;

const TWO_32 = 4294967296;

export class WireReader {
  pos: number;
  /** The low and high 32 bits of the last 64-bit value read (unsigned). */
  lo = 0;
  hi = 0;

  constructor(
    readonly buf: Uint8Array,
    start = 0,
    readonly end = buf.length,
  ) {
    this.pos = start;
  }

  /** Reads a varint of up to ten bytes into lo/hi. */
  varint64(): void {
    const buf = this.buf;
    let pos = this.pos;
    let lo = 0;
    let hi = 0;
    let shift = 0;
    let b: number;
    // The first four bytes fill 28 bits of lo.
    for (; shift < 28; shift += 7) {
      if (pos >= this.end) throw new WireError(pos, 'truncated varint');
      b = buf[pos++]!;
      lo |= (b & 0x7f) << shift;
      if (b < 0x80) {
        this.pos = pos;
        this.lo = lo >>> 0;
        this.hi = 0;
        return;
      }
    }
    // The fifth byte: 4 bits to lo, 3 bits to hi.
    if (pos >= this.end) throw new WireError(pos, 'truncated varint');
    b = buf[pos++]!;
    lo |= (b & 0x0f) << 28;
    hi = (b & 0x7f) >>> 4;
    if (b >= 0x80) {
      for (shift = 3; ; shift += 7) {
        if (pos >= this.end) throw new WireError(pos, 'truncated varint');
        if (shift > 31) throw new WireError(pos, 'varint longer than ten bytes');
        b = buf[pos++]!;
        if (shift < 32) hi |= (b & 0x7f) << shift;
        if (b < 0x80) break;
      }
    }
    this.pos = pos;
    this.lo = lo >>> 0;
    this.hi = hi >>> 0;
  }

  /** A varint truncated to its low 32 bits, unsigned (what the C++ parser does for 32-bit fields). */
  uint32(): number {
    const buf = this.buf;
    const pos = this.pos;
    if (pos < this.end) {
      const b = buf[pos]!;
      if (b < 0x80) {
        this.pos = pos + 1;
        return b;
      }
    }
    this.varint64();
    return this.lo;
  }

  int32(): number {
    return this.uint32() | 0;
  }

  sint32(): number {
    const n = this.uint32();
    return (n >>> 1) ^ -(n & 1);
  }

  /** The last varint64/fixed64 as an unsigned value: a number when safe, else a bigint. */
  unsigned64(): number | bigint {
    if (this.hi < 0x200000) return this.hi * TWO_32 + this.lo;
    return (BigInt(this.hi) << 32n) | BigInt(this.lo);
  }

  signed64(): number | bigint {
    const hi = this.hi;
    if (hi < 0x200000) return hi * TWO_32 + this.lo;
    if (hi > 0xffe00000) return (hi - TWO_32) * TWO_32 + this.lo;
    return narrow(BigInt.asIntN(64, (BigInt(hi) << 32n) | BigInt(this.lo)));
  }

  zigzag64(): number | bigint {
    const hi = this.hi;
    const lo = this.lo;
    if (hi < 0x200000) {
      const n = hi * TWO_32 + lo;
      return lo & 1 ? -(n + 1) / 2 : n / 2;
    }
    const n = (BigInt(hi) << 32n) | BigInt(lo);
    return narrow((n >> 1n) ^ -(n & 1n));
  }

  fixed32(): number {
    const pos = this.pos;
    if (pos + 4 > this.end) throw new WireError(pos, 'truncated fixed32');
    const b = this.buf;
    this.pos = pos + 4;
    return (b[pos]! | (b[pos + 1]! << 8) | (b[pos + 2]! << 16) | (b[pos + 3]! << 24)) >>> 0;
  }

  /** Reads eight little-endian bytes into lo/hi. */
  fixed64(): void {
    this.lo = this.fixed32();
    this.hi = this.fixed32();
  }

  double(): number {
    const pos = this.pos;
    if (pos + 8 > this.end) throw new WireError(pos, 'truncated double');
    this.pos = pos + 8;
    return new DataView(this.buf.buffer, this.buf.byteOffset + pos, 8).getFloat64(0, true);
  }

  float(): number {
    const pos = this.pos;
    if (pos + 4 > this.end) throw new WireError(pos, 'truncated float');
    this.pos = pos + 4;
    return new DataView(this.buf.buffer, this.buf.byteOffset + pos, 4).getFloat32(0, true);
  }

  /** The end offset of a length-delimited value, after checking it fits. */
  lengthEnd(): number {
    const at = this.pos;
    this.varint64();
    const length = this.hi === 0 ? this.lo : Infinity;
    if (length > this.end - this.pos) throw new WireError(at, `length ${this.hi ? 'over 4 GiB' : length} runs past the end`);
    return this.pos + length;
  }

  bytes(): Uint8Array {
    const end = this.lengthEnd();
    const start = this.pos;
    this.pos = end;
    return this.buf.subarray(start, end);
  }

  /** Skips one value of the given wire type (a whole group for START_GROUP). */
  skip(wireType: number, fieldNumber: number, depth = 0): void {
    switch (wireType) {
      case WIRE_VARINT:
        this.varint64();
        return;
      case WIRE_FIXED64:
        if (this.pos + 8 > this.end) throw new WireError(this.pos, 'truncated fixed64');
        this.pos += 8;
        return;
      case WIRE_LENGTH:
        this.pos = this.lengthEnd();
        return;
      case WIRE_FIXED32:
        if (this.pos + 4 > this.end) throw new WireError(this.pos, 'truncated fixed32');
        this.pos += 4;
        return;
      case WIRE_START_GROUP: {
        if (depth > 100) throw new WireError(this.pos, 'groups nested too deeply');
        for (;;) {
          if (this.pos >= this.end) throw new WireError(this.pos, `group ${fieldNumber} is not closed`);
          const at = this.pos;
          const tag = this.uint32();
          const number = tag >>> 3;
          const type = tag & 7;
          if (number === 0) throw new WireError(at, 'field number 0');
          if (type === WIRE_END_GROUP) {
            if (number !== fieldNumber) throw new WireError(at, `end of group ${number} inside group ${fieldNumber}`);
            return;
          }
          this.skip(type, number, depth + 1);
        }
      }
      default:
        throw new WireError(this.pos, wireType === WIRE_END_GROUP ? 'unexpected end of group' : `invalid wire type ${wireType}`);
    }
  }
}

/** A bigint as a number when it is a safe integer: the canonical form of integers in image JSON. */
export function narrow(value: bigint): number | bigint {
  return value >= -9007199254740991n && value <= 9007199254740991n ? Number(value) : value;
}
