/** Errors of the CRIU layer: each says what failed, where CRIU's log is, and what to do next. */
import { RuntimeError, errnoName } from '../system/errors.js';

const installHint =
  'install CRIU 4.2: run `bash scripts/install-criu.sh` as root (it builds CRIU 4.2.1 into /opt/runtime/criu), ' +
  'or point --criu / RUNTIME_CRIU at a criu binary';

export class CriuNotFoundError extends RuntimeError {
  readonly code = 'CRIU_NOT_FOUND' as const;
  constructor(readonly tried: string) {
    super(`CRIU was not found (${tried})`, { hint: installHint });
  }
}

export class CriuTooOldError extends RuntimeError {
  readonly code = 'CRIU_TOO_OLD' as const;
  constructor(
    readonly binary: string,
    readonly found: string,
    readonly minimum: string,
  ) {
    super(`CRIU at ${binary} is version ${found}; this runtime needs ${minimum} or newer`, { hint: installHint });
  }
}

export class CriuUnusableError extends RuntimeError {
  readonly code = 'CRIU_UNUSABLE' as const;
  constructor(
    readonly binary: string,
    reason: string,
    options: { cause?: unknown } = {},
  ) {
    super(`CRIU at ${binary} could not be used: ${reason}`, { ...options, hint: installHint });
  }
}

export class CriuFeatureMissingError extends RuntimeError {
  readonly code = 'CRIU_FEATURE_MISSING' as const;
  constructor(
    readonly feature: string,
    readonly neededFor: string,
    why: string,
  ) {
    super(`${neededFor} needs the CRIU feature "${feature}", which this kernel or CRIU lacks`, {
      hint: `${why}; \`criu check --feature ${feature}\` shows the details`,
    });
  }
}

export class RpcProtoMissingError extends RuntimeError {
  readonly code = 'CRIU_RPC_PROTO_MISSING' as const;
  constructor(
    readonly path: string,
    options: { cause?: unknown } = {},
  ) {
    super(`CRIU's rpc.proto was not found at ${path}`, {
      ...options,
      hint: 'run `bash scripts/install-criu.sh` as root (it installs /opt/runtime/criu/include/criu/rpc.proto), or set RUNTIME_CRIU_RPC_PROTO',
    });
  }
}

/** What CRIU said when a request failed, with the log to read. */
export interface CriuFailure {
  readonly request: string;
  readonly errno?: number | undefined;
  readonly criuMessage?: string | undefined;
  readonly logPath?: string | undefined;
  /** The last error lines of the log, oldest first. */
  readonly logTail: readonly string[];
}

/** Moves the failure's log elsewhere (before its directory is removed) and says so. */
export function withLogAt(failure: CriuFailure, logPath: string): CriuFailure {
  return { ...failure, logPath };
}

export class CriuRequestError extends RuntimeError {
  readonly code = 'CRIU_FAILED' as const;
  readonly failure: CriuFailure;

  constructor(failure: CriuFailure, options: { cause?: unknown; hint?: string } = {}) {
    const parts = [`CRIU ${failure.request} failed`];
    if (failure.errno)
      parts.push(errnoName(failure.errno).startsWith('errno') ? `errno ${failure.errno}` : `errno ${failure.errno} (${errnoName(failure.errno)})`);
    if (failure.criuMessage) parts.push(failure.criuMessage);
    let message = parts.join(': ');
    if (failure.logTail.length > 0) message += `\n  ${failure.logTail.join('\n  ')}`;
    if (failure.logPath) message += `\n  log: ${failure.logPath}`;
    const known = knownFailureHint(failure);
    const readLog = failure.logPath ? `read ${failure.logPath} for the whole story` : undefined;
    super(message, { ...options, hint: options.hint ?? ([known, readLog].filter((h) => h !== undefined).join('; ') || undefined) });
    this.failure = failure;
  }
}

/**
 * What to do about the failures users meet most, recognised by CRIU's own words. CRIU reads
 * every task's rlimits through prlimit(2), which a root without CAP_SYS_RESOURCE may not do on a
 * process of another uid, unless that process is in a user namespace root owns.
 */
function knownFailureHint(failure: CriuFailure): string | undefined {
  const text = [failure.criuMessage ?? '', ...failure.logTail].join('\n');
  if (/Can't get rlimit \d+: Operation not permitted/.test(text)) {
    return (
      "the container runs processes of a non-root uid and this host's root lacks CAP_SYS_RESOURCE: " +
      'give the container a user namespace (linux.uidMappings in config.json, or `run --image ... --uidmap 0:100000:65536`)'
    );
  }
  return undefined;
}
