/**
 * A dict back to protobuf bytes, as pycriu's dict2pb followed by SerializeToString: keys that are
 * no field are ignored, pretty forms are read back (hex and other int(s, 0) strings, "major:minor",
 * flag names, dict names, addresses), a singular message is present even when empty, missing
 * required fields are an error, and fields are written in field-number order.
 */
import { FieldType, type FieldSchema, type MessageSchema } from '../descriptors/schema.js';
import { makeDev } from '../pretty/dev.js';
import { parseIpWords } from '../pretty/ip.js';
import { parsePyInt0, parsePyInt10, pyTruthy } from '../pretty/python-int.js';
import { dictTables, flagTables, type FlagTable } from '../pretty/tables.js';
import { decodeBytesPython } from '../text/base64.js';
import { quopriDecode } from '../text/quopri.js';
import type { CritJsonObject, CritJsonValue } from '../types.js';
import { WIRE_FIXED32, WIRE_FIXED64, WIRE_LENGTH, WIRE_VARINT } from '../wire/reader.js';
import { WireWriter } from '../wire/writer.js';

/** A value the encoder cannot take; `path` is a JSON path such as `entries[0].tc.comm`. */
export class EncodeError extends Error {
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(`${path}: ${reason}`);
    this.name = 'EncodeError';
  }
}

const ranges: Readonly<Partial<Record<FieldType, readonly [bigint, bigint]>>> = {
  [FieldType.INT32]: [-(1n << 31n), (1n << 31n) - 1n],
  [FieldType.SINT32]: [-(1n << 31n), (1n << 31n) - 1n],
  [FieldType.SFIXED32]: [-(1n << 31n), (1n << 31n) - 1n],
  [FieldType.UINT32]: [0n, (1n << 32n) - 1n],
  [FieldType.FIXED32]: [0n, (1n << 32n) - 1n],
  [FieldType.INT64]: [-(1n << 63n), (1n << 63n) - 1n],
  [FieldType.SINT64]: [-(1n << 63n), (1n << 63n) - 1n],
  [FieldType.SFIXED64]: [-(1n << 63n), (1n << 63n) - 1n],
  [FieldType.UINT64]: [0n, (1n << 64n) - 1n],
  [FieldType.FIXED64]: [0n, (1n << 64n) - 1n],
};

function describe(value: unknown): string {
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'string') return JSON.stringify(value);
  return JSON.stringify(value) ?? String(value);
}

/** pb2dict's unmap_flags: names or numbers joined by "|", summed. */
function unmapFlags(text: string, table: FlagTable, path: string): bigint {
  if (text === '') return 0n;
  let sum = 0n;
  for (const part of text.split('|').map((p) => p.trim())) {
    const bit = table.find(([name]) => name === part)?.[1];
    const value = bit ?? parsePyInt0(part);
    if (value === undefined) throw new EncodeError(path, `invalid flag ${JSON.stringify(part)}`);
    sum += value;
  }
  return sum;
}

function integerFromString(field: FieldSchema, text: string, path: string): bigint {
  const o = field.criu;
  if (o.dev) {
    const parts = text.split(':').map((p) => parsePyInt10(p));
    if (parts.length < 2 || parts.some((p) => p === undefined)) throw new EncodeError(path, `invalid device ${JSON.stringify(text)}`);
    return makeDev(parts[0]!, parts[1]!, o.odev);
  }
  if (o.flags) {
    const table = flagTables.get(o.flags);
    if (table) return unmapFlags(text, table, path);
  }
  if (o.dict) {
    const table = dictTables.get(o.dict)?.get(field.name);
    if (!table) throw new EncodeError(path, `dict "${o.dict}" has no table for ${field.name}`);
    for (const [number, name] of table) if (name === text) return BigInt(number);
  }
  const value = parsePyInt0(text);
  if (value === undefined) throw new EncodeError(path, `invalid literal for int() with base 0: ${JSON.stringify(text)}`);
  return value;
}

function castInteger(field: FieldSchema, value: CritJsonValue, path: string): bigint {
  let result: bigint;
  if (typeof value === 'string') result = integerFromString(field, value, path);
  else if (typeof value === 'bigint') result = value;
  else if (typeof value === 'number' && Number.isFinite(value)) result = BigInt(Math.trunc(value));
  else if (typeof value === 'boolean') result = value ? 1n : 0n;
  else throw new EncodeError(path, `expected an integer, got ${describe(value)}`);
  const range = ranges[field.type];
  if (range && (result < range[0] || result > range[1])) throw new EncodeError(path, `value ${result} out of range for ${field.name}`);
  return result;
}

function castString(value: CritJsonValue, path: string): string {
  if (typeof value === 'string') {
    if (/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(value)) {
      throw new EncodeError(path, 'string holds a lone surrogate, which UTF-8 cannot encode');
    }
    return value;
  }
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  throw new EncodeError(path, `expected a string, got ${describe(value)}`);
}

function castBytes(field: FieldSchema, value: CritJsonValue, path: string): Uint8Array {
  if (typeof value !== 'string')
    throw new EncodeError(path, `expected a ${field.criu.conv === 'unix_name' ? 'quoted-printable' : 'base64'} string, got ${describe(value)}`);
  try {
    return field.criu.conv === 'unix_name' ? quopriDecode(value) : decodeBytesPython(value);
  } catch (cause) {
    throw new EncodeError(path, (cause as Error).message);
  }
}

function writeScalar(w: WireWriter, field: FieldSchema, value: CritJsonValue, path: string): void {
  const n = field.number;
  switch (field.type) {
    case FieldType.INT32:
    case FieldType.INT64:
    case FieldType.UINT32:
    case FieldType.UINT64:
      w.tag(n, WIRE_VARINT);
      w.varint(castInteger(field, value, path));
      return;
    case FieldType.SINT32:
    case FieldType.SINT64: {
      const v = castInteger(field, value, path);
      w.tag(n, WIRE_VARINT);
      w.varint(v >= 0n ? v << 1n : (-v << 1n) - 1n);
      return;
    }
    case FieldType.FIXED32:
    case FieldType.SFIXED32:
      w.tag(n, WIRE_FIXED32);
      w.fixed32(castInteger(field, value, path));
      return;
    case FieldType.FIXED64:
    case FieldType.SFIXED64:
      w.tag(n, WIRE_FIXED64);
      w.fixed64(castInteger(field, value, path));
      return;
    case FieldType.BOOL:
      w.tag(n, WIRE_VARINT);
      w.uint32(pyTruthy(value) ? 1 : 0);
      return;
    case FieldType.ENUM: {
      const number = typeof value === 'string' ? field.enumType!.byName.get(value) : undefined;
      if (number === undefined) throw new EncodeError(path, `${describe(value)} is no value of enum ${field.enumType!.fullName.slice(1)}`);
      w.tag(n, WIRE_VARINT);
      w.varint(BigInt(number));
      return;
    }
    case FieldType.STRING:
      w.tag(n, WIRE_LENGTH);
      w.lengthDelimited(Buffer.from(castString(value, path), 'utf8'));
      return;
    case FieldType.BYTES:
      w.tag(n, WIRE_LENGTH);
      w.lengthDelimited(castBytes(field, value, path));
      return;
    case FieldType.DOUBLE:
    case FieldType.FLOAT: {
      if (typeof value !== 'number') throw new EncodeError(path, `expected a number, got ${describe(value)}`);
      w.tag(n, field.type === FieldType.DOUBLE ? WIRE_FIXED64 : WIRE_FIXED32);
      if (field.type === FieldType.DOUBLE) w.double(value);
      else w.float(value);
      return;
    }
    default:
      throw new EncodeError(path, `field type ${field.type} is not supported`);
  }
}

function isObject(value: CritJsonValue | undefined): value is CritJsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function writePacked(w: WireWriter, field: FieldSchema, values: CritJsonValue[], path: string): void {
  const inner = new WireWriter();
  values.forEach((v, i) => writeScalar(inner, field, v, `${path}[${i}]`));
  // writeScalar wrote a tag before each value; packed encoding wants the values alone.
  const bytes = inner.finish();
  const stripped = new WireWriter(bytes.length);
  const tagLength = tagSize(field.number);
  let pos = 0;
  for (let i = 0; i < values.length; i++) {
    pos += tagLength;
    const start = pos;
    if (field.type === FieldType.FIXED32 || field.type === FieldType.SFIXED32 || field.type === FieldType.FLOAT) pos += 4;
    else if (field.type === FieldType.FIXED64 || field.type === FieldType.SFIXED64 || field.type === FieldType.DOUBLE) pos += 8;
    else while (bytes[pos++]! >= 0x80);
    stripped.raw(bytes.subarray(start, pos));
  }
  w.tag(field.number, WIRE_LENGTH);
  w.lengthDelimited(stripped.finish());
}

function tagSize(number: number): number {
  let v = (number << 3) >>> 0;
  let size = 1;
  while (v > 0x7f) {
    v >>>= 7;
    size++;
  }
  return size;
}

/** Encodes `dict` as a `schema` message. Throws EncodeError naming the JSON path of the problem. */
export function encodeMessage(schema: MessageSchema, dict: CritJsonValue, path: string): Uint8Array {
  const w = new WireWriter();
  encodeInto(w, schema, dict, path);
  return w.finish();
}

function encodeInto(w: WireWriter, schema: MessageSchema, dict: CritJsonValue, path: string): void {
  if (!isObject(dict)) throw new EncodeError(path, `expected an object for ${schema.fullName.slice(1)}, got ${describe(dict)}`);
  const missing: string[] = [];
  for (const field of schema.fields) {
    const fieldPath = `${path}.${field.name}`;
    if (!Object.hasOwn(dict, field.name)) {
      if (field.required) missing.push(field.name);
      continue;
    }
    const value = dict[field.name]!;
    if (field.repeated) {
      if (!Array.isArray(value)) throw new EncodeError(fieldPath, `expected a list, got ${describe(value)}`);
      let list: CritJsonValue[] = value;
      if (field.criu.ipadd && typeof list[0] === 'string') {
        // dict2pb reads only the first address of a pretty ipadd list.
        const words = parseIpWords(list[0]);
        if (!words) throw new EncodeError(`${fieldPath}[0]`, `${JSON.stringify(list[0])} does not appear to be an IPv4 or IPv6 address`);
        list = words;
      }
      if (field.type === FieldType.MESSAGE) {
        list.forEach((item, i) => {
          const bytes = encodeMessage(field.message!, item, `${fieldPath}[${i}]`);
          w.tag(field.number, WIRE_LENGTH);
          w.lengthDelimited(bytes);
        });
      } else if (field.packed && list.length > 0) {
        writePacked(w, field, list, fieldPath);
      } else {
        list.forEach((item, i) => writeScalar(w, field, item, `${fieldPath}[${i}]`));
      }
    } else if (field.type === FieldType.MESSAGE) {
      const bytes = encodeMessage(field.message!, value, fieldPath);
      w.tag(field.number, WIRE_LENGTH);
      w.lengthDelimited(bytes);
    } else {
      writeScalar(w, field, value, fieldPath);
    }
  }
  if (missing.length > 0) {
    throw new EncodeError(path, `message ${schema.fullName.slice(1)} is missing required fields: ${missing.join(',')}`);
  }
}
