/**
 * `runtime receive --listen ADDR:PORT --tls-cert --tls-key --tls-ca`: the destination of
 * migrations (migration/receive.ts), taking them one after another until interrupted.
 */
import { once } from 'node:events';
import { defineCommand } from '../command.js';
import { UsageError } from '../../errors.js';
import { tlsFlags, tlsFiles, hostPort } from './tls-flags.js';

export const receiveCommand = defineCommand({
  name: 'receive',
  summary: 'receive containers that `runtime migrate` sends, one after another (runs until SIGINT or SIGTERM)',
  usage: '',
  description:
    "Listens on ADDR:PORT for the command channel (mutual TLS: the source's certificate must be\n" +
    "signed by --tls-ca); each migration gets a CRIU page server (CRIU's TLS, the same files) on a\n" +
    'port the kernel picks. Containers are restored under this runtime (its --root and checkpoint\n' +
    'root), each with a monitor of its own as the parent of its init.\n\n' +
    'Two hosts on one machine (network namespaces) need a runtime each with roots and a cgroup\n' +
    'parent of its own (RUNTIME_ROOT, RUNTIME_CHECKPOINT_ROOT, RUNTIME_IMAGE_ROOT,\n' +
    'RUNTIME_CGROUP_PARENT): a receiver sharing any with the source refuses its offers.',
  positionals: { min: 0, max: 0 },
  flags: {
    listen: { type: 'string', value: 'ADDR:PORT', description: 'where to listen (port 0: one the kernel picks, printed)' },
    ...tlsFlags,
    timeout: { type: 'string', value: 'SECONDS', description: 'how long a step may wait on the source (default 120)' },
  },
  async run(runtime, flags, _positionals, io) {
    if (!flags.listen) throw new UsageError('receive needs --listen ADDR:PORT');
    const timeout = flags.timeout === undefined ? undefined : Number(flags.timeout);
    if (timeout !== undefined && !(Number.isInteger(timeout) && timeout > 0))
      throw new UsageError(`--timeout ${JSON.stringify(flags.timeout)} is not a number of seconds`);
    const listen = hostPort(flags.listen, '--listen');
    const tls = tlsFiles(flags);
    const receiver = await (
      await runtime()
    ).receive({
      listen,
      tls,
      ...(timeout !== undefined ? { timeoutMs: timeout * 1000 } : {}),
      onEvent: (message) => io.stderr.write(`${message}\n`),
    });
    io.stdout.write(`listening on port ${receiver.port}\n`);
    await Promise.race([once(process, 'SIGINT'), once(process, 'SIGTERM')]);
    await receiver.close();
    return 0;
  },
});
