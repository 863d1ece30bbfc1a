/**
 * JSON the runtime wrote or received (state, checkpoint metadata, snapshots, messages between its
 * processes), checked against its schema on read: the value, or where and why it is not one.
 * Each reader throws its own coded error with the reason.
 */
import type { Validator } from '../system/schema.js';

export type Checked<T> =
  | { readonly ok: true; readonly value: T }
  /** syntax: the text is not JSON at all; path: where in the value the schema failed. */
  | { readonly ok: false; readonly syntax: boolean; readonly path: string; readonly reason: string };

/** Checks a parsed value against the schema. */
export function checkValue<T>(schema: Validator<T>, value: unknown, what = 'the value'): Checked<T> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return { ok: true, value: parsed.data };
  const issue = parsed.error.issues[0];
  const where = issue?.path.map(String).join('.') ?? '';
  return { ok: false, syntax: false, path: where, reason: issue ? `${where || what}: ${issue.message}` : 'invalid' };
}

/** Parses text as JSON and checks it against the schema. */
export function checkJson<T>(schema: Validator<T>, text: string, what = 'the value'): Checked<T> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { ok: false, syntax: true, path: '', reason: (error as Error).message };
  }
  return checkValue(schema, value, what);
}
