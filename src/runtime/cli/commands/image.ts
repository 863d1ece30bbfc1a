/**
 * `runtime image decode|encode|info|show|x`: CRIT's commands (`crit decode`, ...) over the image
 * codec, with CRIT's flags and output. Input and output stream; pages-*.img are refused after
 * their first word, as CRIT refuses them.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { defineCommand, type Command, type CommandIo, type FlagSpec } from '../command.js';
import { RuntimeError, UsageError } from '../../errors.js';
import { replaceFile } from '../../../system/files.js';
/** The image codec, loaded when an image command runs (it is ~50 modules; other commands need none of it). */
const images = () => import('../../../criu/images/index.js');

const imageFlags = {
  in: { type: 'string', short: 'i', value: 'FILE', description: 'decode/encode: the input (default: stdin)' },
  out: { type: 'string', short: 'o', value: 'FILE', description: 'decode/encode: the output (default: stdout)' },
  pretty: { type: 'boolean', description: 'decode: multi-line, with some fields in their own format (hex, flags, addresses)' },
  nopl: { type: 'boolean', description: 'show: leave out payloads (print their size)' },
  dir: { type: 'string', value: 'DIR', description: 'decode: every image of a checkpoint directory in one run, each to <-o DIR>/<name>.json' },
} as const satisfies Record<string, FlagSpec>;

type ImageFlagName = keyof typeof imageFlags;

interface Subcommand {
  readonly usage: string;
  readonly summary: string;
  readonly flags: readonly ImageFlagName[];
  readonly positionals: number;
}

const subcommands: Readonly<Record<string, Subcommand>> = {
  decode: {
    usage: 'decode [-i FILE] [-o FILE] [--pretty] | decode --dir DIR -o OUTDIR [--pretty]',
    summary: 'an image as JSON (crit decode), or all images of a directory',
    flags: ['in', 'out', 'pretty', 'dir'],
    positionals: 0,
  },
  encode: { usage: 'encode [-i JSON] [-o FILE]', summary: 'JSON back to an image (crit encode)', flags: ['in', 'out'], positionals: 0 },
  info: { usage: 'info FILE', summary: 'the image type and its number of entries (crit info)', flags: [], positionals: 1 },
  show: { usage: 'show FILE [--nopl]', summary: 'an image as pretty JSON (crit show)', flags: ['nopl'], positionals: 1 },
  x: { usage: 'x DIR ps|fds|mems|rss', summary: 'explore a checkpoint directory (crit x)', flags: [], positionals: 2 },
};

/** Writes a chunk, waiting when the stream asks to (a multi-MiB decode to a pipe). */
async function write(stream: Writable, chunk: string | Uint8Array): Promise<void> {
  if (!stream.write(chunk)) await once(stream, 'drain');
}

async function openOutput(file: string): Promise<Writable> {
  const { ImageWriteError } = await images();
  const stream = createWriteStream(file);
  await Promise.race([
    once(stream, 'open'),
    once(stream, 'error').then(([error]) => {
      throw new ImageWriteError(file, (error as Error).message, { cause: error });
    }),
  ]);
  return stream;
}

async function closeOutput(stream: Writable): Promise<void> {
  stream.end();
  await once(stream, 'finish');
}

/**
 * Every image of a checkpoint directory, decoded in one process (what one `crit decode` per file
 * does, without starting an interpreter per file). Raw images, which crit refuses too, are
 * skipped and listed on stderr.
 */
async function decodeDirectory(dir: string, outDir: string | undefined, pretty: boolean, io: CommandIo): Promise<number> {
  const { decodeImageStream, formatImageJsonChunks, ImageDescriptorsNotFoundError } = await images();
  if (!outDir) throw new UsageError('image decode --dir needs -o OUTDIR', 'for example: runtime image decode --dir ./checkpoint -o ./decoded');
  await mkdir(outDir, { recursive: true });
  const names = (await readdir(dir, { withFileTypes: true }))
    .filter((e) => e.isFile() && (e.name.endsWith('.img') || e.name.startsWith('stats-')))
    .map((e) => e.name)
    .sort();
  let decoded = 0;
  for (const name of names) {
    let image;
    try {
      image = await decodeImageStream(path.join(dir, name), { pretty });
    } catch (error) {
      // Only an image itself may be skipped (a raw one, as crit refuses it); without the message
      // definitions no image can be decoded, and the command fails.
      if (error instanceof RuntimeError && !(error instanceof ImageDescriptorsNotFoundError)) {
        await write(io.stderr, `skipped ${name}: ${error.message}\n`);
        continue;
      }
      throw error;
    }
    const out = await openOutput(path.join(outDir, `${name}.json`));
    try {
      for await (const chunk of formatImageJsonChunks(image, { pretty })) await write(out, chunk);
    } finally {
      await image.close();
      await closeOutput(out);
    }
    decoded++;
  }
  await write(io.stderr, `decoded ${decoded} of ${names.length} images to ${outDir}\n`);
  return 0;
}

async function decode(flags: { in?: string; out?: string; pretty?: boolean; dir?: string }, io: CommandIo): Promise<number> {
  const { decodeImageStream, formatImageJsonChunks } = await images();
  if (flags.dir !== undefined) {
    if (flags.in !== undefined) throw new UsageError('image decode takes -i or --dir, not both');
    return decodeDirectory(flags.dir, flags.out, flags.pretty === true, io);
  }
  const image = await decodeImageStream(flags.in ?? io.stdin, { pretty: flags.pretty === true, ...(flags.in ? {} : { name: '<stdin>' }) });
  const out = flags.out ? await openOutput(flags.out) : io.stdout;
  try {
    for await (const chunk of formatImageJsonChunks(image, { pretty: flags.pretty === true })) await write(out, chunk);
    // crit adds the newline on stdout only.
    if (!flags.out) await write(out, '\n');
  } finally {
    await image.close();
    if (flags.out) await closeOutput(out);
  }
  return 0;
}

async function readAll(stream: AsyncIterable<Uint8Array>): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks).toString('utf8');
}

async function encode(flags: { in?: string; out?: string }, io: CommandIo): Promise<number> {
  const { encodeImage, parseImageJson } = await images();
  // The whole image is encoded (and so checked) before anything is written: an image edited in
  // place (decode -o x.json, edit, encode -i x.json -o the same file) stays as it was when the
  // JSON is wrong, and a reader never sees it half written.
  const bytes = encodeImage(parseImageJson(flags.in ? await readFile(flags.in, 'utf8') : await readAll(io.stdin)));
  if (flags.out) {
    await replaceFile(flags.out, bytes);
    // An image edited in its checkpoint is restored as edited, not refused as damaged.
    await (await import('../../image-digests.js')).updateImageDigest(flags.out);
  } else {
    await write(io.stdout, bytes);
  }
  return 0;
}

async function show(file: string, nopl: boolean, io: CommandIo): Promise<number> {
  const { decodeImageStream, formatImageJsonChunks } = await images();
  const image = await decodeImageStream(file, { pretty: true, noPayload: nopl });
  for await (const chunk of formatImageJsonChunks(image, { pretty: true })) await write(io.stdout, chunk);
  await write(io.stdout, '\n');
  return 0;
}

const explorers = {
  ps: async (dir: string) => (await images()).formatPs(await (await images()).explorePs(dir)),
  fds: async (dir: string) => (await images()).formatFds(await (await images()).exploreFds(dir)),
  mems: async (dir: string) => (await images()).formatMems(await (await images()).exploreMems(dir)),
  rss: async (dir: string) => (await images()).formatRss(await (await images()).exploreRss(dir)),
} as const;

function subcommandHelp(name: string, sub: Subcommand): Command {
  return {
    name: `image ${name}`,
    summary: sub.summary,
    usage: sub.usage.slice(name.length + 1),
    flags: Object.fromEntries(sub.flags.map((flag) => [flag, imageFlags[flag]])),
    positionals: { min: sub.positionals, max: sub.positionals },
    run: async () => 0,
  };
}

export const imageCommand = defineCommand({
  name: 'image',
  summary: 'decode, encode and explore CRIU images, as CRIT does (`image decode|encode|info|show|x`)',
  usage: 'decode|encode|info|show|x [ARGS]',
  description:
    Object.values(subcommands)
      .map((sub) => `runtime image ${sub.usage}`)
      .join('\n') +
    '\n\nThe JSON is the text `crit decode` prints, byte for byte, and `image encode` turns it back into the\n' +
    'same image. Raw images (pages-*.img, *.tar.gz.img) have no magic and are refused, as CRIT refuses them.',
  positionals: { min: 1, max: 3 },
  flags: imageFlags,
  subcommands: Object.entries(subcommands).map(([name, sub]) => subcommandHelp(name, sub)),
  async run(_runtime, flags, [name, ...args], io) {
    const sub = name !== undefined ? subcommands[name] : undefined;
    if (!sub) throw new UsageError(`unknown image subcommand ${JSON.stringify(name)}`, `the subcommands are: ${Object.keys(subcommands).join(', ')}`);
    const misplaced = (Object.keys(flags) as ImageFlagName[]).filter((flag) => flags[flag] !== undefined && !sub.flags.includes(flag));
    if (misplaced.length > 0) throw new UsageError(`image ${name} takes no --${misplaced[0]}`, `usage: runtime image ${sub.usage}`);
    if (args.length !== sub.positionals)
      throw new UsageError(`image ${name}: expected ${sub.usage.slice(name!.length + 1) || 'no arguments'}`, `usage: runtime image ${sub.usage}`);
    switch (name) {
      case 'decode':
        return decode(flags, io);
      case 'encode':
        return encode(flags, io);
      case 'info': {
        const info = await (await images()).imageInfo(args[0]!);
        // crit info: json.dump(indent=4) and a newline.
        await write(io.stdout, `${JSON.stringify({ magic: info.magic, count: info.count }, null, 4)}\n`);
        return 0;
      }
      case 'show':
        return show(args[0]!, flags.nopl === true, io);
      default: {
        const what = args[1]!;
        if (!Object.hasOwn(explorers, what)) throw new UsageError(`image x: unknown ${JSON.stringify(what)}`, 'choose ps, fds, mems or rss');
        await write(io.stdout, await explorers[what as keyof typeof explorers](args[0]!));
        return 0;
      }
    }
  },
});
