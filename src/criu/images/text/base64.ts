/**
 * Base64 the way pycriu writes and reads payloads: Python's base64.encodebytes (76-character lines,
 * each ending in "\n", nothing for no data) and the lenient binascii.a2b_base64 behind decodebytes.
 */

/** Python's base64.encodebytes(data).decode(). */
export function encodeBytesPython(bytes: Uint8Array): string {
  if (bytes.length === 0) return '';
  const flat = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('base64');
  if (flat.length <= 76) return `${flat}\n`;
  const lines: string[] = [];
  for (let i = 0; i < flat.length; i += 76) lines.push(flat.slice(i, i + 76));
  return `${lines.join('\n')}\n`;
}

const alphabet = new Int16Array(128).fill(-1);
for (const [i, c] of [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'].entries()) {
  alphabet[c.charCodeAt(0)] = i;
}

export class Base64Error extends Error {
  override name = 'Base64Error';
}

/**
 * Python's base64.decodebytes: characters outside the alphabet are skipped, a complete pad ends
 * the data, and a dangling quad is an error ("Incorrect padding").
 */
export function decodeBytesPython(text: string): Uint8Array {
  const out = new Uint8Array(Math.floor((text.length * 3) / 4) + 3);
  let length = 0;
  let quadPos = 0;
  let leftChar = 0;
  let pads = 0;
  let dataChars = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === 0x3d) {
      // '=': once enough pads follow two or three data characters, the data is over.
      if (quadPos >= 2 && quadPos + ++pads >= 4) {
        return out.slice(0, length);
      }
      continue;
    }
    const value = code < 128 ? alphabet[code]! : -1;
    if (value < 0) continue;
    pads = 0;
    dataChars++;
    switch (quadPos) {
      case 0:
        quadPos = 1;
        leftChar = value;
        break;
      case 1:
        quadPos = 2;
        out[length++] = (leftChar << 2) | (value >> 4);
        leftChar = value & 0x0f;
        break;
      case 2:
        quadPos = 3;
        out[length++] = (leftChar << 4) | (value >> 2);
        leftChar = value & 0x03;
        break;
      default:
        quadPos = 0;
        out[length++] = (leftChar << 6) | value;
        leftChar = 0;
    }
  }
  if (quadPos === 1) {
    throw new Base64Error(`invalid base64: number of data characters (${dataChars}) cannot be 1 more than a multiple of 4`);
  }
  if (quadPos !== 0) throw new Base64Error('invalid base64: incorrect padding');
  return out.slice(0, length);
}
