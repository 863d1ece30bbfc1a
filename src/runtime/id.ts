/** Container ids name directories, so they must never reach outside the state root. */
import { InvalidIdError } from './errors.js';

const allowed = /^[A-Za-z0-9_+\-.]+$/;

export function validateId(id: string): string {
  if (id.length === 0) throw new InvalidIdError(id, 'it is empty');
  if (id.length > 1024) throw new InvalidIdError(id, 'it is longer than 1024 characters');
  if (id === '.' || id === '..') throw new InvalidIdError(id, 'it names a directory');
  if (id.includes('/')) throw new InvalidIdError(id, 'it contains a path separator');
  // runc and CRIU take their arguments with getopt: an id there would be read as an option.
  if (id.startsWith('-')) throw new InvalidIdError(id, 'it starts with "-"');
  if (!allowed.test(id)) throw new InvalidIdError(id, 'it contains a character other than letters, digits, "_", "+", "-" and "."');
  return id;
}
