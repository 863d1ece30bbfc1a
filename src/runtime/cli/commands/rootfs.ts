import { defineCommand } from '../command.js';
import { UsageError } from '../../errors.js';
import { storageOptions } from './storage-flags.js';

export const rootfsCommand = defineCommand({
  name: 'rootfs',
  summary: 'debug a storage driver: `rootfs plan` prints the mount it would make',
  usage: 'plan',
  description:
    'runtime rootfs plan --driver NAME --storage-root DIR --layer ID\n' +
    'prints {"type","source","target","options","steps"} (and "cwd"/"fds" for a mount made from\n' +
    'inside the layer root, "rootfs" for the container\'s root in the mount) without mounting.',
  positionals: { min: 1, max: 1 },
  flags: {
    driver: { type: 'string', value: 'NAME', description: 'dir, overlay2, overlay, aufs or devicemapper' },
    'storage-root': { type: 'string', value: 'DIR', description: "the engine's storage root" },
    layer: { type: 'string', value: 'ID', description: 'the layer id' },
  },
  async run(_runtime, flags, [subcommand], io) {
    if (subcommand !== 'plan') throw new UsageError(`unknown rootfs subcommand ${JSON.stringify(subcommand)}`, 'the subcommand is: plan');
    const { storage } = storageOptions({ 'storage-driver': flags.driver, 'storage-root': flags['storage-root'], layer: flags.layer });
    if (!storage) throw new UsageError('rootfs plan needs --driver, --storage-root and --layer');
    const { planRootfs, planToJson } = await import('../../../rootfs/drivers/index.js');
    const plan = await planRootfs({ driver: storage.driver, storageRoot: storage.storageRoot, layer: storage.layer });
    io.stdout.write(`${JSON.stringify(planToJson(plan), null, 2)}\n`);
    return 0;
  },
});
