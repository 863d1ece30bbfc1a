/** The few Python %-format conversions CRIT's explorers print with. */

export type Int = number | bigint;

/** %d with an optional width; a negative width left-aligns (%-8d). */
export function d(value: Int, width = 0): string {
  const text = BigInt(value).toString();
  return width < 0 ? text.padEnd(-width) : text.padStart(width);
}

/** %x / %0Nx / %#x. */
export function x(value: Int, options: { width?: number; zero?: boolean; alt?: boolean } = {}): string {
  const v = BigInt(value);
  const digits = (v < 0n ? -v : v).toString(16);
  const body = `${options.alt ? '0x' : ''}${options.zero ? digits.padStart((options.width ?? 0) - (v < 0n ? 1 : 0), '0') : digits}`;
  const text = v < 0n ? `-${body}` : body;
  return options.zero ? text : text.padStart(options.width ?? 0);
}

/** %s with an optional width; a negative width left-aligns (%-36s). */
export function s(value: string, width = 0): string {
  return width < 0 ? value.padEnd(-width) : value.padStart(width);
}
