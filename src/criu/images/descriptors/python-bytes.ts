/**
 * Python bytes literals, both ways: reading the serialized descriptors protoc embeds in *_pb2.py
 * (`AddSerializedFile(b'...')`), and writing `repr(bytes)`, which pycriu prints for a string field
 * that holds invalid UTF-8.
 */

const simpleEscapes: Readonly<Record<string, number>> = {
  '\\': 0x5c,
  "'": 0x27,
  '"': 0x22,
  a: 0x07,
  b: 0x08,
  f: 0x0c,
  n: 0x0a,
  r: 0x0d,
  t: 0x09,
  v: 0x0b,
};

/**
 * Parses one single-line bytes literal starting at `start` (which points at the `b`).
 * Returns the bytes and the offset just past the closing quote.
 */
export function parsePythonBytesLiteral(source: string, start: number): { bytes: Uint8Array; end: number } {
  let i = start;
  if (source[i] !== 'b' && source[i] !== 'B') throw new SyntaxError(`no bytes literal at ${start}`);
  i++;
  const quote = source[i];
  if (quote !== "'" && quote !== '"') throw new SyntaxError(`no quote after b at ${start}`);
  i++;
  const out: number[] = [];
  for (;;) {
    if (i >= source.length) throw new SyntaxError('unterminated bytes literal');
    const c = source[i]!;
    if (c === quote) return { bytes: Uint8Array.from(out), end: i + 1 };
    if (c === '\n') throw new SyntaxError('newline in bytes literal');
    if (c !== '\\') {
      const code = c.charCodeAt(0);
      if (code > 0x7f) throw new SyntaxError('non-ASCII character in bytes literal');
      out.push(code);
      i++;
      continue;
    }
    const e = source[i + 1];
    if (e === undefined) throw new SyntaxError('unterminated escape');
    const simple = simpleEscapes[e];
    if (simple !== undefined) {
      out.push(simple);
      i += 2;
    } else if (e === 'x') {
      const hex = source.slice(i + 2, i + 4);
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) throw new SyntaxError(`bad \\x escape at ${i}`);
      out.push(parseInt(hex, 16));
      i += 4;
    } else if (e >= '0' && e <= '7') {
      let j = i + 1;
      let value = 0;
      while (j < i + 4 && source[j]! >= '0' && source[j]! <= '7') value = value * 8 + Number(source[j++]);
      out.push(value & 0xff);
      i = j;
    } else if (e === '\n') {
      i += 2;
    } else {
      // Python keeps unknown escapes as they are, backslash included.
      out.push(0x5c);
      i++;
    }
  }
}

/** Every `AddSerializedFile(b'...')` payload in a protoc-generated *_pb2.py. */
export function serializedFilesIn(source: string): Uint8Array[] {
  const found: Uint8Array[] = [];
  const marker = 'AddSerializedFile(';
  for (let at = source.indexOf(marker); at !== -1; at = source.indexOf(marker, at + 1)) {
    found.push(parsePythonBytesLiteral(source, at + marker.length).bytes);
  }
  return found;
}

/** Python's `repr(bytes)` (which is also its `str(bytes)`). */
export function pythonBytesRepr(bytes: Uint8Array): string {
  let quote = "'";
  if (bytes.includes(0x27) && !bytes.includes(0x22)) quote = '"';
  let out = `b${quote}`;
  for (const b of bytes) {
    if (b === quote.charCodeAt(0) || b === 0x5c) out += `\\${String.fromCharCode(b)}`;
    else if (b === 0x09) out += '\\t';
    else if (b === 0x0a) out += '\\n';
    else if (b === 0x0d) out += '\\r';
    else if (b < 0x20 || b >= 0x7f) out += `\\x${b.toString(16).padStart(2, '0')}`;
    else out += String.fromCharCode(b);
  }
  return out + quote;
}
