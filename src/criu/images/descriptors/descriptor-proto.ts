/**
 * Reads the parts of google.protobuf.FileDescriptorProto the image codec needs. Field options are
 * kept as raw bytes: CRIU's `(criu)` option is an extension of FieldOptions, which generic
 * descriptor readers (protobufjs's ext/descriptor among them) drop as an unknown field.
 */
import { WIRE_LENGTH, WIRE_VARINT, WireReader } from '../wire/reader.js';

export interface RawEnumValue {
  readonly name: string;
  readonly number: number;
}

export interface RawEnum {
  readonly name: string;
  readonly values: readonly RawEnumValue[];
}

export interface RawField {
  readonly name: string;
  readonly number: number;
  /** FieldDescriptorProto.Label: 1 optional, 2 required, 3 repeated. */
  readonly label: number;
  /** FieldDescriptorProto.Type (1 double ... 18 sint64). */
  readonly type: number;
  /** Fully qualified, with a leading dot, for messages and enums. */
  readonly typeName: string;
  readonly extendee: string;
  /** FieldOptions.packed, when set. */
  readonly packed: boolean | undefined;
  /** Every unknown (extension) field of FieldOptions, by number, as raw length-delimited payloads. */
  readonly optionExtensions: ReadonlyMap<number, Uint8Array>;
}

export interface RawMessage {
  readonly name: string;
  readonly fields: readonly RawField[];
  readonly nested: readonly RawMessage[];
  readonly enums: readonly RawEnum[];
  readonly extensions: readonly RawField[];
}

export interface RawFile {
  readonly name: string;
  readonly packageName: string;
  readonly syntax: string;
  readonly messages: readonly RawMessage[];
  readonly enums: readonly RawEnum[];
  readonly extensions: readonly RawField[];
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function string(r: WireReader): string {
  return utf8.decode(r.bytes());
}

/** Calls `onField` for every field of the message in [start, end); unhandled fields are skipped. */
function each(r: WireReader, end: number, onField: (number: number, wireType: number) => boolean): void {
  while (r.pos < end) {
    const tag = r.uint32();
    const number = tag >>> 3;
    const wireType = tag & 7;
    if (!onField(number, wireType)) r.skip(wireType, number);
  }
}

function sub<T>(r: WireReader, read: (r: WireReader, end: number) => T): T {
  const end = r.lengthEnd();
  const inner = new WireReader(r.buf, r.pos, end);
  const value = read(inner, end);
  r.pos = end;
  return value;
}

function readEnumValue(r: WireReader, end: number): RawEnumValue {
  let name = '';
  let number = 0;
  each(r, end, (n, w) => {
    if (n === 1 && w === WIRE_LENGTH) name = string(r);
    else if (n === 2 && w === WIRE_VARINT) number = r.int32();
    else return false;
    return true;
  });
  return { name, number };
}

function readEnum(r: WireReader, end: number): RawEnum {
  let name = '';
  const values: RawEnumValue[] = [];
  each(r, end, (n, w) => {
    if (n === 1 && w === WIRE_LENGTH) name = string(r);
    else if (n === 2 && w === WIRE_LENGTH) values.push(sub(r, readEnumValue));
    else return false;
    return true;
  });
  return { name, values };
}

function readFieldOptions(r: WireReader, end: number): { packed: boolean | undefined; ext: Map<number, Uint8Array> } {
  let packed: boolean | undefined;
  const ext = new Map<number, Uint8Array>();
  each(r, end, (n, w) => {
    if (n === 2 && w === WIRE_VARINT) packed = r.uint32() !== 0;
    else if (n >= 1000 && w === WIRE_LENGTH) {
      // Repeated occurrences of a message extension merge, which is concatenation on the wire.
      const bytes = r.bytes();
      const before = ext.get(n);
      ext.set(n, before ? concat(before, bytes) : bytes);
    } else return false;
    return true;
  });
  return { packed, ext };
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function readField(r: WireReader, end: number): RawField {
  let name = '';
  let number = 0;
  let label = 1;
  let type = 0;
  let typeName = '';
  let extendee = '';
  let options: { packed: boolean | undefined; ext: Map<number, Uint8Array> } = { packed: undefined, ext: new Map() };
  each(r, end, (n, w) => {
    if (n === 1 && w === WIRE_LENGTH) name = string(r);
    else if (n === 2 && w === WIRE_LENGTH) extendee = string(r);
    else if (n === 3 && w === WIRE_VARINT) number = r.int32();
    else if (n === 4 && w === WIRE_VARINT) label = r.int32();
    else if (n === 5 && w === WIRE_VARINT) type = r.int32();
    else if (n === 6 && w === WIRE_LENGTH) typeName = string(r);
    else if (n === 8 && w === WIRE_LENGTH) options = sub(r, readFieldOptions);
    else return false;
    return true;
  });
  return { name, number, label, type, typeName, extendee, packed: options.packed, optionExtensions: options.ext };
}

function readMessage(r: WireReader, end: number): RawMessage {
  let name = '';
  const fields: RawField[] = [];
  const nested: RawMessage[] = [];
  const enums: RawEnum[] = [];
  const extensions: RawField[] = [];
  each(r, end, (n, w) => {
    if (w !== WIRE_LENGTH) return false;
    if (n === 1) name = string(r);
    else if (n === 2) fields.push(sub(r, readField));
    else if (n === 3) nested.push(sub(r, readMessage));
    else if (n === 4) enums.push(sub(r, readEnum));
    else if (n === 6) extensions.push(sub(r, readField));
    else return false;
    return true;
  });
  return { name, fields, nested, enums, extensions };
}

export function readFileDescriptor(bytes: Uint8Array): RawFile {
  const r = new WireReader(bytes);
  let name = '';
  let packageName = '';
  let syntax = '';
  const messages: RawMessage[] = [];
  const enums: RawEnum[] = [];
  const extensions: RawField[] = [];
  each(r, bytes.length, (n, w) => {
    if (w !== WIRE_LENGTH) return false;
    if (n === 1) name = string(r);
    else if (n === 2) packageName = string(r);
    else if (n === 4) messages.push(sub(r, readMessage));
    else if (n === 5) enums.push(sub(r, readEnum));
    else if (n === 7) extensions.push(sub(r, readField));
    else if (n === 12) syntax = string(r);
    else return false;
    return true;
  });
  return { name, packageName, syntax, messages, enums, extensions };
}
