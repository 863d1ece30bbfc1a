import { defineCommand } from '../command.js';

export const killCommand = defineCommand({
  name: 'kill',
  summary: "send a signal to a container's init (default: its image's stop signal, else SIGTERM)",
  usage: '<id> [SIGNAL]',
  positionals: { min: 1, max: 2 },
  flags: {},
  async run(runtime, _flags, [id, signal], _io) {
    await (await runtime()).kill(id!, signal);
    return 0;
  },
});
