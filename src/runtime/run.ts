/**
 * `runtime run [-d] --bundle DIR <id>`: validates the bundle, records the container, and has the
 * OCI runtime start it with this runtime (a monitor, or the CLI in the foreground) as the parent.
 *
 *   runDetached / runForeground   the verb: record the container, then start it in a monitor
 *                                 process or in this one
 *   startContainer                what the init's parent-to-be runs: the OCI runtime forks the
 *                                 init and exits; the init is reparented to us (subreaper)
 */
import { writeFile } from 'node:fs/promises';
import type { RuntimeContext } from './context.js';
import { validateId } from './id.js';
import { newRecord } from './state/record.js';
import { assertCanHappen } from './state/status.js';
import { loadBundle, specHasNamespace, type Spec } from './oci/index.js';
import { writeEffectiveBundle } from './effective-bundle.js';
import { requireRoot } from './privileges.js';
import { InitEndedError, UsageError, describeError } from './errors.js';
import { runInForeground, type ForegroundContainer, type ForegroundStdio } from './monitor/foreground.js';
import type { Supervisor } from './monitor/supervisor.js';
import type { RunJob } from './monitor/protocol.js';
import { mountStorage, planStorage, unmountStorage, type StorageSpec } from './storage.js';
import { checkPublished, type PublishedPort } from './ports.js';
import { requireUnoccupied } from './cgroups.js';

export interface RunOptions {
  readonly id: string;
  /** The bundle directory (config.json and the rootfs). */
  readonly bundle: string;
  /** Write the init's pid to this file. */
  readonly pidFile?: string;
  /** Take the rootfs from a storage driver's layout instead of the bundle's root.path. */
  readonly storage?: StorageSpec;
  /** Host ports to forward into the container (`-p`), across checkpoints, restores and resets. */
  readonly ports?: readonly PublishedPort[];
}

/** Starts the container under a detached monitor; returns the init's pid. */
export async function runDetached(context: RuntimeContext, options: RunOptions): Promise<number> {
  const job = await prepareRun(context, options);
  try {
    return await context.monitors.launch(job);
  } catch (error) {
    await abandonRun(context, job.id);
    throw error;
  }
}

/** Starts the container with this process as its parent. */
export async function runForeground(context: RuntimeContext, options: RunOptions, stdio: ForegroundStdio): Promise<ForegroundContainer> {
  const job = await prepareRun(context, options);
  try {
    return await runInForeground(context, job.id, (supervisor) => startContainer(context, supervisor, job), stdio);
  } catch (error) {
    await abandonRun(context, job.id);
    throw error;
  }
}

/**
 * What a run that did not start leaves goes: the rootfs it mounted from a storage driver's
 * layout (a later run would find it mounted and not count it as its own), then the state.
 */
async function abandonRun(context: RuntimeContext, id: string): Promise<void> {
  const record = await context.store.load(id).catch(() => undefined);
  if (record?.storage && record.rootfsMountedByRuntime) {
    await unmountStorage(context, record.storage).catch((error: unknown) =>
      context.logger.warn('could not unmount the rootfs of a run that failed', { id, error: describeError(error) }),
    );
  }
  await context.store.remove(id);
}

async function prepareRun(context: RuntimeContext, options: RunOptions): Promise<RunJob> {
  const id = validateId(options.id);
  requireRoot(context.processes, 'runtime run');
  const ports = checkPublished(options.ports ?? []);
  const loaded = await loadBundle(options.bundle, { requireRootfs: options.storage === undefined });
  if (ports.length > 0) requireOwnNetwork(loaded.spec, id);
  const planned = options.storage ? await planStorage(context, options.storage) : undefined;
  const bundle = planned ? { ...loaded, rootfs: planned.plan.rootfs } : loaded;
  const paths = await context.store.reserve(id);
  let mounted = false;
  try {
    if (planned) mounted = await mountStorage(context, planned);
    const effective = await writeEffectiveBundle(paths.effectiveBundle, bundle, id, context.logger, context.config.cgroupParent);
    await requireUnoccupied(context.cgroups, effective.cgroupPath);
    await context.store.create(
      newRecord(
        {
          id,
          status: 'creating',
          bundle: bundle.path,
          rootfs: bundle.rootfs,
          cgroupPath: effective.cgroupPath,
          ociRuntime: context.config.ociRuntime,
          annotations: bundle.spec.annotations ?? {},
          logPath: paths.containerLog,
        },
        {
          ...(options.storage ? { storage: options.storage, rootfsMountedByRuntime: mounted } : {}),
          ...(ports.length > 0 ? { ports } : {}),
          ...(context.config.criu ? { criu: context.config.criu } : {}),
        },
      ),
    );
  } catch (error) {
    if (mounted && options.storage) await unmountStorage(context, options.storage);
    await context.store.remove(id);
    throw error;
  }
  return {
    kind: 'run',
    id,
    ...(options.pidFile ? { pidFile: options.pidFile } : {}),
    ...(context.config.criu ? { criuBinary: context.config.criu } : {}),
  };
}

/**
 * Starts the init through the OCI runtime with the supervisor's stdio, this process as its
 * parent, and records it running.
 */
export async function startContainer(context: RuntimeContext, supervisor: Supervisor, job: RunJob): Promise<number> {
  const { store, ociRuntime, processes } = context;
  const paths = store.paths(job.id);
  const pid = await store.withLock(job.id, async () => {
    const record = await store.load(job.id);
    assertCanHappen(record, 'started');
    const pid = await ociRuntime.start({
      id: job.id,
      bundle: paths.effectiveBundle,
      root: paths.ociRoot,
      logPath: paths.ociLog,
      stdio: supervisor.childStdio,
    });
    const init = await processes.identify(pid);
    if (!init) throw new InitEndedError(job.id, pid, 'started', paths.containerLog);
    // The OCI runtime's own record is not needed past start: this runtime owns the container now.
    await ociRuntime.forget({ id: job.id, root: paths.ociRoot });
    const monitor = supervisor.foreground ? undefined : await processes.self();
    await store.commit(record, { kind: 'started', init, ...(monitor ? { monitor } : {}) });
    return pid;
  });
  if (job.pidFile) await writeFile(job.pidFile, String(pid));
  return pid;
}

/** A published port is forwarded into the container's own network namespace: it needs one. */
export function requireOwnNetwork(spec: Spec, id: string): void {
  const network = specHasNamespace(spec, 'network');
  if (!network || network.path) {
    throw new UsageError(
      `container ${id} has no network namespace of its own, so -p has nothing to forward to`,
      'add {"type": "network"} (without a path) to linux.namespaces in config.json',
    );
  }
}
