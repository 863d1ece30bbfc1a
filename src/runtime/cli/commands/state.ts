import { defineCommand } from '../command.js';

export const stateCommand = defineCommand({
  name: 'state',
  summary: 'print the OCI state of a container as JSON',
  usage: '<id>',
  positionals: { min: 1, max: 1 },
  flags: {},
  async run(runtime, _flags, [id], io) {
    io.stdout.write(`${JSON.stringify(await (await runtime()).state(id!), null, 2)}\n`);
    return 0;
  },
});
