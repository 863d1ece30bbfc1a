/** replaceFile: the new bytes take the old file's place whole, with its mode; nothing is left beside it. */
import test from 'ava';
import { chmod, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { replaceFile } from '../../src/system/files.js';
import { tempDir } from '../runtime/fixtures.js';

test('replaceFile keeps the replaced file’s mode and leaves nothing beside it', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'inventory.img');
  await writeFile(file, 'old');
  await chmod(file, 0o640);
  await replaceFile(file, Buffer.from('new'));
  t.is(await readFile(file, 'utf8'), 'new');
  t.is((await stat(file)).mode & 0o777, 0o640);
  t.deepEqual(await readdir(dir), ['inventory.img']);
  // A new file is made too.
  await replaceFile(path.join(dir, 'fresh'), Buffer.from('x'));
  t.is(await readFile(path.join(dir, 'fresh'), 'utf8'), 'x');
});

test('replaceFile that cannot rename leaves the old file and no stray', async (t) => {
  const dir = await tempDir(t);
  // A directory where the file should be: the rename fails.
  const target = path.join(dir, 'busy');
  await mkdir(target);
  await writeFile(path.join(target, 'inside'), 'kept');
  await t.throwsAsync(replaceFile(target, Buffer.from('new')));
  t.deepEqual(await readdir(dir), ['busy']);
  t.is(await readFile(path.join(target, 'inside'), 'utf8'), 'kept');
});
