/**
 * The README's example of a test suite that resets its container before every test, as a real
 * ava test. (The README shows it with `import { Runtime } from 'runtime'` and a fixed bundle.)
 */
import test from 'ava';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Runtime, type PristineContainer } from '../../src/index.js';
import { e2e, makeBundle, waitFor } from './helpers.js';

const serial = e2e(test);
const root = process.geteuid?.() === 0;
let dir: string;
let rootfs: string;

// README example starts here.
let app: PristineContainer;

test.before(async () => {
  if (!root) return;
  dir = await mkdtemp(path.join(os.tmpdir(), 'runtime-example-'));
  const bundle = await makeBundle(path.join(dir, 'app'), ['sh', '-c', 'echo 0 >/tmp/visits; while true; do sleep 1; done']);
  rootfs = path.join(bundle, 'rootfs');
  const runtime = Runtime.create({ stateRoot: path.join(dir, 'state'), checkpointRoot: path.join(dir, 'checkpoints') });
  app = await runtime.pristine({
    id: 'app',
    bundle,
    // The snapshot is taken once the application has set itself up.
    ready: () => waitFor('the app to start', () => readFile(path.join(rootfs, 'tmp/visits'), 'utf8')),
  });
});

test.beforeEach(async () => {
  if (root) await app.reset();
});

test.after.always(async () => {
  await app?.dispose();
  if (dir) await rm(dir, { recursive: true, force: true });
});

serial('a test changes the container freely', async (t) => {
  await writeFile(path.join(rootfs, 'tmp/visits'), '41\n');
  t.is(await readFile(path.join(rootfs, 'tmp/visits'), 'utf8'), '41\n');
});

serial('and the next test finds it as the snapshot left it', async (t) => {
  t.is(await readFile(path.join(rootfs, 'tmp/visits'), 'utf8'), '0\n');
  t.regex(await readFile(`/proc/${await app.pid()}/cmdline`, 'utf8'), /^sh\0-c\0/);
});
// README example ends here.
