/**
 * Quoted-printable as Python's quopri.encodestring/decodestring (binascii.b2a_qp with istext=True,
 * quotetabs=False, header=False, and a2b_qp). pycriu applies it to unix socket names (the
 * `conv = "unix_name"` option) whether or not --pretty is given. Ported from CPython's binascii.c.
 */

const MAXLINESIZE = 76;
const hexDigits = '0123456789ABCDEF';
const CR = 0x0d;
const LF = 0x0a;

function needsQuoting(data: Uint8Array, i: number, lineLength: number): boolean {
  const c = data[i]!;
  const next = i + 1 < data.length ? data[i + 1] : undefined;
  return (
    c > 126 ||
    c === 0x3d /* = */ ||
    (c === 0x2e /* . */ && lineLength === 0 && (next === undefined || next === LF || next === CR || next === 0)) ||
    ((c === 0x09 || c === 0x20) && i + 1 === data.length) ||
    (c < 33 && c !== CR && c !== LF && c !== 0x09 && c !== 0x20)
  );
}

/** binascii.b2a_qp(data, quotetabs=False, istext=True, header=False), as a string. */
export function quopriEncode(data: Uint8Array): string {
  const lf = data.indexOf(LF);
  const crlf = lf > 0 && data[lf - 1] === CR;
  const out: number[] = [];
  const softBreak = (): void => {
    out.push(0x3d);
    if (crlf) out.push(CR);
    out.push(LF);
  };
  const pushHex = (c: number): void => {
    out.push(hexDigits.charCodeAt(c >> 4), hexDigits.charCodeAt(c & 15));
  };
  let lineLength = 0;
  let i = 0;
  while (i < data.length) {
    const c = data[i]!;
    if (needsQuoting(data, i, lineLength)) {
      if (lineLength + 3 >= MAXLINESIZE) {
        softBreak();
        lineLength = 0;
      }
      out.push(0x3d);
      pushHex(c);
      i++;
      lineLength += 3;
    } else if (c === LF || (c === CR && i + 1 < data.length && data[i + 1] === LF)) {
      lineLength = 0;
      // Whitespace at the end of a line is quoted.
      const last = out[out.length - 1];
      if (out.length > 0 && (last === 0x20 || last === 0x09)) {
        out[out.length - 1] = 0x3d;
        pushHex(last);
      }
      if (crlf) out.push(CR);
      out.push(LF);
      i += c === CR ? 2 : 1;
    } else {
      if (i + 1 !== data.length && data[i + 1] !== LF && lineLength + 1 >= MAXLINESIZE) {
        softBreak();
        lineLength = 0;
      }
      lineLength++;
      out.push(c);
      i++;
    }
  }
  return Buffer.from(out).toString('latin1');
}

function isHex(c: number | undefined): boolean {
  return c !== undefined && ((c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66));
}

function hexValue(c: number): number {
  return c <= 0x39 ? c - 0x30 : (c | 0x20) - 0x61 + 10;
}

/** binascii.a2b_qp(data, header=False). `text` must be ASCII (Python rejects anything else). */
export function quopriDecode(text: string): Uint8Array {
  // eslint-disable-next-line no-control-regex
  if (/[^\x00-\x7f]/.test(text)) throw new RangeError('quoted-printable text must be ASCII');
  const data = Buffer.from(text, 'latin1');
  const out: number[] = [];
  let i = 0;
  while (i < data.length) {
    const c = data[i]!;
    if (c !== 0x3d) {
      out.push(c);
      i++;
      continue;
    }
    i++;
    if (i >= data.length) break;
    const n = data[i]!;
    if (n === LF || n === CR) {
      // A soft line break.
      if (n !== LF) while (i < data.length && data[i] !== LF) i++;
      if (i < data.length) i++;
    } else if (n === 0x3d) {
      out.push(0x3d);
      i++;
    } else if (i + 1 < data.length && isHex(n) && isHex(data[i + 1])) {
      out.push((hexValue(n) << 4) | hexValue(data[i + 1]!));
      i += 2;
    } else {
      out.push(0x3d);
    }
  }
  return Uint8Array.from(out);
}
