import { defineCommand, type CommandIo } from '../command.js';
import { commonCriuFlags, commonCriuOptions } from './criu-flags.js';
import type { Runtime } from '../../runtime.js';
import type { ResetRequest } from '../../reset.js';
import { refuseImageOptions } from '../../snapshots/store.js';
import type { LocalServices } from '../local.js';
import { requireRoot } from '../../privileges.js';
import { UsageError } from '../../errors.js';
import { resetByMonitor } from '../../reset-by-monitor.js';

function parseStandbys(text: string): number {
  if (!/^\d+$/.test(text)) throw new UsageError(`invalid --standbys ${JSON.stringify(text)}`, 'give a number, such as 2 (0: none)');
  return Number(text);
}

/** resetByMonitor, with the checks reset() makes first. */
async function askMonitor(services: LocalServices, request: ResetRequest): Promise<number | undefined> {
  requireRoot(services.processes, 'runtime reset');
  return resetByMonitor(services, request);
}

/** Shared by `reset` and `restore --name`: detached by default for reset, as -d says for restore. */
export async function runReset(
  runtime: () => Promise<Runtime>,
  local: () => Promise<LocalServices>,
  request: ResetRequest & { readonly imagePath?: string; readonly workPath?: string; readonly autoDedup?: boolean },
  flags: { readonly detach?: boolean; readonly 'pid-file'?: string },
  io: CommandIo,
  detachByDefault = false,
): Promise<number> {
  refuseImageOptions(request);
  const { imagePath: _i, workPath: _w, autoDedup: _a, ...rest } = request;
  const reset: ResetRequest = { ...rest, ...(flags['pid-file'] ? { pidFile: flags['pid-file'] } : {}) };
  // A reset is always done by the container's monitor, which stays its parent across resets.
  void flags.detach;
  void detachByDefault;
  const started = Date.now();
  // A live monitor is asked straight away, without loading the runtime (a copy is made first).
  let pid = reset.from === undefined ? await askMonitor(await local(), reset) : undefined;
  pid ??= await (await runtime()).reset(reset);
  io.stderr.write(`reset ${request.id}${request.name ? ` to ${request.name}` : ''}: init pid ${pid} (${Date.now() - started} ms)\n`);
  return 0;
}

export const resetCommand = defineCommand({
  name: 'reset',
  summary: 'put a container back to a named snapshot (processes and rootfs)',
  usage: '<id> [NAME]',
  description:
    "Stops the running instance, gives the container a fresh, empty writable layer over the snapshot's\n" +
    "rootfs, and restores the snapshot's processes. The snapshot is only read, so every reset starts\n" +
    'from the same state. Without NAME, the newest snapshot. Detached: a runtime monitor is the parent.',
  positionals: { min: 1, max: 2 },
  flags: {
    'tcp-established': commonCriuFlags['tcp-established'],
    'ext-unix-sk': commonCriuFlags['ext-unix-sk'],
    'shell-job': commonCriuFlags['shell-job'],
    'file-locks': commonCriuFlags['file-locks'],
    'manage-cgroups-mode': commonCriuFlags['manage-cgroups-mode'],
    'lazy-pages': { ...commonCriuFlags['lazy-pages'], description: 'restore lazily (the default for a snapshot of 64 MiB of memory or more)' },
    'no-lazy-pages': { type: 'boolean', description: 'restore eagerly, all memory copied, whatever the size' },
    'pid-file': { type: 'string', value: 'FILE', description: "write the restored init's pid to FILE" },
    'no-standby': { type: 'boolean', description: 'keep no stopped standby of the snapshot ready for the next reset (as --standbys 0)' },
    standbys: {
      type: 'string',
      value: 'N',
      description: 'how many stopped standbys of the snapshot the monitor keeps ready (default 2; each costs the memory the snapshot holds)',
    },
  },
  async run(runtime, flags, [id, name], io, local) {
    if (flags['lazy-pages'] && flags['no-lazy-pages']) throw new UsageError('--lazy-pages and --no-lazy-pages contradict each other');
    return runReset(
      runtime,
      local,
      {
        id: id!,
        ...(name ? { name } : {}),
        ...commonCriuOptions(flags),
        ...(flags['no-standby'] ? { standby: false } : {}),
        ...(flags['no-lazy-pages'] ? { lazyPages: false } : {}),
        ...(flags.standbys !== undefined ? { standbys: parseStandbys(flags.standbys) } : {}),
      },
      flags,
      io,
      true,
    );
  },
});
