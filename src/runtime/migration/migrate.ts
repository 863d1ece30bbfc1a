/**
 * `runtime migrate <id> --to ADDR:PORT`: moves a running container to the runtime receiving on
 * another host (receive.ts), over two channels that both require a certificate the CA signed:
 * the command channel (channel.ts, mutual TLS, a typed protocol) and CRIU's page server (CRIU's
 * own TLS). The shape is P.Haul's and LXD's, with CRIU driven through its RPC on both ends:
 *
 *   checks         hello/welcome (protocol and CRIU versions: the destination's CRIU at least
 *                  the source's), then the offer: the container, the mode, this host's CPU as
 *                  CRIU describes it (CPUINFO_DUMP; the destination runs CPUINFO_CHECK), the
 *                  storage; the destination checks and answers with its page server's port
 *   stop-and-copy  (default) CRIU dumps the memory straight into the destination's page server;
 *                  at its post-dump notification, while the tree is still frozen here, the other
 *                  images and the rootfs go over the command channel and the destination
 *                  restores; only once it says the container runs does CRIU end the tree here.
 *                  Any failure before that (a refusal, a cut link, a failed restore) makes CRIU
 *                  resume the tree: the container runs on here, as it was
 *   post-copy      (--lazy) the dump leaves the memory in place and CRIU serves it from this host's
 *                  page server: the destination restores at once and its lazy-pages daemon pulls
 *                  the pages; CRIU ends the tree here when every page has moved
 *   pre-copy       (--pre-dump N) pre-dumps while the container runs, each sending into a page
 *                  server of the destination's only the pages written since the round before
 *                  (CRIU's memory tracking, the round before as its parent), until P.Haul's rules
 *                  (pre-copy.ts) say stop; then the stop-and-copy dump, which sends only what the
 *                  last round left. Needs the kernel's soft-dirty tracking: where CRIU reports
 *                  none it is refused before anything stops
 *
 * A migration that succeeds leaves nothing of the container here (delete), one that fails
 * leaves it running. The destination holds what it restored stopped until this host's word
 * (protocol.ts): `done`, or `abort` (the copy goes), said again over new connections when the
 * channel broke; when something fails late, the word follows where the tree is: back here
 * (CRIU resumed it) means abort, gone (every page had moved) means done.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { once } from 'node:events';
import net from 'node:net';
import path from 'node:path';
import type { RuntimeContext } from '../context.js';
import type { Logger } from '../logger.js';
import { validateId } from '../id.js';
import type { ProcessIdentity } from '../state/record.js';
import { CAP_SYS_RESOURCE, hasEffectiveCapability, requireRoot } from '../privileges.js';
import { RuntimeError, UsageError, describeError } from '../errors.js';
import { checkpoint, ContainerNotRunningError, migrationImagePath } from '../checkpoint.js';
import { deleteContainer } from '../delete.js';
import { connectChannel, type MessageChannel } from './channel.js';
import { expect, MigrationPeerError, PROTOCOL_VERSION, type CriuVersion, type MigrationMode } from './protocol.js';
import { formatVersion, isAtLeast } from '../../criu/version.js';
import type { TlsFiles } from '../../criu/options.js';
import { markRoots } from './shared-roots.js';
import { planPreDumps, preCopyRounds, type PreCopyResult } from './pre-copy.js';
import { readDumpStatistics } from '../../criu/images/stats.js';
import { keepAlive, silent, tcpSockets, type TcpSocket } from '../../system/tcp-sockets.js';
import { liftNetworkLocks } from '../../criu/network-lock.js';
import { withTimeout } from '../../system/timeout.js';
import { freePort } from '../../system/free-port.js';
import { ImageStore } from '../../rootfs/image/store.js';
import { LayerNotFoundError } from '../../rootfs/errors.js';

export interface MigrateRequest {
  readonly id: string;
  /** The receiving runtime (`runtime receive --listen`). */
  readonly to: { readonly host: string; readonly port: number };
  readonly tls: TlsFiles;
  /** Post-copy: restore at once on the destination, the memory pulled from here after. */
  readonly lazy?: boolean;
  /** Pre-copy: at most this many pre-dumps while the container runs (needs memory tracking). */
  readonly preDump?: number;
  /** Both hosts see the rootfs at the same path: it is not copied. */
  readonly sharedStorage?: boolean;
  /** Move the container's established TCP connections (CRIU's tcp_established). */
  readonly tcpEstablished?: boolean;
  /** Post-copy: the port this host's page server listens on (default: one the kernel picks). */
  readonly pageServerPort?: number;
  /** How long a step may wait on the other host (default 120 s); past it the migration fails. */
  readonly timeoutMs?: number;
  readonly onProgress?: (message: string) => void;
}

export interface MigrateResult {
  readonly id: string;
  readonly mode: MigrationMode;
  /** Pre-copy: the pages each pre-dump round sent while the container ran. */
  readonly preDumpPages?: readonly number[];
  /** The restored init's pid on the destination. */
  readonly pid: number;
  /** From the dump's start (the tree frozen, about) to the destination's restored init running. */
  readonly downtimeMs: number;
  /** From the first connection to the source letting go. */
  readonly totalMs: number;
  /** Bytes of images and rootfs sent over the command channel (memory goes through the page server). */
  readonly streamedBytes: number;
}

export class MigrationFailedError extends RuntimeError {
  readonly code = 'MIGRATION_FAILED' as const;
  constructor(
    readonly id: string,
    reason: string,
    options: { cause?: unknown; hint?: string } = {},
  ) {
    super(`migration of ${id} failed: ${reason}`, {
      ...options,
      hint: options.hint ?? `the container runs on here as it was (\`runtime state ${id}\`); nothing of it was kept on the destination`,
    });
  }
}

/**
 * CRIU's lazy page server splices pages through a pipe of 819 pages (3,354,624 bytes); beyond
 * fs.pipe-max-size only CAP_SYS_RESOURCE may ask for one, which root lacks on some hosts. The
 * serving would fail once the container is frozen: refused before instead.
 */
const LAZY_PIPE_BYTES = 3_354_624;

export class PipeTooSmallError extends RuntimeError {
  readonly code = 'MIGRATION_PIPE_TOO_SMALL' as const;
  constructor(readonly maxBytes: number) {
    super(
      `post-copy needs pipes of ${LAZY_PIPE_BYTES} bytes for CRIU's page server; fs.pipe-max-size is ${maxBytes} and this root lacks CAP_SYS_RESOURCE`,
      {
        hint: 'raise it on this host: `sysctl -w fs.pipe-max-size=4194304`, or migrate without --lazy',
      },
    );
  }
}

function requirePipeSize(): void {
  if (hasEffectiveCapability(CAP_SYS_RESOURCE)) return;
  const max = Number(readFileSync('/proc/sys/fs/pipe-max-size', 'utf8').trim());
  if (Number.isFinite(max) && max < LAZY_PIPE_BYTES) throw new PipeTooSmallError(max);
}

export class PreCopyUnavailableError extends RuntimeError {
  readonly code = 'MIGRATION_PRE_COPY_UNAVAILABLE' as const;
  constructor() {
    super("pre-copy needs the kernel's memory tracking (soft-dirty), which this kernel does not offer (CRIU's FEATURE_CHECK: mem_track)", {
      hint: 'migrate without --pre-dump (stop-and-copy), or with --lazy (post-copy) for a short downtime',
    });
  }
}

export async function migrate(context: RuntimeContext, request: MigrateRequest): Promise<MigrateResult> {
  const started = Date.now();
  const id = validateId(request.id);
  requireRoot(context.processes, 'runtime migrate');
  const { store, criu, logger } = context;
  const progress = (message: string) => {
    request.onProgress?.(message);
    logger.info(message, { id });
  };
  const record = await store.load(id);
  if (record.status !== 'running') throw new ContainerNotRunningError(id, record.status);
  // A container made from an image: its own writable layer goes, the destination stacks it on
  // the same image of its own store.
  const imageStore = record.storage?.driver === 'image' ? new ImageStore(record.storage.storageRoot) : undefined;
  const place = imageStore ? await imageStore.container(id) : undefined;
  if (imageStore && !place) {
    throw new LayerNotFoundError('image', id, path.join(imageStore.containerDir(id), 'image.json'), {
      hint: 'the container was made from an image, but its place in the image store is gone',
    });
  }
  if (place && request.sharedStorage) {
    throw new UsageError(
      `${id} was made from an image: its writable layer is in this host's image store, which --shared-storage does not cover`,
      `migrate it without --shared-storage; the destination needs the image (\`runtime images add ${place.reference}\` there)`,
    );
  }
  if (request.lazy && request.preDump !== undefined) throw new UsageError('--lazy and --pre-dump are two ways to shorten the downtime: choose one');
  const preDumps = request.preDump !== undefined ? planPreDumps(request.preDump) : 0;
  const mode: MigrationMode = request.lazy ? 'post-copy' : preDumps > 0 ? 'pre-copy' : 'stop-and-copy';
  // Refused before anything stops: the kernel cannot track which pages a pre-dump left behind.
  if (preDumps > 0 && (await criu.features()).mem_track !== true) throw new PreCopyUnavailableError();
  if (request.lazy) {
    await criu.requireFeature('lazy_pages', 'migrate --lazy');
    requirePipeSize();
  }
  const version = await criu.requireVersion();
  const timeoutMs = request.timeoutMs ?? 120_000;

  const channel = await connectChannel(request.to, request.tls, { timeoutMs });
  const token = randomBytes(16).toString('hex');
  // The decision, the source's alone: the container moves once `restored` has come back.
  let handedOver = false;
  // From `restore` on, the destination may hold a stopped copy that waits for our word.
  let restoreSent = false;
  // Pre-copy's rounds: their images here stay until the final dump no longer needs them as its parents.
  const preCopyDir = path.join(context.config.checkpointRoot, id, 'pre-copy');
  let watchdog: NodeJS.Timeout | undefined;
  let unmarkRoots: (() => Promise<void>) | undefined;
  const word = (moved: boolean) => sayVerdict({ channel, to: request.to, tls: request.tls, id, token, moved, timeoutMs, progress, criu: version });
  try {
    await channel.send({ type: 'hello', version: PROTOCOL_VERSION, runtimeVersion: runtimeVersion(), criu: version });
    const welcome = expect(await channel.receive({ timeoutMs }), 'welcome');
    requireCompatible(id, version, welcome.criu, welcome.version);

    await mkdir(context.config.checkpointRoot, { recursive: true, mode: 0o700 });
    // A receiver that sees these marks in its own roots shares them with us, and refuses.
    unmarkRoots = await markRoots(context.config, token, record.storage?.driver === 'image' ? record.storage.storageRoot : undefined);
    const cpuDir = await mkdtemp(path.join(context.config.checkpointRoot, '.cpuinfo-'));
    let cpuinfo: string;
    try {
      await criu.cpuinfoDump(cpuDir);
      cpuinfo = (await readFile(path.join(cpuDir, 'cpuinfo.img'))).toString('base64');
    } finally {
      await rm(cpuDir, { recursive: true, force: true });
    }
    // The user's config.json, not the effective one: the destination derives its own cgroup path.
    const config = await readFile(path.join(record.bundle, 'config.json'), 'utf8');
    // What the destination will hold, about, for its free-space check before anything stops.
    // Pre-copy keeps its rounds there too: the first holds all of it, the others what was written since.
    const memoryBytes = await context.cgroups.memoryInUse(record.cgroupPath).catch(() => undefined);
    const imageBytes = memoryBytes === undefined ? undefined : mode === 'pre-copy' ? 2 * memoryBytes : memoryBytes;
    const rootfsBytes = request.sharedStorage ? undefined : await diskUsage(place ? place.upper : record.rootfs).catch(() => undefined);
    await channel.send({
      type: 'offer',
      token,
      id,
      mode,
      sharedStorage: request.sharedStorage === true,
      bundle: record.bundle,
      tcpEstablished: request.tcpEstablished === true,
      cpuinfo,
      config,
      rootfs: request.sharedStorage
        ? { kind: 'none' }
        : place
          ? {
              kind: 'image',
              manifestDigest: place.manifestDigest,
              reference: place.reference,
              place: place.dir,
              ...(place.shift ? { shift: place.shift } : {}),
            }
          : { kind: 'directory', path: record.rootfs },
      ...(record.ports && record.ports.length > 0 ? { ports: record.ports } : {}),
      ...(imageBytes !== undefined ? { imageBytes } : {}),
      ...(rootfsBytes !== undefined ? { rootfsBytes } : {}),
    });
    const accepted = expect(await channel.receive({ timeoutMs }), 'accept');
    progress(`${request.to.host}:${request.to.port} accepted ${id} (${mode})`);

    let streamedBytes = 0;
    let settled: Promise<number> | undefined;
    let restoredPid = 0;
    let frozenAt = 0;
    let restoredAt = 0;
    const lazyPort = request.lazy ? (request.pageServerPort ?? (await freePort())) : undefined;
    const localAddress = channel.localAddress;
    // The destination's page server the next dump sends into (stop-and-copy's from the accept,
    // pre-copy's a new one for each round and for the final dump).
    let pagePort = accepted.pageServer?.port ?? 0;

    const sendState = async (imagePath: string) => {
      // A pre-copy's final images link to their parent round here (`parent`): the destination has its own.
      streamedBytes += await sendDirectory(channel, 'images', imagePath, ['./parent']);
      // An image's container: its place without the overlay's work directory, the bundle (the
      // destination writes its own) and the place's record.
      if (place) streamedBytes += await sendDirectory(channel, 'rootfs', place.dir, ['./work', './bundle', './image.json']);
      else if (!request.sharedStorage) streamedBytes += await sendDirectory(channel, 'rootfs', record.rootfs);
    };
    // CRIU has no timeout of its own: a link that goes silent while the memory goes would hold
    // the tree frozen for as long as TCP retries, or for ever when CRIU was waiting for its peer
    // (no data of its own unanswered, so nothing retried). The memory's connection is watched
    // while it carries the memory (stop-and-copy and pre-copy: to the destination's page server,
    // until post-dump; post-copy: the destination's lazy-pages daemon to ours, once the copy
    // there runs), with keepalive turned on so that it probes its peer while it waits. Once it
    // has been silent (data or probes unanswered) for the whole timeout, it is aborted: the dump
    // (or pre-dump) fails, and CRIU resumes the tree here.
    let criuPid = 0;
    let stalledSince = 0;
    let aborted = false;
    const probing = new Map<number, number>();
    const memoryLink = (): MemoryLink & { match: (socket: TcpSocket) => boolean } =>
      request.lazy
        ? { sport: lazyPort!, match: (socket) => socket.local.port === lazyPort && socket.state === 'ESTABLISHED' }
        : { dst: request.to.host, dport: pagePort, match: (socket) => socket.remote.address === request.to.host && socket.remote.port === pagePort };
    watchdog = setInterval(() => {
      const carrying = request.lazy ? handedOver : frozenAt === 0;
      // This check's CRIU: criuPid is 0 again once a round's CRIU has ended, before the check does.
      const pid = criuPid;
      if (!carrying || pid === 0 || aborted) return;
      const link = memoryLink();
      void silentLink(link.match, pid, timeoutMs, probing, logger).then((stalled) => {
        if (!stalled) {
          stalledSince = 0;
          return;
        }
        stalledSince ||= Date.now();
        if (Date.now() - stalledSince < timeoutMs || aborted) return;
        aborted = true;
        progress(`the link to ${request.to.host} has been silent for ${timeoutMs} ms while the memory went: aborting it, the container runs on here`);
        abortStalled(link, pid);
      });
    }, 500);

    let preCopy: PreCopyResult | undefined;
    if (mode === 'pre-copy') {
      await rm(preCopyDir, { recursive: true, force: true });
      await mkdir(preCopyDir, { recursive: true, mode: 0o700 });
      preCopy = await preCopyRounds(preDumps, async (round) => {
        await channel.send({ type: 'pre-dump', round });
        pagePort = expect(await channel.receive({ timeoutMs }), 'page-server').port;
        const roundDir = path.join(preCopyDir, String(round));
        // CRIU's log and statistics beside the state: a failed round's log outlives its images.
        const roundWork = path.join(context.store.paths(id).dir, 'pre-copy', String(round));
        const roundStarted = Date.now();
        // The container runs on: CRIU freezes it only while it collects the pages written since
        // the round before (its parent), and sends them after.
        await checkpoint(context, {
          id,
          preDump: true,
          imagePath: roundDir,
          ...(round > 1 ? { parentPath: path.join('..', String(round - 1)) } : {}),
          workPath: roundWork,
          pageServer: `${request.to.host}:${pagePort}`,
          tls: request.tls,
          onCriuStarted: (pid) => (criuPid = pid),
        });
        criuPid = 0;
        stalledSince = 0;
        const stats = await readDumpStatistics(roundWork);
        if (!stats) throw new MigrationFailedError(id, `CRIU's pre-dump ${round} left no statistics (stats-dump) in ${roundWork}`);
        progress(`pre-dump ${round}: ${stats.pages_written} pages sent while ${id} runs (${Date.now() - roundStarted} ms)`);
        return { pagesWritten: stats.pages_written };
      });
      progress(`${preCopy.rounds.length} pre-dump${preCopy.rounds.length === 1 ? '' : 's'} (${preCopy.reason}): the final dump sends what is left`);
      await channel.send({ type: 'dump' });
      pagePort = expect(await channel.receive({ timeoutMs }), 'page-server').port;
    }

    const dumpStarted = Date.now();
    const dump = checkpoint(context, {
      id,
      ...(request.tcpEstablished ? { tcpEstablished: true } : {}),
      ...(request.lazy ? { lazyPages: true, pageServer: `${localAddress}:${lazyPort}` } : { pageServer: `${request.to.host}:${pagePort}` }),
      // Pre-copy: only what the last round left (its pages are the destination's already).
      ...(preCopy ? { parentPath: path.relative(migrationImagePath(context, id), path.join(preCopyDir, String(preCopy.rounds.length))) } : {}),
      tls: request.tls,
      onCriuStarted: (pid) => (criuPid = pid),
      migration: {
        onFrozen: async (imagePath) => {
          frozenAt = Date.now();
          progress(`${id} is frozen and its memory ${request.lazy ? 'stays here until asked for' : 'is on the destination'}: sending the images`);
          await withTimeout(sendState(imagePath), timeoutMs, () => {
            // What waits on the channel ends with it.
            channel.destroy();
            return new MigrationFailedError('', `sending the images took more than ${timeoutMs} ms`);
          });
          if (request.lazy) {
            // CRIU starts serving the memory once this notification is answered: the
            // destination is told to restore as soon as the page server listens.
            void restoreWhenListening();
            return;
          }
          restoreSent = true;
          await channel.send({ type: 'restore' });
          const restored = expect(await channel.receive({ timeoutMs }), 'restored');
          restoredPid = restored.pid;
          handedOver = true;
          // CRIU ends the tree here as this notification is answered; the destination resumes
          // its copy as `done` arrives.
          settled = word(true);
          settled.catch(() => undefined);
        },
      },
    });
    let lazyRestore: Promise<void> | undefined;
    let dumpDone = false;
    void dump.finally(() => clearInterval(watchdog)).catch(() => undefined);
    void dump.then(
      () => (dumpDone = true),
      () => (dumpDone = true),
    );
    const restoreWhenListening = () => {
      lazyRestore = (async () => {
        await waitListening(lazyPort!, timeoutMs);
        restoreSent = true;
        await channel.send({ type: 'restore', lazyPageServer: { host: localAddress, port: lazyPort! } });
        const restored = expect(await channel.receive({ timeoutMs }), 'restored');
        restoredPid = restored.pid;
        handedOver = true;
        settled = word(true);
        await settled;
        progress(`${id} runs on the destination (pid ${restored.pid}); its memory follows`);
      })();
      // Awaited by watchLazy, which may look only 20 ms later.
      lazyRestore.catch(() => undefined);
    };
    // The destination failing to restore leaves CRIU waiting for a lazy-pages daemon that will
    // never come, the tree frozen: a connection that hangs up at once makes CRIU's serving fail,
    // and CRIU then resumes the tree here.
    const watchLazy = async () => {
      while (!lazyRestore) {
        if (dumpDone) return;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      try {
        await lazyRestore;
      } catch (error) {
        await hangUp(lazyPort!);
        throw error;
      }
    };
    try {
      await Promise.all([dump, request.lazy ? watchLazy() : undefined]);
    } catch (error) {
      // CRIU may still serve the memory (a post-copy restore that failed after its daemon had
      // connected, a word not delivered): its serving is ended here, and CRIU's end waited for,
      // so that the tree is either back (resumed) or gone (every page moved) before deciding.
      if (request.lazy) {
        // A CRIU that does not end from its connection's abort is killed 5 s later (abortStalled).
        if (criuPid > 0) abortStalled({ sport: lazyPort! }, criuPid);
        await hangUp(lazyPort!);
      }
      await dump.catch(() => undefined);
      if (lazyRestore) await lazyRestore.catch(() => undefined);
      await settled?.catch(() => undefined);
      if (await stillRuns(context, record.init)) {
        // The tree runs here, whole (it never ran elsewhere before CRIU resumed it here, or ran
        // there on memory that did not all come): the copy there goes. CRIU leaves its network
        // lock when its serving failed after post-dump, or when the watchdog killed it.
        handedOver = false;
        await liftLocksOfOwnNamespace(context, record.init.pid).then(
          (lifted) => lifted.length > 0 && progress(`lifted the network lock CRIU left on ${id} (${lifted.join(', ')})`),
          (liftError: unknown) => logger.warn(`could not lift a network lock CRIU may have left on ${id}`, { error: describeError(liftError) }),
        );
        throw error;
      }
      // The tree is gone here (CRIU ended it once the memory had all gone): the copy there is
      // the container now, whatever failed after; it is told so, and the error only reported.
      if (!restoreSent) throw error;
      progress(`${id} moved, though: ${describeError(error)}`);
      handedOver = true;
      settled ??= word(true);
    }
    if (!handedOver) throw new MigrationFailedError(id, 'the destination never said the container runs');

    // The container runs there: nothing of it stays here.
    await deleteContainer(context, id, { force: true });
    restoredAt = await settled!;
    const result: MigrateResult = {
      id,
      mode,
      ...(preCopy ? { preDumpPages: preCopy.rounds.map((round) => round.pagesWritten) } : {}),
      pid: restoredPid,
      downtimeMs: restoredAt - (frozenAt === 0 ? dumpStarted : Math.min(dumpStarted, frozenAt)),
      totalMs: Date.now() - started,
      streamedBytes,
    };
    progress(`${id} moved to ${request.to.host}:${request.to.port} (${mode}): downtime ${result.downtimeMs} ms, total ${result.totalMs} ms`);
    return result;
  } catch (error) {
    if (!handedOver) {
      const reason = error instanceof Error ? error.message : String(error);
      // A destination that answered with an error kept nothing of it; one that did not answer
      // may hold a copy, stopped.
      if (restoreSent && !(error instanceof MigrationPeerError)) {
        // The destination may hold a stopped copy (or be restoring one): it must hear that the
        // container stays here, or it keeps that copy for the operator to decide.
        await word(false).catch((undelivered: unknown) => {
          throw new MigrationFailedError(id, reason, { cause: error, hint: (undelivered as RuntimeError).hint });
        });
      } else {
        await channel.send({ type: 'abort', reason }).catch(() => undefined);
      }
      channel.destroy();
      if (error instanceof RuntimeError && error.code === 'MIGRATION_FAILED') throw error;
      // What the destination says to do about its refusal (add the image there, free space) is kept.
      const theirs = error instanceof MigrationPeerError ? error.hint : undefined;
      throw new MigrationFailedError(id, reason, {
        cause: error,
        ...(theirs ? { hint: `the container runs on here as it was; on ${request.to.host}: ${theirs}` } : {}),
      });
    }
    throw error;
  } finally {
    clearInterval(watchdog);
    await unmarkRoots?.().catch(() => undefined);
    if (mode === 'pre-copy') await rm(preCopyDir, { recursive: true, force: true }).catch(() => undefined);
    await channel.close().catch(() => undefined);
  }
}

/**
 * How long the source keeps saying its word over new connections once the channel broke: at least
 * this (longer than a receiver with the default --timeout waits on a broken channel before it
 * takes the next connection), or three steps' time.
 */
const VERDICT_RETRY_MS = 150_000;

export class VerdictUndeliveredError extends RuntimeError {
  readonly code = 'MIGRATION_VERDICT_UNDELIVERED' as const;
  constructor(
    readonly id: string,
    readonly moved: boolean,
    where: string,
    cause: unknown,
  ) {
    super(
      moved
        ? `${id} moved to ${where}, which holds it stopped: it could not be told that this host let go (${describeError(cause)})`
        : `${where} could not be told that ${id} stays here (${describeError(cause)})`,
      {
        cause,
        hint: moved
          ? `on ${where}, resume it: \`runtime kill --all ${id} CONT\``
          : `${id} runs here; on ${where}, remove the stopped copy it may hold: \`runtime delete -f ${id}\``,
      },
    );
  }
}

interface Verdict {
  readonly channel: MessageChannel;
  readonly to: { readonly host: string; readonly port: number };
  readonly tls: TlsFiles;
  readonly id: string;
  readonly token: string;
  /** true: this host let go of the container; false: it keeps it. */
  readonly moved: boolean;
  readonly timeoutMs: number;
  readonly progress: (message: string) => void;
  /** This host's CRIU version, for the hello of each new connection. */
  readonly criu: CriuVersion;
}

/**
 * Tells the destination the source's decision (protocol.ts): on the migration's channel, then,
 * when that broke, over new connections until the destination says `settled` or the retries run
 * out (VerdictUndeliveredError, naming what the operator does there). Resolves with the time the
 * destination answered.
 */
async function sayVerdict(verdict: Verdict): Promise<number> {
  const { channel, id, token, moved, timeoutMs, progress } = verdict;
  try {
    await channel.send(moved ? { type: 'done' } : { type: 'abort', reason: `${id} stays on the source` });
    expect(await channel.receive({ timeoutMs }), 'settled');
    return Date.now();
  } catch (error) {
    // The destination answered, with an error: it got the word and could not act on it.
    if (error instanceof MigrationPeerError) throw error;
    channel.destroy();
    progress(`the channel to ${verdict.to.host} broke before it took this host's word (${describeError(error)}): saying it again over new connections`);
  }
  const deadline = Date.now() + Math.max(VERDICT_RETRY_MS, 3 * timeoutMs);
  let last: unknown;
  while (Date.now() < deadline) {
    let retry: MessageChannel | undefined;
    try {
      retry = await connectChannel(verdict.to, verdict.tls, { timeoutMs: Math.min(timeoutMs, 5_000) });
      await retry.send({ type: 'hello', version: PROTOCOL_VERSION, runtimeVersion: runtimeVersion(), criu: verdict.criu });
      expect(await retry.receive({ timeoutMs }), 'welcome');
      await retry.send({ type: 'verdict', id, token, moved });
      expect(await retry.receive({ timeoutMs }), 'settled');
      progress(`${verdict.to.host} took this host's word: ${moved ? `${id} runs there` : `nothing of ${id} is left there`}`);
      return Date.now();
    } catch (error) {
      // The destination answered: no retry changes its mind.
      if (error instanceof MigrationPeerError) throw error;
      last = error;
      retry?.destroy();
      await new Promise((r) => setTimeout(r, 1000));
    } finally {
      await retry?.close().catch(() => undefined);
    }
  }
  throw new VerdictUndeliveredError(id, moved, `${verdict.to.host}:${verdict.to.port}`, last);
}

function requireCompatible(id: string, ours: CriuVersion, theirs: CriuVersion, protocol: number): void {
  if (protocol !== PROTOCOL_VERSION) {
    throw new MigrationFailedError(id, `the destination speaks migration protocol ${protocol}, this runtime ${PROTOCOL_VERSION}`, {
      hint: 'run the same runtime version on both hosts',
    });
  }
  if (!isAtLeast(theirs, ours)) {
    throw new MigrationFailedError(
      id,
      `the destination's CRIU ${formatVersion(theirs)} is older than this host's ${formatVersion(ours)}: it may not read these images`,
      {
        hint: 'install the same CRIU (scripts/install-criu.sh) on both hosts',
      },
    );
  }
}

/** A tar of dir (but the members excluded: "./name") as one stream of the channel, announced by a message; the bytes sent. */
async function sendDirectory(channel: MessageChannel, kind: 'images' | 'rootfs', dir: string, excluded: readonly string[] = []): Promise<number> {
  const exclude = excluded.map((member) => `--exclude=${member}`);
  await channel.send(kind === 'images' ? { type: 'images', files: 0, bytes: 0 } : { type: 'rootfs', bytes: 0 });
  // Read from at once: Node drains (and drops) the output of a child that exits before anything
  // listens to it, and a small directory's tar may end while a message is still being sent.
  const tar = spawn('tar', ['--create', '--file=-', '--numeric-owner', '--xattrs', '--xattrs-include=*', '--sparse', ...exclude, '-C', dir, '.'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  tar.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = once(tar, 'exit') as Promise<[number | null]>;
  const bytes = await channel.sendStream(tar.stdout as AsyncIterable<Buffer>);
  const [code] = await exited;
  if (code !== 0) throw new MigrationFailedError('', `tar of ${dir} failed: ${stderr.trim()}`);
  return bytes;
}

/** Bytes dir takes on its filesystem (`du`), not crossing into other mounts. */
async function diskUsage(dir: string): Promise<number> {
  const du = spawn('du', ['--summarize', '--one-file-system', '--block-size=1', dir], { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  du.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  const [code] = (await once(du, 'exit')) as [number | null];
  const bytes = Number(out.split('\t')[0]);
  if (code !== 0 || !Number.isSafeInteger(bytes)) throw new Error(`du ${dir} failed`);
  return bytes;
}

/** Waits until a TCP socket of this host listens on port (CRIU's lazy page server, once it starts). */
async function waitListening(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if ((await tcpSockets()).some((socket) => socket.state === 'LISTEN' && socket.local.port === port)) return;
    if (Date.now() > deadline) throw new MigrationFailedError('', `CRIU's page server did not listen on port ${port}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * Ends a dump stuck on a silent link: the connection that carries the memory is aborted (`ss -K`:
 * CRIU's next write fails and CRIU undoes the dump itself, resuming the tree); a CRIU still there
 * a few seconds later is killed (the checkpoint then thaws the tree). Where CRIU left its network
 * lock (a post-copy, a CRIU killed), migrate lifts it (network-lock.ts).
 */
function abortStalled(link: MemoryLink, criuPid: number): void {
  abortConnections(link);
  // kill(-0) would be this process's own group.
  if (!(criuPid > 0)) return;
  setTimeout(() => {
    try {
      process.kill(-criuPid, 0);
      process.kill(-criuPid, 'SIGKILL');
    } catch {
      // Gone: CRIU ended the dump itself.
    }
  }, 5000).unref();
}

/** The connection that carries the memory: to the destination's page server, or from its lazy-pages daemon to ours. */
type MemoryLink = { readonly dst: string; readonly dport: number } | { readonly sport: number };

/** Aborts this host's TCP connections of link (`ss -K`): their owner's next read or write fails. */
function abortConnections(link: MemoryLink): void {
  const filter = 'sport' in link ? ['state', 'established', 'sport', '=', `:${link.sport}`] : ['dst', link.dst, 'dport', '=', String(link.dport)];
  const ss = spawn('ss', ['-K', ...filter], { stdio: 'ignore' });
  ss.on('error', () => undefined);
}

/** CRIU's network locks lifted in the container's network namespace, when it has one of its own (network-lock.ts). */
async function liftLocksOfOwnNamespace(context: RuntimeContext, pid: number): Promise<string[]> {
  const [theirs, ours] = await Promise.all([context.processes.namespaceInode(pid, 'net'), context.processes.namespaceInode(process.pid, 'net')]);
  return theirs === ours ? [] : liftNetworkLocks(pid);
}

/**
 * Whether the container's init still runs once CRIU has ended: resumed, it goes on; killed (the
 * dump done), it is gone within moments.
 */
async function stillRuns(context: RuntimeContext, init: ProcessIdentity): Promise<boolean> {
  for (let i = 0; i < 10; i++) {
    if (!(await context.processes.isAlive(init))) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

/** How many times keepalive is tried on one connection before the watchdog says it could not. */
const KEEPALIVE_TRIES = 3;

/**
 * Whether a TCP connection of this host that `match` picks has gone silent (its data or its probes
 * unanswered, tcp-sockets.ts). Keepalive is turned on for each one CRIU (criuPid, or the child it
 * forks for a pre-dump) holds, as it is first seen (`probing` counts the tries by inode, -1 once
 * on): a CRIU waiting for its peer sends nothing, and a link cut then would show nowhere. The
 * probes go every timeout/100 s (1 s at least): the kernel's own give-up, after 127 of them,
 * comes after the watchdog's.
 */
async function silentLink(
  match: (socket: TcpSocket) => boolean,
  criuPid: number,
  timeoutMs: number,
  probing: Map<number, number>,
  logger: Logger,
): Promise<boolean> {
  // The watchdog polls without awaiting: a table that cannot be read says nothing of the link.
  const sockets = (await tcpSockets().catch(() => [])).filter(match);
  for (const socket of sockets) {
    const tries = probing.get(socket.inode) ?? 0;
    if (socket.state !== 'ESTABLISHED' || socket.inode === 0 || tries < 0 || tries >= KEEPALIVE_TRIES) continue;
    const on = await keepAlive(criuPid, socket.inode, Math.max(1, Math.ceil(timeoutMs / 100_000))).catch((error: unknown) => describeError(error));
    probing.set(socket.inode, on === true ? -1 : tries + 1);
    if (on !== true && tries + 1 === KEEPALIVE_TRIES) {
      logger.warn(`no keepalive on CRIU's memory connection: a link cut while it waits will go unseen (${on || 'CRIU does not hold it'})`);
    }
  }
  return sockets.some(silent);
}

/** Connects to a CRIU server waiting for its one client and hangs up: CRIU's serve fails and it goes on. */
export async function hangUp(port: number, host = '127.0.0.1'): Promise<void> {
  await new Promise<void>((resolve) => {
    const socket = net.connect({ host, port }, () => socket.destroy());
    socket.once('close', () => resolve());
    socket.once('error', () => resolve());
  });
}

function runtimeVersion(): string {
  return process.env.npm_package_version ?? '0.1.0';
}
