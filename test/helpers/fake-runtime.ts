/**
 * A runtime for unit tests: the real composition root on a temporary state and checkpoint root,
 * with every service that reaches the system replaced by a recording fake (test/helpers/fakes.ts)
 * in a child container. The stores, the verbs and the monitor's code are the real ones; they
 * write plain files under the temporary directory, so nothing needs root.
 */
import 'reflect-metadata';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { composeRuntime, resolveContext } from '../../src/runtime/composition-root.js';
import { fixturePath } from './fixture-path.js';
import { resolveConfig, type LogLevel, type RuntimeConfig } from '../../src/runtime/config.js';
import { CONTAINER_STORE, MONITOR_CLIENT, REAPER, type RuntimeContext } from '../../src/runtime/context.js';
import { CGROUP_SERVICE } from '../../src/runtime/cgroups.js';
import { OCI_RUNTIME } from '../../src/runtime/oci-runtime.js';
import { loadBundle, type Bundle } from '../../src/runtime/oci/index.js';
import { writeEffectiveBundle } from '../../src/runtime/effective-bundle.js';
import { newRecord, type ContainerRecord, type CreatingRecord, type RunningRecord } from '../../src/runtime/state/record.js';
import { CRIU_SERVICE } from '../../src/criu/service.js';
import { MOUNT_SERVICE } from '../../src/rootfs/mount-service.js';
import { PROCESS_SERVICE } from '../../src/system/processes.js';
import { FakeCgroups, FakeCriu, FakeMonitorClient, FakeMounts, FakeOciRuntime, FakeProcesses, FakeReaper } from './fakes.js';

export interface Fakes {
  readonly criu: FakeCriu;
  readonly processes: FakeProcesses;
  readonly mounts: FakeMounts;
  readonly cgroups: FakeCgroups;
  readonly reaper: FakeReaper;
  readonly ociRuntime: FakeOciRuntime;
  readonly monitors: FakeMonitorClient;
}

export interface FakeRuntime {
  readonly context: RuntimeContext;
  readonly fakes: Fakes;
  readonly config: RuntimeConfig;
  /** The temporary directory holding everything below. */
  readonly root: string;
  /** A bundle (runc's default spec) whose rootfs holds etc/marker. */
  readonly bundleDir: string;
  /** What the runtime logged (config.logFile). */
  log(): Promise<string>;
}

export interface FakeRuntimeOptions {
  /** Changes the bundle's config.json before anything uses it. */
  readonly editSpec?: (spec: Record<string, unknown>) => void;
  /** 'error' unless a test reads what is logged below it. */
  readonly logLevel?: LogLevel;
  /** Roots of another runtime's instead of its own (two "hosts" sharing one). */
  readonly roots?: Partial<Pick<RuntimeConfig, 'stateRoot' | 'checkpointRoot' | 'imageRoot'>>;
}

interface Teardown {
  teardown(fn: () => Promise<void>): void;
}

export { fixturePath };

export const MARKER_TEXT = 'written before the snapshot\n';

export async function fakeRuntime(t: Teardown, options: FakeRuntimeOptions = {}): Promise<FakeRuntime> {
  // Short: the monitor's control socket lives below it, and a socket path has ~107 bytes.
  const root = await mkdtemp(path.join(tmpdir(), 'rt-'));
  const bundleDir = path.join(root, 'bundle');
  await mkdir(path.join(bundleDir, 'rootfs', 'etc'), { recursive: true });
  await writeFile(path.join(bundleDir, 'rootfs', 'etc', 'marker'), MARKER_TEXT);
  const spec = JSON.parse(readFileSync(fixturePath('oci', 'runc-spec.json'), 'utf8')) as Record<string, unknown> & { process: Record<string, unknown> };
  spec.process.terminal = false;
  options.editSpec?.(spec);
  await writeFile(path.join(bundleDir, 'config.json'), JSON.stringify(spec, null, 2));

  const config = resolveConfig({
    environment: {},
    overrides: {
      stateRoot: path.join(root, 'state'),
      checkpointRoot: path.join(root, 'checkpoints'),
      imageRoot: path.join(root, 'images'),
      ...options.roots,
      logLevel: options.logLevel ?? 'error',
      // The log goes to a file of the test's own (tests read it), not to the test's output.
      logFile: path.join(root, 'runtime.log'),
    },
  });
  const processes = new FakeProcesses();
  const fakes: Fakes = {
    criu: new FakeCriu(processes, config.minCriuVersion),
    processes,
    mounts: new FakeMounts(),
    cgroups: new FakeCgroups(processes),
    reaper: new FakeReaper(processes),
    ociRuntime: new FakeOciRuntime(processes),
    monitors: new FakeMonitorClient(),
  };
  const services = composeRuntime(config);
  const child = services.createChildContainer();
  child.register(CRIU_SERVICE, { useValue: fakes.criu });
  child.register(PROCESS_SERVICE, { useValue: fakes.processes });
  child.register(MOUNT_SERVICE, { useValue: fakes.mounts });
  child.register(CGROUP_SERVICE, { useValue: fakes.cgroups });
  child.register(REAPER, { useValue: fakes.reaper });
  child.register(OCI_RUNTIME, { useValue: fakes.ociRuntime });
  child.register(MONITOR_CLIENT, { useValue: fakes.monitors });
  const context = resolveContext(child);
  fakes.monitors.context = context;

  t.teardown(async () => {
    // Every fake process ends, so whatever waits for one (a supervisor, a monitor) finishes and
    // writes what it writes before the directory goes.
    processes.killAll();
    await Promise.race([Promise.allSettled(fakes.monitors.monitors), sleep(5000)]);
    await sleep(100);
    await rm(root, { recursive: true, force: true });
  });
  // The store really is the one the composition root made, on the temporary root.
  if (child.resolve(CONTAINER_STORE) !== context.store || context.store.root !== config.stateRoot) throw new Error('the store was not composed');
  return { context, fakes, config, root, bundleDir, log: () => readFile(config.logFile, 'utf8').catch(() => '') };
}

/** A container recorded as `run` records it before its init starts: the effective bundle written, status creating. */
export async function creatingContainer(runtime: FakeRuntime, id = 'web1'): Promise<CreatingRecord> {
  const { store, logger, config } = runtime.context;
  const bundle: Bundle = await loadBundle(runtime.bundleDir);
  const paths = await store.reserve(id);
  const effective = await writeEffectiveBundle(paths.effectiveBundle, bundle, id, logger);
  const record = newRecord({
    id,
    status: 'creating',
    bundle: bundle.path,
    rootfs: bundle.rootfs,
    cgroupPath: effective.cgroupPath,
    ociRuntime: config.ociRuntime,
    annotations: bundle.spec.annotations ?? {},
    logPath: paths.containerLog,
  }) as CreatingRecord;
  await store.create(record);
  return record;
}

/**
 * A running container: created, then its init (a fake process in the container's cgroup)
 * recorded through the 'started' event, with this runtime as its monitor when asked.
 */
export async function runningContainer(runtime: FakeRuntime, id = 'web1', options: { readonly monitor?: boolean } = {}): Promise<RunningRecord> {
  const { store } = runtime.context;
  const { processes } = runtime.fakes;
  const created = await creatingContainer(runtime, id);
  const init = processes.spawn({ comm: 'sh', cgroup: created.cgroupPath });
  return store.withLock(id, async () => {
    const record = await store.load(id);
    const monitor = options.monitor ? await processes.self() : undefined;
    return (await store.commit(record, { kind: 'started', init: processes.identity(init.pid), ...(monitor ? { monitor } : {}) })) as RunningRecord;
  });
}

/** Polls until the condition holds (the background work of a monitor or a resetter). */
export async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

export async function load(runtime: FakeRuntime, id = 'web1'): Promise<ContainerRecord> {
  return runtime.context.store.load(id);
}
