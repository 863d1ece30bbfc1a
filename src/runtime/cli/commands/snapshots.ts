import { defineCommand } from '../command.js';
import { UsageError } from '../../errors.js';
import { formatTable } from '../table.js';
import { sizeText } from '../../../system/size-text.js';

export const snapshotsCommand = defineCommand({
  name: 'snapshots',
  summary: "list a container's named snapshots, or remove one (`snapshots rm <id> NAME`)",
  usage: '<id> | rm <id> NAME',
  positionals: { min: 1, max: 3 },
  flags: {
    format: { type: 'string', short: 'f', value: 'table|json', description: 'output format (default: table)' },
  },
  async run(runtime, flags, positionals, io) {
    if (positionals[0] === 'rm') {
      const [, id, name] = positionals;
      if (!id || !name) throw new UsageError('usage: runtime snapshots rm <id> NAME');
      await (await runtime()).removeSnapshot(id, name);
      return 0;
    }
    if (positionals.length !== 1) throw new UsageError('usage: runtime snapshots <id>, or runtime snapshots rm <id> NAME');
    const snapshots = await (await runtime()).snapshots(positionals[0]!);
    if ((flags.format ?? 'table') === 'json') {
      io.stdout.write(`${JSON.stringify(snapshots, null, 2)}\n`);
      return 0;
    }
    const rows = [['NAME', 'CREATED', 'MEMORY', 'ROOTFS', 'LAYERS']];
    for (const s of snapshots) rows.push([s.name, s.created, sizeText(s.memoryBytes), sizeText(s.rootfsBytes), String(s.layers.length)]);
    io.stdout.write(formatTable(rows));
    return 0;
  },
});
