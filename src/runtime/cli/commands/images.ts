/**
 * `runtime images [add REF | rm [REF...]]`: the image store's images with their disk use, their
 * addition and their removal. Maps flags to the library's images(), addImage() and
 * removeImages(); the store is in
 * rootfs/image/store.ts.
 */
import { defineCommand } from '../command.js';
import { UsageError } from '../../errors.js';
import { formatTable } from '../table.js';
import { sizeText } from '../../../system/size-text.js';
import { parseUidMap } from './run.js';

export const imagesCommand = defineCommand({
  name: 'images',
  summary: 'list the images in the store, add one (`images add REF`; `run --image` adds too), or remove them (`images rm`)',
  usage: '| add REF [--uidmap 0:HOST:SIZE] | rm [REF|DIGEST...]',
  description:
    'Each layer is unpacked once and shared by every image and container that stacks it: SIZE is what\n' +
    "an image's layers take, UNIQUE what removing it alone would free. `images rm` removes the images\n" +
    'named (a reference as given to --image, or a digest of at least 12 hex digits), or with none\n' +
    'named every image no container uses, then every layer nothing stacks any more. An image a\n' +
    'container uses is refused, naming the container. `images add` unpacks an image without making a\n' +
    'container (with --uidmap, a copy of its layers owned for that mapping too): a migration of a\n' +
    "container made from it needs it on the destination, where only the container's own layer goes.",
  positionals: { min: 0, max: 64 },
  flags: {
    format: { type: 'string', short: 'f', value: 'table|json', description: 'output format (default: table)' },
    uidmap: { type: 'string', value: '0:HOST:SIZE', description: 'images add: also map its layers for this user namespace' },
  },
  async run(runtime, flags, positionals, io) {
    if (positionals[0] === 'add') {
      if (positionals.length !== 2) throw new UsageError('images add takes one image reference', 'for example: runtime images add oci:/images/redis:7');
      const added = await (
        await runtime()
      ).addImage(positionals[1]!, {
        ...(flags.uidmap !== undefined ? { userns: parseUidMap(flags.uidmap) } : {}),
        onProgress: (message) => io.stderr.write(`${message}\n`),
      });
      if ((flags.format ?? 'table') === 'json') io.stdout.write(`${JSON.stringify(added, null, 2)}\n`);
      else io.stdout.write(`${added.references[0] ?? ''} ${added.manifestDigest}\n`);
      return 0;
    }
    if (flags.uidmap !== undefined) throw new UsageError('--uidmap goes with images add');
    if (positionals[0] === 'rm') {
      const removed = await (await runtime()).removeImages(positionals.slice(1));
      if ((flags.format ?? 'table') === 'json') io.stdout.write(`${JSON.stringify(removed, null, 2)}\n`);
      else io.stdout.write(`removed ${removed.images.length} image(s) and ${removed.layers} layer(s), ${sizeText(removed.freedBytes)} freed\n`);
      return 0;
    }
    if (positionals.length > 0)
      throw new UsageError(
        `images: unknown subcommand ${JSON.stringify(positionals[0])}`,
        'usage: runtime images, runtime images add REF, or runtime images rm [REF...]',
      );
    const images = await (await runtime()).images();
    if ((flags.format ?? 'table') === 'json') {
      io.stdout.write(`${JSON.stringify(images, null, 2)}\n`);
      return 0;
    }
    const rows = [['REFERENCE', 'DIGEST', 'PLATFORM', 'PORTS', 'LAYERS', 'SIZE', 'UNIQUE', 'CONTAINERS']];
    for (const image of images) {
      rows.push([
        image.references[0] ?? '',
        image.manifestDigest.slice(7, 19),
        image.platform,
        image.exposedPorts.join(',') || '-',
        String(image.layers),
        sizeText(image.diskBytes),
        sizeText(image.uniqueBytes),
        image.containers.join(',') || '-',
      ]);
    }
    io.stdout.write(formatTable(rows));
    return 0;
  },
});
