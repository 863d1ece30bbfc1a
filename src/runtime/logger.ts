/** A small leveled logger: text or JSON lines, to stderr or a file (--log, --log-format, --debug). */
import { appendFileSync } from 'node:fs';
import type { LogLevel } from './config.js';

const rank: Readonly<Record<LogLevel, number>> = { error: 0, warn: 1, info: 2, debug: 3 };

export interface Logger {
  error(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  debug(message: string, fields?: Record<string, unknown>): void;
}

export const LOGGER = Symbol('Logger');

export interface LoggerOptions {
  readonly level: LogLevel;
  readonly format: 'text' | 'json';
  /** A file to append to; stderr when empty. */
  readonly file: string;
}

export function createLogger(options: LoggerOptions): Logger {
  const emit = (level: LogLevel, message: string, fields: Record<string, unknown> = {}) => {
    if (rank[level] > rank[options.level]) return;
    const time = new Date().toISOString();
    const line =
      options.format === 'json'
        ? JSON.stringify({ time, level, msg: message, ...fields })
        : `${time} ${level.padEnd(5)} ${message}${Object.keys(fields).length ? ` ${formatFields(fields)}` : ''}`;
    if (options.file) appendFileSync(options.file, `${line}\n`);
    else process.stderr.write(`${line}\n`);
  };
  return {
    error: (m, f) => emit('error', m, f),
    warn: (m, f) => emit('warn', m, f),
    info: (m, f) => emit('info', m, f),
    debug: (m, f) => emit('debug', m, f),
  };
}

function formatFields(fields: Record<string, unknown>): string {
  return Object.entries(fields)
    .map(([key, value]) => `${key}=${typeof value === 'string' ? JSON.stringify(value) : JSON.stringify(value)}`)
    .join(' ');
}
