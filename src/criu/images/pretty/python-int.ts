/** Python's integer formatting and parsing where pycriu relies on it ("0x%x" % v, int(s, 0), int(s)). */

/** "0x%x" % value (Python prints negative values as "0x-5"). */
export function pyHex(value: bigint): string {
  return value < 0n ? `0x-${(-value).toString(16)}` : `0x${value.toString(16)}`;
}

const base0 = /^([+-]?)(?:(0[xX](?:_?[0-9a-fA-F])+)|(0[oO](?:_?[0-7])+)|(0[bB](?:_?[01])+)|(0(?:_?0)*)|([1-9](?:_?[0-9])*))$/;
const base10 = /^([+-]?)([0-9](?:_?[0-9])*)$/;

/** int(text, 0): decimal, 0x, 0o or 0b, underscores between digits, surrounding whitespace. */
export function parsePyInt0(text: string): bigint | undefined {
  const m = base0.exec(text.trim());
  if (!m) return undefined;
  const digits = (m[2] ?? m[3] ?? m[4] ?? m[5] ?? m[6]!).replaceAll('_', '');
  let value: bigint;
  if (m[2] || m[3] || m[4]) value = BigInt(digits.toLowerCase());
  else value = BigInt(digits);
  return m[1] === '-' ? -value : value;
}

/** int(text): base 10, leading zeros allowed. */
export function parsePyInt10(text: string): bigint | undefined {
  const m = base10.exec(text.trim());
  if (!m) return undefined;
  const value = BigInt(m[2]!.replaceAll('_', ''));
  return m[1] === '-' ? -value : value;
}

/** Python truthiness of a JSON value. */
export function pyTruthy(value: unknown): boolean {
  if (value === null || value === undefined || value === false) return false;
  if (typeof value === 'number') return value !== 0 && !Number.isNaN(value);
  if (typeof value === 'bigint') return value !== 0n;
  if (typeof value === 'string') return value.length > 0;
  if (Array.isArray(value)) return value.length > 0;
  if (typeof value === 'object') return Object.keys(value).length > 0;
  return true;
}
