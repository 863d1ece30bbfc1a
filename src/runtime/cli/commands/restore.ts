import { writeFile } from 'node:fs/promises';
import { defineCommand } from '../command.js';
import { commonCriuFlags, commonCriuOptions } from './criu-flags.js';
import { exitCodeOf } from './attach.js';
import { UsageError } from '../../errors.js';
import { runReset } from './reset.js';
import { publishFlag, publishOptions } from './publish-flag.js';

export const restoreCommand = defineCommand({
  name: 'restore',
  summary: 'restore a container from a checkpoint through CRIU',
  usage: '<id>',
  description:
    "Restores the container's process tree; the restored init is a child of the runtime. In the\n" +
    "foreground the command forwards signals and exits with the container's code; with -d a\n" +
    'monitor process of the runtime supervises it. With --image-path and --bundle it restores any\n' +
    'checkpoint, also under a new id.',
  positionals: { min: 1, max: 1 },
  flags: {
    ...commonCriuFlags,
    detach: { type: 'boolean', short: 'd', description: 'detach: a runtime monitor becomes the parent' },
    bundle: { type: 'string', short: 'b', value: 'DIR', description: "the bundle to restore with (default: the container's own)" },
    'pid-file': { type: 'string', value: 'FILE', description: "write the restored init's pid to FILE" },
    name: { type: 'string', value: 'NAME', description: 'restore a named snapshot, rootfs included (as `runtime reset`)' },
    from: { type: 'string', value: 'ID', description: "with --name: restore that container's snapshot as a new container <id>" },
    'print-stats': { type: 'boolean', description: "print the restore's duration and CRIU's statistics as JSON (as podman does)" },
    'no-lazy-pages': {
      type: 'boolean',
      description: 'with --name: restore eagerly, all memory copied (a snapshot of 64 MiB or more is restored lazily by default)',
    },
    publish: { ...publishFlag, description: 'for a new container (under a new id, or --from): forward a host port to a container port (repeatable)' },
  },
  async run(runtime, flags, [id], io, local) {
    if (flags['lazy-pages'] && flags['no-lazy-pages']) throw new UsageError('--lazy-pages and --no-lazy-pages contradict each other');
    if (flags['no-lazy-pages'] && flags.name === undefined) {
      throw new UsageError('--no-lazy-pages goes with --name', 'a restore without --name is eager unless --lazy-pages is given');
    }
    if (flags.name !== undefined || flags.from !== undefined) {
      if (flags['print-stats'])
        throw new UsageError(
          '--print-stats does not go with --name',
          "a reset may be served by a standby restored earlier; its statistics are not this command's",
        );
      if (flags.name === undefined) throw new UsageError('--from goes with --name', 'for example: runtime restore --name warm --from db db-copy-1');
      return runReset(
        runtime,
        local,
        {
          id: id!,
          name: flags.name,
          ...(flags.from ? { from: flags.from } : {}),
          ...commonCriuOptions(flags),
          ...(flags['no-lazy-pages'] ? { lazyPages: false } : {}),
          ...publishOptions(flags.publish),
        },
        flags,
        io,
      );
    }
    const request = {
      id: id!,
      ...commonCriuOptions(flags),
      ...(flags.bundle ? { bundle: flags.bundle } : {}),
      ...publishOptions(flags.publish),
    };
    const started = process.hrtime.bigint();
    const stats = async (): Promise<string> => {
      const where = {
        id: id!,
        ...(flags['image-path'] ? { imagePath: flags['image-path'] } : {}),
        ...(flags['work-path'] ? { workPath: flags['work-path'] } : {}),
      };
      const ended = process.hrtime.bigint();
      const { formatStatsReport, microsecondsSince, readContainerRestoreStats } = await import('../../checkpoint-stats.js');
      return formatStatsReport(await readContainerRestoreStats((await runtime()).context, where, microsecondsSince(started, ended)));
    };
    if (flags.detach) {
      const pid = await (await runtime()).restore({ ...request, ...(flags['pid-file'] ? { pidFile: flags['pid-file'] } : {}) });
      if (flags['print-stats']) io.stdout.write(await stats());
      io.stderr.write(`restored ${id}: init pid ${pid}\n`);
      return 0;
    }
    const container = await (await runtime()).restoreAttached(request, { stdin: io.stdin, stdout: io.stdout, stderr: io.stderr });
    // In the foreground stdout is the container's: the statistics go to stderr.
    if (flags['print-stats']) io.stderr.write(await stats());
    if (flags['pid-file']) await writeFile(flags['pid-file'], String(container.pid));
    return exitCodeOf(container);
  },
});
