/** One framed record to its plain dict, with wire errors reported against the file. */
import { decodeMessage } from '../codec/decode-message.js';
import type { MessageSchema } from '../descriptors/schema.js';
import { CorruptImageError } from '../errors.js';
import type { ByteReader } from '../framing/byte-reader.js';
import type { RawRecord } from '../framing/records.js';
import type { CritJsonObject } from '../types.js';
import { WireError } from '../wire/reader.js';

export function decodeRecord(reader: ByteReader, schema: MessageSchema, record: RawRecord): CritJsonObject {
  try {
    return decodeMessage(schema, record.bytes);
  } catch (cause) {
    if (cause instanceof WireError) {
      throw new CorruptImageError(reader.name, record.offset + 4 + cause.offset, `${schema.fullName.slice(1)}: ${cause.reason}`, { cause });
    }
    throw new CorruptImageError(reader.name, record.offset, `${schema.fullName.slice(1)}: ${(cause as Error).message}`, { cause });
  }
}
