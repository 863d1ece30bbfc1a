/**
 * Protobuf message to the plain (non-pretty) dict pycriu's pb2dict makes. The semantics are those
 * of the C++ protobuf parser python3-protobuf runs on, as pycriu sees them through ListFields():
 *  - only fields present on the wire appear, in field-number order;
 *  - a repeated scalar is accepted packed or not; a singular one keeps its last value; a singular
 *    message that appears twice is merged;
 *  - a field with the wrong wire type, an unknown field, and an enum value the enum does not
 *    define (proto2 closed enums) are kept aside as unknown, so they do not appear;
 *  - bytes are base64 (Python's encodebytes), or quoted-printable for `conv = "unix_name"`;
 *  - a string that is not valid UTF-8 shows as Python's repr of the bytes ("b'\xff'").
 * A decoder is compiled once per message type: one closure per field, no per-entry reflection.
 */
import { FieldType, type FieldSchema, type MessageSchema } from '../descriptors/schema.js';
import { pythonBytesRepr } from '../descriptors/python-bytes.js';
import { encodeBytesPython } from '../text/base64.js';
import { quopriEncode } from '../text/quopri.js';
import type { CritJsonObject, CritJsonValue } from '../types.js';
import { WIRE_FIXED32, WIRE_FIXED64, WIRE_LENGTH, WIRE_VARINT, WireError, WireReader } from '../wire/reader.js';

type FieldReader = (r: WireReader, wireType: number, slots: unknown[]) => void;

interface CompiledMessage {
  readonly fields: readonly FieldSchema[];
  /** Indexed by field number when numbers are small, else looked up in the map. */
  readonly readers: (FieldReader | undefined)[];
  readonly readerMap: Map<number, FieldReader>;
  /** Singular message fields, whose slots hold the raw ranges to merge. */
  readonly finish: ((slot: unknown) => CritJsonValue)[];
}

const compiled = new WeakMap<MessageSchema, CompiledMessage>();

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export function decodeString(bytes: Uint8Array): string {
  try {
    return utf8.decode(bytes);
  } catch {
    // python3-protobuf hands pycriu the raw bytes, and pb2dict's str() turns them into their repr.
    return pythonBytesRepr(bytes);
  }
}

/** A scalar read for one wire type; returns undefined to drop the value (unknown enum numbers). */
type ScalarRead = (r: WireReader) => CritJsonValue | undefined;

function scalarReader(field: FieldSchema): { wire: number; read: ScalarRead } {
  switch (field.type) {
    case FieldType.INT32:
      return { wire: WIRE_VARINT, read: (r) => r.int32() };
    case FieldType.UINT32:
      return { wire: WIRE_VARINT, read: (r) => r.uint32() };
    case FieldType.SINT32:
      return { wire: WIRE_VARINT, read: (r) => r.sint32() };
    case FieldType.INT64:
      return { wire: WIRE_VARINT, read: (r) => (r.varint64(), r.signed64()) };
    case FieldType.UINT64:
      return { wire: WIRE_VARINT, read: (r) => (r.varint64(), r.unsigned64()) };
    case FieldType.SINT64:
      return { wire: WIRE_VARINT, read: (r) => (r.varint64(), r.zigzag64()) };
    case FieldType.BOOL:
      return { wire: WIRE_VARINT, read: (r) => (r.varint64(), (r.lo | r.hi) !== 0) };
    case FieldType.ENUM: {
      const names = field.enumType!.byNumber;
      return { wire: WIRE_VARINT, read: (r) => names.get(r.int32()) };
    }
    case FieldType.FIXED32:
      return { wire: WIRE_FIXED32, read: (r) => r.fixed32() };
    case FieldType.SFIXED32:
      return { wire: WIRE_FIXED32, read: (r) => r.fixed32() | 0 };
    case FieldType.FLOAT:
      return { wire: WIRE_FIXED32, read: (r) => r.float() };
    case FieldType.FIXED64:
      return { wire: WIRE_FIXED64, read: (r) => (r.fixed64(), r.unsigned64()) };
    case FieldType.SFIXED64:
      return { wire: WIRE_FIXED64, read: (r) => (r.fixed64(), r.signed64()) };
    case FieldType.DOUBLE:
      return { wire: WIRE_FIXED64, read: (r) => r.double() };
    case FieldType.STRING:
      return { wire: WIRE_LENGTH, read: (r) => decodeString(r.bytes()) };
    case FieldType.BYTES:
      return field.criu.conv === 'unix_name'
        ? { wire: WIRE_LENGTH, read: (r) => quopriEncode(r.bytes()) }
        : { wire: WIRE_LENGTH, read: (r) => encodeBytesPython(r.bytes()) };
    default:
      throw new Error(`field ${field.name} has unsupported type ${field.type}`);
  }
}

function fieldReader(field: FieldSchema): { read: FieldReader; finish: (slot: unknown) => CritJsonValue } {
  const i = field.index;
  const identity = (slot: unknown): CritJsonValue => slot as CritJsonValue;
  if (field.type === FieldType.MESSAGE) {
    const schema = field.message!;
    // Compiled on first use: compiling eagerly would recurse through every reachable type.
    let sub: CompiledMessage | undefined;
    if (field.repeated) {
      return {
        read: (r, wireType, slots) => {
          if (wireType !== WIRE_LENGTH) return r.skip(wireType, field.number);
          const end = r.lengthEnd();
          const value = decodeCompiled((sub ??= compile(schema)), r.buf, r.pos, end);
          r.pos = end;
          ((slots[i] as CritJsonValue[] | undefined) ?? (slots[i] = [])).push(value);
        },
        finish: identity,
      };
    }
    // Occurrences of a singular message merge: decoding their concatenation does exactly that.
    // The slot holds [buffer, start, end, start, end, ...] of the occurrences.
    return {
      read: (r, wireType, slots) => {
        if (wireType !== WIRE_LENGTH) return r.skip(wireType, field.number);
        const end = r.lengthEnd();
        const ranges = slots[i] as [Uint8Array, ...number[]] | undefined;
        if (ranges) ranges.push(r.pos, end);
        else slots[i] = [r.buf, r.pos, end];
        r.pos = end;
      },
      finish: (slot) => {
        const [buf, ...offsets] = slot as [Uint8Array, ...number[]];
        const c = (sub ??= compile(schema));
        if (offsets.length === 2) return decodeCompiled(c, buf, offsets[0]!, offsets[1]!);
        const parts: Uint8Array[] = [];
        for (let k = 0; k < offsets.length; k += 2) parts.push(buf.subarray(offsets[k], offsets[k + 1]));
        const bytes = Buffer.concat(parts);
        return decodeCompiled(c, bytes, 0, bytes.length);
      },
    };
  }
  const { wire, read } = scalarReader(field);
  if (!field.repeated) {
    return {
      read: (r, wireType, slots) => {
        if (wireType !== wire) return r.skip(wireType, field.number);
        const value = read(r);
        if (value !== undefined) slots[i] = value;
      },
      finish: identity,
    };
  }
  const packable = wire !== WIRE_LENGTH;
  return {
    read: (r, wireType, slots) => {
      const list = (slots[i] as CritJsonValue[] | undefined) ?? [];
      if (wireType === wire) {
        const value = read(r);
        if (value !== undefined) list.push(value);
      } else if (packable && wireType === WIRE_LENGTH) {
        const end = r.lengthEnd();
        const packed = new WireReader(r.buf, r.pos, end);
        while (packed.pos < end) {
          const value = read(packed);
          if (value !== undefined) list.push(value);
        }
        r.pos = end;
      } else {
        return r.skip(wireType, field.number);
      }
      if (list.length > 0) slots[i] = list;
    },
    finish: identity,
  };
}

function compile(schema: MessageSchema): CompiledMessage {
  let c = compiled.get(schema);
  if (c) return c;
  const maxNumber = schema.fields.reduce((max, f) => Math.max(max, f.number), 0);
  const readers: (FieldReader | undefined)[] = maxNumber <= 4096 ? new Array(maxNumber + 1).fill(undefined) : [];
  const readerMap = new Map<number, FieldReader>();
  const finish: ((slot: unknown) => CritJsonValue)[] = [];
  for (const field of schema.fields) {
    const built = fieldReader(field);
    if (maxNumber <= 4096) readers[field.number] = built.read;
    else readerMap.set(field.number, built.read);
    finish[field.index] = built.finish;
  }
  c = { fields: schema.fields, readers, readerMap, finish };
  compiled.set(schema, c);
  return c;
}

/** Decodes buf[start, end) as one message. Throws WireError on malformed input. */
export function decodeMessageRange(schema: MessageSchema, buf: Uint8Array, start: number, end: number): CritJsonObject {
  return decodeCompiled(compile(schema), buf, start, end);
}

function decodeCompiled(c: CompiledMessage, buf: Uint8Array, start: number, end: number): CritJsonObject {
  const r = new WireReader(buf, start, end);
  const slots: unknown[] = new Array(c.fields.length);
  const readers = c.readers;
  const useArray = c.readerMap.size === 0;
  while (r.pos < end) {
    const at = r.pos;
    // Tags of fields 1 to 15 are one byte.
    const first = buf[at]!;
    const tag = first < 0x80 ? ((r.pos = at + 1), first) : r.uint32();
    const number = tag >>> 3;
    const wireType = tag & 7;
    if (number === 0) throw new WireError(at, 'field number 0');
    const reader = useArray ? readers[number] : c.readerMap.get(number);
    if (reader) reader(r, wireType, slots);
    else r.skip(wireType, number);
  }
  const out: CritJsonObject = {};
  const fields = c.fields;
  for (let k = 0; k < fields.length; k++) {
    const slot = slots[k];
    if (slot !== undefined) out[fields[k]!.name] = c.finish[k]!(slot);
  }
  return out;
}

export function decodeMessage(schema: MessageSchema, bytes: Uint8Array): CritJsonObject {
  return decodeMessageRange(schema, bytes, 0, bytes.length);
}
