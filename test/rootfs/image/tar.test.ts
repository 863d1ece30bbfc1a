/**
 * The tar reader against archives as GNU tar and python's tarfile write them (pax, gnu, xattrs, the
 * three GNU sparse encodings, global pax headers), and against hand-written header bytes for what
 * no well-behaved writer makes: base-256 numbers, signed checksums, bad checksums, truncation,
 * unknown type flags. Needs no root.
 */
import test, { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { link, mkdir, mkdtemp, open, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { TarFormatError, indexTarFile, readTar, readTarFileMember } from '../../../src/rootfs/image/tar.js';
import type { TarEntry } from '../../../src/rootfs/image/types.js';
import { setXattr } from '../../../src/system/libc.js';

async function scratch(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'runtime-tar-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** The archive's bytes in chunks of the given sizes (cycled), to cross every boundary. */
async function* chunked(data: Buffer, sizes: readonly number[] = [data.length || 1]): AsyncGenerator<Buffer> {
  for (let at = 0, i = 0; at < data.length; i++) {
    const size = sizes[i % sizes.length]!;
    yield data.subarray(at, at + size);
    at += size;
  }
}

interface Read {
  readonly entry: TarEntry;
  readonly data: Buffer;
}

async function readAll(source: AsyncIterable<Buffer>): Promise<Read[]> {
  const out: Read[] = [];
  for await (const { entry, body } of readTar(source)) {
    const parts: Buffer[] = [];
    for await (const part of body) parts.push(Buffer.from(part));
    out.push({ entry, data: Buffer.concat(parts) });
  }
  return out;
}

function byName(entries: readonly Read[], name: string): Read {
  const found = entries.find((e) => e.entry.name === name);
  if (!found) throw new Error(`no entry ${name} in ${entries.map((e) => e.entry.name).join(', ')}`);
  return found;
}

function tar(cwd: string, ...args: string[]): Buffer {
  return execFileSync('tar', ['-C', cwd, '-cf', '-', ...args], { maxBuffer: 1 << 30 });
}

function python(script: string): Buffer {
  return execFileSync('python3', ['-c', script], { maxBuffer: 1 << 30 });
}

/** A hand-written ustar header with a correct (unsigned) checksum unless told otherwise. */
function header(fields: {
  name: string;
  type?: string;
  size?: number | Buffer;
  mode?: number;
  uid?: number | Buffer;
  mtime?: number | Buffer;
  linkname?: string;
  magic?: string;
  checksum?: 'unsigned' | 'signed' | number;
  /** Changes the bytes before the checksum is computed. */
  patch?: (block: Buffer) => void;
}): Buffer {
  const block = Buffer.alloc(512);
  const octal = (value: number | Buffer, at: number, width: number) =>
    Buffer.isBuffer(value) ? value.copy(block, at) : block.write(value.toString(8).padStart(width - 1, '0'), at, 'latin1');
  block.write(fields.name, 0, 100, 'utf8');
  octal(fields.mode ?? 0o644, 100, 8);
  octal(fields.uid ?? 0, 108, 8);
  octal(0, 116, 8);
  octal(fields.size ?? 0, 124, 12);
  octal(fields.mtime ?? 1_700_000_000, 136, 12);
  block.write(fields.type ?? '0', 156, 'latin1');
  block.write(fields.linkname ?? '', 157, 100, 'utf8');
  block.write(fields.magic ?? 'ustar\u000000', 257, 'latin1');
  fields.patch?.(block);
  block.fill(0x20, 148, 156);
  let unsigned = 0;
  let signed = 0;
  for (const c of block) {
    unsigned += c;
    signed += c > 127 ? c - 256 : c;
  }
  const sum = typeof fields.checksum === 'number' ? fields.checksum : fields.checksum === 'signed' ? signed : unsigned;
  block.write(`${(sum < 0 ? 0 : sum).toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return block;
}

function padded(data: Buffer): Buffer {
  return Buffer.concat([data, Buffer.alloc((512 - (data.length % 512)) % 512)]);
}

const END = Buffer.alloc(1024);

/** "<length> <key>=<value>\n", the length counting itself. */
function paxRecord(keyValue: string): string {
  let length = keyValue.length + 3;
  while (`${length} ${keyValue}\n`.length !== length) length++;
  return `${length} ${keyValue}\n`;
}

/** GNU base-256: 0x80 then the value big-endian in the rest of the field (negative: two's complement with 0xff). */
function base256(value: bigint, width: number): Buffer {
  const out = Buffer.alloc(width, value < 0n ? 0xff : 0);
  let v = value < 0n ? (1n << BigInt(width * 8)) + value : value;
  for (let i = width - 1; i >= 1; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  out[0] = value < 0n ? 0xff : 0x80;
  return out;
}

async function rejectsFormat(t: ExecutionContext, archive: Buffer, pattern: RegExp): Promise<TarFormatError> {
  const error = await t.throwsAsync(readAll(chunked(archive)), { instanceOf: TarFormatError });
  t.is(error?.code, 'TAR_FORMAT');
  t.regex(error?.message ?? '', pattern);
  t.truthy(error?.hint);
  return error!;
}

const md5 = (data: Buffer) => createHash('md5').update(data).digest('hex');

async function makeTree(dir: string): Promise<{ longDir: string; content: Buffer }> {
  const root = path.join(dir, 'tree');
  const longDir = path.join('tree', 'n'.repeat(120), 'm'.repeat(120));
  await mkdir(path.join(dir, longDir), { recursive: true });
  const content = Buffer.from(Array.from({ length: 70_000 }, (_v, i) => (i * 7) % 251));
  await writeFile(path.join(root, 'data.bin'), content);
  await writeFile(path.join(dir, longDir, 'deep.txt'), 'deep\n');
  await symlink('data.bin', path.join(root, 'link'));
  await symlink('x'.repeat(150), path.join(root, 'longlink'));
  await link(path.join(root, 'data.bin'), path.join(root, 'hard'));
  execFileSync('mkfifo', [path.join(root, 'fifo')]);
  return { longDir, content };
}

for (const format of ['pax', 'gnu'] as const) {
  test(`GNU tar --format=${format}: every type, long names and links, contents, in odd-sized chunks`, async (t) => {
    const dir = await scratch(t);
    const { longDir, content } = await makeTree(dir);
    const archive = tar(dir, `--format=${format}`, 'tree');
    for (const sizes of [[archive.length], [1000, 7, 513, 4096], [511]]) {
      const entries = await readAll(chunked(archive, sizes));
      const data = entries.find((e) => e.entry.name === 'tree/data.bin' || e.entry.name === 'tree/hard')!;
      t.is(data.entry.type, 'file');
      t.is(data.entry.size, content.length);
      t.is(md5(data.data), md5(content));
      const other = data.entry.name === 'tree/data.bin' ? 'tree/hard' : 'tree/data.bin';
      t.like(byName(entries, other).entry, { type: 'hardlink', linkname: data.entry.name, size: 0 });
      t.like(byName(entries, 'tree/link').entry, { type: 'symlink', linkname: 'data.bin' });
      t.like(byName(entries, 'tree/longlink').entry, { type: 'symlink', linkname: 'x'.repeat(150) });
      t.like(byName(entries, 'tree/fifo').entry, { type: 'fifo', size: 0 });
      t.like(byName(entries, 'tree/').entry, { type: 'directory', mode: 0o755 });
      t.is(byName(entries, `${longDir}/deep.txt`).data.toString(), 'deep\n');
      t.like(byName(entries, `${longDir}/`).entry, { type: 'directory' });
      if (format === 'pax')
        t.false(Number.isInteger(data.entry.mtime) && Number.isInteger(byName(entries, 'tree/link').entry.mtime), 'pax keeps sub-second times');
      t.true(Math.abs(data.entry.mtime - Date.now() / 1000) < 3600);
    }
  });
}

test('GNU tar --xattrs: SCHILY.xattr values come through as exact bytes', async (t) => {
  const dir = await scratch(t);
  await writeFile(path.join(dir, 'f'), 'x');
  const value = Buffer.from([0, 1, 2, 0xfe, 0xff, 0x0a, 0x3d]);
  setXattr(path.join(dir, 'f'), 'user.binary', value);
  setXattr(path.join(dir, 'f'), 'user.text', Buffer.from('hello'));
  const [entry] = await readAll(chunked(tar(dir, '--format=pax', '--xattrs', '--xattrs-include=user.*', 'f')));
  t.deepEqual(entry!.entry.xattrs.get('user.binary'), value);
  t.deepEqual(entry!.entry.xattrs.get('user.text'), Buffer.from('hello'));
  t.is(entry!.data.toString(), 'x');
});

/** A sparse file: 4 MiB of which only some pieces are data. */
async function sparseFile(dir: string, pieces: readonly number[]): Promise<Buffer> {
  const file = path.join(dir, 'sparse');
  const handle = await open(file, 'w');
  const full = Buffer.alloc(8 << 20);
  for (const [i, at] of pieces.entries()) {
    const data = Buffer.alloc(5000, 0x41 + i);
    await handle.write(data, 0, data.length, at);
    data.copy(full, at);
  }
  await handle.truncate(full.length);
  await handle.close();
  return full;
}

/** A sparse entry's body laid out at its segments' offsets. */
function inflate(read: Read): Buffer {
  const out = Buffer.alloc(read.entry.size);
  let at = 0;
  for (const { offset, length } of read.entry.sparse ?? []) {
    read.data.copy(out, offset, at, at + length);
    at += length;
  }
  if (at !== read.data.length) throw new Error(`the sparse map covers ${at} of ${read.data.length} body bytes`);
  return out;
}

for (const [label, args] of [
  ['pax 0.0', ['--format=pax', '--sparse', '--sparse-version=0.0']],
  ['pax 0.1', ['--format=pax', '--sparse', '--sparse-version=0.1']],
  ['pax 1.0', ['--format=pax', '--sparse', '--sparse-version=1.0']],
  ['old GNU with extension headers', ['--format=gnu', '--sparse']],
] as const) {
  test(`GNU tar sparse, ${label}: size is the real size, the body only the data, the map where it goes`, async (t) => {
    const dir = await scratch(t);
    // Six segments: more than the four an old GNU header holds, so extension headers are written.
    const full = await sparseFile(dir, [1 << 20, 2 << 20, 3 << 20, 4 << 20, 5 << 20, 6 << 20]);
    const entries = await readAll(chunked(tar(dir, ...args, 'sparse'), [4096, 100]));
    t.is(entries.length, 1);
    const sparse = entries[0]!;
    t.is(sparse.entry.name, 'sparse');
    t.is(sparse.entry.type, 'file');
    t.is(sparse.entry.size, full.length);
    t.true(sparse.entry.sparse!.length >= 6);
    t.true(sparse.data.length < 100_000, `body of ${sparse.data.length} bytes`);
    t.is(
      sparse.entry.sparse!.reduce((sum, s) => sum + s.length, 0),
      sparse.data.length,
    );
    t.is(md5(inflate(sparse)), md5(full));
  });
}

test('python tarfile pax: global headers apply to later entries, per-entry records override them, long paths', async (t) => {
  const archive = python(`
import tarfile, io, sys
out = io.BytesIO()
with tarfile.open(fileobj=out, mode='w', format=tarfile.PAX_FORMAT, pax_headers={'uid': '4242', 'comment': 'global'}) as t:
    i = tarfile.TarInfo('a'); i.size = 3; t.addfile(i, io.BytesIO(b'abc'))
    i = tarfile.TarInfo('p/' + 'q' * 300); i.uid = 3000000; i.mtime = 1700000000.5; i.size = 0
    i.pax_headers = {'SCHILY.xattr.user.k': 'v=1', 'uid': '77'}; t.addfile(i)
    i = tarfile.TarInfo('s'); i.type = tarfile.SYMTYPE; i.linkname = 'L' * 200; t.addfile(i)
sys.stdout.buffer.write(out.getvalue())
`);
  const entries = await readAll(chunked(archive, [300]));
  t.deepEqual(
    entries.map((e) => e.entry.name),
    ['a', `p/${'q'.repeat(300)}`, 's'],
  );
  t.is(entries[0]!.entry.uid, 4242);
  t.is(entries[0]!.data.toString(), 'abc');
  t.is(entries[1]!.entry.uid, 77);
  t.is(entries[1]!.entry.mtime, 1700000000.5);
  t.deepEqual(entries[1]!.entry.xattrs.get('user.k'), Buffer.from('v=1'));
  t.is(entries[2]!.entry.linkname, 'L'.repeat(200));
});

test('python tarfile GNU format: base-256 ids and a negative time', async (t) => {
  const archive = python(`
import tarfile, io, sys
out = io.BytesIO()
with tarfile.open(fileobj=out, mode='w', format=tarfile.GNU_FORMAT) as t:
    i = tarfile.TarInfo('big'); i.uid = 0o77777777 + 5; i.gid = 2**40; i.mtime = -86400; i.size = 1; t.addfile(i, io.BytesIO(b'z'))
sys.stdout.buffer.write(out.getvalue())
`);
  const [big] = await readAll(chunked(archive));
  t.like(big!.entry, { uid: 0o77777777 + 5, gid: 2 ** 40, mtime: -86400, size: 1 });
});

test('hand-written: base-256 size, uid and mtime fields', async (t) => {
  const data = Buffer.from('base 256 sized\n');
  const archive = Buffer.concat([
    header({ name: 'b256', size: base256(BigInt(data.length), 12), uid: base256(70_000_000n, 8), mtime: base256(-5n, 12) }),
    padded(data),
    END,
  ]);
  const [entry] = await readAll(chunked(archive));
  t.like(entry!.entry, { name: 'b256', size: data.length, uid: 70_000_000, mtime: -5 });
  t.is(entry!.data.toString(), data.toString());
});

test('hand-written: a signed checksum (old tars summed signed bytes) is accepted', async (t) => {
  const archive = Buffer.concat([header({ name: 'caf\u00e9-\u00fc', checksum: 'signed' }), END]);
  const [entry] = await readAll(chunked(archive));
  t.is(entry!.entry.name, 'caf\u00e9-\u00fc');
});

test('hand-written: a bad checksum is refused, naming the offset', async (t) => {
  const good = header({ name: 'one', size: 3 });
  const bad = header({ name: 'two', checksum: 1234 });
  const error = await rejectsFormat(t, Buffer.concat([good, padded(Buffer.from('abc')), bad, END]), /at byte 1024: header checksum 1234 does not match/);
  t.is(error.offset, 1024);
});

test('hand-written: an unknown type flag is refused, naming it', async (t) => {
  await rejectsFormat(t, Buffer.concat([header({ name: 'vol', type: 'V' }), END]), /unknown entry type flag "V"/);
});

test('hand-written: truncated archives are refused as ended early', async (t) => {
  const data = padded(Buffer.alloc(2000, 1));
  const whole = Buffer.concat([header({ name: 'f', size: 2000 }), data, END]);
  t.is((await readAll(chunked(whole))).length, 1);
  await rejectsFormat(t, whole.subarray(0, 1000), /ended early, inside the data of "f"/);
  await rejectsFormat(t, whole.subarray(0, 300), /ended early, inside a header/);
  await rejectsFormat(t, whole.subarray(0, 512 + data.length), /ended early, without its two end-of-archive blocks/);
  await rejectsFormat(t, Buffer.alloc(0), /ended early/);
  // A lone zero block at the very end is what some writers leave: accepted.
  t.is((await readAll(chunked(whole.subarray(0, whole.length - 512)))).length, 1);
  // A zero block followed by a header is a hole in the archive.
  await rejectsFormat(t, Buffer.concat([Buffer.alloc(512), header({ name: 'g' }), END]), /zero block is followed by a header/);
});

test('hand-written: an extended header whose entry never comes, and malformed pax records, are refused', async (t) => {
  const record = Buffer.from('11 path=xy\n');
  await rejectsFormat(
    t,
    Buffer.concat([header({ name: 'pax', type: 'x', size: record.length }), padded(record), END]),
    /end-of-archive block follows an extended header/,
  );
  const broken = Buffer.from('99 path=xy\n');
  await rejectsFormat(
    t,
    Buffer.concat([header({ name: 'pax', type: 'x', size: broken.length }), padded(broken), header({ name: 'f' }), END]),
    /malformed pax record/,
  );
  await rejectsFormat(
    t,
    Buffer.concat([header({ name: 'f', patch: (b) => b.fill(0x39, 100, 107) }), END]),
    /the mode field is not an octal number: "9999999/,
  );
});

test('hand-written pax 1.0 sparse map and old GNU sparse header', async (t) => {
  // pax 1.0: the map is text in the data, before the segments' bytes.
  const records = ['GNU.sparse.major=1', 'GNU.sparse.minor=0', 'GNU.sparse.name=real/name', 'GNU.sparse.realsize=20000'].map(paxRecord).join('');
  const map = padded(Buffer.from('2\n4096\n3\n12288\n5\n'));
  const data = Buffer.from('abcdefgh');
  const pax1 = Buffer.concat([
    header({ name: 'PaxHeaders/x', type: 'x', size: records.length }),
    padded(Buffer.from(records)),
    header({ name: 'GNUSparseFile.0/name', size: map.length + data.length }),
    map,
    padded(data),
    END,
  ]);
  const [one] = await readAll(chunked(pax1, [100]));
  t.like(one!.entry, { name: 'real/name', size: 20000 });
  t.deepEqual(one!.entry.sparse, [
    { offset: 4096, length: 3 },
    { offset: 12288, length: 5 },
  ]);
  t.is(one!.data.toString(), 'abcdefgh');

  // Old GNU: type 'S', two map slots at 386, the real size at 483.
  const gnu = header({ name: 'oldsparse', type: 'S', size: 8, magic: 'ustar  \0' });
  gnu.write('00000010000\0' + '00000000003\0' + '00000030000\0' + '00000000005\0', 386, 'latin1');
  gnu.write('00000100000\0', 483, 'latin1');
  gnu.fill(0x20, 148, 156);
  gnu.write(
    `${gnu
      .reduce((sum, c) => sum + c, 0)
      .toString(8)
      .padStart(6, '0')}\0 `,
    148,
    'latin1',
  );
  const [old] = await readAll(chunked(Buffer.concat([gnu, padded(data), END])));
  t.like(old!.entry, { name: 'oldsparse', type: 'file', size: 0o100000 });
  t.deepEqual(old!.entry.sparse, [
    { offset: 0o10000, length: 3 },
    { offset: 0o30000, length: 5 },
  ]);

  // A map that claims more data than the member stores is refused.
  const lying = Buffer.from(gnu);
  lying.write('00000000011\0', 386 + 12, 'latin1');
  lying.fill(0x20, 148, 156);
  lying.write(
    `${lying
      .reduce((sum, c) => sum + c, 0)
      .toString(8)
      .padStart(6, '0')}\0 `,
    148,
    'latin1',
  );
  await rejectsFormat(t, Buffer.concat([lying, padded(data), END]), /sparse map holds 14 bytes of data, the member stores 8/);
});

test('bodies need not be read, may be read in part, and cannot be read once the next entry is pulled', async (t) => {
  const archive = Buffer.concat([
    header({ name: 'a', size: 3000 }),
    padded(Buffer.alloc(3000, 0x61)),
    header({ name: 'b', size: 2 }),
    padded(Buffer.from('bb')),
    header({ name: 'c', size: 1 }),
    padded(Buffer.from('c')),
    END,
  ]);
  const seen: string[] = [];
  let stale: AsyncIterable<Buffer> | undefined;
  for await (const { entry, body } of readTar(chunked(archive, [700]))) {
    if (entry.name === 'a') {
      for await (const part of body) {
        t.true(part.length <= 700);
        break;
      }
      stale = body;
    }
    if (entry.name === 'b') {
      await t.throwsAsync(
        (async () => {
          for await (const _part of stale!) t.fail();
        })(),
        { instanceOf: TarFormatError, message: /read after the next entry was pulled/ },
      );
    }
    if (entry.name === 'c') for await (const part of body) seen.push(part.toString());
    seen.push(entry.name);
  }
  t.deepEqual(seen, ['a', 'b', 'c', 'c']);
});

test('readTar reads the source to its end, padding included, so a digesting stream sees every byte', async (t) => {
  const archive = Buffer.concat([header({ name: 'f' }), END, Buffer.alloc(8192)]);
  let read = 0;
  async function* counting(): AsyncGenerator<Buffer> {
    for await (const part of chunked(archive, [512])) {
      read += part.length;
      yield part;
    }
  }
  t.is((await readAll(counting())).length, 1);
  t.is(read, archive.length);
});

test('indexTarFile reads the headers of a tar file; readTarFileMember its members', async (t) => {
  const dir = await scratch(t);
  const tree = path.join(dir, 'in');
  await mkdir(path.join(tree, 'blobs', 'sha256'), { recursive: true });
  const big = Buffer.alloc(3 << 20, 0x5a);
  big.write('start', 0);
  big.write('end', big.length - 3);
  await writeFile(path.join(tree, 'manifest.json'), '[{"Config":"c.json"}]');
  await writeFile(path.join(tree, 'blobs', 'sha256', 'big'), big);
  await writeFile(path.join(tree, 'empty'), '');
  await writeFile(path.join(tree, 'n'.repeat(150)), 'long');
  const file = path.join(dir, 'archive.tar');
  await writeFile(file, tar(tree, '--format=pax', '.'));

  const members = await indexTarFile(file);
  t.true(members.has('manifest.json'), 'the leading ./ is removed');
  t.true(members.has('blobs/sha256/'));
  const read = async (name: string) => {
    const parts: Buffer[] = [];
    for await (const part of readTarFileMember(file, members.get(name)!)) parts.push(part);
    return Buffer.concat(parts);
  };
  t.is((await read('manifest.json')).toString(), '[{"Config":"c.json"}]');
  const bigMember = members.get('blobs/sha256/big')!;
  t.is(bigMember.size, big.length);
  t.is(bigMember.entry.size, big.length);
  t.is(bigMember.offset % 512, 0);
  t.is(md5(await read('blobs/sha256/big')), md5(big));
  t.is((await read('empty')).length, 0);
  t.is((await read('n'.repeat(150))).toString(), 'long');

  // The same truncation rules as readTar.
  const whole = await readFile(file);
  await writeFile(file, whole.subarray(0, bigMember.offset + 1000));
  await t.throwsAsync(indexTarFile(file), { instanceOf: TarFormatError, message: /ended early, inside the data of "\.\/blobs\/sha256\/big"/ });
});
