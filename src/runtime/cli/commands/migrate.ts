/**
 * `runtime migrate <id> --to ADDR:PORT --tls-cert --tls-key --tls-ca [--lazy | --pre-dump N]
 * [--shared-storage] [--tcp-established]`: flags to migration/migrate.ts's request.
 */
import { defineCommand } from '../command.js';
import { exitCodeFor, holdingSignals } from '../held-signals.js';
import { UsageError } from '../../errors.js';
import { tlsFlags, tlsFiles, hostPort } from './tls-flags.js';

export const migrateCommand = defineCommand({
  name: 'migrate',
  summary: 'move a running container to another host (`runtime receive` there), over mutual TLS',
  usage: '<id>',
  description:
    "Stop-and-copy by default: CRIU dumps the memory straight into the destination's page server\n" +
    "(CRIU's TLS), the other images and the rootfs go over the command channel (TLS) while the\n" +
    'container is frozen here, the destination restores it, and only then does it end here. With\n' +
    '--lazy (post-copy) the destination restores at once and pulls the memory from this host after;\n' +
    'with --pre-dump N (pre-copy) rounds of pre-dumps send the memory while the container runs, and\n' +
    'the final dump only what the last round left (needs soft-dirty memory tracking in the kernel).\n' +
    'A migration that fails leaves the container running here; one that succeeds leaves nothing.',
  positionals: { min: 1, max: 1 },
  flags: {
    to: { type: 'string', value: 'ADDR:PORT', description: 'the receiving runtime' },
    ...tlsFlags,
    lazy: { type: 'boolean', description: 'post-copy: restore at once on the destination, the memory follows' },
    'pre-dump': {
      type: 'string',
      value: 'N',
      description: 'pre-copy: up to N (1 to 16) pre-dumps while it runs, fewer once few pages are left or they stop shrinking',
    },
    'shared-storage': { type: 'boolean', description: 'both hosts see the rootfs at the same path: do not copy it' },
    'tcp-established': { type: 'boolean', description: "move the container's established TCP connections" },
    'page-server-port': { type: 'string', value: 'PORT', description: "--lazy: this host's page server port (default: a free one)" },
    timeout: { type: 'string', value: 'SECONDS', description: 'how long a step may wait on the other host (default 120)' },
  },
  async run(runtime, flags, [id], io) {
    if (!flags.to) throw new UsageError('migrate needs --to ADDR:PORT', 'the address `runtime receive --listen` was given on the destination');
    const number = (name: string, text: string | undefined) => {
      if (text === undefined) return undefined;
      const value = Number(text);
      if (!Number.isInteger(value) || value < 0) throw new UsageError(`--${name} ${JSON.stringify(text)} is not a whole number`);
      return value;
    };
    const preDump = number('pre-dump', flags['pre-dump']);
    const port = number('page-server-port', flags['page-server-port']);
    const timeout = number('timeout', flags.timeout);
    const to = hostPort(flags.to, '--to');
    const tls = tlsFiles(flags);
    const rt = await runtime();
    // As a checkpoint: the container is frozen while it moves; a Ctrl-C waits for the migration's end.
    const held = await holdingSignals(`the migration of ${id}`, io.stderr, () =>
      rt.migrate({
        id: id!,
        to,
        tls,
        ...(flags.lazy ? { lazy: true } : {}),
        ...(preDump !== undefined ? { preDump } : {}),
        ...(flags['shared-storage'] ? { sharedStorage: true } : {}),
        ...(flags['tcp-established'] ? { tcpEstablished: true } : {}),
        ...(port !== undefined ? { pageServerPort: port } : {}),
        ...(timeout !== undefined ? { timeoutMs: timeout * 1000 } : {}),
        onProgress: (message) => io.stderr.write(`${message}\n`),
      }),
    );
    io.stdout.write(`${JSON.stringify(held.value)}\n`);
    return held.signal ? exitCodeFor(held.signal) : 0;
  },
});
