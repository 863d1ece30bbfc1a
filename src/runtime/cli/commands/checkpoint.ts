import { defineCommand } from '../command.js';
import { exitCodeFor, holdingSignals } from '../held-signals.js';
import { parseNetworkLock } from '../../../criu/options.js';
import { commonCriuFlags, commonCriuOptions } from './criu-flags.js';

export const checkpointCommand = defineCommand({
  name: 'checkpoint',
  summary: 'checkpoint a running container through CRIU',
  usage: '<id>',
  description:
    "Dumps the container's process tree. Without --image-path the images go to the container's managed\n" +
    'checkpoint directory, and a bare `runtime restore <id>` restores them. Without --leave-running the\n' +
    'container stops; if the dump fails it keeps running, unchanged.',
  positionals: { min: 1, max: 1 },
  flags: {
    ...commonCriuFlags,
    'leave-running': { type: 'boolean', description: 'leave the container running after the checkpoint' },
    'pre-dump': { type: 'boolean', description: 'dump memory only, as the parent of a later dump (needs soft-dirty tracking)' },
    'parent-path': { type: 'string', value: 'DIR', description: 'a previous pre-dump, relative to the image directory' },
    'tcp-skip-in-flight': { type: 'boolean', description: 'skip data in flight on TCP connections' },
    'link-remap': { type: 'boolean', description: 'allow open files that were unlinked' },
    'network-lock': {
      type: 'string',
      value: 'METHOD',
      description: "how the container's network is held still while it is dumped: nftables (the default when CRIU has it), iptables or skip",
    },
    name: { type: 'string', value: 'NAME', description: 'save a named snapshot (processes and rootfs) to reset to with `runtime reset`' },
    'print-stats': { type: 'boolean', description: "print the checkpoint's duration and CRIU's statistics as JSON (as podman does)" },
  },
  async run(runtime, flags, [id], io) {
    const started = process.hrtime.bigint();
    const rt = await runtime();
    const held = await holdingSignals(`the checkpoint of ${id}`, io.stderr, () =>
      rt.checkpoint({
        id: id!,
        ...commonCriuOptions(flags),
        ...(flags['leave-running'] ? { leaveRunning: true } : {}),
        ...(flags['pre-dump'] ? { preDump: true } : {}),
        ...(flags['parent-path'] ? { parentPath: flags['parent-path'] } : {}),
        ...(flags['tcp-skip-in-flight'] ? { tcpSkipInFlight: true } : {}),
        ...(flags['link-remap'] ? { linkRemap: true } : {}),
        ...(flags['network-lock'] !== undefined ? { networkLock: parseNetworkLock(flags['network-lock']) } : {}),
        ...(flags.name !== undefined ? { name: flags.name } : {}),
      }),
    );
    const result = held.value;
    const what = result.snapshot ? `snapshot ${result.snapshot.name} of ${id}` : `${id} to ${result.imagePath}`;
    if (flags['print-stats']) {
      const ended = process.hrtime.bigint();
      const { formatStatsReport, microsecondsSince, readCheckpointStats } = await import('../../checkpoint-stats.js');
      io.stdout.write(formatStatsReport(await readCheckpointStats(microsecondsSince(started, ended), result.imagePath, flags['work-path'])));
    }
    io.stderr.write(`checkpointed ${what} in ${result.durationMs} ms${result.leftRunning ? ' (left running)' : ''}\n`);
    return held.signal ? exitCodeFor(held.signal) : 0;
  },
});
