/**
 * `runtime run [-d] --bundle DIR <id>` (or `--image REF`: from-image.ts makes the bundle):
 * validates the bundle, records the container, and has the OCI runtime start it with this
 * runtime (a monitor, or the CLI in the foreground) as the parent.
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
import { loadBundle, specHasNamespace, type Bundle, type Spec } from './oci/index.js';
import type { ImageRunOptions } from './from-image.js';
import { writeEffectiveBundle } from './effective-bundle.js';
import { requireRoot } from './privileges.js';
import { InitEndedError, UsageError, describeError } from './errors.js';
import { runInForeground, type ForegroundContainer, type ForegroundStdio } from './monitor/foreground.js';
import type { Supervisor } from './monitor/supervisor.js';
import type { RunJob } from './monitor/protocol.js';
import { mountStorage, planStorage, removeImageContainer, unmountStorage, type StorageSpec } from './storage.js';
import { checkPublished, type PublishedPort } from './ports.js';
import { requireUnoccupied } from './cgroups.js';

export interface RunOptions {
  readonly id: string;
  /** The bundle directory (config.json and the rootfs). */
  readonly bundle?: string;
  /** An image to make the container from, in place of a bundle (from-image.ts). */
  readonly image?: ImageRunOptions;
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
  if (record?.storage?.driver === 'image') await removeImageContainer(context, id, record.storage.storageRoot);
  await context.store.remove(id);
}

async function prepareRun(context: RuntimeContext, options: RunOptions): Promise<RunJob> {
  const id = validateId(options.id);
  requireRoot(context.processes, 'runtime run');
  const ports = checkPublished(options.ports ?? []);
  const source = await checkSource(options);
  // A bundle is checked before anything is made; an image is read once the id is reserved.
  const loaded = source.kind === 'bundle' ? await loadBundle(source.bundle, { requireRootfs: options.storage === undefined }) : undefined;
  if (loaded && ports.length > 0) requireOwnNetwork(loaded.spec, id);
  const planned = loaded && options.storage ? await planStorage(context, options.storage) : undefined;
  const paths = await context.store.reserve(id);
  let mounted = false;
  let storage = options.storage;
  try {
    let bundle: Bundle;
    if (source.kind === 'image') {
      // Loaded only for an image: the readers and their schemas are of no use to a bundle's run.
      const { bundleFromImage } = await import('./from-image.js');
      const made = await bundleFromImage(context, id, source.image);
      mounted = true;
      storage = made.storage;
      bundle = { ...(await loadBundle(made.bundle, { requireRootfs: false })), rootfs: made.rootfs };
      if (ports.length > 0) requireOwnNetwork(bundle.spec, id);
      noteExposedPorts(context, id, made.exposedPorts, ports);
    } else {
      if (planned) mounted = await mountStorage(context, planned);
      bundle = planned ? { ...loaded!, rootfs: planned.plan.rootfs } : loaded!;
    }
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
          ...(storage ? { storage, rootfsMountedByRuntime: mounted } : {}),
          ...(ports.length > 0 ? { ports } : {}),
          ...(context.config.criu ? { criu: context.config.criu } : {}),
        },
      ),
    );
  } catch (error) {
    if (mounted && storage) await unmountStorage(context, storage);
    if (storage?.driver === 'image') await removeImageContainer(context, id, storage.storageRoot);
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

/** Where the rootfs and config.json come from: a bundle, or an image (never both). */
async function checkSource(options: RunOptions): Promise<{ kind: 'bundle'; bundle: string } | { kind: 'image'; image: ImageRunOptions }> {
  if (options.image) {
    if (options.bundle !== undefined || options.storage !== undefined) {
      throw new UsageError('an image is a rootfs and a config.json of its own: --image goes without --bundle and the storage flags');
    }
    return { kind: 'image', image: options.image };
  }
  if (options.bundle === undefined) throw new UsageError('a container needs a bundle or an image', 'give --bundle DIR, or --image oci:DIR[:TAG]');
  if (options.storage?.driver === 'image') {
    // Another container's writable layer must never become this one's rootfs.
    throw new UsageError(
      'the image driver holds containers made by --image, one writable layer each',
      'run --image REF to make a container from an image',
    );
  }
  return { kind: 'bundle', bundle: options.bundle };
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

/**
 * The ports an image exposes are what -p usually forwards to: said when none is published, and a
 * published port the image does not expose is warned of (it may be a typo; it is forwarded).
 */
function noteExposedPorts(context: RuntimeContext, id: string, exposed: readonly string[], ports: readonly PublishedPort[]): void {
  const tcp = exposed.filter((p) => p.endsWith('/tcp')).map((p) => Number(p.split('/')[0]));
  if (ports.length === 0 && tcp.length > 0) {
    context.logger.info(`the image exposes ${exposed.join(', ')}; publish with -p HOST_PORT:${tcp[0]}`, { id });
  }
  for (const port of ports) {
    if (exposed.length > 0 && !tcp.includes(port.containerPort)) {
      context.logger.warn(`-p forwards to port ${port.containerPort}, which the image does not expose (it exposes ${exposed.join(', ')})`, { id });
    }
  }
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
