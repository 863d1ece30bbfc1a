/**
 * Digests of a checkpoint's files: CRIU's images carry no checksum, so a flipped bit in a page
 * would come back as silently wrong memory, and a truncated image as an error deep in CRIU's log.
 * After a dump the runtime writes checksums.sha256 beside the images (the format `sha256sum -c`
 * reads, so the files can be checked anywhere), and `runtime restore` checks every file it names
 * before CRIU reads any: a file changed, cut short or gone is an error naming it. Resets read
 * their snapshot through a read-only view and skip the check (it costs a read of every page).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { RuntimeError } from './errors.js';
import { writePrivateFile } from './checkpoint-metadata.js';

export const DIGESTS_FILE = 'checksums.sha256';
const PARALLEL = 4;

export class CorruptCheckpointError extends RuntimeError {
  readonly code = 'CORRUPT_CHECKPOINT' as const;
  constructor(
    readonly imagePath: string,
    readonly files: readonly string[],
    how: string,
  ) {
    super(`the checkpoint in ${imagePath} is damaged: ${files.slice(0, 5).join(', ')}${files.length > 5 ? ` and ${files.length - 5} more` : ''} ${how}`, {
      hint: `the images are not as they were dumped (\`sha256sum -c ${DIGESTS_FILE}\` in that directory shows which): restore another checkpoint, or take a new one; an image edited on purpose with another tool than \`runtime image encode -o\` needs its line in ${DIGESTS_FILE} updated`,
    });
  }
}

/**
 * An image edited on purpose (`runtime image encode -o`): its line in the digests of its
 * directory, if they name it, takes its new digest, so the edit is restored rather than refused.
 */
export async function updateImageDigest(file: string): Promise<void> {
  const dir = path.dirname(path.resolve(file));
  const digests = path.join(dir, DIGESTS_FILE);
  const text = await readFile(digests, 'utf8').catch(() => undefined);
  if (text === undefined) return;
  const name = path.basename(file);
  const digest = await digestOf(file);
  const lines = text.split('\n').map((line) => (line.endsWith(`  ${name}`) && line.length === 64 + 2 + name.length ? `${digest}  ${name}` : line));
  await writePrivateFile(digests, lines.join('\n'));
}

/** Writes the digest of every file below dir (logs aside), once the images are final. */
export async function writeImageDigests(dir: string): Promise<void> {
  const files = (await filesBelow(dir)).filter((file) => !file.endsWith('.log') && file !== DIGESTS_FILE && !/[\n\\]/.test(file));
  const digests = await mapLimited(files, (file) => digestOf(path.join(dir, file)));
  await writePrivateFile(path.join(dir, DIGESTS_FILE), files.map((file, i) => `${digests[i]}  ${file}\n`).join(''));
}

/**
 * Checks every file the digests name; throws CorruptCheckpointError naming the ones that differ
 * or are gone. False when the checkpoint has no digests (made before the runtime wrote them).
 */
export async function verifyImageDigests(dir: string): Promise<boolean> {
  let text: string;
  try {
    text = await readFile(path.join(dir, DIGESTS_FILE), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
  const entries = text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const match = /^([0-9a-f]{64}) {2}(.+)$/.exec(line);
      if (!match || match[2]!.split('/').includes('..') || path.isAbsolute(match[2]!))
        throw new CorruptCheckpointError(dir, [DIGESTS_FILE], `has a line that is no digest of a file in it: ${JSON.stringify(line.slice(0, 120))}`);
      return { digest: match[1]!, file: match[2]! };
    });
  const actual = await mapLimited(entries, (entry) => digestOf(path.join(dir, entry.file)).catch(() => 'missing'));
  const missing = entries.filter((_entry, i) => actual[i] === 'missing').map((entry) => entry.file);
  if (missing.length > 0) throw new CorruptCheckpointError(dir, missing, missing.length === 1 ? 'is missing' : 'are missing');
  const changed = entries.filter((entry, i) => actual[i] !== entry.digest).map((entry) => entry.file);
  if (changed.length > 0) throw new CorruptCheckpointError(dir, changed, `${changed.length === 1 ? 'differs' : 'differ'} from what was dumped`);
  return true;
}

async function filesBelow(dir: string, prefix = ''): Promise<string[]> {
  const files: string[] = [];
  for (const entry of await readdir(path.join(dir, prefix), { withFileTypes: true })) {
    const relative = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
    if (entry.isDirectory()) files.push(...(await filesBelow(dir, relative)));
    else if (entry.isFile()) files.push(relative);
  }
  return files.sort();
}

function digestOf(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(file)
      .on('error', reject)
      .on('data', (chunk) => hash.update(chunk))
      .on('end', () => resolve(hash.digest('hex')));
  });
}

/** fn over items, at most PARALLEL at a time, results in order. */
async function mapLimited<T, R>(items: readonly T[], fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL, items.length) }, worker));
  return results;
}
