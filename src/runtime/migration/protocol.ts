/**
 * What a live migration's source and destination say to each other over their command channel
 * (channel.ts), typed and versioned. One migration runs in this order:
 *
 *   source                                   destination
 *   hello     ─────────────────────────────▶
 *             ◀───────────────────────────── welcome
 *   offer     ─────────────────────────────▶
 *             ◀───────────────────────────── accept (stop-and-copy: its page server's port)
 *   pre-copy only, while the container runs:
 *     pre-dump (round n) ──────────────────▶
 *             ◀───────────────────────────── page-server (its port: round n's pages go there)
 *     ... as many rounds as the source's rules want, then
 *     dump     ────────────────────────────▶
 *             ◀───────────────────────────── page-server (the final dump's)
 *   images + their data stream (a tar) ─────▶
 *   rootfs + its data stream ──────────────▶  (unless the storage is shared)
 *   restore   ─────────────────────────────▶
 *             ◀───────────────────────────── restored (its tasks held stopped)
 *   done      ─────────────────────────────▶  (the source let go: resumed there)
 *             ◀───────────────────────────── settled
 *
 * The source decides alone: the container moves once `restored` reaches it, and stays if it does
 * not. Its word (`done`, or `abort` after a `restore`) is what lets the destination run the copy
 * it holds stopped, or drop it; when the command channel breaks before `settled`, the source says
 * it again over new connections, each `hello`, `welcome`, `verdict`, `settled`, naming the
 * migration by the token of its offer. A destination that never hears it keeps the copy stopped:
 * never both hosts running the container, never neither holding it.
 *
 * Either side may send `abort` (a decision: the migration is called off) or `error` (a failure,
 * with the code and hint of the error it was, rebuilt on the other side as a MigrationPeerError).
 * Every message read from the peer is checked against its schema here: the peer is another host,
 * possibly running another version of the runtime, and a message that does not fit says which
 * field is wrong rather than failing somewhere later.
 */
import { isIP } from 'node:net';
import { s, type Validator } from '../../system/schema.js';
import { RuntimeError } from '../errors.js';
import type { PublishedPort } from '../ports.js';

/** Sent in hello and welcome; a side that gets another version refuses the peer rather than half-understand it. */
export const PROTOCOL_VERSION = 4;

/** The version of the criu binary a side restores or dumps with (CRIU's own three numbers). */
export interface CriuVersion {
  readonly major: number;
  readonly minor: number;
  readonly sublevel: number;
}

/** The source introduces itself: the first message on every channel. */
export interface HelloMessage {
  readonly type: 'hello';
  /** PROTOCOL_VERSION of the source. */
  readonly version: number;
  /** The source's package version, for messages and logs only. */
  readonly runtimeVersion: string;
  readonly criu: CriuVersion;
}

/** The destination's answer to hello, the same fields about itself. */
export interface WelcomeMessage {
  readonly type: 'welcome';
  readonly version: number;
  readonly runtimeVersion: string;
  readonly criu: CriuVersion;
}

/** Where the container's root filesystem comes from on the destination. */
export type RootfsOffer =
  /** Nothing to copy: the bundle's rootfs is already there (shared storage, or an image both hosts have). */
  | { readonly kind: 'none' }
  /** A directory the source copies over (a rootfs message and its stream follow), to be put at path. */
  | { readonly kind: 'directory'; readonly path: string }
  /**
   * A container made from an image (the `image` storage driver): the destination's image store
   * must hold the same image (by manifest digest, its layers mapped for shift when given); the
   * rootfs message's stream is the container's place in the source's store (its writable layer
   * and its network files: /etc/hosts, hostname, resolv.conf), without the image's layers.
   */
  | {
      readonly kind: 'image';
      readonly manifestDigest: string;
      /** The reference the source's store has it by, for messages and the destination's records. */
      readonly reference: string;
      /** The container's place in the source's store: the spec's paths below it are moved to the destination's. */
      readonly place: string;
      readonly shift?: { readonly uid: IdRange; readonly gid: IdRange };
    };

/** A user namespace's ids from 0: the host's from hostId, size of them. */
export interface IdRange {
  readonly hostId: number;
  readonly size: number;
}

/**
 * stop-and-copy: every page dumped into the destination's page server while the container is
 * frozen; post-copy: pages fetched lazily from the source's page server after the restore;
 * pre-copy: pre-dump rounds while the container runs, each into a page server of its own, the
 * final dump sending only what the last round left (CRIU's parent images).
 */
export type MigrationMode = 'stop-and-copy' | 'post-copy' | 'pre-copy';

/** The container the source proposes to move, and how. */
export interface OfferMessage {
  readonly type: 'offer';
  /** The container's id, kept on the destination. */
  readonly id: string;
  readonly mode: MigrationMode;
  /** The images directory and rootfs are on storage both hosts see: nothing is streamed. */
  readonly sharedStorage: boolean;
  /** The bundle path the container is restored from on the destination. */
  readonly bundle: string;
  /** The dump kept established TCP connections (CRIU's --tcp-established), so the restore must too. */
  readonly tcpEstablished: boolean;
  /** CRIU's cpuinfo.img of the source, base64: the destination runs `criu cpuinfo check` with it. */
  readonly cpuinfo: string;
  readonly rootfs: RootfsOffer;
  /** The text of the container's config.json on the source, which the destination's bundle is made from. */
  readonly config: string;
  /** The images' size, about (the container's memory in use), when known: the destination checks its free space first. */
  readonly imageBytes?: number;
  /** The rootfs's size on disk when it is copied over, for the same check. */
  readonly rootfsBytes?: number;
  /** Names this migration in a verdict sent over another connection (128 random bits, hex). */
  readonly token: string;
  /**
   * The host ports the container publishes (`run -p`), which the destination publishes too (its
   * monitor forwards them). Version 4: an older receiver would drop them.
   */
  readonly ports?: readonly PublishedPort[];
}

/** The destination takes the offer. */
export interface AcceptMessage {
  readonly type: 'accept';
  /** Stop-and-copy: where the destination's page server listens for the source's pages. */
  readonly pageServer?: { readonly port: number };
}

/** Pre-copy: round n of pre-dumps comes; the destination starts a page server for it. */
export interface PreDumpMessage {
  readonly type: 'pre-dump';
  /** 1 for the first round, each next one more. */
  readonly round: number;
}

/** Pre-copy: the rounds are over, the final dump comes (the container frozen from now). */
export interface DumpMessage {
  readonly type: 'dump';
}

/** Pre-copy: where the page server for the round (or the final dump) just asked for listens. */
export interface PageServerMessage {
  readonly type: 'page-server';
  readonly port: number;
}

/** A tar of the images directory follows as one data stream. */
export interface ImagesMessage {
  readonly type: 'images';
  /** How many files the tar holds, and their total size: the destination checks both. */
  readonly files: number;
  readonly bytes: number;
}

/** The root filesystem follows as one data stream. */
export interface RootfsMessage {
  readonly type: 'rootfs';
  readonly bytes: number;
}

/** Everything is there: the destination restores now. */
export interface RestoreMessage {
  readonly type: 'restore';
  /** Post-copy: the source's lazy-pages server, which CRIU's lazy-pages daemon on the destination asks for pages. */
  readonly lazyPageServer?: { readonly host: string; readonly port: number };
}

/** The destination restored the container and holds it stopped, for the source's word. */
export interface RestoredMessage {
  readonly type: 'restored';
  /** The restored init's pid on the destination. */
  readonly pid: number;
  /** From the end of the dump to the restored init there, as the destination measured it. */
  readonly downtimeMs?: number;
}

/** The source has let go of the container: the destination resumes it and owns it from now. */
export interface DoneMessage {
  readonly type: 'done';
}

/** The source's word on a migration, over a connection of its own when the first one broke. */
export interface VerdictMessage {
  readonly type: 'verdict';
  readonly id: string;
  /** The offer's token. */
  readonly token: string;
  /** true: the source let go (as `done`); false: it kept the container (as `abort`). */
  readonly moved: boolean;
}

/** The destination acted on the source's word: the container runs there, or nothing of it is left. */
export interface SettledMessage {
  readonly type: 'settled';
}

/** The migration is called off by one side's decision (not a failure): the source keeps the container. */
export interface AbortMessage {
  readonly type: 'abort';
  readonly reason: string;
}

/** One side failed: the error it raised, with its code and hint, for the other side to rebuild. */
export interface ErrorMessage {
  readonly type: 'error';
  readonly code: string;
  readonly message: string;
  readonly hint?: string;
}

export type MigrationMessage =
  | HelloMessage
  | WelcomeMessage
  | OfferMessage
  | AcceptMessage
  | PreDumpMessage
  | DumpMessage
  | PageServerMessage
  | ImagesMessage
  | RootfsMessage
  | RestoreMessage
  | RestoredMessage
  | DoneMessage
  | VerdictMessage
  | SettledMessage
  | AbortMessage
  | ErrorMessage;

export type MigrationMessageType = MigrationMessage['type'];

/** The message of one type, narrowed. */
export type MessageOf<T extends MigrationMessageType> = Extract<MigrationMessage, { readonly type: T }>;

const count = () => s.number().int().nonnegative();
const port = () =>
  s
    .number()
    .int()
    .positive()
    .refine((n) => n <= 65535, 'must be a TCP port (1 to 65535)');
const criuVersion = s.object({ major: count(), minor: count(), sublevel: count() });
const base64 = /^[A-Za-z0-9+/]*={0,2}$/;
const TOKEN = /^[0-9a-f]{32}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;
const idRange = s.object({ hostId: s.number().int().positive(), size: s.number().int().positive() });

// Objects drop keys they do not know, so that a later version may add an optional field without a
// new protocol version; a new required field or a changed meaning needs PROTOCOL_VERSION + 1.
const messageSchema: Validator<MigrationMessage> = s.discriminatedUnion('type', [
  s.object({ type: s.literal('hello'), version: s.number().int().positive(), runtimeVersion: s.string(), criu: criuVersion }),
  s.object({ type: s.literal('welcome'), version: s.number().int().positive(), runtimeVersion: s.string(), criu: criuVersion }),
  s.object({
    type: s.literal('offer'),
    id: s.string().min(1),
    mode: s.enum(['stop-and-copy', 'post-copy', 'pre-copy']),
    sharedStorage: s.boolean(),
    bundle: s.string().min(1),
    tcpEstablished: s.boolean(),
    cpuinfo: s.string().regex(base64, 'must be base64'),
    config: s.string().min(1),
    rootfs: s.discriminatedUnion('kind', [
      s.object({ kind: s.literal('none') }),
      s.object({ kind: s.literal('directory'), path: s.string().min(1) }),
      s.object({
        kind: s.literal('image'),
        manifestDigest: s.string().regex(DIGEST, 'must be sha256:<64 hexadecimal digits>'),
        reference: s.string().min(1),
        place: s.string().min(1),
        shift: s.object({ uid: idRange, gid: idRange }).optional(),
      }),
    ]),
    imageBytes: count().optional(),
    rootfsBytes: count().optional(),
    token: s.string().regex(TOKEN, 'must be 32 hexadecimal digits'),
    ports: s
      .array(s.object({ hostIp: s.string().refine((ip) => isIP(ip) !== 0, 'must be an IP address'), hostPort: port(), containerPort: port() }))
      .optional(),
  }),
  s.object({ type: s.literal('accept'), pageServer: s.object({ port: port() }).optional() }),
  s.object({ type: s.literal('pre-dump'), round: s.number().int().positive() }),
  s.object({ type: s.literal('dump') }),
  s.object({ type: s.literal('page-server'), port: port() }),
  s.object({ type: s.literal('images'), files: count(), bytes: count() }),
  s.object({ type: s.literal('rootfs'), bytes: count() }),
  s.object({ type: s.literal('restore'), lazyPageServer: s.object({ host: s.string().min(1), port: port() }).optional() }),
  s.object({ type: s.literal('restored'), pid: s.number().int().positive(), downtimeMs: s.number().nonnegative().optional() }),
  s.object({ type: s.literal('done') }),
  s.object({ type: s.literal('verdict'), id: s.string().min(1), token: s.string().regex(TOKEN, 'must be 32 hexadecimal digits'), moved: s.boolean() }),
  s.object({ type: s.literal('settled') }),
  s.object({ type: s.literal('abort'), reason: s.string() }),
  s.object({ type: s.literal('error'), code: s.string().min(1), message: s.string(), hint: s.string().optional() }),
]);

/** The peer sent something this side cannot read: a frame, or a message that does not fit its schema. */
export class ChannelProtocolError extends RuntimeError {
  readonly code = 'MIGRATION_PROTOCOL' as const;
  constructor(
    detail: string,
    /** The message's field at fault ("offer.mode"), when a message was readable JSON. */
    readonly field?: string,
  ) {
    super(`the migration peer sent what this runtime cannot read: ${detail}`, {
      hint: 'both hosts need a runtime speaking the same migration protocol; compare `runtime --version` on them',
    });
  }
}

/** The connection ended while this side still waited for something of the peer. */
export class ChannelClosedError extends RuntimeError {
  readonly code = 'MIGRATION_CHANNEL_CLOSED' as const;
  constructor(
    /** What was awaited: "a message", "the images' data stream". */
    readonly awaited: string,
    options: { readonly cause?: unknown; readonly remote?: string } = {},
  ) {
    super(`the migration channel${options.remote ? ` to ${options.remote}` : ''} closed while waiting for ${awaited}`, {
      cause: options.cause,
      hint: "the other host's runtime ended or lost the connection: read its output",
    });
  }
}

/**
 * An error the peer raised and sent as an `error` message, rebuilt with its code and hint, so a
 * caller switching on `code` sees the same code whichever host failed.
 */
export class MigrationPeerError extends RuntimeError {
  constructor(
    readonly code: string,
    message: string,
    hint: string | undefined,
  ) {
    super(message, hint === undefined ? {} : { hint });
  }
}

/** The peer called the migration off (an `abort` message) where this side expected another message. */
export class MigrationAbortedError extends RuntimeError {
  readonly code = 'MIGRATION_ABORTED' as const;
  constructor(readonly reason: string) {
    super(`the migration peer aborted the migration: ${reason}`, { hint: 'the container stays on the source host; read the reason above' });
  }
}

/** The value checked against the schema, or a ChannelProtocolError naming the first field at fault. */
function check(value: unknown): MigrationMessage {
  const parsed = messageSchema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const path = issue?.path.map(String).join('.') ?? '';
  const type = typeof value === 'object' && value !== null ? (value as { type?: unknown }).type : undefined;
  // "offer.mode" rather than "mode": which message's field, once the type itself is known.
  const field = path === '' ? undefined : path === 'type' || typeof type !== 'string' ? path : `${type}.${path}`;
  const reason = issue?.message ?? 'invalid';
  throw new ChannelProtocolError(field ? `${field}: ${reason}` : `the message: ${reason}`, field);
}

/** A message's JSON text as received: the checked message, or a ChannelProtocolError naming the field. */
export function parseMessage(text: string): MigrationMessage {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ChannelProtocolError(`a message that is not JSON (${(error as Error).message}): ${text.slice(0, 200)}`);
  }
  return check(value);
}

/** A message value checked the same way (the channel checks what it sends too: a bug here is found here). */
export function checkMessage(value: unknown): MigrationMessage {
  return check(value);
}

/** An error's text beyond this is cut: the message must fit in one frame (a tar's stderr can be long). */
const MAX_ERROR_TEXT = 64 * 1024;

/** The error message that carries error to the peer; anything not a RuntimeError is 'INTERNAL'. */
export function errorMessage(error: unknown): ErrorMessage {
  const cut = (text: string) => (text.length > MAX_ERROR_TEXT ? `${text.slice(0, MAX_ERROR_TEXT)}…` : text);
  // A MigrationPeerError is a RuntimeError too: sent back as it came, the peer's own code.
  if (error instanceof RuntimeError)
    return { type: 'error', code: error.code, message: cut(error.message), ...(error.hint ? { hint: cut(error.hint) } : {}) };
  if (error instanceof Error) return { type: 'error', code: 'INTERNAL', message: cut(error.message) };
  return { type: 'error', code: 'INTERNAL', message: cut(String(error)) };
}

/** The peer's error, rebuilt. */
export function errorFrom(message: ErrorMessage): MigrationPeerError {
  return new MigrationPeerError(message.code, message.message, message.hint);
}

/**
 * The message, narrowed to the type the protocol expects at this point. The peer's `error` is
 * thrown as its MigrationPeerError and its `abort` as a MigrationAbortedError; any other type is
 * the peer out of step, a ChannelProtocolError naming both types.
 */
export function expect<T extends MigrationMessageType>(message: MigrationMessage, type: T): MessageOf<T> {
  if (message.type === type) return message as MessageOf<T>;
  if (message.type === 'error') throw errorFrom(message);
  if (message.type === 'abort') throw new MigrationAbortedError(message.reason);
  throw new ChannelProtocolError(`a ${message.type} message where the protocol expects ${type}`, 'type');
}
