/**
 * The `runtime` command line: global flags (as runc places them, before the command), then one
 * command. Errors print their message and hint; the exit status is 1 (2 for usage errors).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { commandHelp, parseCommandArgs, type Command, type CommandIo } from './command.js';
import type { Runtime } from '../runtime.js';
import type { RuntimeConfig } from '../config.js';
import type { LocalServices } from './local.js';
import { RuntimeError, UsageError, describeError } from '../errors.js';
/**
 * The commands, each loaded when it is run (or for help): a command's module brings its own
 * dependencies, and `runtime state` must not pay for `runtime image`'s.
 */
export interface CommandEntry {
  readonly name: string;
  load(): Promise<Command>;
}

const entry = (name: string, load: () => Promise<unknown>): CommandEntry => ({ name, load: load as () => Promise<Command> });

export const commands: readonly CommandEntry[] = [
  entry('run', async () => (await import('./commands/run.js')).runCommand),
  entry('checkpoint', async () => (await import('./commands/checkpoint.js')).checkpointCommand),
  entry('restore', async () => (await import('./commands/restore.js')).restoreCommand),
  entry('state', async () => (await import('./commands/state.js')).stateCommand),
  entry('list', async () => (await import('./commands/list.js')).listCommand),
  entry('kill', async () => (await import('./commands/kill.js')).killCommand),
  entry('delete', async () => (await import('./commands/delete.js')).deleteCommand),
  entry('reset', async () => (await import('./commands/reset.js')).resetCommand),
  entry('snapshots', async () => (await import('./commands/snapshots.js')).snapshotsCommand),
  entry('rootfs', async () => (await import('./commands/rootfs.js')).rootfsCommand),
  entry('inspect', async () => (await import('./commands/inspect.js')).inspectCommand),
  entry('image', async () => (await import('./commands/image.js')).imageCommand),
  entry('images', async () => (await import('./commands/images.js')).imagesCommand),
  entry('migrate', async () => (await import('./commands/migrate.js')).migrateCommand),
  entry('receive', async () => (await import('./commands/receive.js')).receiveCommand),
];

const globalFlags = {
  root: { type: 'string', description: 'state root (default /run/runtime; env RUNTIME_ROOT)' },
  'image-root': { type: 'string', description: 'image store (default /var/lib/runtime/images; env RUNTIME_IMAGE_ROOT)' },
  criu: { type: 'string', description: 'criu binary (default: PATH; env RUNTIME_CRIU)' },
  log: { type: 'string', description: 'log file (default: stderr; env RUNTIME_LOG)' },
  'log-format': { type: 'string', description: 'text or json (env RUNTIME_LOG_FORMAT)' },
  debug: { type: 'boolean', description: 'log at debug level' },
  help: { type: 'boolean', short: 'h', description: 'show this help' },
  version: { type: 'boolean', short: 'v', description: 'print the version' },
} as const;

function version(): string {
  const packageJson = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../package.json');
  return (JSON.parse(readFileSync(packageJson, 'utf8')) as { version: string }).version;
}

async function mainHelp(): Promise<string> {
  const loaded = await Promise.all(commands.map((c) => c.load()));
  const lines = [
    'runtime - checkpoint and restore OCI containers through CRIU',
    '',
    'usage: runtime [global flags] <command> [flags] [arguments]',
    '',
    'commands:',
    ...loaded.map((c) => `  ${c.name.padEnd(12)} ${c.summary}`),
    '',
    'global flags:',
    ...Object.entries(globalFlags).map(([name, spec]) => {
      const label = `${'short' in spec ? `-${spec.short}, ` : '    '}--${name}${spec.type === 'string' ? ' VALUE' : ''}`;
      return `  ${label.padEnd(24)} ${spec.description}`;
    }),
    '',
    "Run `runtime <command> --help` for a command's flags.",
  ];
  return `${lines.join('\n')}\n`;
}

/** Splits argv into the global flags and the command with its own arguments. */
function splitGlobal(argv: readonly string[]): { global: string[]; rest: string[] } {
  const global: string[] = [];
  let index = 0;
  while (index < argv.length && argv[index]!.startsWith('-')) {
    const arg = argv[index]!;
    global.push(arg);
    const name = arg.replace(/^--?/, '').split('=')[0]!;
    const spec = (globalFlags as Record<string, { type: string }>)[name];
    if (spec?.type === 'string' && !arg.includes('=')) global.push(argv[++index] ?? '');
    index++;
  }
  return { global, rest: argv.slice(index) };
}

export async function main(argv: readonly string[], io: CommandIo): Promise<number> {
  try {
    const { global, rest } = splitGlobal(argv);
    let parsed;
    try {
      parsed = parseArgs({ args: global, options: globalFlags, strict: true, allowPositionals: false });
    } catch (error) {
      throw new UsageError((error as Error).message, 'see `runtime --help`');
    }
    const values = parsed.values;
    if (values.version) {
      io.stdout.write(`runtime ${version()}\n`);
      return 0;
    }
    const [name, ...commandArgs] = rest;
    if (values.help || name === undefined || name === 'help') {
      const target = name === 'help' ? commands.find((c) => c.name === commandArgs[0]) : undefined;
      io.stdout.write(target ? commandHelp(await target.load()) : await mainHelp());
      return name === undefined && !values.help ? 2 : 0;
    }
    const found = commands.find((c) => c.name === name);
    if (!found) throw new UsageError(`unknown command ${JSON.stringify(name)}`, `the commands are: ${commands.map((c) => c.name).join(', ')}`);
    const command = await found.load();
    const { flags, positionals, help } = parseCommandArgs(command, commandArgs);
    if (help) {
      io.stdout.write(commandHelp(command));
      return 0;
    }
    const overrides: Partial<RuntimeConfig> = {
      ...(values.root ? { stateRoot: path.resolve(values.root) } : {}),
      ...(values['image-root'] ? { imageRoot: path.resolve(values['image-root']) } : {}),
      ...(values.criu ? { criu: values.criu } : {}),
      ...(values.log ? { logFile: path.resolve(values.log) } : {}),
      ...(values['log-format'] ? { logFormat: values['log-format'] as RuntimeConfig['logFormat'] } : {}),
      ...(values.debug ? { logLevel: 'debug' as const } : {}),
    };
    let runtime: Promise<Runtime> | undefined;
    // The runtime (configuration, services, their dependencies) loads only when a command needs it.
    const lazyRuntime = () =>
      (runtime ??= Promise.all([import('../runtime.js'), import('../config.js'), import('../composition-root.js')]).then(
        ([{ Runtime }, { resolveConfig }, { composeRuntime }]) => new Runtime(composeRuntime(resolveConfig({ overrides }))),
      ));
    let local: Promise<LocalServices> | undefined;
    const lazyLocal = () => (local ??= import('./local.js').then(({ localServices }) => localServices(overrides)));
    return await command.run(lazyRuntime, flags, positionals, io, lazyLocal);
  } catch (error) {
    io.stderr.write(`runtime: ${describeError(error)}\n`);
    if (process.env.RUNTIME_DEBUG_STACK && error instanceof Error) io.stderr.write(`${error.stack}\n`);
    return error instanceof UsageError ? 2 : error instanceof RuntimeError ? 1 : 1;
  }
}
