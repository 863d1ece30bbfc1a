/**
 * The JSON model of an image, exactly as `crit decode` prints it: `{magic, entries}`, each entry the
 * set fields of its message in field-number order, then `extra` for payloads. Integers are numbers
 * when they are safe integers and bigints beyond that (u64 rlimits, signal masks), so no value is
 * rounded; parseImageJson and formatImageJson keep that canonical form.
 */
export type CritJsonValue = string | number | bigint | boolean | null | CritJsonValue[] | CritJsonObject;

export interface CritJsonObject {
  [key: string]: CritJsonValue;
}

/** One entry: a message's fields, and `extra` for images that carry a payload after it. */
export type ImageEntry = CritJsonObject;

export interface ImageJson {
  /** The image type, a name from pycriu's magic.py ("CORE", "PSTREE", ...). */
  magic: string;
  entries: ImageEntry[];
}

export interface DecodeOptions {
  /** Apply the `(criu)` field options as `crit decode --pretty` does (hex, flags, addresses, ...). */
  readonly pretty?: boolean;
  /** Replace payloads by their size, as `crit show --nopl` does. */
  readonly noPayload?: boolean;
  /** The pycriu package directory to take descriptors from (default: found, or RUNTIME_PYCRIU_DIR). */
  readonly pycriuDir?: string;
}
