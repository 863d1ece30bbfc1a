import { writeFile } from 'node:fs/promises';
import { defineCommand } from '../command.js';
import { commonCriuFlags, commonCriuOptions } from './criu-flags.js';
import { exitCodeOf } from './attach.js';
import { UsageError } from '../../errors.js';
import { runReset } from './reset.js';

export const restoreCommand = defineCommand({
  name: 'restore',
  summary: 'restore a container from a checkpoint through CRIU',
  usage: '<id>',
  description:
    'Restores the container\'s process tree; the restored init is a child of the runtime. In the\n' +
    'foreground the command forwards signals and exits with the container\'s code; with -d a\n' +
    'monitor process of the runtime supervises it. With --image-path and --bundle it restores any\n' +
    'checkpoint, also under a new id.',
  positionals: { min: 1, max: 1 },
  flags: {
    ...commonCriuFlags,
    detach: { type: 'boolean', short: 'd', description: 'detach: a runtime monitor becomes the parent' },
    bundle: { type: 'string', short: 'b', value: 'DIR', description: 'the bundle to restore with (default: the container\'s own)' },
    'pid-file': { type: 'string', value: 'FILE', description: 'write the restored init\'s pid to FILE' },
    name: { type: 'string', value: 'NAME', description: 'restore a named snapshot, rootfs included (as `runtime reset`)' },
    from: { type: 'string', value: 'ID', description: 'with --name: restore that container\'s snapshot as a new container <id>' },
  },
  async run(runtime, flags, [id], io) {
    if (flags.name !== undefined || flags.from !== undefined) {
      if (flags.name === undefined) throw new UsageError('--from goes with --name', 'for example: runtime restore --name warm --from db db-copy-1');
      return runReset(runtime, { id: id!, name: flags.name, ...(flags.from ? { from: flags.from } : {}), ...commonCriuOptions(flags) }, flags, io);
    }
    const request = {
      id: id!,
      ...commonCriuOptions(flags),
      ...(flags.bundle ? { bundle: flags.bundle } : {}),
    };
    if (flags.detach) {
      const pid = await runtime().restore({ ...request, ...(flags['pid-file'] ? { pidFile: flags['pid-file'] } : {}) });
      io.stderr.write(`restored ${id}: init pid ${pid}\n`);
      return 0;
    }
    const container = await runtime().restoreAttached(request, { stdin: io.stdin, stdout: io.stdout, stderr: io.stderr });
    if (flags['pid-file']) await writeFile(flags['pid-file'], String(container.pid));
    return exitCodeOf(container);
  },
});
