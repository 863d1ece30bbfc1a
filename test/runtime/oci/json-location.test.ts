import test from 'ava';
import { locateJsonError } from '../../../src/runtime/oci/json-location.js';

test('valid JSON has no error location', (t) => {
  t.is(locateJsonError('{"a": [1, -2.5e3, true, false, null, "x\\u00e9\\n"]}\n'), undefined);
});

test('points at the first character the grammar refuses', (t) => {
  t.deepEqual(locateJsonError('{\n  "a": 1,\n}'), { line: 3, column: 1 }); // trailing comma
  t.deepEqual(locateJsonError('[1,]'), { line: 1, column: 4 });
  t.deepEqual(locateJsonError('{"a" 1}'), { line: 1, column: 6 });
  t.deepEqual(locateJsonError('{"a": 01}'), { line: 1, column: 8 });
  t.deepEqual(locateJsonError('{"a": "tab\there"}'), { line: 1, column: 11 });
  t.deepEqual(locateJsonError('{"a": 1} x'), { line: 1, column: 10 });
  t.deepEqual(locateJsonError('\ufeff{}'), { line: 1, column: 1 });
});

test('truncated input is located at its end', (t) => {
  t.deepEqual(locateJsonError('{\n"a": '), { line: 2, column: 6 });
});

test('agrees with JSON.parse on what is valid', (t) => {
  for (const text of ['{}', '[]', '0', '"s"', '{"a":{"b":[{}]}}', '[1e5, 1E-5, -0]', '{"a":1,}', '[.5]', '"\\x"', 'nul']) {
    let parses = true;
    try {
      JSON.parse(text);
    } catch {
      parses = false;
    }
    t.is(locateJsonError(text) === undefined, parses, text);
  }
});
