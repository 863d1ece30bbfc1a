/**
 * Loading the message schema from pycriu: the embedded descriptors, the `(criu)` options, the magic
 * table, and a clear error when pycriu is not there.
 */
import test from 'ava';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parsePythonBytesLiteral, serializedFilesIn } from '../../../src/criu/images/descriptors/python-bytes.js';
import { parseMagicPy } from '../../../src/criu/images/descriptors/pycriu-source.js';
import { decodeImage, encodeImage, ImageDescriptorsNotFoundError, loadImageCatalog } from '../../../src/criu/images/index.js';
import { hasCommand } from './helpers.js';

test('Python bytes literals: every escape protoc and Python use', (t) => {
  const source = String.raw`x = AddSerializedFile(b'\n\x0b\x63ore\'s\\ \"q\" \101\0\7777\t\r\a\b\f\v\q')`;
  const [bytes] = serializedFilesIn(source);
  t.deepEqual([...bytes!], [10, 11, 0x63, ...Buffer.from('ore\'s\\ "q" '), 0o101, 0, 0o777 & 0xff, 0x37, 9, 13, 7, 8, 12, 11, 0x5c, 0x71]);
  t.throws(() => parsePythonBytesLiteral(`b'abc`, 0), { instanceOf: SyntaxError });
  t.throws(() => parsePythonBytesLiteral(`b'\\xZZ'`, 0), { instanceOf: SyntaxError });
});

test('magic.py is read as a table', (t) => {
  const magics = parseMagicPy("by_name = {}\nby_name['INVENTORY'] = 1479618838\nby_val[1479618838] = 'INVENTORY'\nby_name['X'] = 0x10\n");
  t.deepEqual(
    [...magics],
    [
      ['INVENTORY', 1479618838],
      ['X', 16],
    ],
  );
});

const havePycriu = hasCommand('crit');

(havePycriu ? test : test.skip)('the installed pycriu gives every handler its types and the (criu) options', (t) => {
  const catalog = loadImageCatalog();
  t.true(catalog.registry.messages.size > 150);
  for (const name of ['core_entry', 'pagemap_head', 'pagemap_entry', 'ghost_file_entry', 'ghost_chunk_entry', 'ipc_msg']) {
    t.truthy(catalog.type(name), name);
  }
  const vma = catalog.type('vma_entry');
  t.true(vma.byName.get('start')!.criu.hex);
  t.is(vma.byName.get('status')!.criu.flags, 'mmap.status');
  const inet = catalog.type('inet_sk_entry');
  t.true(inet.byName.get('src_addr')!.criu.ipadd);
  t.is(inet.byName.get('state')!.criu.dict, 'sk');
  t.is(catalog.type('unix_sk_entry').byName.get('name')!.criu.conv, 'unix_name');
  const ghost = catalog.type('ghost_file_entry');
  t.true(ghost.byName.get('rdev')!.criu.dev && ghost.byName.get('rdev')!.criu.odev);
  t.is(catalog.magics.byName.get('IMG_COMMON'), 0x54564319);
  // Fields come sorted by number, which is the order pycriu lists them in.
  const numbers = catalog.type('core_entry').fields.map((f) => f.number);
  t.deepEqual(
    numbers,
    [...numbers].sort((a, b) => a - b),
  );
});

test('without pycriu every call fails with ImageDescriptorsNotFoundError and says what to install', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'runtime-no-pycriu-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const error = t.throws(() => loadImageCatalog(dir), { instanceOf: ImageDescriptorsNotFoundError });
  t.is(error?.code, 'IMAGE_DESCRIPTORS_NOT_FOUND');
  t.regex(error?.hint ?? '', /scripts\/install-criu\.sh/);
  t.regex(error?.hint ?? '', /python3-pycriu/);
  t.true(error?.message.includes(dir));
  await t.throwsAsync(decodeImage(Buffer.alloc(8), { pycriuDir: dir }), { instanceOf: ImageDescriptorsNotFoundError });
  t.throws(() => encodeImage({ magic: 'CORE', entries: [] }, { pycriuDir: dir }), { instanceOf: ImageDescriptorsNotFoundError });
  // A pycriu whose files are damaged is reported the same way.
  await mkdir(path.join(dir, 'images'));
  await writeFile(path.join(dir, 'images', 'magic.py'), "by_name['INVENTORY'] = 1479618838\n");
  await writeFile(path.join(dir, 'images', 'x_pb2.py'), "DESCRIPTOR = AddSerializedFile(b'\\x0a\\xff')\n");
  t.throws(() => loadImageCatalog(dir), { instanceOf: ImageDescriptorsNotFoundError, message: /cannot read/ });
});
