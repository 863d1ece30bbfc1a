import test from 'ava';
import { s } from '../../src/system/schema.js';

const record = s.discriminatedUnion('status', [
  s.object({ status: s.literal('running'), pid: s.number().int().positive(), note: s.string().optional() }),
  s.object({ status: s.literal('stopped'), code: s.number().int().nonnegative().optional() }),
]);

test('a valid value comes back without the keys the schema does not know', (t) => {
  t.deepEqual(record.safeParse({ status: 'running', pid: 7, extra: true }), { success: true, data: { status: 'running', pid: 7 } });
  t.deepEqual(record.safeParse({ status: 'stopped' }), { success: true, data: { status: 'stopped' } });
});

test('each failure names where and why', (t) => {
  const issues = (value: unknown) => {
    const result = record.safeParse(value);
    return result.success ? [] : result.error.issues;
  };
  t.deepEqual(issues({ status: 'running', pid: -1 }), [{ path: ['pid'], message: 'must be greater than 0' }]);
  t.deepEqual(issues({ status: 'running', pid: 1.5 }), [{ path: ['pid'], message: 'must be an integer' }]);
  t.deepEqual(issues({ status: 'running' }), [{ path: ['pid'], message: 'is required (number)' }]);
  t.deepEqual(issues({ status: 'running', pid: '1' }), [{ path: ['pid'], message: 'expected number, received string' }]);
  t.deepEqual(issues({ status: 'paused' }), [{ path: ['status'], message: 'must be one of "running", "stopped", not "paused"' }]);
  t.deepEqual(issues([]), [{ path: [], message: 'expected object, received array' }]);
});

test('strings, enums, arrays and records check their items, with the item in the path', (t) => {
  const schema = s.strictObject({
    name: s
      .string()
      .min(1)
      .regex(/^[a-z]+$/, 'lower case letters only'),
    level: s.enum(['info', 'debug']),
    tags: s.array(s.string()),
    labels: s.record(s.string()),
    port: s.number().refine((n) => n < 65536, 'must be a port'),
  });
  const good = { name: 'db', level: 'info', tags: ['a'], labels: { x: 'y' }, port: 5432 };
  t.true(schema.safeParse(good).success);
  const messages = (value: unknown) => {
    const result = schema.safeParse(value);
    return result.success ? [] : result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };
  t.deepEqual(messages({ ...good, name: '' }), ['name: must be at least 1 character long']);
  t.deepEqual(messages({ ...good, name: 'DB' }), ['name: lower case letters only']);
  t.deepEqual(messages({ ...good, level: 'trace' }), ['level: must be one of "info", "debug", not "trace"']);
  t.deepEqual(messages({ ...good, tags: ['a', 2] }), ['tags.1: expected string, received number']);
  t.deepEqual(messages({ ...good, labels: { x: 1 } }), ['labels.x: expected string, received number']);
  t.deepEqual(messages({ ...good, port: 70000 }), ['port: must be a port']);
  t.deepEqual(messages({ ...good, more: 1 }), [': unknown key "more"']);
});

test('partial, strict and omit make new object schemas', (t) => {
  const base = s.object({ a: s.string(), b: s.boolean() });
  t.deepEqual(base.partial().safeParse({}), { success: true, data: {} });
  t.false(base.partial().strict().safeParse({ c: 1 }).success);
  t.deepEqual(base.omit({ b: true }).safeParse({ a: 'x', b: 'not checked' }), { success: true, data: { a: 'x' } });
});
