/**
 * migrate's refusals, with the fake runtime: each before anything stops, and before any
 * connection is made (the destination address is one nothing listens on).
 */
import 'reflect-metadata';
import test from 'ava';
import { runDetached } from '../../../src/runtime/run.js';
import { migrate } from '../../../src/runtime/migration/migrate.js';
import { fakeRuntime, type FakeRuntime } from '../../helpers/fake-runtime.js';

const tls = { cert: '/nonexistent/cert.pem', key: '/nonexistent/key.pem', ca: '/nonexistent/ca.pem' };
const to = { host: '127.0.0.1', port: 9 };

async function running(t: Parameters<typeof fakeRuntime>[0]): Promise<FakeRuntime> {
  const runtime = await fakeRuntime(t);
  await runDetached(runtime.context, { id: 'db', bundle: runtime.bundleDir });
  const init = runtime.fakes.processes.spawn({ comm: 'postgres' });
  const { store } = runtime.context;
  await store.withLock('db', async () => store.commit(await store.load('db'), { kind: 'started', init: { pid: init.pid, startTime: init.startTime } }));
  return runtime;
}

test('pre-copy without the kernel memory tracking is refused before anything stops', async (t) => {
  const runtime = await running(t);
  runtime.fakes.criu.setFeatures({ mem_track: false, lazy_pages: true });
  const error = await t.throwsAsync(migrate(runtime.context, { id: 'db', to, tls, preDump: 3 }));
  t.is((error as { code?: string }).code, 'MIGRATION_PRE_COPY_UNAVAILABLE');
  t.regex(error?.message ?? '', /soft-dirty/);
  t.deepEqual(runtime.fakes.criu.dumps, []);
  t.is((await runtime.context.store.load('db')).status, 'running');
});

test('pre-copy where the kernel tracks memory is refused too, saying its rounds are not built, before anything stops', async (t) => {
  const runtime = await running(t);
  runtime.fakes.criu.setFeatures({ mem_track: true, lazy_pages: true });
  const error = await t.throwsAsync(migrate(runtime.context, { id: 'db', to, tls, preDump: 3 }));
  t.is((error as { code?: string }).code, 'MIGRATION_PRE_COPY_UNAVAILABLE');
  t.regex(error?.message ?? '', /not built yet/);
  t.deepEqual(runtime.fakes.criu.dumps, []);
  t.is((await runtime.context.store.load('db')).status, 'running');
});

test('post-copy and pre-copy together, a bad number of pre-dumps, and a container that does not run are refused', async (t) => {
  const runtime = await running(t);
  for (const [request, code] of [
    [{ lazy: true, preDump: 2 }, 'USAGE'],
    [{ preDump: 99 }, 'USAGE'],
  ] as const) {
    const error = await t.throwsAsync(migrate(runtime.context, { id: 'db', to, tls, ...request }));
    t.is((error as { code?: string }).code, code);
  }
  const missing = await t.throwsAsync(migrate(runtime.context, { id: 'nothing', to, tls }));
  t.is((missing as { code?: string }).code, 'CONTAINER_NOT_FOUND');
  t.deepEqual(runtime.fakes.criu.dumps, []);
});
