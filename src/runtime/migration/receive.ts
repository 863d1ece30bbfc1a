/**
 * `runtime receive --listen ADDR:PORT`: the destination of migrations (migrate.ts), a long-running
 * receiver with the runtime's own state and checkpoint roots, taking migrations one after
 * another. For each: the source's hello and offer are checked (protocol and CRIU versions, the
 * id free here, CRIU's CPUINFO_CHECK against the source's CPU, the bind mounts' sources and a
 * shared rootfs present on this host); for stop-and-copy a CRIU page server is started (CRIU's
 * own TLS, the same certificate) into the migration's image directory, for pre-copy one per
 * pre-dump round, each into a directory of its own whose parent is the round before, and one
 * for the final dump, whose parent is the last round; the images and the rootfs
 * arrive over the command channel; the container is restored under a monitor of this runtime,
 * which becomes the restored init's parent. Whatever fails, or a source that goes before saying
 * it let go of the container, leaves nothing of it here.
 *
 *   <checkpointRoot>/<id>/incoming   the images (the restore's image directory after)
 *   <checkpointRoot>/<id>/pre-dump-N pre-copy's round N (pages only; `parent` links chain them)
 *   <checkpointRoot>/<id>/bundle     config.json (the source's, its rootfs moved here) and rootfs/
 *   <imageRoot>/containers/<id>      a container made from an image: its place (bundle, writable
 *                                    layer, network files) made here, on this host's copy of the image
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, readlink, rm, stat, statfs, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { RuntimeContext } from '../context.js';
import { validateId } from '../id.js';
import { requireRoot } from '../privileges.js';
import { ContainerExistsError, RuntimeError, describeError } from '../errors.js';
import { parseSpec, type Spec } from '../oci/index.js';
import { isBindMount } from '../../rootfs/in-root.js';
import { unmountBelow } from '../../rootfs/layers.js';
import { restoreDetached } from '../restore.js';
import { deleteContainer } from '../delete.js';
import { listenChannel, type MessageChannel } from './channel.js';
import {
  ChannelProtocolError,
  expect,
  MigrationAbortedError,
  PROTOCOL_VERSION,
  type MigrationMessageType,
  type OfferMessage,
  type VerdictMessage,
} from './protocol.js';
import { MAX_PRE_DUMPS } from './pre-copy.js';
import { ImageStore, type ContainerLayers } from '../../rootfs/image/store.js';
import { removeImageContainer } from '../storage.js';
import { sharedRoots } from './shared-roots.js';
import { containerCgroupPath } from '../cgroups.js';
import { checkPublished, formatPort } from '../ports.js';
import { PortForwarder } from '../port-forwarder.js';
import { abandonedPlace } from '../images.js';
import { restrictImageFiles, shareWithContainerRoot } from '../userns.js';
import { tlsOpts, type TlsFiles } from '../../criu/options.js';
import type { PageServer } from '../../criu/service.js';
import { tcpSockets } from '../../system/tcp-sockets.js';
import { sizeText } from '../../system/size-text.js';

export interface ReceiveOptions {
  readonly listen: { readonly host: string; readonly port: number };
  readonly tls: TlsFiles;
  /** How long a step may wait on the source (default 120 s). */
  readonly timeoutMs?: number;
  /** One line per event (a migration accepted, restored, refused). */
  readonly onEvent?: (message: string) => void;
}

export interface Receiver {
  readonly port: number;
  close(): Promise<void>;
}

export class MigrationRefusedError extends RuntimeError {
  readonly code = 'MIGRATION_REFUSED' as const;
  constructor(reason: string, hint: string) {
    super(`the destination refuses the migration: ${reason}`, { hint });
  }
}

export async function receive(context: RuntimeContext, options: ReceiveOptions): Promise<Receiver> {
  requireRoot(context.processes, 'runtime receive');
  await context.criu.requireVersion();
  const event = (message: string) => {
    options.onEvent?.(message);
    context.logger.info(message);
  };
  const held: Held = new Map();
  const server = await listenChannel(options.listen, options.tls, (channel) => receiveOne(context, channel, options, event, held), {
    onRefused: (reason, remote) => event(`refused a connection from ${remote ?? 'an unknown address'}: ${reason}`),
  });
  event(`receiving migrations on ${options.listen.host}:${server.port}`);
  return server;
}

/**
 * The migrations restored here, by their offer's token, and where each stands: held stopped
 * until the source's word, running after `done` (a post-copy's source may still call it off while
 * the memory comes, and any source whose tree came back after all), or dropped. Kept once settled,
 * so that a word said again (its `settled` lost) is answered the same.
 */
interface HeldMigration {
  readonly id: string;
  readonly home: string;
  state: 'held' | 'running' | 'dropped';
}
type Held = Map<string, HeldMigration>;

/** The settled migrations a receiver remembers, the oldest forgotten first. */
const REMEMBERED = 256;

function remember(held: Held, token: string, id: string, home: string): HeldMigration {
  const entry: HeldMigration = { id, home, state: 'held' };
  held.set(token, entry);
  for (const [old, { state }] of held) {
    if (held.size <= REMEMBERED) break;
    if (state !== 'held') held.delete(old);
  }
  return entry;
}

async function receiveOne(
  context: RuntimeContext,
  channel: MessageChannel,
  options: ReceiveOptions,
  event: (message: string) => void,
  held: Held,
): Promise<void> {
  const { criu, store } = context;
  const timeoutMs = options.timeoutMs ?? 120_000;
  const hello = expect(await channel.receive({ timeoutMs }), 'hello');
  await channel.send({
    type: 'welcome',
    version: PROTOCOL_VERSION,
    runtimeVersion: process.env.npm_package_version ?? '0.1.0',
    criu: await criu.requireVersion(),
  });
  if (hello.version !== PROTOCOL_VERSION) return;
  const first = await channel.receive({ timeoutMs });
  if (first.type === 'verdict') return takeVerdict(context, channel, held, first, event);
  const offer = expect(first, 'offer');
  const id = validateId(offer.id);
  // Refusals before anything is made here: the source hears them, the operator here reads them.
  const refuse = (error: RuntimeError): never => {
    event(`refused ${id} from ${channel.remoteAddress ?? 'the source'}: ${error.message}`);
    throw error;
  };
  // Before the id's check: with the source's state root, the id is the source's container.
  const shared = sharedRoots(context.config, offer.token);
  if (shared.length > 0) {
    refuse(
      new MigrationRefusedError(
        `this receiver shares its ${listed(shared.map((root) => root.name))} with the source (two hosts on one machine?)`,
        `give each host roots of its own: ${shared.map((root) => root.setting).join(', ')}; and RUNTIME_CGROUP_PARENT`,
      ),
    );
  }
  if (await store.exists(id)) refuse(new ContainerExistsError(id));
  const home = path.join(context.config.checkpointRoot, id);
  const incoming = path.join(home, 'incoming');
  const bundle = path.join(home, 'bundle');
  let restored = false;
  let entry: HeldMigration | undefined;
  // The streams the restore needs, in the order the source sends them; each comes once.
  const expected: readonly ('images' | 'rootfs')[] = offer.rootfs.kind === 'none' ? ['images'] : ['images', 'rootfs'];
  // A container made from an image: its place in this host's store, made for it here.
  let adopted: ContainerLayers | undefined;
  const imageStore = new ImageStore(context.config.imageRoot);
  const received: ('images' | 'rootfs')[] = [];
  let pageServer: PageServer | undefined;
  // Pre-copy: the pre-dump rounds so far, and whether the final dump's page server was asked for.
  let rounds = 0;
  let dumped = offer.mode !== 'pre-copy';
  const startPageServer = (imagePath: string, parent?: string) =>
    criu.startPageServer({
      imagePath,
      opts: {
        ps: { address: options.listen.host, port: 0 },
        ...tlsOpts(options.tls),
        log_level: 4,
        log_file: 'page-server.log',
        // CRIU links the directory to its parent (`parent`): pages the round before sent stay there.
        ...(parent ? { parent_img: parent } : {}),
      },
    });
  try {
    // What a failed migration of the same id left (no container of that id exists here): its
    // home, and its place in the image store when this runtime made it and no run is making it.
    await unmountBelow(context.mounts, home);
    await rm(home, { recursive: true, force: true });
    const left = await imageStore.container(id);
    if (left && abandonedPlace(context, left)) await removeImageContainer(context, id, imageStore.root);
    await mkdir(incoming, { recursive: true, mode: 0o700 });
    await mkdir(path.join(bundle, 'rootfs'), { recursive: true, mode: 0o755 });
    const spec = await checkOffer(context, offer, home);
    if (offer.rootfs.kind === 'image') {
      // The same image must be here, whole: only the container's own layer comes.
      ({ container: adopted } = await imageStore.adoptContainer(id, offer.rootfs.manifestDigest, {
        reference: offer.rootfs.reference,
        stateRoot: path.resolve(context.config.stateRoot),
        ...(offer.rootfs.shift ? { shift: offer.rootfs.shift } : {}),
      }));
    }
    // A user namespace's root restores from inside it: it follows the images' parent links.
    await shareWithContainerRoot(home, spec);
    await shareWithContainerRoot(incoming, spec);
    event(`accepting ${id} from ${channel.remoteAddress ?? 'the source'} (${offer.mode})`);

    pageServer = offer.mode === 'stop-and-copy' ? await startPageServer(incoming) : undefined;
    await channel.send({ type: 'accept', ...(pageServer ? { pageServer: { port: pageServer.port } } : {}) });

    for (;;) {
      const message = await channel.receive({ timeoutMs });
      // Each step in its turn: a message out of it is refused before anything acts on it.
      const turns: readonly MigrationMessageType[] = restored
        ? ['done']
        : !dumped
          ? rounds > 0
            ? ['pre-dump', 'dump']
            : ['pre-dump']
          : [expected[received.length] ?? 'restore'];
      if (!turns.includes(message.type)) expect(message, turns[turns.length - 1]!);
      if (message.type === 'pre-dump' || message.type === 'dump') {
        if (message.type === 'pre-dump' && (message.round !== rounds + 1 || message.round > MAX_PRE_DUMPS)) {
          throw new ChannelProtocolError(
            `pre-dump round ${message.round} where round ${rounds + 1} comes next (at most ${MAX_PRE_DUMPS})`,
            'pre-dump.round',
          );
        }
        // The round before has written every page once its page server has ended.
        if (pageServer) await waitServerGone(pageServer, timeoutMs);
        const parent = rounds > 0 ? path.join('..', `pre-dump-${rounds}`) : undefined;
        const dir = message.type === 'pre-dump' ? await madeDirectory(path.join(home, `pre-dump-${message.round}`)) : incoming;
        await shareWithContainerRoot(dir, spec);
        if (message.type === 'pre-dump') rounds = message.round;
        else dumped = true;
        pageServer = await startPageServer(dir, parent);
        await channel.send({ type: 'page-server', port: pageServer.port });
      } else if (message.type === 'images' || message.type === 'rootfs') {
        await receiveDirectory(channel, message.type === 'images' ? incoming : (adopted?.dir ?? path.join(bundle, 'rootfs')), timeoutMs);
        received.push(message.type);
      } else if (message.type === 'restore') {
        // The dump reaches its post-dump notification once the page server has answered its
        // close; the server writes its last pagemap as it ends.
        if (pageServer) await waitServerGone(pageServer, timeoutMs);
        // The page server wrote its images root's alone: a user namespace's root reads them.
        for (let round = 1; round <= rounds; round++) await restrictImageFiles(path.join(home, `pre-dump-${round}`), spec);
        await restrictImageFiles(incoming, spec);
        const rootfs = adopted ? adopted.rootfs : offer.rootfs.kind === 'directory' ? path.join(bundle, 'rootfs') : sharedRootfs(offer, spec);
        const placed = adopted && offer.rootfs.kind === 'image' ? movedPlace(spec, offer.rootfs.place, adopted.dir) : spec;
        const restoreBundle = adopted?.bundle ?? bundle;
        await writeFile(path.join(restoreBundle, 'config.json'), `${JSON.stringify({ ...placed, root: { ...placed.root, path: rootfs } }, null, 2)}\n`);
        const started = Date.now();
        event(`restoring ${id}`);
        const pid = await restoreDetached(context, {
          id,
          imagePath: incoming,
          bundle: restoreBundle,
          ...(adopted ? { storage: { driver: 'image', storageRoot: imageStore.root, layer: id } } : {}),
          ...(offer.tcpEstablished ? { tcpEstablished: true } : {}),
          ...(offer.ports && offer.ports.length > 0 ? { ports: offer.ports } : {}),
          ...(message.lazyPageServer
            ? { lazyPages: true, lazyPageServer: message.lazyPageServer, tls: options.tls, workPath: await madeDirectory(path.join(home, 'lazy-pages')) }
            : {}),
          // Held stopped until the source says it let go.
          leaveStopped: true,
        });
        restored = true;
        entry = remember(held, offer.token, id, home);
        await channel.send({ type: 'restored', pid });
        event(`restored ${id} (pid ${pid}) in ${Date.now() - started} ms, held stopped until the source lets go`);
      } else {
        await takeWord(context, entry!, true);
        await channel.send({ type: 'settled' });
        event(`${id} runs here now: the source let it go`);
        // A post-copy's memory is still coming: until it all has, the source may call the move
        // off (a failed transfer resumes it there), over a connection of its own, by the token.
        return;
      }
    }
  } catch (error) {
    event(`the migration of ${id} failed: ${describeError(error)}`);
    // A page server no dump connected to would wait for one for good, and one whose dump went
    // silent (a cut link) would wait on its connection: whichever holds its port goes.
    if (pageServer) await endPortHolders(pageServer.port);
    if (entry && error instanceof MigrationAbortedError) {
      // The source keeps the container: the copy goes.
      await takeWord(context, entry, false);
      await channel.send({ type: 'settled' }).catch(() => undefined);
      event(`${id} stays on the source (${error.reason}): nothing of it is left here`);
      return;
    }
    if (restored) {
      // Once `restored` went out, the source may have let the container go: removing it here
      // could lose it on both hosts, running it could run it twice. It is held, stopped, for
      // the source's word over a new connection.
      event(
        `${id} is held stopped here until its source's word comes (${describeError(error)}); if it never does: \`runtime state ${id}\` on the source, then here \`runtime kill --all ${id} CONT\` if it is gone there, or \`runtime delete -f ${id}\` if it runs there`,
      );
      return;
    }
    await unmountBelow(context.mounts, home).catch(() => undefined);
    await rm(home, { recursive: true, force: true }).catch((rmError: unknown) => event(`could not remove ${home}: ${describeError(rmError)}`));
    if (adopted) {
      await removeImageContainer(context, id, imageStore.root).catch((rmError: unknown) =>
        event(`could not remove ${id}'s place in the image store: ${describeError(rmError)}`),
      );
    }
    throw error;
  }
}

/**
 * The spec of a container made from an image, its paths below the source's place in the store
 * (the network files it bind-mounts) moved to its place here.
 */
function movedPlace(spec: Spec, from: string, to: string): Spec {
  const move = (source: string) => (below(source, from) ? path.join(to, path.relative(from, path.resolve(source))) : source);
  return { ...spec, ...(spec.mounts ? { mounts: spec.mounts.map((mount) => (mount.source ? { ...mount, source: move(mount.source) } : mount)) } : {}) };
}

/** The source's word over a connection of its own: the held copy runs, or goes. */
async function takeVerdict(
  context: RuntimeContext,
  channel: MessageChannel,
  held: Held,
  verdict: VerdictMessage,
  event: (message: string) => void,
): Promise<void> {
  const entry = held.get(verdict.token);
  if (!entry || entry.id !== verdict.id) {
    // Nothing of that migration is here (its restore failed, or this receiver was restarted):
    // that it stays on its source is so already; that it moved here is not.
    if (verdict.moved) {
      throw new MigrationRefusedError(
        `no migration of ${verdict.id} by that token was restored here`,
        `\`runtime state ${verdict.id}\` on this host says what is here`,
      );
    }
    event(`${verdict.id} stays on its source: nothing of that migration is here`);
  } else {
    const before = entry.state;
    await takeWord(context, entry, verdict.moved);
    if (entry.state !== before) {
      event(
        verdict.moved
          ? `${verdict.id} runs here now: its source let it go (said again over a new connection)`
          : `${verdict.id} stays on its source (said again over a new connection): nothing of it is left here`,
      );
    }
  }
  await channel.send({ type: 'settled' });
}

/**
 * Acts on the source's word, once: the held copy resumed (every task, SIGCONT) or removed; the
 * same word again does nothing. A word that the container stays on the source drops a copy that
 * already runs, too (the source's tree came back: a failed post-copy transfer); one that it moved
 * cannot bring back a copy dropped.
 */
async function takeWord(context: RuntimeContext, entry: HeldMigration, moved: boolean): Promise<void> {
  if (moved) {
    if (entry.state === 'dropped') {
      throw new MigrationRefusedError(`${entry.id} was dropped here on its source's earlier word`, 'the source keeps it: `runtime state` there');
    }
    if (entry.state === 'held') {
      const record = await context.store.load(entry.id);
      await context.cgroups.signal(record.cgroupPath, 'SIGCONT');
      entry.state = 'running';
    }
    return;
  }
  if (entry.state === 'dropped') return;
  if (await context.store.exists(entry.id)) await deleteContainer(context, entry.id, { force: true });
  await unmountBelow(context.mounts, entry.home).catch(() => undefined);
  await rm(entry.home, { recursive: true, force: true });
  entry.state = 'dropped';
}

/**
 * The offer's checks, before anything stops on the source: CRIU's CPU check against the
 * source's description, the bind mounts' sources, and a shared rootfs, present here.
 */
async function checkOffer(context: RuntimeContext, offer: OfferMessage, home: string): Promise<Spec> {
  const cpu = await mkdtemp(path.join(home, 'cpuinfo-'));
  try {
    await writeFile(path.join(cpu, 'cpuinfo.img'), Buffer.from(offer.cpuinfo, 'base64'));
    await context.criu.cpuinfoCheck(cpu);
  } finally {
    await rm(cpu, { recursive: true, force: true });
  }
  await requireFreeSpace(offer, home, context.config.imageRoot);
  const spec = parseSpec(offer.config, `the offer of ${offer.id}`);
  // The host ports it publishes are published here too, by its monitor: free here, or refused now
  // (one taken between this probe and the monitor's listen fails the restore: the source resumes).
  const ports = checkPublished(offer.ports ?? []);
  if (ports.length > 0) {
    const probe = new PortForwarder(ports, context.logger);
    try {
      await probe.listen();
    } catch (error) {
      throw new MigrationRefusedError(
        `${offer.id} publishes ${ports.map(formatPort).join(', ')}, which this host cannot (${describeError(error)})`,
        'free the port on this host; a port published on one address of the source needs that address here too',
      );
    } finally {
      await probe.close();
    }
  }
  // The restore would refuse it once the source has stopped: said now, with what to change.
  const cgroupPath = containerCgroupPath(spec.linux?.cgroupsPath, offer.id, context.config.cgroupParent);
  const occupants = await context.cgroups.occupants(cgroupPath);
  if (occupants.length > 0) {
    throw new MigrationRefusedError(
      `${offer.id}'s cgroup here, ${cgroupPath}, already holds ${occupants.length} process(es) (the source's own, on one machine?)`,
      'give each host a cgroup parent of its own (RUNTIME_CGROUP_PARENT), and leave linux.cgroupsPath out or relative',
    );
  }
  // A container made from an image bind-mounts files of its place in the store, which come with it.
  const place = offer.rootfs.kind === 'image' ? offer.rootfs.place : undefined;
  if (place !== undefined && (!path.isAbsolute(place) || path.normalize(place) !== place || place === '/')) {
    throw new MigrationRefusedError(
      `the offer's place ${JSON.stringify(place)} is not an absolute, normal path below /`,
      'run the same runtime version on both hosts',
    );
  }
  for (const mount of spec.mounts ?? []) {
    if (place && mount.source && below(mount.source, place)) continue;
    if (isBindMount(mount) && mount.source && !existsSync(mount.source)) {
      throw new MigrationRefusedError(`${offer.id} bind-mounts ${mount.source}, which this host does not have`, `make ${mount.source} on this host first`);
    }
  }
  if (offer.rootfs.kind === 'none' && !existsSync(sharedRootfs(offer, spec))) {
    throw new MigrationRefusedError(
      `the shared rootfs ${sharedRootfs(offer, spec)} is not on this host`,
      'mount the shared storage at the same path on both hosts, or migrate without --shared-storage',
    );
  }
  return spec;
}

/** "a", "a and b", "a, b and c". */
function listed(names: readonly string[]): string {
  return names.length < 2 ? names.join('') : `${names.slice(0, -1).join(', ')} and ${names.at(-1)}`;
}

/** Room for the images and the rootfs, beyond them: CRIU's other images and logs. */
const SPARE_BYTES = 64 * 1024 * 1024;

/** The offer's images and rootfs, as the source sized them, fit where they go here (home's filesystem). */
async function requireFreeSpace(offer: OfferMessage, home: string, imageRoot: string): Promise<void> {
  const memory = offer.imageBytes ?? 0;
  const rootfs = offer.rootfsBytes ?? 0;
  // An image container's writable layer goes to the image store, which may be another filesystem.
  const layerDir = offer.rootfs.kind === 'image' && existsSync(imageRoot) ? imageRoot : home;
  const apart = layerDir !== home && (await stat(layerDir)).dev !== (await stat(home)).dev;
  const wants: [string, number][] = apart
    ? [
        [home, memory + SPARE_BYTES],
        [layerDir, rootfs],
      ]
    : [[home, memory + rootfs + SPARE_BYTES]];
  for (const [dir, needed] of wants) {
    const { bavail, bsize } = await statfs(dir);
    const free = bavail * bsize;
    if (needed > free) {
      throw new MigrationRefusedError(
        `${offer.id} needs about ${sizeText(needed)} in ${dir === home ? path.dirname(home) : dir} (its memory ${sizeText(memory)}, rootfs ${sizeText(rootfs)}), which has ${sizeText(free)} free`,
        'free space on this host, or migrate with --shared-storage if both hosts see the rootfs',
      );
    }
  }
}

/** Whether path, resolved, is dir or below it. */
function below(source: string, dir: string): boolean {
  const resolved = path.resolve(source);
  return resolved === dir || resolved.startsWith(`${dir}/`);
}

/** With shared storage, the rootfs where the source has it: root.path against the source's bundle. */
function sharedRootfs(offer: OfferMessage, spec: Spec): string {
  return path.resolve(offer.bundle, spec.root?.path ?? 'rootfs');
}

/** One data stream of the channel (a tar) unpacked into dir, owners, modes, xattrs and holes kept. */
async function receiveDirectory(channel: MessageChannel, dir: string, timeoutMs: number): Promise<void> {
  const tar = spawn(
    'tar',
    ['--extract', '--file=-', '--numeric-owner', '--same-owner', '--same-permissions', '--xattrs', '--xattrs-include=*', '-C', dir],
    {
      stdio: ['pipe', 'ignore', 'pipe'],
    },
  );
  let stderr = '';
  tar.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = once(tar, 'exit') as Promise<[number | null]>;
  // A tar that ends early (disk full, not a tar) makes the next write fail: its exit says why.
  tar.stdin.on('error', () => undefined);
  try {
    for await (const chunk of channel.receiveStream({ timeoutMs })) {
      if (!tar.stdin.write(chunk)) await once(tar.stdin, 'drain');
    }
  } catch (error) {
    tar.kill('SIGKILL');
    throw error;
  } finally {
    tar.stdin.end();
  }
  const [code] = await exited;
  if (code !== 0)
    throw new MigrationRefusedError(`unpacking what the source sent into ${dir} failed: ${stderr.trim()}`, 'check the free space here (`df -h`)');
}

/** SIGKILLs the processes of this network namespace holding a TCP socket on port (CRIU's page server: its pid is not told). */
async function endPortHolders(port: number): Promise<void> {
  // A table that cannot be read holds nothing to end: this cleans up after a failed migration, whose error it must not replace.
  const sockets = await tcpSockets().catch(() => []);
  const inodes = new Set(sockets.filter((socket) => socket.local.port === port && socket.inode !== 0).map((socket) => socket.inode));
  if (inodes.size === 0) return;
  for (const pid of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    // Only CRIU's: the port may since have been given to another process's connection.
    if ((await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '')).trim() !== 'criu') continue;
    const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
    for (const fd of fds) {
      const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
      if (inode && inodes.has(Number(inode))) {
        process.kill(Number(pid), 'SIGKILL');
        break;
      }
    }
  }
}

async function madeDirectory(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  return dir;
}

/**
 * Waits for a page server CRIU forked to end once its dump is over: no process holds a socket on
 * its port any more (CRIU 4.2 does not tell its pid). One still there after timeoutMs is killed.
 */
async function waitServerGone(server: PageServer, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const sockets = await tcpSockets();
    if (!sockets.some((socket) => socket.local.port === server.port && socket.inode !== 0)) return;
    if (Date.now() > deadline) {
      await endPortHolders(server.port);
      throw new MigrationRefusedError(
        `CRIU's page server (port ${server.port}) did not end after the dump`,
        'see page-server.log in the migration directory',
      );
    }
    await new Promise((r) => setTimeout(r, 5));
  }
}
