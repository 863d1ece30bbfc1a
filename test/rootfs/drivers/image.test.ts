/**
 * The image driver's plan, from a container's image.json in the store (written by hand here):
 * an overlay of the image's layers, top first, under the container's own upper layer; the same
 * mount made from the store's root with relative paths when the absolute ones pass a page.
 */
import test from 'ava';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ImageDriver } from '../../../src/rootfs/drivers/image.js';
import { InvalidLayerIdError, LayerNotFoundError, MountDataTooLongError } from '../../../src/rootfs/errors.js';
import { fakeDeps } from '../helpers/fakes.js';
import { tempDir } from '../../runtime/fixtures.js';

async function place(root: string, id: string, lowers: readonly string[]): Promise<string> {
  const dir = path.join(root, 'containers', id);
  await mkdir(dir, { recursive: true });
  const bundle = path.join(dir, 'bundle');
  const value = {
    id,
    dir,
    manifestDigest: 'sha256:' + 'a'.repeat(64),
    reference: 'oci:/x:1',
    lowers,
    upper: `${dir}/upper`,
    work: `${dir}/work`,
    bundle,
    rootfs: `${bundle}/rootfs`,
  };
  await writeFile(path.join(dir, 'image.json'), JSON.stringify(value));
  return dir;
}

const layer = (root: string, n: number) => path.join(root, 'layers', 'sha256', n.toString(16).padStart(64, '0'), 'diff');

test("an overlay of the image's layers, top first, with the container's upper and work, on bundle/rootfs", async (t) => {
  const root = await tempDir(t);
  const dir = await place(root, 'web', [layer(root, 3), layer(root, 2), layer(root, 1)]);
  const plan = await new ImageDriver(fakeDeps()).plan(root, 'web');
  t.deepEqual(plan, {
    driver: 'image',
    type: 'overlay',
    source: 'overlay',
    target: `${dir}/bundle/rootfs`,
    options: [`lowerdir=${layer(root, 3)}:${layer(root, 2)}:${layer(root, 1)}`, `upperdir=${dir}/upper`, `workdir=${dir}/work`],
    steps: [],
    rootfs: `${dir}/bundle/rootfs`,
  });
});

test("past a page of mount data, the same mount from the store's root with relative paths; past that, a clear error", async (t) => {
  const root = await tempDir(t);
  const many = Array.from({ length: 45 }, (_, i) => layer(root, 45 - i));
  const dir = await place(root, 'many', many);
  const plan = await new ImageDriver(fakeDeps()).plan(root, 'many');
  t.is(plan.cwd, root);
  t.deepEqual(plan.options, [
    `lowerdir=${many.map((l) => path.relative(root, l)).join(':')}`,
    `upperdir=${path.relative(root, `${dir}/upper`)}`,
    `workdir=${path.relative(root, `${dir}/work`)}`,
  ]);
  await place(
    root,
    'too-many',
    Array.from({ length: 60 }, (_, i) => layer(root, i)),
  );
  await t.throwsAsync(new ImageDriver(fakeDeps()).plan(root, 'too-many'), { instanceOf: MountDataTooLongError });
});

test('a container the store does not hold, or an id that is not one, is refused naming it', async (t) => {
  const root = await tempDir(t);
  const missing = await t.throwsAsync(new ImageDriver(fakeDeps()).plan(root, 'nothing'), { instanceOf: LayerNotFoundError });
  t.regex(missing?.message ?? '', /nothing/);
  t.regex(missing?.hint ?? '', /--image-root/);
  await t.throwsAsync(new ImageDriver(fakeDeps()).plan(root, '../escape'), { instanceOf: InvalidLayerIdError });
});
