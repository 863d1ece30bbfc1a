/**
 * The runtime's configuration, resolved once: the defaults in config/defaults.json, then a
 * configuration file (RUNTIME_CONFIG, or /etc/runtime/config.json when it exists), then
 * environment variables, then global command-line flags. Later layers win.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { RuntimeError } from './errors.js';

export const logLevels = ['error', 'warn', 'info', 'debug'] as const;
export type LogLevel = (typeof logLevels)[number];
export const ociRuntimes = ['runc', 'crun'] as const;
export type OciRuntimeName = (typeof ociRuntimes)[number];

export const configSchema = z.strictObject({
  /** Where container state lives: <stateRoot>/<id>/state.json. */
  stateRoot: z.string().min(1),
  /** Where bare `runtime checkpoint <id>` puts its images: <checkpointRoot>/<id>/checkpoint. */
  checkpointRoot: z.string().min(1),
  /** The criu binary: a path, or empty to search PATH. */
  criu: z.string(),
  /** The OCI runtime that creates namespaces and the init process. */
  ociRuntime: z.enum(ociRuntimes),
  /**
   * The cgroup under which containers that name none get theirs: <cgroupParent>/<id>. Two
   * runtimes with separate state roots that may use the same ids need separate parents.
   */
  cgroupParent: z.string().regex(/^(\/[A-Za-z0-9_.+-]+)+$/, 'an absolute cgroup path such as /runtime'),
  /** The oldest CRIU accepted, checked through the RPC VERSION request. */
  minCriuVersion: z.string().regex(/^\d+\.\d+(\.\d+)?$/),
  logLevel: z.enum(logLevels),
  logFormat: z.enum(['text', 'json']),
  /** Log destination; empty for stderr. */
  logFile: z.string(),
});

export type RuntimeConfig = Readonly<z.infer<typeof configSchema>>;

export class InvalidConfigError extends RuntimeError {
  readonly code = 'INVALID_CONFIG' as const;
  constructor(
    readonly source: string,
    reason: string,
  ) {
    super(`invalid configuration in ${source}: ${reason}`, {
      hint: 'see "Configuration" in the README for the keys and their values',
    });
  }
}

/** The environment variable for each key. */
export const environmentVariables: Readonly<Record<keyof RuntimeConfig, string>> = {
  stateRoot: 'RUNTIME_ROOT',
  checkpointRoot: 'RUNTIME_CHECKPOINT_ROOT',
  criu: 'RUNTIME_CRIU',
  ociRuntime: 'RUNTIME_OCI_RUNTIME',
  cgroupParent: 'RUNTIME_CGROUP_PARENT',
  minCriuVersion: 'RUNTIME_MIN_CRIU_VERSION',
  logLevel: 'RUNTIME_LOG_LEVEL',
  logFormat: 'RUNTIME_LOG_FORMAT',
  logFile: 'RUNTIME_LOG',
};

export const defaultsFile = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../config/defaults.json');
const systemConfigFile = '/etc/runtime/config.json';

function readLayer(file: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new InvalidConfigError(file, (error as Error).message);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new InvalidConfigError(file, 'not a JSON object');
  return parsed as Record<string, unknown>;
}

function validate(layer: Record<string, unknown>, source: string): RuntimeConfig {
  const result = configSchema.safeParse(layer);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  throw new InvalidConfigError(source, `${issue.path.join('.') || '(top level)'}: ${issue.message}`);
}

export interface ConfigSources {
  readonly environment?: NodeJS.ProcessEnv;
  /** Flags given on the command line (or options given to the library). */
  readonly overrides?: Partial<RuntimeConfig>;
  readonly defaultsPath?: string;
}

export function resolveConfig(sources: ConfigSources = {}): RuntimeConfig {
  const environment = sources.environment ?? process.env;
  const defaults = readLayer(sources.defaultsPath ?? defaultsFile);
  const fileLayerPath = environment.RUNTIME_CONFIG ?? (existsSync(systemConfigFile) ? systemConfigFile : undefined);
  const fileLayer = fileLayerPath ? readLayer(fileLayerPath) : {};
  if (fileLayerPath) validate({ ...defaults, ...fileLayer }, fileLayerPath);

  const environmentLayer: Record<string, string> = {};
  for (const [key, variable] of Object.entries(environmentVariables)) {
    const value = environment[variable];
    if (value !== undefined) environmentLayer[key] = value;
  }
  validate({ ...defaults, ...fileLayer, ...environmentLayer }, 'the environment');

  const overrides = Object.fromEntries(Object.entries(sources.overrides ?? {}).filter(([, v]) => v !== undefined));
  return validate({ ...defaults, ...fileLayer, ...environmentLayer, ...overrides }, 'the command line');
}
