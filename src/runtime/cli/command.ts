/**
 * A CLI command: its flags (with help text), and a function that maps the parsed flags to the
 * library's options and calls it. Commands hold no CRIU or mount logic.
 */
import { parseArgs } from 'node:util';
import type { Runtime } from '../runtime.js';
import type { LocalServices } from './local.js';
import { UsageError } from '../errors.js';

export interface FlagSpec {
  readonly type: 'boolean' | 'string';
  readonly short?: string;
  /** The value's name in help, for string flags. */
  readonly value?: string;
  readonly description: string;
  readonly multiple?: boolean;
}

export type Flags = Readonly<Record<string, FlagSpec>>;

export type ParsedFlags<F extends Flags> = {
  readonly [K in keyof F]?: F[K]['type'] extends 'boolean' ? boolean : F[K]['multiple'] extends true ? string[] : string;
};

export interface CommandIo {
  readonly stdin: NodeJS.ReadStream;
  readonly stdout: NodeJS.WriteStream;
  readonly stderr: NodeJS.WriteStream;
}

export interface Command<F extends Flags = Flags> {
  readonly name: string;
  readonly summary: string;
  /** The arguments after the flags, e.g. "<id> [SIGNAL]". */
  readonly usage: string;
  readonly description?: string;
  readonly flags: F;
  /** How many positional arguments it takes. */
  readonly positionals: { readonly min: number; readonly max: number };
  /** Subcommands, when the command is a group (e.g. `rootfs plan`). */
  readonly subcommands?: readonly Command[];
  /**
   * `runtime` loads the runtime on first use: commands that need none start faster; `local` gives
   * the few services that `state`, `list` and `reset` need, without loading the runtime.
   */
  run(
    runtime: () => Promise<Runtime>,
    flags: ParsedFlags<F>,
    positionals: readonly string[],
    io: CommandIo,
    local: () => Promise<LocalServices>,
  ): Promise<number>;
}

export function defineCommand<F extends Flags>(command: Command<F>): Command<F> {
  return command;
}

export function parseCommandArgs<F extends Flags>(
  command: Command<F>,
  argv: readonly string[],
): { flags: ParsedFlags<F>; positionals: string[]; help: boolean } {
  const options: Record<string, { type: 'boolean' | 'string'; short?: string; multiple?: boolean }> = {
    help: { type: 'boolean', short: 'h' },
  };
  for (const [name, spec] of Object.entries(command.flags)) {
    options[name] = { type: spec.type, ...(spec.short ? { short: spec.short } : {}), ...(spec.multiple ? { multiple: true } : {}) };
  }
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError(`${command.name}: ${(error as Error).message}`, `see \`runtime ${command.name} --help\``);
  }
  const help = parsed.values.help === true;
  const positionals = parsed.positionals;
  if (!help && (positionals.length < command.positionals.min || positionals.length > command.positionals.max)) {
    throw new UsageError(
      `${command.name}: expected ${command.usage || 'no arguments'}, got ${positionals.length === 0 ? 'none' : positionals.map((p) => JSON.stringify(p)).join(' ')}`,
      `usage: runtime ${command.name} [flags] ${command.usage}`.trimEnd(),
    );
  }
  const { help: _help, ...values } = parsed.values;
  return { flags: values as ParsedFlags<F>, positionals, help };
}

export function commandHelp(command: Command): string {
  const lines = [`runtime ${command.name} - ${command.summary}`, '', `usage: runtime ${command.name} [flags] ${command.usage}`.trimEnd()];
  if (command.description) lines.push('', command.description);
  if (command.subcommands?.length) {
    lines.push('', 'subcommands:');
    for (const sub of command.subcommands) lines.push(`  ${sub.name.split(' ').at(-1)!.padEnd(22)} ${sub.summary}`);
  }
  const entries = Object.entries(command.flags);
  lines.push('', 'flags:');
  for (const [name, spec] of entries) lines.push(`  ${flagLabel(name, spec).padEnd(34)} ${spec.description}`);
  lines.push(`  ${'-h, --help'.padEnd(34)} show this help`);
  return `${lines.join('\n')}\n`;
}

function flagLabel(name: string, spec: FlagSpec): string {
  const value = spec.type === 'string' ? ` ${spec.value ?? 'VALUE'}` : '';
  return `${spec.short ? `-${spec.short}, ` : '    '}--${name}${value}`;
}
