import { defineCommand } from '../command.js';

export const killCommand = defineCommand({
  name: 'kill',
  summary:
    "send a signal to a container's init, or with --all to all its processes (default: its image's stop signal, else SIGTERM), once a command at work on it (a checkpoint) is done",
  usage: '<id> [SIGNAL]',
  positionals: { min: 1, max: 2 },
  flags: {
    all: { type: 'boolean', short: 'a', description: "every process in the container's cgroup, not only its init (runc's --all)" },
  },
  async run(runtime, flags, [id, signal], _io) {
    await (await runtime()).kill(id!, signal, { all: flags.all === true });
    return 0;
  },
});
