/**
 * Starting a monitor that cannot be started: Node tells a spawn that failed (no such program,
 * no process to be had) by an 'error' event alone, which nobody heard before and which ended the
 * launching process (a CLI, or a test worker running the library).
 */
import test from 'ava';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { resolveConfig } from '../../../src/runtime/config.js';
import { MonitorStartError, ProcessMonitorClient } from '../../../src/runtime/monitor/launch.js';
import { ContainerStore } from '../../../src/runtime/state/store.js';
import { tempDir } from '../fixtures.js';

test.serial('a monitor whose program cannot be started is MonitorStartError naming the cause, and the caller lives on', async (t) => {
  const store = new ContainerStore(path.join(await tempDir(t, 'launch-'), 'state'));
  await mkdir(store.paths('web1').dir, { recursive: true });
  const client = new ProcessMonitorClient(resolveConfig(), store);
  const execPath = process.execPath;
  // The monitor runs as `node <its script>`: a node that is not there fails the spawn (ENOENT) the way
  // no process to be had (EAGAIN) does, by an 'error' event alone.
  process.execPath = path.join(store.root, 'no-such-node');
  try {
    const error = await t.throwsAsync(client.launch({ kind: 'run', id: 'web1' }), { instanceOf: MonitorStartError });
    t.regex(error!.message, /^the monitor of web1 could not be started: spawn .*no-such-node ENOENT$/);
  } finally {
    process.execPath = execPath;
  }
});
