/** Errors cross from the monitor to the command that launched it as JSON, and are rebuilt there. */
import { CriuRequestError, type CriuFailure } from '../../criu/errors.js';
import { RuntimeError } from '../errors.js';
import type { SerializedError } from './job.js';

export class MonitorFailedError extends RuntimeError {
  readonly code = 'MONITOR_FAILED' as const;
  constructor(readonly originalCode: string, message: string, hint: string | undefined, logPath: string) {
    super(message, { hint: hint ?? `read ${logPath}` });
  }
}

export function serializeError(error: unknown): SerializedError {
  if (error instanceof CriuRequestError) return { code: error.code, message: error.message, failure: error.failure, ...(error.hint ? { hint: error.hint } : {}) };
  if (error instanceof RuntimeError) return { code: error.code, message: error.message, ...(error.hint ? { hint: error.hint } : {}) };
  if (error instanceof Error) return { code: 'INTERNAL', message: error.message };
  return { code: 'INTERNAL', message: String(error) };
}

export function deserializeError(error: SerializedError, monitorLog: string): RuntimeError {
  if (error.code === 'CRIU_FAILED' && error.failure) return new CriuRequestError(error.failure as CriuFailure);
  return new MonitorFailedError(error.code, error.message, error.hint, monitorLog);
}
