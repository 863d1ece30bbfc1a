import { defineCommand } from '../command.js';
import { UsageError } from '../../errors.js';

export const inspectCommand = defineCommand({
  name: 'inspect',
  summary: 'show what a checkpoint holds: processes, files, sockets, memory, mounts, CRIU statistics',
  usage: '<id | image-dir>',
  description:
    'For a container id, its last checkpoint (or the named snapshot of --snapshot); for a directory, the\n' +
    'checkpoint images in it. Reads the images the way checkpointctl does, never the memory pages.',
  positionals: { min: 1, max: 1 },
  flags: {
    format: { type: 'string', short: 'f', value: 'tree|json', description: 'output format (default: tree)' },
    snapshot: { type: 'string', value: 'NAME', description: "inspect the container's named snapshot NAME" },
    'work-path': { type: 'string', value: 'DIR', description: 'where CRIU wrote its statistics, if not the image directory' },
  },
  async run(runtime, flags, [target], io) {
    const format = flags.format ?? 'tree';
    if (format !== 'tree' && format !== 'json') throw new UsageError(`unknown --format ${JSON.stringify(format)}`, 'use tree or json');
    const inspection = await (
      await runtime()
    ).inspect({
      target: target!,
      ...(flags.snapshot !== undefined ? { snapshot: flags.snapshot } : {}),
      ...(flags['work-path'] ? { workPath: flags['work-path'] } : {}),
    });
    const { formatInspection, formatInspectionJson } = await import('../../inspection/format.js');
    io.stdout.write(format === 'json' ? formatInspectionJson(inspection) : formatInspection(inspection));
    return 0;
  },
});
