import { writeFile } from 'node:fs/promises';
import { defineCommand } from '../command.js';
import { UsageError } from '../../errors.js';
import { exitCodeOf } from './attach.js';
import { storageOptions } from './storage-flags.js';
import { publishFlag, publishOptions } from './publish-flag.js';
import type { ImageRunOptions } from '../../from-image.js';

export const runCommand = defineCommand({
  name: 'run',
  summary: 'create and start a container from an OCI bundle, or from an image (--image)',
  usage: '<id> [-- CMD...]',
  description:
    "The system's OCI runtime (runc, or crun) creates the namespaces and the init; the runtime holds\n" +
    "the container's stdio (output goes to its log) and is the init's parent: the CLI itself in the\n" +
    'foreground, a monitor process with -d.\n\n' +
    'With --image, the rootfs and config.json come from an image the user already has: an OCI image\n' +
    'layout (oci:DIR[:TAG], as skopeo, buildah and umoci write them) or a docker archive\n' +
    '(docker-archive:FILE[:NAME:TAG], as `docker save` writes them). Its layers are unpacked once into\n' +
    'the image store (--image-root) and shared by every container; each container writes to its own\n' +
    "layer on top. config.json follows the image's config as Docker derives it: CMD... after `--`\n" +
    'replaces its Cmd, --entrypoint its Entrypoint, -e adds to its Env, -u and -w replace its User and\n' +
    'WorkingDir.',
  positionals: { min: 1, max: 4096 },
  flags: {
    bundle: { type: 'string', short: 'b', value: 'DIR', description: 'the bundle directory (default: the current directory)' },
    image: { type: 'string', value: 'REF', description: 'make the container from an image: oci:DIR[:TAG] or docker-archive:FILE[:NAME:TAG]' },
    detach: { type: 'boolean', short: 'd', description: 'detach: a runtime monitor becomes the parent' },
    'pid-file': { type: 'string', value: 'FILE', description: "write the init's pid to FILE" },
    'storage-driver': { type: 'string', value: 'NAME', description: 'take the rootfs from a storage layout: dir, overlay2, overlay, aufs, devicemapper' },
    'storage-root': { type: 'string', value: 'DIR', description: "the engine's storage root (/var/lib/docker, /var/lib/containers/storage)" },
    layer: { type: 'string', value: 'ID', description: "the container's layer id in the storage root" },
    publish: publishFlag,
    env: { type: 'string', short: 'e', multiple: true, value: 'KEY=VALUE', description: "with --image: add to the image's environment (repeatable)" },
    user: {
      type: 'string',
      short: 'u',
      value: 'USER[:GROUP]',
      description: "with --image: run as this user (a name from the image's /etc/passwd, or a uid)",
    },
    workdir: { type: 'string', short: 'w', value: 'DIR', description: "with --image: the working directory (default: the image's)" },
    entrypoint: { type: 'string', value: 'PROGRAM', description: "with --image: replace the image's entrypoint (its Cmd is dropped too)" },
    uidmap: {
      type: 'string',
      value: '0:HOSTID:SIZE',
      description: "with --image: a user namespace whose ids 0..SIZE-1 are the host's HOSTID.. (layers are used through a copy owned that way, made once)",
    },
  },
  async run(runtime, flags, [id, ...command], io) {
    const image = imageOptions(flags, command);
    const options = {
      id: id!,
      ...(image ? { image } : { bundle: flags.bundle ?? process.cwd(), ...storageOptions(flags) }),
      ...publishOptions(flags.publish),
    };
    if (flags.detach) {
      await (await runtime()).run({ ...options, ...(flags['pid-file'] ? { pidFile: flags['pid-file'] } : {}) });
      return 0;
    }
    const container = await (await runtime()).runAttached(options, { stdin: io.stdin, stdout: io.stdout, stderr: io.stderr });
    if (flags['pid-file']) await writeFile(flags['pid-file'], String(container.pid));
    return exitCodeOf(container);
  },
});

interface ImageFlags {
  readonly image?: string;
  readonly bundle?: string;
  readonly env?: string[];
  readonly user?: string;
  readonly workdir?: string;
  readonly entrypoint?: string;
  readonly uidmap?: string;
  readonly 'storage-driver'?: string;
}

function imageOptions(flags: ImageFlags, command: readonly string[]): ImageRunOptions | undefined {
  if (flags.image === undefined) {
    const only = ['env', 'user', 'workdir', 'entrypoint', 'uidmap'].filter((f) => flags[f as keyof ImageFlags] !== undefined);
    if (only.length > 0) throw new UsageError(`--${only[0]} goes with --image`, 'a bundle has its own config.json: edit process there');
    if (command.length > 0)
      throw new UsageError(`run takes one id; a command (${command.join(' ')}) goes with --image`, 'usage: runtime run --image REF <id> -- CMD...');
    return undefined;
  }
  if (flags.bundle !== undefined || flags['storage-driver'] !== undefined) {
    throw new UsageError('--image goes without --bundle and the storage flags', 'an image is a rootfs and a config.json of its own');
  }
  return {
    reference: flags.image,
    ...(command.length > 0 ? { args: command } : {}),
    ...(flags.entrypoint !== undefined ? { entrypoint: [flags.entrypoint] } : {}),
    ...(flags.env ? { env: flags.env } : {}),
    ...(flags.user !== undefined ? { user: flags.user } : {}),
    ...(flags.workdir !== undefined ? { workdir: flags.workdir } : {}),
    ...(flags.uidmap !== undefined ? { userns: parseUidMap(flags.uidmap) } : {}),
  };
}

/** `--uidmap 0:HOST:SIZE`, the one mapping form a container made from an image takes. */
export function parseUidMap(text: string): { hostId: number; size: number } {
  const match = /^0:(\d+):(\d+)$/.exec(text);
  const hostId = Number(match?.[1]);
  const size = Number(match?.[2]);
  if (!match || hostId < 1 || size < 1 || hostId + size > 0xffff_ffff) {
    throw new UsageError(
      `--uidmap ${JSON.stringify(text)} is not 0:HOSTID:SIZE`,
      "for example --uidmap 0:100000:65536 (the container's ids 0..65535 are the host's 100000..165535)",
    );
  }
  return { hostId, size };
}
