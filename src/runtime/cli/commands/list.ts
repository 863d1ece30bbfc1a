import { defineCommand } from '../command.js';
import { UsageError } from '../../errors.js';
import { formatTable } from '../table.js';

export const listCommand = defineCommand({
  name: 'list',
  summary: 'list the containers',
  usage: '',
  positionals: { min: 0, max: 0 },
  flags: {
    format: { type: 'string', short: 'f', value: 'table|json', description: 'output format (default: table)' },
    quiet: { type: 'boolean', short: 'q', description: 'print only the ids' },
  },
  async run(_runtime, flags, _positionals, io, local) {
    const format = flags.format ?? 'table';
    if (format !== 'table' && format !== 'json') throw new UsageError(`unknown --format ${JSON.stringify(format)}`, 'use table or json');
    const { listRecords } = await import('../../state.js');
    const rows = await listRecords(await local());
    if (flags.quiet) {
      for (const { state } of rows) io.stdout.write(`${state.id}\n`);
    } else if (format === 'json') {
      io.stdout.write(
        `${JSON.stringify(
          rows.map((r) => r.state),
          null,
          2,
        )}\n`,
      );
    } else {
      const table = [['ID', 'PID', 'STATUS', 'BUNDLE', 'CREATED']];
      for (const { state, record } of rows) table.push([state.id, String(state.pid ?? 0), state.status, state.bundle, record.created]);
      io.stdout.write(formatTable(table));
    }
    return 0;
  },
});
