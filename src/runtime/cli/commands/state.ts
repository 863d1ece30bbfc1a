import { defineCommand } from '../command.js';

export const stateCommand = defineCommand({
  name: 'state',
  summary: 'print the OCI state of a container as JSON',
  usage: '<id>',
  positionals: { min: 1, max: 1 },
  flags: {},
  async run(_runtime, _flags, [id], io, local) {
    const { formatState, state } = await import('../../state.js');
    io.stdout.write(`${formatState(await state(await local(), id!))}\n`);
    return 0;
  },
});
