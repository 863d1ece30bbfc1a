/**
 * Loading an OCI bundle: a directory holding config.json and, usually, the root filesystem.
 * Mirrors runc's loadSpec: the bundle must have a process and a root, and the rootfs must exist.
 */
import { readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { z } from 'zod';
import { InvalidBundleError, type BundleProblem } from './errors.js';
import { canonicalPath } from '../../system/files.js';
import { locateJsonError } from './json-location.js';
import { SpecSchema, type LinuxNamespace, type NamespaceType, type Spec } from './spec.js';

export interface Bundle {
  /** Absolute path of the bundle directory. */
  readonly path: string;
  /** Absolute path of its config.json. */
  readonly configPath: string;
  readonly spec: Spec;
  /** Absolute path of the root filesystem: root.path resolved against the bundle directory. */
  readonly rootfs: string;
}

/** Reads and validates `dir/config.json` and checks that its rootfs directory exists. */
export interface LoadBundleOptions {
  /**
   * Check that root.path is a directory (default). Off when the rootfs comes from a storage
   * driver and is mounted later, so the bundle's own root.path may not exist yet.
   */
  readonly requireRootfs?: boolean;
}

export async function loadBundle(dir: string, options: LoadBundleOptions = {}): Promise<Bundle> {
  // Real paths: runc refuses a root reached through a symbolic link, and the mount table names
  // the rootfs by its real path (a reset's overlay on it is found again and replaced).
  const path = canonicalPath(dir);
  const configPath = join(path, 'config.json');

  const dirKind = await kindOf(path);
  if (dirKind.kind !== 'directory') {
    const reason = {
      missing: `bundle directory ${path} does not exist`,
      other: `bundle path ${path} is not a directory`,
      unreadable: `cannot stat bundle directory ${path}: ${messageOf(dirKind.error)}`,
    }[dirKind.kind];
    throw new InvalidBundleError(configPath, '', reason, {
      cause: dirKind.error,
      hint: 'pass the bundle directory (the one holding config.json) with --bundle, or run from inside it',
    });
  }

  let text: string;
  try {
    text = await readFile(configPath, 'utf8');
  } catch (error) {
    if (errorCode(error) === 'ENOENT') {
      throw new InvalidBundleError(configPath, '', 'config.json does not exist in the bundle', {
        cause: error,
        hint: `create one with \`runc spec --bundle ${path}\` and edit it`,
      });
    }
    throw new InvalidBundleError(configPath, '', `cannot read it: ${messageOf(error)}`, {
      cause: error,
      hint: 'check that the file is readable by the user running the runtime',
    });
  }

  const spec = parseSpec(text, configPath);
  const rootfs = canonicalPath(resolve(path, spec.root.path));
  const rootKind = options.requireRootfs === false ? { kind: 'directory' as const } : await kindOf(rootfs);
  if (rootKind.kind !== 'directory') {
    const reason = {
      missing: `root filesystem ${rootfs} does not exist`,
      other: `root filesystem ${rootfs} is not a directory`,
      unreadable: `cannot stat root filesystem ${rootfs}: ${messageOf(rootKind.error)}`,
    }[rootKind.kind];
    throw new InvalidBundleError(configPath, 'root.path', reason, {
      cause: rootKind.error,
      hint: 'unpack the image into that directory, or point root.path (relative to the bundle) at the root filesystem',
    });
  }

  return { path, configPath, spec, rootfs };
}

/**
 * Parses and validates the text of a config.json. Pure: `file` is only named in errors.
 * The result keeps every key of the input, known or not.
 */
export function parseSpec(text: string, file: string): Spec {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new InvalidBundleError(file, '', describeJsonError(text, error), { cause: error });
  }

  const result = SpecSchema.safeParse(json, { reportInput: true });
  if (result.success) return result.data;

  const [first, ...rest] = result.error.issues.map(toProblem);
  // A failed parse always has at least one issue.
  const head = first ?? { field: '', reason: 'does not match the OCI runtime spec' };
  throw new InvalidBundleError(file, head.field, head.reason, { cause: result.error, others: rest });
}

/** The namespace entry of that type, if the spec asks for one (to create, or to join by path). */
export function specHasNamespace(spec: Spec, type: NamespaceType): LinuxNamespace | undefined {
  return spec.linux?.namespaces?.find((ns) => ns.type === type);
}

/** A JSON path as people write it: `process.args`, `mounts[2].destination`, `linux.sysctl["net.ipv4.ip_forward"]`. */
export function formatFieldPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else if (typeof key === 'string' && /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key)) out += out === '' ? key : `.${key}`;
    else out += `[${JSON.stringify(String(key))}]`;
  }
  return out;
}

function toProblem(issue: z.core.$ZodIssue): BundleProblem {
  return { field: formatFieldPath(issue.path), reason: describeIssue(issue) };
}

function describeIssue(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      return issue.input === undefined
        ? `is required (${article(issue.expected)})`
        : `must be ${article(issue.expected)}, not ${article(jsonType(issue.input))}`;
    case 'invalid_value':
      return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, not ${JSON.stringify(issue.input)}`;
    case 'too_small':
    case 'too_big':
      if (issue.origin === 'number') {
        const bound = issue.code === 'too_small' ? issue.minimum : issue.maximum;
        // Custom messages (such as "must not be empty") are kept; zod's own are reworded.
        if (issue.message.startsWith('Too ')) {
          return `must be ${issue.code === 'too_small' ? 'at least' : 'at most'} ${String(bound)}, not ${JSON.stringify(issue.input)}`;
        }
      }
      return issue.message;
    default:
      return issue.message;
  }
}

function jsonType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number' && !Number.isInteger(value)) return 'non-integer number';
  return typeof value;
}

function article(type: string): string {
  if (type === 'int') return 'an integer';
  if (type === 'null' || type === 'undefined') return type;
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

function describeJsonError(text: string, error: unknown): string {
  if (text.trim() === '') return 'the file is empty, not JSON';
  const where = locateJsonError(text);
  const at = where === undefined ? '' : ` at line ${where.line}, column ${where.column}`;
  return `not valid JSON${at}: ${messageOf(error)}`;
}

type PathKind =
  { readonly kind: 'directory' | 'other'; readonly error?: undefined } | { readonly kind: 'missing' | 'unreadable'; readonly error: unknown };

async function kindOf(path: string): Promise<PathKind> {
  try {
    return (await stat(path)).isDirectory() ? { kind: 'directory' } : { kind: 'other' };
  } catch (error) {
    const code = errorCode(error);
    // ENOTDIR: a parent component is a file, so the directory is not there either.
    return { kind: code === 'ENOENT' || code === 'ENOTDIR' ? 'missing' : 'unreadable', error };
  }
}

function errorCode(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string' ? error.code : undefined;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
