/**
 * The message schema the codec runs on, built once from pycriu's descriptors: fields sorted by
 * number (the order protobuf serializes and pycriu's ListFields() lists them), with CRIU's
 * `(criu)` field options (opts.proto) resolved to plain flags.
 */
import type { RawEnum, RawField, RawFile, RawMessage } from './descriptor-proto.js';
import { WIRE_LENGTH, WIRE_VARINT, WireReader } from '../wire/reader.js';

/** google.protobuf.FieldDescriptorProto.Type. */
export const FieldType = {
  DOUBLE: 1,
  FLOAT: 2,
  INT64: 3,
  UINT64: 4,
  INT32: 5,
  FIXED64: 6,
  FIXED32: 7,
  BOOL: 8,
  STRING: 9,
  GROUP: 10,
  MESSAGE: 11,
  BYTES: 12,
  UINT32: 13,
  ENUM: 14,
  SFIXED32: 15,
  SFIXED64: 16,
  SINT32: 17,
  SINT64: 18,
} as const;
export type FieldType = (typeof FieldType)[keyof typeof FieldType];

const LABEL_REQUIRED = 2;
const LABEL_REPEATED = 3;

/** CRIU's `(criu)` field options from opts.proto; they drive `crit decode --pretty`. */
export interface CriuFieldOptions {
  /** Print as "0x..." (inherited by every field of a nested message). */
  readonly hex: boolean;
  /** A repeated u32 holding an IPv4 (one word) or IPv6 (four words) address in network order. */
  readonly ipadd: boolean;
  /** The name of a flag table in pycriu's pb2dict (mmap.prot, rfile.flags, ...). */
  readonly flags: string;
  /** A device number printed as "major:minor" (kernel encoding). */
  readonly dev: boolean;
  /** With dev: the old (glibc) dev_t encoding. */
  readonly odev: boolean;
  /** The name of a value-to-name table (sk, gen). */
  readonly dict: string;
  /** A custom bytes conversion ("unix_name": quoted-printable). */
  readonly conv: string;
}

const noOptions: CriuFieldOptions = Object.freeze({ hex: false, ipadd: false, flags: '', dev: false, odev: false, dict: '', conv: '' });

export interface EnumSchema {
  readonly fullName: string;
  /** Number to name; the first value defined wins for aliases, as in protobuf's values_by_number. */
  readonly byNumber: ReadonlyMap<number, string>;
  readonly byName: ReadonlyMap<string, number>;
}

export interface FieldSchema {
  readonly name: string;
  readonly number: number;
  readonly type: FieldType;
  readonly repeated: boolean;
  readonly required: boolean;
  /** FieldOptions.packed (proto2 default: unpacked; CRIU's protos never pack). */
  readonly packed: boolean;
  /** The message type of MESSAGE fields. */
  readonly message: MessageSchema | undefined;
  readonly enumType: EnumSchema | undefined;
  readonly criu: CriuFieldOptions;
  /** Position in MessageSchema.fields. */
  readonly index: number;
}

export interface MessageSchema {
  readonly fullName: string;
  /** Sorted by field number. */
  readonly fields: readonly FieldSchema[];
  readonly byNumber: ReadonlyMap<number, FieldSchema>;
  readonly byName: ReadonlyMap<string, FieldSchema>;
}

export class SchemaError extends Error {
  override name = 'SchemaError';
}

/** All message and enum types of a descriptor set, by fully qualified name (".core_entry"). */
export class SchemaRegistry {
  readonly messages = new Map<string, MessageSchema>();
  readonly enums = new Map<string, EnumSchema>();

  /** A top-level message by its protobuf name, as pycriu's `pb.<name>`. */
  message(name: string): MessageSchema | undefined {
    return this.messages.get(name.startsWith('.') ? name : `.${name}`);
  }

  static build(files: readonly RawFile[]): SchemaRegistry {
    const registry = new SchemaRegistry();
    const rawMessages = new Map<string, RawMessage>();
    const addEnum = (scope: string, raw: RawEnum): void => {
      const byNumber = new Map<number, string>();
      const byName = new Map<string, number>();
      for (const value of raw.values) {
        if (!byNumber.has(value.number)) byNumber.set(value.number, value.name);
        byName.set(value.name, value.number);
      }
      const fullName = `${scope}.${raw.name}`;
      registry.enums.set(fullName, { fullName, byNumber, byName });
    };
    const addMessage = (scope: string, raw: RawMessage): void => {
      const fullName = `${scope}.${raw.name}`;
      rawMessages.set(fullName, raw);
      for (const nested of raw.nested) addMessage(fullName, nested);
      for (const e of raw.enums) addEnum(fullName, e);
    };
    const extensions: RawField[] = [];
    const collectExtensions = (raw: RawMessage): void => {
      extensions.push(...raw.extensions);
      raw.nested.forEach(collectExtensions);
    };
    for (const file of files) {
      const scope = file.packageName ? `.${file.packageName}` : '';
      for (const m of file.messages) addMessage(scope, m);
      for (const e of file.enums) addEnum(scope, e);
      extensions.push(...file.extensions);
      file.messages.forEach(collectExtensions);
    }

    const readCriuOptions = criuOptionsReader(extensions, rawMessages);

    // Shells first, so fields can point at any message, cycles included.
    const shells = new Map<string, { fields: FieldSchema[]; byNumber: Map<number, FieldSchema>; byName: Map<string, FieldSchema> }>();
    for (const fullName of rawMessages.keys()) {
      const shell = { fields: [] as FieldSchema[], byNumber: new Map<number, FieldSchema>(), byName: new Map<string, FieldSchema>() };
      shells.set(fullName, shell);
      registry.messages.set(fullName, { fullName, ...shell });
    }
    for (const [fullName, raw] of rawMessages) {
      const shell = shells.get(fullName)!;
      const sorted = [...raw.fields].sort((a, b) => a.number - b.number);
      sorted.forEach((f, index) => {
        if (f.type === FieldType.GROUP) throw new SchemaError(`${fullName}.${f.name}: groups are not supported`);
        const message = f.type === FieldType.MESSAGE ? registry.messages.get(f.typeName) : undefined;
        const enumType = f.type === FieldType.ENUM ? registry.enums.get(f.typeName) : undefined;
        if (f.type === FieldType.MESSAGE && !message) throw new SchemaError(`${fullName}.${f.name}: unknown type ${f.typeName}`);
        if (f.type === FieldType.ENUM && !enumType) throw new SchemaError(`${fullName}.${f.name}: unknown enum ${f.typeName}`);
        const field: FieldSchema = {
          name: f.name,
          number: f.number,
          type: f.type as FieldType,
          repeated: f.label === LABEL_REPEATED,
          required: f.label === LABEL_REQUIRED,
          packed: f.packed === true,
          message,
          enumType,
          criu: readCriuOptions(f),
          index,
        };
        shell.fields.push(field);
        shell.byNumber.set(field.number, field);
        shell.byName.set(field.name, field);
      });
    }
    return registry;
  }
}

/**
 * Finds the `criu` extension of google.protobuf.FieldOptions (opts.proto) and returns a reader
 * for it, taking the option names and numbers from CRIU_Opts itself rather than hard-coding them.
 */
function criuOptionsReader(extensions: readonly RawField[], messages: ReadonlyMap<string, RawMessage>): (f: RawField) => CriuFieldOptions {
  const extension = extensions.find((e) => e.extendee === '.google.protobuf.FieldOptions' && e.name === 'criu');
  const optsType = extension && messages.get(extension.typeName);
  if (!extension || !optsType) return () => noOptions;
  const names = new Map(optsType.fields.map((f) => [f.number, f]));
  return (field) => {
    const bytes = field.optionExtensions.get(extension.number);
    if (!bytes) return noOptions;
    const values: Record<string, boolean | string> = {};
    const r = new WireReader(bytes);
    const utf8 = new TextDecoder();
    while (r.pos < bytes.length) {
      const tag = r.uint32();
      const number = tag >>> 3;
      const wireType = tag & 7;
      const option = names.get(number);
      if (option && option.type === FieldType.BOOL && wireType === WIRE_VARINT) values[option.name] = r.uint32() !== 0;
      else if (option && option.type === FieldType.STRING && wireType === WIRE_LENGTH) values[option.name] = utf8.decode(r.bytes());
      else r.skip(wireType, number);
    }
    return Object.freeze({ ...noOptions, ...values }) as CriuFieldOptions;
  };
}
