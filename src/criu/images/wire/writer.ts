/** A growable buffer with protocol-buffer wire writers. Integers arrive as bigint, already range-checked. */

export class WireWriter {
  private buf: Uint8Array;
  length = 0;

  constructor(initial = 256) {
    this.buf = new Uint8Array(initial);
  }

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.buf.subarray(0, this.length));
    this.buf = grown;
  }

  /** An unsigned varint of a number below 2^32. */
  uint32(value: number): void {
    this.reserve(5);
    let v = value >>> 0;
    while (v > 0x7f) {
      this.buf[this.length++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.buf[this.length++] = v;
  }

  /** A varint of a 64-bit two's-complement value (negative values take ten bytes, as protobuf does). */
  varint(value: bigint): void {
    let v = BigInt.asUintN(64, value);
    if (v < 0x100000000n) {
      this.uint32(Number(v));
      return;
    }
    this.reserve(10);
    while (v > 0x7fn) {
      this.buf[this.length++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.buf[this.length++] = Number(v);
  }

  fixed32(value: bigint): void {
    this.reserve(4);
    const v = Number(BigInt.asUintN(32, value));
    this.buf[this.length++] = v & 0xff;
    this.buf[this.length++] = (v >>> 8) & 0xff;
    this.buf[this.length++] = (v >>> 16) & 0xff;
    this.buf[this.length++] = (v >>> 24) & 0xff;
  }

  fixed64(value: bigint): void {
    const v = BigInt.asUintN(64, value);
    this.fixed32(v & 0xffffffffn);
    this.fixed32(v >> 32n);
  }

  double(value: number): void {
    this.reserve(8);
    new DataView(this.buf.buffer, this.buf.byteOffset + this.length, 8).setFloat64(0, value, true);
    this.length += 8;
  }

  float(value: number): void {
    this.reserve(4);
    new DataView(this.buf.buffer, this.buf.byteOffset + this.length, 4).setFloat32(0, value, true);
    this.length += 4;
  }

  tag(fieldNumber: number, wireType: number): void {
    this.uint32(((fieldNumber << 3) | wireType) >>> 0);
  }

  raw(bytes: Uint8Array): void {
    this.reserve(bytes.length);
    this.buf.set(bytes, this.length);
    this.length += bytes.length;
  }

  /** A length-delimited value. */
  lengthDelimited(bytes: Uint8Array): void {
    this.uint32(bytes.length);
    this.raw(bytes);
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}
