import { defineCommand } from '../command.js';

export const deleteCommand = defineCommand({
  name: 'delete',
  summary: 'remove a container, its cgroups and its managed checkpoints',
  usage: '<id>',
  positionals: { min: 1, max: 1 },
  flags: {
    force: { type: 'boolean', short: 'f', description: 'kill the container first if it is running' },
  },
  async run(runtime, flags, [id], _io) {
    await (await runtime()).delete(id!, { force: flags.force === true });
    return 0;
  },
});
