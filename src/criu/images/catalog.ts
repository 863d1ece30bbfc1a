/**
 * Everything the codec knows about image types, loaded once per pycriu directory: the message
 * schema from pycriu's descriptors and the magic table from its magic.py.
 */
import { ImageDescriptorsNotFoundError } from './errors.js';
import { readPycriu } from './descriptors/pycriu-source.js';
import { SchemaError, SchemaRegistry, type MessageSchema } from './descriptors/schema.js';
import { MagicTable } from './magic.js';

export interface ImageCatalog {
  /** The pycriu package directory the descriptors came from. */
  readonly pycriuDir: string;
  readonly registry: SchemaRegistry;
  readonly magics: MagicTable;
  /** A message type by its protobuf name ("core_entry"); throws if pycriu lacks it. */
  type(name: string): MessageSchema;
}

const catalogs = new Map<string, ImageCatalog>();

export function loadImageCatalog(pycriuDir?: string): ImageCatalog {
  const key = pycriuDir ?? process.env.RUNTIME_PYCRIU_DIR ?? '';
  const cached = catalogs.get(key);
  if (cached) return cached;
  const data = readPycriu(pycriuDir);
  let registry: SchemaRegistry;
  try {
    registry = SchemaRegistry.build(data.files);
  } catch (cause) {
    if (!(cause instanceof SchemaError)) throw cause;
    throw new ImageDescriptorsNotFoundError([data.dir], `pycriu's descriptors are inconsistent: ${cause.message}`, { cause });
  }
  const catalog: ImageCatalog = {
    pycriuDir: data.dir,
    registry,
    magics: new MagicTable(data.magics),
    type(name) {
      const schema = registry.message(name);
      if (!schema) throw new ImageDescriptorsNotFoundError([data.dir], `pycriu defines no message ${name}`);
      return schema;
    },
  };
  catalogs.set(key, catalog);
  return catalog;
}
