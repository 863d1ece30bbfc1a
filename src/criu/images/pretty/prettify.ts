/**
 * `crit decode --pretty`: pycriu's pb2dict with pretty=True, applied to the plain dict. For every
 * integer field, in this order: hex (also when an enclosing message field is hex), dev, flags
 * (a table name pycriu lacks prints as hex), dict (values missing from the table stay numbers).
 * Repeated ipadd fields become one address string.
 */
import { FieldType, type FieldSchema, type MessageSchema } from '../descriptors/schema.js';
import type { CritJsonObject, CritJsonValue } from '../types.js';
import { formatDev } from './dev.js';
import { formatIpWords } from './ip.js';
import { pyHex } from './python-int.js';
import { dictTables, flagTables, type FlagTable } from './tables.js';

export class PrettyError extends Error {
  override name = 'PrettyError';
}

const integerTypes: ReadonlySet<number> = new Set([
  FieldType.INT32,
  FieldType.UINT32,
  FieldType.SINT32,
  FieldType.INT64,
  FieldType.UINT64,
  FieldType.SINT64,
  FieldType.FIXED32,
  FieldType.FIXED64,
  FieldType.SFIXED32,
  FieldType.SFIXED64,
]);

/** pb2dict's map_flags: names of the set bits, then the rest in hex, joined by " | ". */
export function mapFlags(value: bigint, table: FlagTable): string {
  const names = table.filter(([, bit]) => (value & bit) !== 0n).map(([name]) => name);
  let rest = value;
  for (const [, bit] of table) rest &= ~bit;
  if (rest !== 0n) names.push(pyHex(rest));
  return names.join(' | ');
}

function prettyInteger(field: FieldSchema, value: number | bigint, hex: boolean): CritJsonValue {
  const big = BigInt(value);
  if (hex) return pyHex(big);
  const o = field.criu;
  if (o.dev) return formatDev(big, o.odev);
  if (o.flags) {
    const table = flagTables.get(o.flags);
    return table ? mapFlags(big, table) : pyHex(big);
  }
  if (o.dict) {
    const table = dictTables.get(o.dict)?.get(field.name);
    if (!table) throw new PrettyError(`field ${field.name} names dict "${o.dict}", which has no table for it`);
    return (typeof value === 'number' ? table.get(value) : undefined) ?? value;
  }
  return value;
}

function prettyValue(field: FieldSchema, value: CritJsonValue, hex: boolean): CritJsonValue {
  if (field.type === FieldType.MESSAGE) return prettifyMessage(field.message!, value as CritJsonObject, hex);
  if (integerTypes.has(field.type) && (typeof value === 'number' || typeof value === 'bigint')) {
    return prettyInteger(field, value, hex);
  }
  return value;
}

/** The pretty form of a plain dict decoded from `schema`. `inheritedHex` is set inside hex message fields. */
export function prettifyMessage(schema: MessageSchema, plain: CritJsonObject, inheritedHex = false): CritJsonObject {
  const out: CritJsonObject = {};
  for (const key of Object.keys(plain)) {
    const field = schema.byName.get(key);
    const value = plain[key]!;
    if (!field) {
      out[key] = value;
      continue;
    }
    const hex = inheritedHex || field.criu.hex;
    if (field.repeated) {
      const list = value as CritJsonValue[];
      if (field.criu.ipadd) {
        const text = formatIpWords(list as number[]);
        if (text === undefined) throw new PrettyError(`ipadd field ${field.name} has ${list.length} words, not 1 or 4`);
        out[key] = [text];
      } else {
        out[key] = list.map((v) => prettyValue(field, v, hex));
      }
    } else {
      out[key] = prettyValue(field, value, hex);
    }
  }
  return out;
}
