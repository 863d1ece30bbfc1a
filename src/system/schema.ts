/**
 * A small schema checker for the runtime's own JSON: the configuration, a container's state and
 * the messages between its processes. Every command reads some of these, and a command such as
 * `runtime state` must start in well under 100 ms: zod alone takes 90–130 ms to load here (95
 * modules). The OCI formats users write (config.json) keep zod, whose detailed issues their error
 * messages are made of.
 *
 * The API is the subset of zod's that those files use, with the same names and the same result
 * shape (`safeParse` gives `{ success, data }` or `{ success, error: { issues } }`), so that a
 * reader takes either.
 */

export type PathSegment = string | number;

export interface Issue {
  /** PropertyKey, as zod's issues have it. */
  readonly path: readonly PropertyKey[];
  readonly message: string;
}

export type SafeParseResult<T> = { readonly success: true; readonly data: T } | { readonly success: false; readonly error: { readonly issues: Issue[] } };

/** What a reader needs of a schema: this module's and zod's both have it. */
export interface Validator<T> {
  safeParse(value: unknown): SafeParseResult<T>;
}

class Failure {
  constructor(readonly issues: Issue[]) {}
}

/** The type of a schema's valid values. */
export type Infer<S> = S extends Schema<infer T> ? T : never;

export abstract class Schema<T> implements Validator<T> {
  /** Checks value; returns the checked value (objects without their unknown keys) or throws a Failure. */
  abstract check(value: unknown, path: PathSegment[]): T;

  safeParse(value: unknown): SafeParseResult<T> {
    try {
      return { success: true, data: this.check(value, []) };
    } catch (error) {
      if (error instanceof Failure) return { success: false, error: { issues: error.issues } };
      throw error;
    }
  }

  optional(): OptionalSchema<T> {
    return new OptionalSchema(this);
  }

  /** A further check: `test` false fails with message. */
  refine(test: (value: T) => boolean, message: string): Schema<T> {
    return new RefinedSchema(this, test, message);
  }
}

function fail(path: PathSegment[], message: string): never {
  throw new Failure([{ path: [...path], message }]);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

function expected(type: string, value: unknown, path: PathSegment[]): never {
  return fail(path, value === undefined ? `is required (${type})` : `expected ${type}, received ${describe(value)}`);
}

export class OptionalSchema<T> extends Schema<T | undefined> {
  constructor(readonly inner: Schema<T>) {
    super();
  }
  check(value: unknown, path: PathSegment[]): T | undefined {
    return value === undefined ? undefined : this.inner.check(value, path);
  }
}

export class RefinedSchema<T> extends Schema<T> {
  constructor(
    private readonly inner: Schema<T>,
    private readonly test: (value: T) => boolean,
    private readonly message: string,
  ) {
    super();
  }
  check(value: unknown, path: PathSegment[]): T {
    const checked = this.inner.check(value, path);
    if (!this.test(checked)) fail(path, this.message);
    return checked;
  }
}

export class StringSchema extends Schema<string> {
  constructor(private readonly tests: readonly ((value: string, path: PathSegment[]) => void)[] = []) {
    super();
  }
  check(value: unknown, path: PathSegment[]): string {
    if (typeof value !== 'string') expected('string', value, path);
    for (const test of this.tests) test(value, path);
    return value;
  }
  min(length: number, message = `must be at least ${length} character${length === 1 ? '' : 's'} long`): StringSchema {
    return new StringSchema([...this.tests, (value, path) => void (value.length < length && fail(path, message))]);
  }
  regex(pattern: RegExp, message = `must match ${String(pattern)}`): StringSchema {
    return new StringSchema([...this.tests, (value, path) => void (!pattern.test(value) && fail(path, message))]);
  }
}

export class NumberSchema extends Schema<number> {
  constructor(private readonly tests: readonly ((value: number, path: PathSegment[]) => void)[] = []) {
    super();
  }
  check(value: unknown, path: PathSegment[]): number {
    if (typeof value !== 'number' || !Number.isFinite(value)) expected('number', value, path);
    for (const test of this.tests) test(value, path);
    return value;
  }
  private with(test: (value: number) => boolean, message: string): NumberSchema {
    return new NumberSchema([...this.tests, (value, path) => void (!test(value) && fail(path, message))]);
  }
  int(): NumberSchema {
    return this.with(Number.isInteger, 'must be an integer');
  }
  positive(): NumberSchema {
    return this.with((n) => n > 0, 'must be greater than 0');
  }
  nonnegative(): NumberSchema {
    return this.with((n) => n >= 0, 'must not be negative');
  }
}

export class BooleanSchema extends Schema<boolean> {
  check(value: unknown, path: PathSegment[]): boolean {
    if (typeof value !== 'boolean') expected('boolean', value, path);
    return value;
  }
}

type Primitive = string | number | boolean;

export class LiteralSchema<T extends Primitive> extends Schema<T> {
  constructor(readonly value: T) {
    super();
  }
  check(value: unknown, path: PathSegment[]): T {
    if (value !== this.value) fail(path, `must be ${JSON.stringify(this.value)}${value === undefined ? '' : `, not ${JSON.stringify(value)}`}`);
    return this.value;
  }
}

export class EnumSchema<T extends string> extends Schema<T> {
  constructor(readonly values: readonly T[]) {
    super();
  }
  check(value: unknown, path: PathSegment[]): T {
    if (!(this.values as readonly unknown[]).includes(value)) {
      fail(path, `must be one of ${this.values.map((v) => JSON.stringify(v)).join(', ')}${value === undefined ? '' : `, not ${JSON.stringify(value)}`}`);
    }
    return value as T;
  }
}

export class ArraySchema<T> extends Schema<T[]> {
  constructor(readonly item: Schema<T>) {
    super();
  }
  check(value: unknown, path: PathSegment[]): T[] {
    if (!Array.isArray(value)) expected('array', value, path);
    return value.map((item, index) => this.item.check(item, [...path, index]));
  }
}

export class RecordSchema<T> extends Schema<Record<string, T>> {
  constructor(readonly item: Schema<T>) {
    super();
  }
  check(value: unknown, path: PathSegment[]): Record<string, T> {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) expected('object', value, path);
    const out: Record<string, T> = {};
    for (const [key, item] of Object.entries(value)) out[key] = this.item.check(item, [...path, key]);
    return out;
  }
}

export type Shape = Readonly<Record<string, Schema<unknown>>>;

type OptionalKeys<S extends Shape> = { [K in keyof S]: S[K] extends OptionalSchema<unknown> ? K : never }[keyof S];
type Simplify<T> = { [K in keyof T]: T[K] } & {};
export type ObjectOutput<S extends Shape> = Simplify<{ [K in Exclude<keyof S, OptionalKeys<S>>]: Infer<S[K]> } & { [K in OptionalKeys<S>]?: Infer<S[K]> }>;

export class ObjectSchema<S extends Shape> extends Schema<ObjectOutput<S>> {
  constructor(
    readonly shape: S,
    /** Unknown keys fail the check rather than being dropped. */
    readonly strictKeys = false,
  ) {
    super();
  }

  check(value: unknown, path: PathSegment[]): ObjectOutput<S> {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) expected('object', value, path);
    const input = value as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const [key, schema] of Object.entries(this.shape)) {
      const checked = schema.check(input[key], [...path, key]);
      if (checked !== undefined) out[key] = checked;
    }
    if (this.strictKeys) {
      const unknown = Object.keys(input).filter((key) => !(key in this.shape));
      if (unknown.length > 0) fail(path, `unknown key${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => JSON.stringify(k)).join(', ')}`);
    }
    return out as ObjectOutput<S>;
  }

  strict(): ObjectSchema<S> {
    return new ObjectSchema(this.shape, true);
  }

  /** Every key optional. */
  partial(): ObjectSchema<{ [K in keyof S]: OptionalSchema<Infer<S[K]>> }> {
    const shape = Object.fromEntries(
      Object.entries(this.shape).map(([key, schema]) => [key, schema instanceof OptionalSchema ? schema : schema.optional()]),
    ) as { [K in keyof S]: OptionalSchema<Infer<S[K]>> };
    return new ObjectSchema(shape, this.strictKeys);
  }

  omit<K extends keyof S>(keys: { readonly [P in K]: true }): ObjectSchema<Omit<S, K>> {
    const shape = Object.fromEntries(Object.entries(this.shape).filter(([key]) => !(key in keys))) as Omit<S, K>;
    return new ObjectSchema(shape, this.strictKeys);
  }
}

type VariantOutput<V extends readonly ObjectSchema<Shape>[]> = Infer<V[number]>;

export class DiscriminatedUnionSchema<V extends readonly ObjectSchema<Shape>[]> extends Schema<VariantOutput<V>> {
  constructor(
    private readonly key: string,
    private readonly variants: V,
  ) {
    super();
  }

  check(value: unknown, path: PathSegment[]): VariantOutput<V> {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) expected('object', value, path);
    const tag = (value as Record<string, unknown>)[this.key];
    const variant = this.variants.find((v) => (v.shape[this.key] as LiteralSchema<Primitive>).value === tag);
    if (!variant) {
      const tags = this.variants.map((v) => JSON.stringify((v.shape[this.key] as LiteralSchema<Primitive>).value));
      fail([...path, this.key], `must be one of ${tags.join(', ')}${tag === undefined ? '' : `, not ${JSON.stringify(tag)}`}`);
    }
    return variant.check(value, path) as VariantOutput<V>;
  }
}

/** The schema constructors, under zod's names. */
export const s = {
  string: () => new StringSchema(),
  number: () => new NumberSchema(),
  boolean: () => new BooleanSchema(),
  literal: <T extends Primitive>(value: T) => new LiteralSchema(value),
  enum: <const T extends string>(values: readonly T[]) => new EnumSchema<T>(values),
  array: <T>(item: Schema<T>) => new ArraySchema(item),
  record: <T>(item: Schema<T>) => new RecordSchema(item),
  object: <S extends Shape>(shape: S) => new ObjectSchema(shape),
  strictObject: <S extends Shape>(shape: S) => new ObjectSchema(shape, true),
  discriminatedUnion: <const V extends readonly ObjectSchema<Shape>[]>(key: string, variants: V) => new DiscriminatedUnionSchema(key, variants),
};
