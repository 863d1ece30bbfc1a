/**
 * Device numbers for `(criu).dev` fields: "major:minor" in the kernel's internal encoding
 * (MINORBITS = 20), or with `odev` glibc's dev_t encoding (os.major/os.minor/os.makedev).
 */
const MINORBITS = 20n;
const MINORMASK = (1n << MINORBITS) - 1n;
const U32 = 0xffffffffn;

export function formatDev(value: bigint, odev: boolean): string {
  if (!odev) return `${value >> MINORBITS}:${value & MINORMASK}`;
  const major = (((value >> 8n) & 0xfffn) | ((value >> 32n) & ~0xfffn)) & U32;
  const minor = ((value & 0xffn) | ((value >> 12n) & ~0xffn)) & U32;
  return `${major}:${minor}`;
}

export function makeDev(major: bigint, minor: bigint, odev: boolean): bigint {
  if (!odev) return (major << MINORBITS) | minor;
  const maj = BigInt.asUintN(32, major);
  const min = BigInt.asUintN(32, minor);
  return ((maj & 0xfffn) << 8n) | ((maj & ~0xfffn) << 32n) | (min & 0xffn) | ((min & ~0xffn) << 12n);
}
