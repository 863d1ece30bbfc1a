/**
 * The config.json of a container run from an image: the image's config (Entrypoint, Cmd, Env, User,
 * WorkingDir, ExposedPorts, StopSignal, Volumes) laid over `runc spec`'s defaults the way Docker and
 * Podman lay it, so that an image started here behaves as under `docker run`. Where runc's defaults
 * would stop a database image from starting (a read-only rootfs, a terminal, three capabilities:
 * the postgres and redis entrypoints chown their data and drop to their user with gosu or
 * su-exec), Docker's choices are taken instead.
 *
 * Names in User are looked up in the image's own /etc/passwd and /etc/group, resolved inside the
 * rootfs: an image cannot point them at a file of the host.
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import path from 'node:path';
import { resolveInRoot } from '../rootfs/in-root.js';
import type { ImageConfig, ImageRunConfig } from '../rootfs/image/types.js';
import { RuntimeError } from './errors.js';
import type { IdMapping, Mount, Spec } from './oci/index.js';
import { signalName, stopSignalAnnotation } from './signals.js';

export interface ImageSpecInput {
  /** The image's config. */
  readonly config: ImageConfig;
  /** The container's rootfs directory (the mounted overlay); /etc/passwd and /etc/group are read from it. */
  readonly rootfs: string;
  /** The container id, also its hostname. */
  readonly id: string;
  /** The command after `--`: replaces the image's Cmd and keeps its Entrypoint, as `docker run IMAGE CMD...`. */
  readonly args?: readonly string[];
  /** Replaces the image's Entrypoint and drops its Cmd, as `docker run --entrypoint`. */
  readonly entrypoint?: readonly string[];
  /** KEY=VALUE entries applied after the image's Env; the same key overrides. */
  readonly env?: readonly string[];
  /** Replaces the image's User ("name", "uid", "name:group", "uid:gid", ...). */
  readonly user?: string;
  /** Replaces the image's WorkingDir. */
  readonly workdir?: string;
  /** Runs the container in a new user namespace with these mappings. */
  readonly userNamespace?: { readonly uidMappings: readonly IdMapping[]; readonly gidMappings: readonly IdMapping[] };
  /**
   * The hard limit of open files the runtime itself may give (its own hard limit: a root
   * without CAP_SYS_RESOURCE cannot raise it). Docker's 524288 when it is higher or unknown.
   */
  readonly nofileHardLimit?: number;
}

export interface ExposedPort {
  readonly port: number;
  readonly protocol: 'tcp' | 'udp' | 'sctp';
}

export interface ImageSpec {
  /** A complete config.json: root.path "rootfs", writable. */
  readonly spec: Spec;
  /** The image's ExposedPorts, by port then protocol. */
  readonly exposedPorts: readonly ExposedPort[];
  /** The image's StopSignal as a name ("SIGINT"), when it has one. */
  readonly stopSignal?: string;
  /** The image's Volumes: absolute, normalised paths inside the container. */
  readonly volumes: readonly string[];
}

/** Where a value came from: the image's config, or what the user gave to override it. */
export type ValueOrigin = 'image' | 'override';

export class NoCommandError extends RuntimeError {
  readonly code = 'IMAGE_NO_COMMAND' as const;
  constructor() {
    super('the image has neither Entrypoint nor Cmd, and no command was given', {
      hint: 'give the command to run after `--`, for example `-- /bin/sh -c "..."`',
    });
  }
}

export class ImageUserError extends RuntimeError {
  readonly code = 'IMAGE_USER_NOT_FOUND' as const;
  constructor(
    readonly kind: 'user' | 'group',
    /** The user or group name looked up. */
    readonly account: string,
    /** The file looked in, as the container sees it. */
    readonly file: '/etc/passwd' | '/etc/group',
    fileExists: boolean,
  ) {
    super(
      fileExists
        ? `${kind} ${JSON.stringify(account)} is not in the image's ${file}`
        : `${kind} ${JSON.stringify(account)} cannot be looked up: the image has no ${file}`,
      {
        hint: `give a ${kind} the image defines, or a numeric one ("1000" or "1000:1000"), which needs no ${file}`,
      },
    );
  }
}

export class InvalidUserError extends RuntimeError {
  readonly code = 'IMAGE_INVALID_USER' as const;
  constructor(
    readonly user: string,
    reason: string,
    readonly origin: ValueOrigin,
  ) {
    super(`${origin === 'image' ? "the image's User" : 'the user'} ${JSON.stringify(user)} is invalid: ${reason}`, {
      hint: 'write the user as NAME, UID, NAME:GROUP or UID:GID, with ids from 0 to 2147483647',
    });
  }
}

export class InvalidEnvError extends RuntimeError {
  readonly code = 'IMAGE_INVALID_ENV' as const;
  constructor(
    readonly entry: string,
    readonly origin: ValueOrigin,
  ) {
    super(
      `${origin === 'image' ? "the image's Env has" : 'the environment given has'} an invalid entry ${JSON.stringify(entry)}: expected KEY=VALUE with a non-empty KEY and no NUL byte`,
      {
        hint:
          origin === 'image' ? 'give the variable again as KEY=VALUE to override the broken entry, or fix the image' : 'write each variable as KEY=VALUE',
      },
    );
  }
}

export class InvalidWorkdirError extends RuntimeError {
  readonly code = 'IMAGE_INVALID_WORKDIR' as const;
  constructor(
    readonly workdir: string,
    readonly origin: ValueOrigin,
  ) {
    // Docker refuses a relative working directory the same way, rather than guess what it is relative to.
    super(`${origin === 'image' ? "the image's WorkingDir" : 'the working directory'} ${JSON.stringify(workdir)} is not an absolute path`, {
      hint: 'give an absolute working directory, such as /app',
    });
  }
}

export class InvalidExposedPortError extends RuntimeError {
  readonly code = 'IMAGE_INVALID_EXPOSED_PORT' as const;
  constructor(
    readonly key: string,
    reason: string,
  ) {
    super(`the image's ExposedPorts has an invalid key ${JSON.stringify(key)}: ${reason}`, {
      hint: 'ExposedPorts keys are PORT or PORT/PROTOCOL, with a port from 1 to 65535 and a protocol tcp, udp or sctp; fix the image',
    });
  }
}

export class InvalidStopSignalError extends RuntimeError {
  readonly code = 'IMAGE_INVALID_STOP_SIGNAL' as const;
  constructor(readonly signal: string) {
    super(`the image's StopSignal ${JSON.stringify(signal)} is not a signal`, {
      hint: 'StopSignal is a name (SIGTERM, TERM, SIGRTMIN+3) or a number (15); fix the image',
    });
  }
}

export class InvalidVolumeError extends RuntimeError {
  readonly code = 'IMAGE_INVALID_VOLUME' as const;
  constructor(readonly volume: string) {
    super(`the image's Volumes has ${JSON.stringify(volume)}, which is not an absolute path`, {
      hint: 'Volumes keys are absolute paths inside the container; fix the image',
    });
  }
}

export class UnmappedIdError extends RuntimeError {
  readonly code = 'IMAGE_UNMAPPED_ID' as const;
  constructor(
    readonly kind: 'uid' | 'gid',
    readonly id: number,
  ) {
    // runc would fail later with a bare EINVAL from setresuid or setgroups.
    super(`the process's ${kind} ${id} is not mapped in the container's user namespace`, {
      hint: `map ${kind} ${id} in the user namespace's ${kind} mappings, or run as a user whose ids are mapped`,
    });
  }
}

export class ImageFileUnreadableError extends RuntimeError {
  readonly code = 'IMAGE_FILE_UNREADABLE' as const;
  constructor(
    readonly file: string,
    readonly rootfs: string,
    cause: unknown,
  ) {
    super(`cannot read ${file} in the rootfs ${rootfs}: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
      hint: "check that the container's rootfs is mounted and readable",
    });
  }
}

/** Docker's (25 and later, containerd's default) hard limit of open files: a database may raise its soft limit to it. */
const dockerNofileHard = 524288;

/** Docker's PATH for a Linux container whose image sets none (and runc spec's). */
const defaultPath = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Docker's default capabilities (moby oci/caps/defaults.go): enough for entrypoints that chown and drop to a user. */
const defaultCapabilities = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
] as const;

/** The largest id libcontainer accepts in a user string (it keeps ids in a signed int). */
const maxId = 2 ** 31 - 1;

/** sethostname(2) refuses longer names, and ids may be up to 1024 characters. */
const hostNameMax = 64;

export async function specFromImage(input: ImageSpecInput): Promise<ImageSpec> {
  const image: ImageRunConfig = input.config.config ?? {};
  const args = commandLine(image, input);
  const cwd = workingDirectory(input);
  const userText = input.user ?? image.User ?? '';
  const user = await resolveUser(input.rootfs, userText, input.user === undefined ? 'image' : 'override');
  const hostname = input.id.slice(0, hostNameMax);
  const env = environment(image.Env ?? [], input.env ?? [], hostname, user.home);
  const exposedPorts = parseExposedPorts(image.ExposedPorts ?? {});
  const stopSignal = image.StopSignal === undefined || image.StopSignal === '' ? undefined : normalizeStopSignal(image.StopSignal);
  const volumes = parseVolumes(image.Volumes ?? {});
  if (input.userNamespace !== undefined) requireMapped(input.userNamespace, user);

  const spec = defaultSpec(input.userNamespace, hostname, {
    args,
    env,
    cwd,
    user: { uid: user.uid, gid: user.gid, additionalGids: user.additionalGids },
    capabilities: capabilitiesFor(user.uid),
    rlimits: [{ type: 'RLIMIT_NOFILE', hard: Math.min(dockerNofileHard, input.nofileHardLimit ?? dockerNofileHard), soft: 1024 }],
  });
  if (stopSignal !== undefined) spec.annotations = { [stopSignalAnnotation]: stopSignal };
  return stopSignal === undefined ? { spec, exposedPorts, volumes } : { spec, exposedPorts, stopSignal, volumes };
}

/** Entrypoint then Cmd, with Docker's rules for which of them an override replaces. */
function commandLine(image: ImageRunConfig, input: ImageSpecInput): string[] {
  const given = input.args !== undefined && input.args.length > 0 ? input.args : undefined;
  let entrypoint: readonly string[];
  let cmd: readonly string[];
  if (input.entrypoint !== undefined) {
    // An entrypoint given drops the image's Cmd too: it was written as arguments for the image's
    // Entrypoint. Docker's CLI sends `--entrypoint ""` as [""], meaning "no entrypoint".
    entrypoint = input.entrypoint.length === 1 && input.entrypoint[0] === '' ? [] : input.entrypoint;
    cmd = given ?? [];
  } else {
    entrypoint = image.Entrypoint ?? [];
    cmd = given ?? image.Cmd ?? [];
  }
  const args = [...entrypoint, ...cmd];
  if (args.length === 0) throw new NoCommandError();
  return args;
}

function workingDirectory(input: ImageSpecInput): string {
  const override = input.workdir !== undefined && input.workdir !== '';
  const dir = override ? input.workdir! : (input.config.config?.WorkingDir ?? '');
  if (dir === '') return '/';
  if (!path.posix.isAbsolute(dir)) throw new InvalidWorkdirError(dir, override ? 'override' : 'image');
  const normal = path.posix.normalize(dir);
  return normal.length > 1 && normal.endsWith('/') ? normal.slice(0, -1) : normal;
}

/**
 * Docker's order: PATH and HOSTNAME first, then the image's Env and the overrides, each replacing
 * an earlier entry of the same key in place. HOME comes last, from the user's passwd entry, where
 * runc would otherwise set it itself (and the spec would not say so).
 */
function environment(imageEnv: readonly string[], overrides: readonly string[], hostname: string, home: string): string[] {
  const vars = new Map<string, string>([
    ['PATH', defaultPath],
    ['HOSTNAME', hostname],
  ]);
  for (const [entries, origin] of [
    [imageEnv, 'image'],
    [overrides, 'override'],
  ] as const) {
    for (const entry of entries) {
      const eq = entry.indexOf('=');
      if (eq <= 0 || entry.includes('\0')) throw new InvalidEnvError(entry, origin);
      vars.set(entry.slice(0, eq), entry.slice(eq + 1));
    }
  }
  if (!vars.has('HOME')) vars.set('HOME', home);
  return [...vars].map(([key, value]) => `${key}=${value}`);
}

interface ResolvedUser {
  readonly uid: number;
  readonly gid: number;
  /** The primary gid first, then the groups whose member list names the user. */
  readonly additionalGids: number[];
  readonly home: string;
}

interface PasswdEntry {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
}

interface GroupEntry {
  readonly name: string;
  readonly gid: number;
  readonly members: readonly string[];
}

/**
 * USER[:GROUP] as libcontainer reads it for Docker: a numeric part is an id (its passwd entry, if
 * any, still gives the primary gid, home and groups), a name must be in the image's files. An
 * explicit group replaces the primary gid and, as in Docker, drops the membership groups.
 */
async function resolveUser(rootfs: string, text: string, origin: ValueOrigin): Promise<ResolvedUser> {
  const colon = text.indexOf(':');
  const userPart = colon < 0 ? text : text.slice(0, colon);
  const groupPart = colon < 0 ? '' : text.slice(colon + 1);
  if (groupPart.includes(':')) throw new InvalidUserError(text, 'it has more than one ":"', origin);
  // An empty user part is root, looked up by uid like any number.
  const uidArg = numericId(userPart === '' ? '0' : userPart, text, origin);
  const gidArg = groupPart === '' ? undefined : numericId(groupPart, text, origin);

  const passwdText = await readInRootfs(rootfs, '/etc/passwd');
  const entry =
    passwdText === undefined ? undefined : parsePasswd(passwdText).find((e) => (uidArg === undefined ? e.name === userPart : e.uid === uidArg));
  if (entry === undefined && uidArg === undefined) throw new ImageUserError('user', userPart, '/etc/passwd', passwdText !== undefined);

  let gid = entry?.gid ?? 0;
  const groups: number[] = [];
  if (gidArg !== undefined) {
    gid = gidArg;
  } else if (groupPart !== '') {
    const groupText = await readInRootfs(rootfs, '/etc/group');
    const group = groupText === undefined ? undefined : parseGroup(groupText).find((g) => g.name === groupPart);
    if (group === undefined) throw new ImageUserError('group', groupPart, '/etc/group', groupText !== undefined);
    gid = group.gid;
  } else if (entry !== undefined) {
    const groupText = await readInRootfs(rootfs, '/etc/group');
    for (const group of groupText === undefined ? [] : parseGroup(groupText)) {
      if (group.members.includes(entry.name)) groups.push(group.gid);
    }
  }
  return {
    uid: entry?.uid ?? uidArg!,
    gid,
    additionalGids: [...new Set([gid, ...groups])],
    home: entry?.home || '/',
  };
}

/** The id a numeric user or group part names; undefined for a name. */
function numericId(part: string, text: string, origin: ValueOrigin): number | undefined {
  if (!/^\d+$/.test(part)) return undefined;
  const id = Number(part);
  if (id > maxId) throw new InvalidUserError(text, `${part} is larger than ${maxId}`, origin);
  return id;
}

function parsePasswd(text: string): PasswdEntry[] {
  const entries: PasswdEntry[] = [];
  for (const fields of records(text)) {
    const [name = '', , uid = '', gid = '', , home = ''] = fields;
    const uidNumber = parseRecordId(uid);
    const gidNumber = parseRecordId(gid);
    // A malformed line is skipped, as libc and libcontainer skip it, rather than failing the run.
    if (name === '' || uidNumber === undefined || gidNumber === undefined) continue;
    entries.push({ name, uid: uidNumber, gid: gidNumber, home });
  }
  return entries;
}

function parseGroup(text: string): GroupEntry[] {
  const entries: GroupEntry[] = [];
  for (const fields of records(text)) {
    const [name = '', , gid = '', members = ''] = fields;
    const gidNumber = parseRecordId(gid);
    if (name === '' || gidNumber === undefined) continue;
    entries.push({ name, gid: gidNumber, members: members.split(',').filter((m) => m !== '') });
  }
  return entries;
}

function* records(text: string): Generator<string[]> {
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    yield line.split(':');
  }
}

function parseRecordId(field: string): number | undefined {
  if (!/^\d+$/.test(field)) return undefined;
  const id = Number(field);
  return id <= maxId ? id : undefined;
}

/**
 * A file of the image, as the container would see it: the path resolved inside the rootfs (an
 * /etc that is a symbolic link to a host directory is followed within the rootfs, never out of
 * it), opened without following a last link and without blocking on a fifo. Undefined when there
 * is no regular file there.
 */
async function readInRootfs(rootfs: string, file: string): Promise<string | undefined> {
  const hostPath = path.join(rootfs, await resolveInRoot(rootfs, file));
  let handle;
  try {
    handle = await open(hostPath, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    if (isErrno(error, 'ENOENT', 'ENOTDIR', 'ELOOP', 'ENXIO')) return undefined;
    throw new ImageFileUnreadableError(file, rootfs, error);
  }
  try {
    if (!(await handle.stat()).isFile()) return undefined;
    return await handle.readFile('utf8');
  } catch (error) {
    throw new ImageFileUnreadableError(file, rootfs, error);
  } finally {
    await handle.close();
  }
}

function isErrno(error: unknown, ...codes: string[]): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code !== undefined && codes.includes(code);
}

const protocols = ['tcp', 'udp', 'sctp'] as const;

function parseExposedPorts(ports: Readonly<Record<string, object>>): ExposedPort[] {
  const seen = new Map<string, ExposedPort>();
  for (const key of Object.keys(ports)) {
    const match = /^(\d+)(?:\/([A-Za-z]+))?$/.exec(key);
    if (match === null) throw new InvalidExposedPortError(key, 'expected PORT or PORT/PROTOCOL');
    const port = Number(match[1]);
    if (port < 1 || port > 65535) throw new InvalidExposedPortError(key, 'the port is not between 1 and 65535');
    // Docker's default protocol, when the key names none.
    const protocol = (match[2] ?? 'tcp').toLowerCase();
    if (!isProtocol(protocol)) throw new InvalidExposedPortError(key, `unknown protocol ${JSON.stringify(match[2])}`);
    seen.set(`${port}/${protocol}`, { port, protocol });
  }
  return [...seen.values()].sort((a, b) => a.port - b.port || protocols.indexOf(a.protocol) - protocols.indexOf(b.protocol));
}

function isProtocol(text: string): text is ExposedPort['protocol'] {
  return (protocols as readonly string[]).includes(text);
}

/** Linux's real-time signals as Docker names them: glibc keeps 32 and 33 for itself. */
const rtMin = 34;
const rtMax = 64;

/** "SIGINT", "INT", "int" and "2" all become "SIGINT"; real-time signals as SIGRTMIN+n / SIGRTMAX-n. */
function normalizeStopSignal(text: string): string {
  const number = signalNumber(text);
  if (number === undefined) throw new InvalidStopSignalError(text);
  if (number < rtMin) return signalName(number);
  if (number === rtMin) return 'SIGRTMIN';
  if (number === rtMax) return 'SIGRTMAX';
  // Docker's table names the first half from SIGRTMIN up and the second from SIGRTMAX down.
  return number - rtMin <= (rtMax - rtMin) / 2 ? `SIGRTMIN+${number - rtMin}` : `SIGRTMAX-${rtMax - number}`;
}

function signalNumber(text: string): number | undefined {
  if (/^\d+$/.test(text)) {
    const number = Number(text);
    const known = (number >= 1 && number < rtMin && signalName(number) !== `SIG${number}`) || (number >= rtMin && number <= rtMax);
    return known ? number : undefined;
  }
  const upper = text.toUpperCase();
  const name = upper.startsWith('SIG') ? upper : `SIG${upper}`;
  const realtime = /^SIGRT(MIN|MAX)(?:([+-])(\d+))?$/.exec(name);
  if (realtime !== null) {
    const [, base, sign, offset] = realtime;
    if (sign !== undefined && sign !== (base === 'MIN' ? '+' : '-')) return undefined;
    const number = base === 'MIN' ? rtMin + Number(offset ?? 0) : rtMax - Number(offset ?? 0);
    return number >= rtMin && number <= rtMax ? number : undefined;
  }
  return osConstants.signals[name as keyof typeof osConstants.signals];
}

function parseVolumes(volumes: Readonly<Record<string, object>>): string[] {
  const paths = new Set<string>();
  for (const key of Object.keys(volumes)) {
    if (!path.posix.isAbsolute(key)) throw new InvalidVolumeError(key);
    const normal = path.posix.normalize(key);
    paths.add(normal.length > 1 && normal.endsWith('/') ? normal.slice(0, -1) : normal);
  }
  return [...paths];
}

/**
 * Docker's capabilities: the default set bounding, effective and permitted for root; for any other
 * uid only the bounding set, since execve(2) clears a non-root process's effective and permitted
 * sets anyway and the spec should say what the process really holds. Never inheritable or
 * ambient, as Docker since 20.10.14 (CVE-2022-24769).
 */
function capabilitiesFor(uid: number): NonNullable<Spec['process']['capabilities']> {
  if (uid !== 0) return { bounding: [...defaultCapabilities] };
  return { bounding: [...defaultCapabilities], effective: [...defaultCapabilities], permitted: [...defaultCapabilities] };
}

function requireMapped(userNamespace: NonNullable<ImageSpecInput['userNamespace']>, user: ResolvedUser): void {
  if (!isMapped(userNamespace.uidMappings, user.uid)) throw new UnmappedIdError('uid', user.uid);
  for (const gid of user.additionalGids) {
    if (!isMapped(userNamespace.gidMappings, gid)) throw new UnmappedIdError('gid', gid);
  }
}

function isMapped(mappings: readonly IdMapping[], id: number): boolean {
  return mappings.some((m) => id >= m.containerID && id < m.containerID + m.size);
}

/**
 * What `runc spec` (1.1) writes, with Docker's changes: a writable rootfs, no terminal, and
 * /sys/devices/virtual/powercap masked too (moby masks it since CVE-2020-8694). Built anew on every
 * call, so that a caller may change what it gets.
 */
function defaultSpec(
  userNamespace: ImageSpecInput['userNamespace'],
  hostname: string,
  process: Pick<Spec['process'], 'args' | 'env' | 'cwd' | 'user' | 'capabilities' | 'rlimits'>,
): Spec {
  const devptsOptions = ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'];
  const mounts: Mount[] = [
    { destination: '/proc', type: 'proc', source: 'proc' },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    {
      destination: '/dev/pts',
      type: 'devpts',
      source: 'devpts',
      // devpts refuses a gid=5 (tty) its user namespace does not map; `runc spec --rootless` drops it for that reason.
      options: userNamespace === undefined || isMapped(userNamespace.gidMappings, 5) ? devptsOptions : devptsOptions.filter((o) => o !== 'gid=5'),
    },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    // A sysfs mount stays possible in a user namespace: the container has its own network namespace.
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] },
  ];
  const namespaces: NonNullable<NonNullable<Spec['linux']>['namespaces']> = [
    { type: 'pid' },
    { type: 'network' },
    { type: 'ipc' },
    { type: 'uts' },
    { type: 'mount' },
  ];
  const linux: NonNullable<Spec['linux']> = {
    resources: { devices: [{ allow: false, access: 'rwm' }] },
    namespaces,
    maskedPaths: [
      '/proc/acpi',
      '/proc/asound',
      '/proc/kcore',
      '/proc/keys',
      '/proc/latency_stats',
      '/proc/timer_list',
      '/proc/timer_stats',
      '/proc/sched_debug',
      '/sys/firmware',
      '/proc/scsi',
      '/sys/devices/virtual/powercap',
    ],
    readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
  };
  if (userNamespace !== undefined) {
    namespaces.push({ type: 'user' });
    linux.uidMappings = userNamespace.uidMappings.map((m) => ({ containerID: m.containerID, hostID: m.hostID, size: m.size }));
    linux.gidMappings = userNamespace.gidMappings.map((m) => ({ containerID: m.containerID, hostID: m.hostID, size: m.size }));
  }
  return {
    ociVersion: '1.0.2-dev',
    process: {
      // Pipes, not a terminal: the runtime gives every container pipes held by its monitor.
      terminal: false,
      ...process,
      // Docker and Podman leave setuid programs working (sudo, an entrypoint's su).
      noNewPrivileges: false,
    },
    root: { path: 'rootfs', readonly: false },
    hostname,
    mounts,
    linux,
  };
}
