/**
 * What travels between runtime processes, all JSON and all validated on read:
 *   - the job a monitor process is started with (in its environment),
 *   - the report it sends back once the init runs or has failed (on its fd 3),
 *   - the requests and answers of its control socket (one line each way).
 * Errors travel with their code and hint, and CRIU's failure details, and are rebuilt as coded
 * errors on the other side.
 */
import { s, type Validator } from '../../system/schema.js';
import { cgroupsModes, type RestoreCriuOptions } from '../../criu/options.js';
import { configSchema, type RuntimeConfig } from '../config.js';
import { RuntimeError } from '../errors.js';
import { checkJson } from '../json.js';
import { CriuRequestError, type CriuFailure } from '../../criu/errors.js';

/** The CRIU options a reset may take: the snapshot has its own images and work directory. */
export const resetCriuKeys = ['tcpEstablished', 'extUnixSk', 'shellJob', 'fileLocks', 'manageCgroupsMode', 'lazyPages'] as const;
export type ResetCriuOptions = Pick<RestoreCriuOptions, (typeof resetCriuKeys)[number]>;

/**
 * The reset subset of any options object: the one place it is written out. A false flag is
 * dropped, but for lazyPages: false there says "eager", where unset lets the reset choose.
 */
export function pickResetCriuOptions(options: ResetCriuOptions): ResetCriuOptions {
  const picked: Partial<Record<(typeof resetCriuKeys)[number], unknown>> = {};
  for (const key of resetCriuKeys) {
    if (options[key] !== undefined && (options[key] !== false || key === 'lazyPages')) picked[key] = options[key];
  }
  return picked as ResetCriuOptions;
}

/** What a reset asks for: which snapshot, and how to restore it. */
export interface ResetSpec {
  /** The container whose snapshot it is (itself, or the source of a copy). */
  readonly sourceId: string;
  readonly name: string;
  readonly criu: ResetCriuOptions;
  /** How many stopped standbys of the snapshot to keep ready, so that a reset only switches to one. */
  readonly standbys: number;
}

export interface RunJob {
  /** The criu binary the monitor uses (the container's own); the launcher's configuration when unset. */
  readonly criuBinary?: string;
  readonly kind: 'run';
  readonly id: string;
  readonly pidFile?: string;
}

export interface RestoreJob {
  /** The criu binary the monitor uses (the container's own); the launcher's configuration when unset. */
  readonly criuBinary?: string;
  readonly kind: 'restore';
  readonly id: string;
  readonly imagePath: string;
  readonly criu: RestoreCriuOptions;
  readonly pidFile?: string;
  /** The restored tasks stay stopped (SIGSTOP) until someone resumes them (a migration's destination, once the source let go). */
  readonly leaveStopped?: boolean;
}

export interface ResetJob {
  /** The criu binary the monitor uses (the container's own); the launcher's configuration when unset. */
  readonly criuBinary?: string;
  readonly kind: 'reset';
  readonly id: string;
  readonly reset: ResetSpec;
  readonly pidFile?: string;
}

export type MonitorJob = RunJob | RestoreJob | ResetJob;

export interface SerializedError {
  readonly code: string;
  readonly message: string;
  readonly hint?: string;
  /** CRIU's failure details, when CRIU failed. */
  readonly failure?: CriuFailure;
}

/** What the monitor tells the command that launched it, once the init runs or has failed. */
export type MonitorReport = { readonly ok: true; readonly pid: number } | { readonly ok: false; readonly error: SerializedError };

/**
 * A reset as the caller asks it; the monitor finds the snapshot (the newest, or a copy's source's)
 * and checks the request itself, so that a command asking it loads next to nothing.
 */
export interface ResetAsk {
  readonly name?: string;
  readonly standby?: boolean;
  readonly standbys?: number;
  readonly criu: ResetCriuOptions;
}

/**
 * A reset, or the container's OCI state: the native front (cli/native/client.c) asks for it,
 * and prints what the monitor renders rather than render anything itself.
 */
export type ResetControlRequest = { readonly op: 'reset'; readonly reset: ResetAsk };
export type ControlRequest = ResetControlRequest | { readonly op: 'state' };

/**
 * A reset's answer. `display` is what the CLI prints for an error (message and hint, as the Node
 * CLI shows the rebuilt error); Node clients rebuild the error and ignore it.
 */
export type ResetAnswer = MonitorReport & { readonly display?: string };
/** A state request's answer: `display` is the state's JSON as `runtime state` prints it. */
export type StateAnswer =
  { readonly ok: true; readonly display: string } | { readonly ok: false; readonly error: SerializedError; readonly display: string };
export type ControlResponse = ResetAnswer | StateAnswer;

const criuOptions = s
  .object({
    imagePath: s.string(),
    workPath: s.string(),
    tcpEstablished: s.boolean(),
    extUnixSk: s.boolean(),
    shellJob: s.boolean(),
    fileLocks: s.boolean(),
    manageCgroupsMode: s.enum(cgroupsModes),
    autoDedup: s.boolean(),
    lazyPages: s.boolean(),
    pageServer: s.string(),
    tls: s.object({ cert: s.string(), key: s.string(), ca: s.string() }).strict(),
    lazyPageServer: s.object({ host: s.string(), port: s.number() }).strict(),
  })
  .partial()
  .strict();

const resetSpec = s.object({
  sourceId: s.string().min(1),
  name: s.string().min(1),
  criu: criuOptions.omit({ imagePath: true, workPath: true, autoDedup: true, pageServer: true }),
  standbys: s.number().int().nonnegative(),
});

const monitorJob = s.discriminatedUnion('kind', [
  s.object({ kind: s.literal('run'), id: s.string().min(1), pidFile: s.string().optional(), criuBinary: s.string().optional() }),
  s.object({
    kind: s.literal('restore'),
    id: s.string().min(1),
    imagePath: s.string(),
    criu: criuOptions,
    pidFile: s.string().optional(),
    criuBinary: s.string().optional(),
    leaveStopped: s.boolean().optional(),
  }),
  s.object({ kind: s.literal('reset'), id: s.string().min(1), reset: resetSpec, pidFile: s.string().optional(), criuBinary: s.string().optional() }),
]);

const failure = s.object({
  request: s.string(),
  errno: s.number().optional(),
  criuMessage: s.string().optional(),
  logPath: s.string().optional(),
  logTail: s.array(s.string()),
});

const serializedError = s.object({ code: s.string(), message: s.string(), hint: s.string().optional(), failure: failure.optional() });

const report = s.discriminatedUnion('ok', [
  s.object({ ok: s.literal(true), pid: s.number().int().positive() }),
  s.object({ ok: s.literal(false), error: serializedError }),
]);

const controlRequest = s.discriminatedUnion('op', [
  s.object({
    op: s.literal('reset'),
    reset: s.object({
      name: s.string().min(1).optional(),
      standby: s.boolean().optional(),
      standbys: s.number().int().nonnegative().optional(),
      criu: resetSpec.shape.criu,
    }),
  }),
  s.object({ op: s.literal('state') }),
]);

/** A monitor is started with the launching command's configuration and its job. */
const envelope = s.object({ config: configSchema, job: monitorJob });

export interface MonitorEnvelope {
  readonly config: RuntimeConfig;
  readonly job: MonitorJob;
}

export class ProtocolError extends RuntimeError {
  readonly code = 'MONITOR_PROTOCOL' as const;
  constructor(what: string, detail: string) {
    super(`${what} was not understood: ${detail}`, { hint: "the runtime that sent it may be of another version; restart the container's monitor" });
  }
}

function parse<T>(schema: Validator<T>, text: string, what: string): T {
  const checked = checkJson(schema, text, 'the message');
  if (!checked.ok) throw new ProtocolError(what, checked.syntax ? `not JSON: ${text.slice(0, 200)}` : checked.reason);
  return checked.value;
}

export function parseMonitorEnvelope(text: string): MonitorEnvelope {
  return parse(envelope, text, "the monitor's job") as MonitorEnvelope;
}

export function parseMonitorReport(text: string): MonitorReport {
  return parse(report, text, "the monitor's report") as MonitorReport;
}

export function parseControlRequest(text: string): ControlRequest {
  return parse(controlRequest, text, 'the control request') as ControlRequest;
}

/** A reset's answer (Node clients ask for nothing else). */
export function parseControlResponse(text: string): ResetAnswer {
  return parse(report, text, "the monitor's answer") as ResetAnswer;
}

/**
 * An error reported by another runtime process, rebuilt with the code and hint it had there, so
 * a program switching on `code` sees the same code whichever process failed.
 */
export class ReportedError extends RuntimeError {
  constructor(
    readonly code: string,
    message: string,
    hint: string | undefined,
  ) {
    super(message, hint === undefined ? {} : { hint });
  }
}

export function serializeError(error: unknown): SerializedError {
  if (error instanceof CriuRequestError)
    return { code: error.code, message: error.message, failure: error.failure, ...(error.hint ? { hint: error.hint } : {}) };
  if (error instanceof RuntimeError) return { code: error.code, message: error.message, ...(error.hint ? { hint: error.hint } : {}) };
  if (error instanceof Error) return { code: 'INTERNAL', message: error.message };
  return { code: 'INTERNAL', message: String(error) };
}

/** The error as the launching process sees it; an internal one points at the monitor's log. */
export function deserializeError(error: SerializedError, monitorLog: string): RuntimeError {
  if (error.code === 'CRIU_FAILED' && error.failure) return new CriuRequestError(error.failure);
  return new ReportedError(error.code, error.message, error.hint ?? `read ${monitorLog}`);
}
