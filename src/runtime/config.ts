/**
 * The runtime's configuration, resolved once: the defaults in config/defaults.json, then a
 * configuration file (RUNTIME_CONFIG, or /etc/runtime/config.json when it exists), then
 * environment variables, then global command-line flags. Later layers win.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { s, type Infer } from '../system/schema.js';
import { RuntimeError } from './errors.js';

export const logLevels = ['error', 'warn', 'info', 'debug'] as const;
export type LogLevel = (typeof logLevels)[number];
export const ociRuntimes = ['runc', 'crun'] as const;
export type OciRuntimeName = (typeof ociRuntimes)[number];

export const configSchema = s.strictObject({
  /** Where container state lives: <stateRoot>/<id>/state.json. */
  stateRoot: s.string().min(1),
  /** Where bare `runtime checkpoint <id>` puts its images: <checkpointRoot>/<id>/checkpoint. */
  checkpointRoot: s.string().min(1),
  /** The image store (`run --image`): layers unpacked once, each container's writable layer. */
  imageRoot: s.string().min(1),
  /** The criu binary: a path, or empty to search PATH. */
  criu: s.string(),
  /** The OCI runtime that creates namespaces and the init process. */
  ociRuntime: s.enum(ociRuntimes),
  /**
   * The cgroup under which containers that name none get theirs: <cgroupParent>/<id>. Two
   * runtimes with separate state roots that may use the same ids need separate parents.
   */
  cgroupParent: s.string().regex(/^(\/[A-Za-z0-9_.+-]+)+$/, 'an absolute cgroup path such as /runtime'),
  /** The oldest CRIU accepted, checked through the RPC VERSION request. */
  minCriuVersion: s.string().regex(/^\d+\.\d+(\.\d+)?$/),
  logLevel: s.enum(logLevels),
  logFormat: s.enum(['text', 'json']),
  /** Log destination; empty for stderr. */
  logFile: s.string(),
});

export type RuntimeConfig = Readonly<Infer<typeof configSchema>>;

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
  imageRoot: 'RUNTIME_IMAGE_ROOT',
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
  throw new InvalidConfigError(source, `${issue.path.map(String).join('.') || '(top level)'}: ${issue.message}`);
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
