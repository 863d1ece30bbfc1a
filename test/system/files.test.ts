/**
 * replaceFile: the new bytes take the old file's place whole, with its mode; nothing is left
 * beside it. canonicalPath: a path as the mount table names it.
 */
import test from 'ava';
import { chmod, mkdir, readdir, readFile, realpath, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { canonicalPath, replaceFile } from '../../src/system/files.js';
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

test('canonicalPath: links resolved, as the mount table names paths; what does not exist yet, below its real parent', async (t) => {
  const dir = await realpath(await tempDir(t));
  await mkdir(path.join(dir, 'real', 'below'), { recursive: true });
  await symlink(path.join(dir, 'real'), path.join(dir, 'link'));
  await symlink('missing-target', path.join(dir, 'dangling'));
  t.is(canonicalPath(path.join(dir, 'link', 'below')), path.join(dir, 'real', 'below'));
  t.is(canonicalPath(path.join(dir, 'link', 'new', 'deeper')), path.join(dir, 'real', 'new', 'deeper'));
  t.is(canonicalPath(path.join(dir, 'dangling', 'x')), path.join(dir, 'missing-target', 'x'));
  t.is(canonicalPath(path.join(dir, 'link', '..', 'real')), path.join(dir, 'real'));
});
