import test from 'ava';
import { InvalidIdError } from '../../src/runtime/errors.js';
import { validateId } from '../../src/runtime/id.js';

test('accepts letters, digits, "_", "+", "-" and "."', (t) => {
  for (const id of ['web1', 'a', 'A_b-c+d.e', '...', '.hidden', 'x..y', '0', 'a'.repeat(1024), 'c0ffee.2024-01-01_01+02']) {
    t.is(validateId(id), id);
  }
});

function reasonFor(id: string): string {
  const error = (() => {
    try {
      validateId(id);
    } catch (thrown) {
      return thrown;
    }
    throw new Error(`${JSON.stringify(id)} was accepted`);
  })();
  if (!(error instanceof InvalidIdError)) throw new Error(`expected InvalidIdError, got ${String(error)}`);
  if (error.code !== 'INVALID_ID' || error.id !== id) throw new Error('wrong code or id');
  const prefix = `invalid container id ${JSON.stringify(id)}: `;
  if (!error.message.startsWith(prefix)) throw new Error(`unexpected message ${error.message}`);
  return error.message.slice(prefix.length);
}

const otherCharacter = 'it contains a character other than letters, digits, "_", "+", "-" and "."';

test('refuses ids that are not safe directory names, with the reason', (t) => {
  const cases: Array<[string, string]> = [
    ['', 'it is empty'],
    ['a'.repeat(1025), 'it is longer than 1024 characters'],
    ['.', 'it names a directory'],
    ['..', 'it names a directory'],
    ['/', 'it contains a path separator'],
    ['a/../b', 'it contains a path separator'],
    ['../etc', 'it contains a path separator'],
    ['web/', 'it contains a path separator'],
    ['web 1', otherCharacter],
    [' web', otherCharacter],
    ['web\n', otherCharacter],
    ['wéb', otherCharacter],
    ['容器', otherCharacter],
    ['web\u0000', otherCharacter],
    ['a:b', otherCharacter],
    ['a\\b', otherCharacter],
    ['$(id)', otherCharacter],
    // runc and CRIU would read these as options.
    ['-f', 'it starts with "-"'],
    ['--help', 'it starts with "-"'],
    ['-', 'it starts with "-"'],
  ];
  for (const [id, reason] of cases) t.is(reasonFor(id), reason, JSON.stringify(id));
});

test('the hint describes the rule', (t) => {
  const error = t.throws(() => validateId('a b'), { instanceOf: InvalidIdError });
  t.is(error.hint, 'ids are 1 to 1024 characters of letters, digits, "_", "+", "-" and ".", not starting with "-"; not "." or ".."');
});
