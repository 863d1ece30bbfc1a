/**
 * `runtime images [rm [REF...]]`: the image store's images with their disk use, and their
 * removal. Maps flags to the library's images() and removeImages(); the store is in
 * rootfs/image/store.ts.
 */
import { defineCommand } from '../command.js';
import { UsageError } from '../../errors.js';
import { formatTable } from '../table.js';
import { sizeText } from '../../../system/size-text.js';

export const imagesCommand = defineCommand({
  name: 'images',
  summary: 'list the images in the store (`run --image` adds them), or remove them (`images rm`)',
  usage: '| rm [REF|DIGEST...]',
  description:
    'Each layer is unpacked once and shared by every image and container that stacks it: SIZE is what\n' +
    "an image's layers take, UNIQUE what removing it alone would free. `images rm` removes the images\n" +
    'named (a reference as given to --image, or a digest of at least 12 hex digits), or with none\n' +
    'named every image no container uses, then every layer nothing stacks any more. An image a\n' +
    'container uses is refused, naming the container.',
  positionals: { min: 0, max: 64 },
  flags: {
    format: { type: 'string', short: 'f', value: 'table|json', description: 'output format (default: table)' },
  },
  async run(runtime, flags, positionals, io) {
    if (positionals[0] === 'rm') {
      const removed = await (await runtime()).removeImages(positionals.slice(1));
      if ((flags.format ?? 'table') === 'json') io.stdout.write(`${JSON.stringify(removed, null, 2)}\n`);
      else io.stdout.write(`removed ${removed.images.length} image(s) and ${removed.layers} layer(s), ${sizeText(removed.freedBytes)} freed\n`);
      return 0;
    }
    if (positionals.length > 0)
      throw new UsageError(`images: unknown subcommand ${JSON.stringify(positionals[0])}`, 'usage: runtime images, or runtime images rm [REF...]');
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
