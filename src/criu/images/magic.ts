/**
 * Image magics. The head magics are part of the image format; every type magic comes from the
 * installed pycriu's magic.py (generated from CRIU's criu/include/magic.h).
 */

/** First word of every image but the inventory. */
export const IMG_COMMON = 0x54564319;
/** First word of service images: stats-dump, stats-restore, irmap-cache. */
export const IMG_SERVICE = 0x55105940;

/** The head magic pycriu's dump() writes before the type magic; none for the inventory. */
export function headMagicFor(name: string): number | undefined {
  if (name === 'INVENTORY') return undefined;
  return name === 'STATS' || name === 'IRMAP_CACHE' ? IMG_SERVICE : IMG_COMMON;
}

export class MagicTable {
  readonly byName: ReadonlyMap<string, number>;
  /** As magic.py's by_val: a later name with the same value wins. */
  readonly byValue: ReadonlyMap<number, string>;

  constructor(byName: ReadonlyMap<string, number>) {
    this.byName = byName;
    const byValue = new Map<number, string>();
    for (const [name, value] of byName) byValue.set(value, name);
    this.byValue = byValue;
  }
}
