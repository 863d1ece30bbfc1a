/**
 * The codec against CRIT on hand-made images: payload images, socket addresses, flags, devices,
 * big and negative integers (test/fixtures/images/synthetic.ts), and messages built byte by byte
 * to hit the parser's corners (invalid UTF-8, unknown enum values, wrong wire types, merged and
 * packed fields). Needs crit, not root.
 */
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  decodeImage,
  encodeImage,
  formatImageJson,
  IMG_COMMON,
  InvalidImageJsonError,
  parseImageJson,
  UnsupportedImageError,
  type ImageJson,
} from '../../../src/criu/images/index.js';
import { syntheticImages } from '../../fixtures/images/synthetic.js';
import { crit, hasCommand, requiring } from './helpers.js';

const test = requiring(
  anyTest as TestFn,
  'synthetic image tests (crit)',
  hasCommand('crit') ? undefined : 'crit is not installed (run scripts/install-criu.sh)',
);

let dir: string;
if (hasCommand('crit')) {
  test.before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'runtime-images-synthetic-'));
  });
  test.after.always(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });
}

async function sameAsCrit(t: ExecutionContext, name: string, bytes: Uint8Array): Promise<void> {
  const file = path.join(dir, `${name}.img`);
  await writeFile(file, bytes);
  for (const pretty of [false, true]) {
    const expected = await crit(['decode', ...(pretty ? ['--pretty'] : []), '-i', file]);
    t.true(expected.ok, `${name}: ${expected.stderr}`);
    const image = await decodeImage(file, { pretty });
    t.is(`${formatImageJson(image, { pretty })}\n`, expected.stdout, `${name}${pretty ? ' --pretty' : ''}`);
    t.deepEqual(image, parseImageJson(expected.stdout));
  }
}

for (const { name, image, critCanEncode } of syntheticImages) {
  test(`${name}: encodes as crit encode does and decodes as crit decode does`, async (t) => {
    const bytes = encodeImage(image);
    const jsonFile = path.join(dir, `${name}.json`);
    await writeFile(jsonFile, formatImageJson(image));
    const encoded = await crit(['encode', '-i', jsonFile]);
    if (critCanEncode) {
      t.true(encoded.ok, encoded.stderr);
      t.true(encoded.stdoutBytes.equals(bytes), 'crit encode gives other bytes');
    } else {
      t.false(encoded.ok, 'pycriu was expected to fail here; the codec may now match it');
    }
    await sameAsCrit(t, name, bytes);
    for (const pretty of [false, true]) {
      const again = encodeImage(parseImageJson(formatImageJson(await decodeImage(bytes, { pretty }), { pretty })));
      t.true(again.equals(bytes), `round trip${pretty ? ' through --pretty' : ''}`);
    }
  });
}

/** A tiny protobuf writer for hand-made messages. */
function varint(n: bigint): number[] {
  const out: number[] = [];
  let v = BigInt.asUintN(64, n);
  while (v > 0x7fn) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return out;
}
const field = (number: number, wireType: number): number[] => varint(BigInt((number << 3) | wireType));
const vint = (number: number, value: bigint | number): number[] => [...field(number, 0), ...varint(BigInt(value))];
const bytesField = (number: number, bytes: number[]): number[] => [...field(number, 2), ...varint(BigInt(bytes.length)), ...bytes];
const text = (s: string): number[] => [...Buffer.from(s)];

function image(magic: number, messages: number[][]): Uint8Array {
  const out: number[] = [];
  const word = (w: number): void => {
    out.push(w & 0xff, (w >>> 8) & 0xff, (w >>> 16) & 0xff, (w >>> 24) & 0xff);
  };
  word(IMG_COMMON);
  word(magic);
  for (const m of messages) {
    word(m.length);
    out.push(...m);
  }
  return Uint8Array.from(out);
}

const REG_FILES = 1345730102;
const FDINFO = 1445017394;
const CREDS = 1409430855;
const FILES = 1445998904;
const fown = bytesField(5, [...vint(1, 0), ...vint(2, 0), ...vint(3, 0), ...vint(4, 0), ...vint(5, 0)]);

test('parser corners decode as pycriu sees them', async (t) => {
  // reg_file_entry: id 1, flags 2, pos 3, fown 5, name 6 (string), mnt_id 7 (sint32), size 8, build_id 11 (repeated).
  const reg = (name: number[], extra: number[] = []): number[] => [...vint(1, 1), ...vint(2, 0), ...vint(3, 0), ...fown, ...bytesField(6, name), ...extra];
  await sameAsCrit(
    t,
    'corners-reg',
    image(REG_FILES, [
      reg([0xff, 0xfe]), // invalid UTF-8: pycriu prints the repr of the bytes
      reg([0x27, 0x80, 0x5c, 0x0a, 0x09, 0x7f]), // repr with a quote, backslash and escapes
      reg([0x22, 0x27, 0xc3]), // both quotes
      reg(text('\ufeffbom \u2603 \ud83d\ude00')), // a BOM and astral characters stay as they are
      reg(text('ok'), [...vint(7, 9), ...bytesField(11, [1, 2, 0x80, 0x01]), ...vint(11, 7)]), // packed then unpacked
      reg(text('last wins'), [...vint(1, 99), ...vint(1, 4294967296n + 5n)]), // u32 keeps the low 32 bits of the last value
      reg(text('wrong wire'), [...bytesField(2, [1, 2]), ...field(3, 5), 1, 2, 3, 4, ...vint(999, 1), ...field(998, 1), 1, 2, 3, 4, 5, 6, 7, 8]),
      reg(text('group'), [...field(50, 3), ...vint(1, 5), ...field(51, 3), ...field(51, 4), ...field(50, 4)]),
      reg(text('merged'), [...bytesField(5, [...vint(1, 42)])]), // fown appears twice: merged
    ]),
  );
  // fdinfo_entry: id 1, flags 2, type 3 (enum fd_types), fd 4: unknown enum numbers are dropped.
  await sameAsCrit(
    t,
    'corners-fdinfo',
    image(FDINFO, [
      [...vint(1, 1), ...vint(2, 0), ...vint(3, 1), ...vint(4, 0)],
      [...vint(1, 2), ...vint(2, 0), ...vint(3, 1000), ...vint(4, 1)],
      [...vint(1, 3), ...vint(2, 0), ...vint(3, -1), ...vint(4, 2)],
      [],
    ]),
  );
  // creds_entry: cap_* repeated u32, given packed.
  await sameAsCrit(
    t,
    'corners-creds',
    image(CREDS, [
      [
        ...vint(1, 0),
        ...vint(2, 0),
        ...vint(3, 0),
        ...vint(4, 0),
        ...vint(5, 0),
        ...vint(6, 0),
        ...vint(7, 0),
        ...vint(8, 0),
        ...bytesField(9, [...varint(4294967295n), 0]),
        ...bytesField(10, []),
        ...vint(13, 0),
      ],
    ]),
  );
  // file_entry: a message field with a wrong wire type is skipped.
  await sameAsCrit(t, 'corners-files', image(FILES, [[...vint(1, 1), ...vint(2, 7), ...vint(3, 5)]]));
});

test('encoding rejects what pycriu rejects, with the JSON path', (t) => {
  const bad: [ImageJson, RegExp][] = [
    [{ magic: 'NOPE', entries: [] }, /unknown image type/],
    [{ magic: 'RLIMIT', entries: [{ cur: 1 }] }, /entries\[0\].*missing required fields: max/],
    [{ magic: 'RLIMIT', entries: [{ cur: -1, max: 0 }] }, /entries\[0\]\.cur.*out of range/],
    [{ magic: 'RLIMIT', entries: [{ cur: 'x', max: 0 }] }, /entries\[0\]\.cur.*invalid literal/],
    [{ magic: 'FDINFO', entries: [{ id: 1, flags: 0, type: 'NOT_A_TYPE', fd: 0 }] }, /entries\[0\]\.type/],
    [{ magic: 'PIPES_DATA', entries: [{ pipe_id: 1, bytes: 1, extra: 'A' }] }, /entries\[0\]\.extra.*base64/],
    [{ magic: 'IPCNS_SEM', entries: [{ desc: { key: 0, uid: 0, gid: 0, cuid: 0, cgid: 0, mode: 0, id: 0 }, nsems: 2, extra: [1] }] }, /mismatch/],
    [{ magic: 'INETSK', entries: [{ src_addr: ['not an address'] }] }, /src_addr\[0\]/],
  ];
  for (const [json, message] of bad) {
    const error = t.throws(() => encodeImage(json), { instanceOf: InvalidImageJsonError });
    t.regex(error?.message ?? '', message);
  }
  t.throws(() => encodeImage({ magic: 'KDAT', entries: [] }), { instanceOf: UnsupportedImageError });
});

test('pretty forms are read back: hex, flag names, devices, dict names, addresses', (t) => {
  const plain = encodeImage({ magic: 'VMAS', entries: [{ start: 4096, end: 8192, pgoff: 0, shmid: 0, prot: 3, flags: 0x22, status: 0x201, fd: -1 }] });
  const pretty = encodeImage({
    magic: 'VMAS',
    entries: [
      {
        start: '0x1000',
        end: '0o20000',
        pgoff: 0,
        shmid: 0,
        prot: 'PROT_READ | PROT_WRITE',
        flags: 'MAP_PRIVATE | 0x20',
        status: 'VMA_AREA_REGULAR | VMA_ANON_PRIVATE',
        fd: -1,
      },
    ],
  });
  t.true(plain.equals(pretty));
});
