/** CRIU versions: read through the RPC VERSION request, compared as major.minor.sublevel. */
export interface CriuVersion {
  readonly major: number;
  readonly minor: number;
  readonly sublevel: number;
  /** Set for builds from git; such a build counts as the next minor, as runc counts it. */
  readonly gitId?: string | undefined;
}

export function parseVersion(text: string): CriuVersion {
  const match = /^\s*(?:Version:\s*)?(\d+)\.(\d+)(?:\.(\d+))?\s*$/.exec(text);
  if (!match) throw new TypeError(`not a CRIU version: ${JSON.stringify(text)}`);
  return { major: Number(match[1]), minor: Number(match[2]), sublevel: Number(match[3] ?? 0) };
}

export function formatVersion(version: CriuVersion): string {
  const base = `${version.major}.${version.minor}.${version.sublevel}`;
  return version.gitId ? `${base} (git ${version.gitId})` : base;
}

/** major*10000 + minor*100 + sublevel, the number runc and libcriu compare. */
export function versionNumber(version: CriuVersion): number {
  const number = version.major * 10000 + version.minor * 100 + version.sublevel;
  return version.gitId ? Math.floor(number / 100) * 100 + 100 : number;
}

export function isAtLeast(version: CriuVersion, minimum: CriuVersion): boolean {
  return versionNumber(version) >= versionNumber(minimum);
}
