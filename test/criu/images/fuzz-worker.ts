/**
 * The fuzz loop, run in a worker thread so the test can kill it if the codec ever loops without
 * yielding. Before each case it posts the case (so a hang names its input); every call must resolve
 * or reject with a RuntimeError.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { RuntimeError } from '../../../src/runtime/errors.js';
import { decodeImage, encodeImage, imageInfo, type CritJsonValue, type ImageJson } from '../../../src/criu/images/index.js';

export interface FuzzInput {
  readonly seeds: readonly Uint8Array[];
  readonly images: readonly ImageJson[];
  readonly seed: number;
  readonly milliseconds: number;
}

export type FuzzMessage =
  | { readonly kind: 'case'; readonly n: number; readonly what: string; readonly input: string }
  | { readonly kind: 'bad'; readonly n: number; readonly what: string; readonly input: string; readonly error: string }
  | { readonly kind: 'done'; readonly cases: number; readonly outcomes: Record<string, number> };

/** mulberry32: a small seeded generator, so a failure can be replayed from its seed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const { seeds, images, seed, milliseconds } = workerData as FuzzInput;
const rnd = random(seed);
const int = (n: number): number => Math.floor(rnd() * n);
const interesting = [0, 1, 0x7f, 0x80, 0xff, 0x7fffffff, 0x80000000, 0xffffffff, 0x54564319, 0x55105940];

function mutate(source: Uint8Array): Uint8Array {
  let bytes = Uint8Array.from(source);
  const rounds = 1 + int(4);
  for (let r = 0; r < rounds; r++) {
    const at = bytes.length ? int(bytes.length) : 0;
    switch (int(7)) {
      case 0: // flip bits
        if (bytes.length) bytes[at] = bytes[at]! ^ (1 << int(8));
        break;
      case 1: // random byte
        if (bytes.length) bytes[at] = int(256);
        break;
      case 2: // truncate
        bytes = bytes.slice(0, int(bytes.length + 1));
        break;
      case 3: {
        // insert random bytes
        const extra = Uint8Array.from({ length: 1 + int(16) }, () => int(256));
        bytes = Uint8Array.from([...bytes.subarray(0, at), ...extra, ...bytes.subarray(at)]);
        break;
      }
      case 4: // an interesting word (sizes, magics)
        if (bytes.length >= 4) new DataView(bytes.buffer).setUint32(int(bytes.length - 3), interesting[int(interesting.length)]!, true);
        break;
      case 5: {
        // duplicate a slice
        const length = int(64);
        bytes = Uint8Array.from([...bytes.subarray(0, at), ...bytes.subarray(at, at + length), ...bytes.subarray(at)]);
        break;
      }
      default: // delete a slice
        bytes = Uint8Array.from([...bytes.subarray(0, at), ...bytes.subarray(at + 1 + int(16))]);
    }
  }
  return bytes;
}

const junk = (): CritJsonValue => {
  const choices: (() => CritJsonValue)[] = [
    () => null,
    () => true,
    () => -1,
    () => 2 ** 64,
    () => 1.5,
    () => 18446744073709551616n,
    () => -9223372036854775809n,
    () => '',
    () => '0x',
    () => 'zz',
    () => '1:2:3',
    () => ':',
    () => 'PROT_READ | NOPE',
    () => '::1',
    () => '\ud800',
    () => [],
    () => [1, 'x'],
    () => ({}),
    () => ({ a: 1 }),
    () => 'A===',
    () => int(1000),
  ];
  return choices[int(choices.length)]!();
};

/** Replaces one value somewhere in a copy of the image with junk. */
function mutateJson(image: ImageJson): ImageJson {
  const copy = structuredClone(image) as unknown as Record<string, CritJsonValue>;
  let node: CritJsonValue = copy;
  for (let depth = 0; depth < 6; depth++) {
    if (node === null || typeof node !== 'object') break;
    const keys: string[] = Object.keys(node);
    if (keys.length === 0) break;
    const key: string = keys[int(keys.length)]!;
    const child: CritJsonValue = (node as Record<string, CritJsonValue>)[key]!;
    if (child === null || typeof child !== 'object' || rnd() < 0.3) {
      (node as Record<string, CritJsonValue>)[key] = junk();
      break;
    }
    node = child;
  }
  return copy as unknown as ImageJson;
}

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const outcomes: Record<string, number> = {};
const deadline = Date.now() + milliseconds;
let n = 0;

async function check(what: string, input: string, run: () => Promise<unknown>): Promise<void> {
  parentPort!.postMessage({ kind: 'case', n, what, input } satisfies FuzzMessage);
  try {
    await run();
    outcomes.ok = (outcomes.ok ?? 0) + 1;
  } catch (error) {
    if (error instanceof RuntimeError) {
      outcomes[error.code] = (outcomes[error.code] ?? 0) + 1;
    } else {
      parentPort!.postMessage({ kind: 'bad', n, what, input, error: (error as Error)?.stack ?? String(error) } satisfies FuzzMessage);
    }
  }
}

while (Date.now() < deadline) {
  n++;
  if (rnd() < 0.8) {
    const bytes = mutate(seeds[int(seeds.length)]!);
    const input = hex(bytes);
    await check('decode', input, () => decodeImage(bytes));
    await check('decode --pretty', input, () => decodeImage(bytes, { pretty: true }));
    await check('show --nopl', input, () => decodeImage(bytes, { pretty: true, noPayload: true }));
    await check('info', input, () => imageInfo(bytes));
  } else {
    const image = mutateJson(images[int(images.length)]!);
    await check(
      'encode',
      JSON.stringify(image, (_, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v)),
      async () => encodeImage(image),
    );
  }
}
parentPort!.postMessage({ kind: 'done', cases: n, outcomes } satisfies FuzzMessage);
