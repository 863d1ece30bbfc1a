import test from 'ava';
import { existsSync } from 'node:fs';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { PREFIX_CRIU_DIR, locateCriu } from '../../src/criu/binary.js';
import { CriuNotFoundError } from '../../src/criu/errors.js';
import { tempDir } from '../runtime/fixtures.js';

async function fakeExecutable(file: string, mode = 0o755): Promise<string> {
  await writeFile(file, '#!/bin/sh\necho "Version: 4.1.1"\n');
  await chmod(file, mode);
  return file;
}

test('an explicit path that is executable is used, made absolute', async (t) => {
  const dir = await tempDir(t, 'criu-bin-');
  const criu = await fakeExecutable(join(dir, 'criu'));
  t.is(await locateCriu(criu, ''), criu);
  t.is(await locateCriu(relative(process.cwd(), criu), ''), criu);
});

test('an explicit path that is not executable is not found', async (t) => {
  const dir = await tempDir(t, 'criu-bin-');
  const file = await fakeExecutable(join(dir, 'criu'), 0o644);
  const error = await t.throwsAsync(locateCriu(file, dir), { instanceOf: CriuNotFoundError });
  t.is(error.code, 'CRIU_NOT_FOUND');
  t.is(error.tried, `${file} is not an executable file`);
  t.is(error.message, `CRIU was not found (${file} is not an executable file)`);
});

test('an explicit path that does not exist is not found', async (t) => {
  const missing = join(await tempDir(t, 'criu-bin-'), 'nope', 'criu');
  const error = await t.throwsAsync(locateCriu(missing, ''), { instanceOf: CriuNotFoundError });
  t.is(error.tried, `${missing} is not an executable file`);
});

test('a bare name is searched on PATH, in order, skipping non-executables', async (t) => {
  const base = await tempDir(t, 'criu-bin-');
  const [first, second, third] = [join(base, 'a'), join(base, 'b'), join(base, 'c')];
  await Promise.all([mkdir(first), mkdir(second), mkdir(third)]);
  const name = `fake-criu-${process.pid}`;
  await fakeExecutable(join(first, name), 0o644);
  const expected = await fakeExecutable(join(second, name));
  await fakeExecutable(join(third, name));
  t.is(await locateCriu(name, `${join(base, 'missing')}::${first}:${second}:${third}`), join(second, name));
  t.is(expected, join(second, name));
});

test('a name that is nowhere on PATH is not found', async (t) => {
  const dir = await tempDir(t, 'criu-bin-');
  const name = `no-such-criu-${process.pid}`;
  const error = await t.throwsAsync(locateCriu(name, dir), { instanceOf: CriuNotFoundError });
  t.is(error.tried, `no executable "${name}" on PATH`);
  t.regex(error.hint ?? '', /RUNTIME_CRIU/);
});

test('with nothing configured, "criu" is looked up on the given PATH first', async (t) => {
  const dir = await tempDir(t, 'criu-bin-');
  const criu = await fakeExecutable(join(dir, 'criu'));
  t.is(await locateCriu(undefined, dir), criu);
  t.is(await locateCriu('', dir), criu);
});

test('without criu on PATH, the prefix of scripts/install-criu.sh comes before the system directories', async (t) => {
  const dir = await tempDir(t, 'criu-bin-');
  const prefixCriu = join(PREFIX_CRIU_DIR, 'criu');
  const found = await locateCriu(undefined, dir).catch(() => undefined);
  if (existsSync(prefixCriu)) t.is(found, prefixCriu);
  else t.false(found?.startsWith(PREFIX_CRIU_DIR) ?? false);
});

test('a directory named like the binary is not an executable', async (t) => {
  const dir = await tempDir(t);
  await mkdir(join(dir, 'criu'));
  await t.throwsAsync(locateCriu(join(dir, 'criu'), ''), { instanceOf: CriuNotFoundError });
  // On PATH the directory is passed over (the system directories come after PATH).
  const found = await locateCriu(undefined, dir).catch(() => undefined);
  t.not(found, join(dir, 'criu'));
});
