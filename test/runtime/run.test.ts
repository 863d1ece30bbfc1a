/**
 * `run` with hostile or mistaken cgroup paths, with the fake runtime: linux.cgroupsPath names a
 * cgroup below the hierarchies' root, cleaned as runc cleans it, never the root itself, and never
 * a cgroup that already holds other processes (they would be killed with the container).
 */
import 'reflect-metadata';
import test from 'ava';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { runDetached } from '../../src/runtime/run.js';
import { fakeRuntime, type FakeRuntime } from '../helpers/fake-runtime.js';

async function withCgroupsPath(t: Parameters<typeof fakeRuntime>[0], cgroupsPath: string): Promise<FakeRuntime> {
  return fakeRuntime(t, { editSpec: (spec) => ((spec.linux as Record<string, unknown>).cgroupsPath = cgroupsPath) });
}

for (const hostile of ['/', '/../..', '//', '/./']) {
  test(`cgroupsPath ${JSON.stringify(hostile)}, the root of the hierarchies, is refused before anything is recorded`, async (t) => {
    const runtime = await withCgroupsPath(t, hostile);
    const error = await t.throwsAsync(runDetached(runtime.context, { id: 'web1', bundle: runtime.bundleDir }));
    t.is((error as { code?: string }).code, 'INVALID_CGROUP_PATH');
    t.regex(error.message, /is the root of the cgroup hierarchies, where every process of the host is/);
    t.deepEqual(runtime.fakes.monitors.launched, []);
    t.deepEqual(await runtime.context.store.ids(), []);
  });
}

test('a cgroup that already holds a process is refused, and the process is left alone', async (t) => {
  const runtime = await withCgroupsPath(t, '/demo');
  const other = runtime.fakes.processes.spawn({ comm: 'unrelated', cgroup: '/demo/other' });
  const error = await t.throwsAsync(runDetached(runtime.context, { id: 'web1', bundle: runtime.bundleDir }));
  t.is((error as { code?: string }).code, 'CGROUP_IN_USE');
  t.is(error.message, `cgroup /demo already holds 1 process(es) (${other.pid}) that are not the container's`);
  t.true(runtime.fakes.processes.alive(other.pid));
  t.deepEqual(runtime.fakes.processes.signals, []);
  t.deepEqual(runtime.fakes.monitors.launched, []);
  t.deepEqual(await runtime.context.store.ids(), []);
});

for (const [given, cleaned] of [
  ['/../../../etc', '/etc'],
  ['/sys/fs/cgroup/../../x', '/sys/x'],
  ['/demo//db/./', '/demo/db'],
  ['tests/db', '/runtime/tests/db'],
  ['../../../etc', '/runtime/etc'],
] as const) {
  test(`cgroupsPath ${JSON.stringify(given)} is cleaned to ${cleaned}, the path runc is given and the runtime uses`, async (t) => {
    const runtime = await withCgroupsPath(t, given);
    await runDetached(runtime.context, { id: 'web1', bundle: runtime.bundleDir });
    const record = await runtime.context.store.load('web1');
    t.is(record.cgroupPath, cleaned);
    const effective = JSON.parse(await readFile(path.join(runtime.context.store.paths('web1').effectiveBundle, 'config.json'), 'utf8')) as {
      linux: { cgroupsPath: string };
    };
    t.is(effective.linux.cgroupsPath, cleaned);
  });
}

test("a container comes from a bundle or an image, never both, and never from another container's place in the image store", async (t) => {
  const runtime = await fakeRuntime(t);
  const image = { reference: 'oci:/images/app:1' };
  for (const options of [
    { id: 'both', bundle: runtime.bundleDir, image },
    { id: 'stolen', bundle: runtime.bundleDir, storage: { driver: 'image', storageRoot: '/var/lib/runtime/images', layer: 'other' } },
    { id: 'neither' },
  ]) {
    const error = await t.throwsAsync(runDetached(runtime.context, options));
    t.is((error as { code?: string }).code, 'USAGE', options.id);
  }
  t.deepEqual(runtime.fakes.monitors.launched, []);
  t.deepEqual(await runtime.context.store.ids(), []);
});
