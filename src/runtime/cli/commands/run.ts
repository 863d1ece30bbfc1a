import { writeFile } from 'node:fs/promises';
import { defineCommand } from '../command.js';
import { exitCodeOf } from './attach.js';
import { storageOptions } from './storage-flags.js';
import { publishFlag, publishOptions } from './publish-flag.js';

export const runCommand = defineCommand({
  name: 'run',
  summary: 'create and start a container from an OCI bundle',
  usage: '<id>',
  description:
    "The system's OCI runtime (runc, or crun) creates the namespaces and the init; the runtime holds\n" +
    "the container's stdio (output goes to its log) and is the init's parent: the CLI itself in the\n" +
    'foreground, a monitor process with -d.',
  positionals: { min: 1, max: 1 },
  flags: {
    bundle: { type: 'string', short: 'b', value: 'DIR', description: 'the bundle directory (default: the current directory)' },
    detach: { type: 'boolean', short: 'd', description: 'detach: a runtime monitor becomes the parent' },
    'pid-file': { type: 'string', value: 'FILE', description: "write the init's pid to FILE" },
    'storage-driver': { type: 'string', value: 'NAME', description: 'take the rootfs from a storage layout: dir, overlay2, overlay, aufs, devicemapper' },
    'storage-root': { type: 'string', value: 'DIR', description: "the engine's storage root (/var/lib/docker, /var/lib/containers/storage)" },
    layer: { type: 'string', value: 'ID', description: "the container's layer id in the storage root" },
    publish: publishFlag,
  },
  async run(runtime, flags, [id], io) {
    const options = { id: id!, bundle: flags.bundle ?? process.cwd(), ...storageOptions(flags), ...publishOptions(flags.publish) };
    if (flags.detach) {
      await (await runtime()).run({ ...options, ...(flags['pid-file'] ? { pidFile: flags['pid-file'] } : {}) });
      return 0;
    }
    const container = await (await runtime()).runAttached(options, { stdin: io.stdin, stdout: io.stdout, stderr: io.stderr });
    if (flags['pid-file']) await writeFile(flags['pid-file'], String(container.pid));
    return exitCodeOf(container);
  },
});
