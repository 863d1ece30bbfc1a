/**
 * Layer extraction for real, as root (chown, mknod, trusted.* and security.* xattrs need it): the
 * layers are hand-written pax archives (and one from GNU tar --sparse), extracted into a target
 * beside an empty sibling directory, which must stay empty whatever the layer tries.
 */
import 'reflect-metadata';
import { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { lstat, mkdir, mkdtemp, open, readFile, readdir, readlink, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { HostileLayerError, extractLayer, type ExtractOptions, type ExtractResult } from '../../../src/rootfs/image/extract.js';
import { getXattr, listXattrs } from '../../../src/system/libc.js';
import { rootTest } from '../helpers/root.js';

/** One member of a hand-written layer. */
interface Member {
  readonly name: string;
  /** The tar type flag: '0' file, '1' hard link, '2' symlink, '3' char, '4' block, '5' directory, '6' fifo. */
  readonly type?: string;
  readonly data?: Buffer | string;
  readonly mode?: number;
  readonly uid?: number;
  readonly gid?: number;
  readonly mtime?: number;
  readonly linkname?: string;
  readonly devmajor?: number;
  readonly devminor?: number;
  readonly xattrs?: Readonly<Record<string, Buffer | string>>;
}

function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
  let length = body.length + 1;
  while (String(length).length + body.length !== length) length++;
  return Buffer.concat([Buffer.from(String(length)), body]);
}

function ustar(name: string, type: string, size: number, m: Member): Buffer {
  const block = Buffer.alloc(512);
  const octal = (value: number, at: number, width: number) =>
    block.write(
      Math.trunc(value)
        .toString(8)
        .padStart(width - 1, '0'),
      at,
      'latin1',
    );
  block.write(name, 0, 100, 'utf8');
  octal(m.mode ?? (type === '5' ? 0o755 : 0o644), 100, 8);
  octal(m.uid ?? 0, 108, 8);
  octal(m.gid ?? 0, 116, 8);
  octal(size, 124, 12);
  octal(m.mtime ?? 1_600_000_000, 136, 12);
  block.write(type, 156, 'latin1');
  block.write(m.linkname ?? '', 157, 100, 'utf8');
  block.write('ustar\u000000', 257, 'latin1');
  octal(m.devmajor ?? 0, 329, 8);
  octal(m.devminor ?? 0, 337, 8);
  block.fill(0x20, 148, 156);
  block.write(
    `${block
      .reduce((sum, c) => sum + c, 0)
      .toString(8)
      .padStart(6, '0')}\0 `,
    148,
    'latin1',
  );
  return block;
}

const pad = (data: Buffer) => Buffer.concat([data, Buffer.alloc((512 - (data.length % 512)) % 512)]);

/** A pax archive of the members; xattrs, long names and fractional times go in 'x' headers. */
function layer(members: readonly Member[]): Buffer {
  const out: Buffer[] = [];
  for (const m of members) {
    const data = m.data === undefined ? Buffer.alloc(0) : Buffer.from(m.data);
    const records: Buffer[] = [];
    if (Buffer.byteLength(m.name) > 100) records.push(paxRecord('path', Buffer.from(m.name)));
    if ((m.linkname ?? '').length > 100) records.push(paxRecord('linkpath', Buffer.from(m.linkname!)));
    if (m.mtime !== undefined && !Number.isInteger(m.mtime)) records.push(paxRecord('mtime', Buffer.from(String(m.mtime))));
    for (const [key, value] of Object.entries(m.xattrs ?? {})) records.push(paxRecord(`SCHILY.xattr.${key}`, Buffer.from(value)));
    if (records.length > 0) {
      const pax = Buffer.concat(records);
      out.push(ustar('PaxHeaders/x', 'x', pax.length, { name: 'PaxHeaders/x' }), pad(pax));
    }
    out.push(ustar(m.name.slice(0, 100), m.type ?? '0', data.length, m), pad(data));
  }
  out.push(Buffer.alloc(1024));
  return Buffer.concat(out);
}

async function* chunks(data: Buffer, size = 65536): AsyncGenerator<Buffer> {
  for (let at = 0; at < data.length; at += size) yield data.subarray(at, at + size);
}

interface Scratch {
  readonly base: string;
  readonly target: string;
  readonly sibling: string;
}

/** base/target (empty, for the layer) beside base/sibling (empty, must stay so); removed at the end. */
async function scratch(t: ExecutionContext): Promise<Scratch> {
  const base = await mkdtemp(path.join(os.tmpdir(), 'runtime-extract-'));
  t.teardown(() => rm(base, { recursive: true, force: true }));
  const target = path.join(base, 'target');
  const sibling = path.join(base, 'sibling');
  await mkdir(target, { mode: 0o700 });
  await mkdir(sibling);
  return { base, target, sibling };
}

async function extract(dir: Scratch, members: readonly Member[], options?: ExtractOptions): Promise<ExtractResult> {
  return extractLayer(chunks(layer(members), 1000), dir.target, options);
}

async function untouchedOutside(t: ExecutionContext, dir: Scratch): Promise<void> {
  t.deepEqual(await readdir(dir.sibling), [], 'the sibling directory stays empty');
  t.deepEqual((await readdir(dir.base)).sort(), ['sibling', 'target'], 'nothing appears beside the target');
}

async function exists(file: string): Promise<boolean> {
  return lstat(file).then(
    () => true,
    () => false,
  );
}

/** security.capability v2 with cap_net_bind_service (bit 10) permitted and effective. */
const capability = Buffer.alloc(20);
capability.writeUInt32LE(0x02000001, 0);
capability.writeUInt32LE(1 << 10, 4);

rootTest('extract: owners, modes with setuid and sticky bits, times, xattrs (user.* and security.capability)', async (t) => {
  const dir = await scratch(t);
  const result = await extract(dir, [
    { name: './', type: '5', mode: 0o751, mtime: 1_600_000_000 },
    { name: 'usr/', type: '5', mtime: 1_500_000_000 },
    { name: 'usr/bin/', type: '5', mtime: 1_500_000_001 },
    { name: 'usr/bin/su', data: '#!su\n', mode: 0o4755, mtime: 1_500_000_002, xattrs: { 'security.capability': capability } },
    { name: 'usr/bin/sh', type: '2', linkname: 'busybox', uid: 5, gid: 6, mtime: 1_400_000_000 },
    { name: 'usr/bin/pipe', type: '6', mode: 0o600 },
    { name: './home/user/', type: '5', mode: 0o700, uid: 1000, gid: 1000, mtime: 1_300_000_000 },
    {
      name: 'home/user/notes',
      data: 'hi\n',
      mode: 0o640,
      uid: 1000,
      gid: 100,
      mtime: 1_234_567_890.25,
      xattrs: { 'user.note': Buffer.from([0, 0xff, 1]) },
    },
    { name: 'tmp/', type: '5', mode: 0o1777 },
    { name: 'srv/', type: '5', mode: 0o2775, gid: 50 },
  ]);
  t.deepEqual(result, { entries: 10, bytes: 8, devicesSkipped: [] });
  const at = (name: string) => path.join(dir.target, name);

  const root = await stat(dir.target);
  t.is(root.mode & 0o7777, 0o751);
  t.is(root.mtimeMs, 1_600_000_000_000);
  const su = await stat(at('usr/bin/su'));
  t.is(su.mode & 0o7777, 0o4755, 'setuid survives the chown before it');
  t.deepEqual(getXattr(at('usr/bin/su'), 'security.capability'), capability, 'the capability survives chown and the write');
  t.is(su.mtimeMs, 1_500_000_002_000);
  t.is(await readFile(at('usr/bin/su'), 'utf8'), '#!su\n');
  t.is((await stat(at('usr/bin'))).mtimeMs, 1_500_000_001_000, 'directory times are set after their children');
  t.is((await stat(at('usr'))).mtimeMs, 1_500_000_000_000);
  t.is((await stat(at('home'))).mode & 0o7777, 0o755, 'a missing parent is made 0755');

  const sh = await lstat(at('usr/bin/sh'));
  t.true(sh.isSymbolicLink());
  t.is(await readlink(at('usr/bin/sh')), 'busybox');
  t.like(sh, { uid: 5, gid: 6, mtimeMs: 1_400_000_000_000 });
  const pipe = await lstat(at('usr/bin/pipe'));
  t.true(pipe.isFIFO());
  t.is(pipe.mode & 0o7777, 0o600);

  const notes = await stat(at('home/user/notes'));
  t.like(notes, { uid: 1000, gid: 100, mtimeMs: 1_234_567_890_250 });
  t.is(notes.mode & 0o7777, 0o640);
  t.deepEqual(getXattr(at('home/user/notes'), 'user.note'), Buffer.from([0, 0xff, 1]));
  t.like(await stat(at('home/user')), { uid: 1000, gid: 1000, mtimeMs: 1_300_000_000_000 });
  t.is((await stat(at('tmp'))).mode & 0o7777, 0o1777);
  const srv = await stat(at('srv'));
  t.is(srv.mode & 0o7777, 0o2775);
  t.is(srv.gid, 50);
});

rootTest('extract: hard links share the inode, also through a symlinked directory of the layer', async (t) => {
  const dir = await scratch(t);
  await extract(dir, [
    { name: 'a/file', data: 'shared' },
    { name: 'b/link', type: '1', linkname: 'a/file' },
    { name: 'c', type: '2', linkname: '/a' },
    { name: 'via', type: '1', linkname: './c/file' },
  ]);
  const file = await stat(path.join(dir.target, 'a/file'));
  t.is(file.nlink, 3);
  t.is((await stat(path.join(dir.target, 'b/link'))).ino, file.ino);
  t.is((await lstat(path.join(dir.target, 'via'))).ino, file.ino);
});

rootTest('extract: zero runs become holes and sparse maps are honoured, so sparse files stay sparse', async (t) => {
  const dir = await scratch(t);
  const size = 64 << 20;
  const zeros = Buffer.alloc(size);
  zeros.write('head', 0);
  zeros.write('tail', size - 4);
  await extract(dir, [{ name: 'disk.img', data: zeros }]);
  const image = await stat(path.join(dir.target, 'disk.img'));
  t.is(image.size, size);
  t.true(image.blocks * 512 < 1 << 20, `${image.blocks * 512} bytes allocated for ${size}`);
  const content = await readFile(path.join(dir.target, 'disk.img'));
  t.true(content.equals(zeros));

  // GNU tar's pax sparse 1.0: the map in the archive, only the data stored.
  const source = path.join(dir.base, 'sparse-src');
  await mkdir(source);
  const handle = await open(path.join(source, 'db'), 'w');
  await handle.write(Buffer.alloc(10_000, 0x61), 0, 10_000, 5 << 20);
  await handle.write(Buffer.alloc(3, 0x62), 0, 3, 20 << 20);
  await handle.truncate(32 << 20);
  await handle.close();
  const archive = execFileSync('tar', ['-C', source, '--format=pax', '--sparse', '-cf', '-', 'db'], { maxBuffer: 1 << 26 });
  t.true(archive.length < 1 << 20);
  const target2 = path.join(dir.sibling, 'layer2');
  await mkdir(target2);
  await extractLayer(chunks(archive), target2);
  const db = await stat(path.join(target2, 'db'));
  t.is(db.size, 32 << 20);
  t.true(db.blocks * 512 < 1 << 20);
  t.true((await readFile(path.join(target2, 'db'))).equals(await readFile(path.join(source, 'db'))));
});

rootTest('extract: whiteouts become char 0:0 devices and opaque markers trusted.overlay.opaque', async (t) => {
  const dir = await scratch(t);
  await extract(dir, [
    { name: 'etc/shadow', data: 'in this layer first' },
    { name: 'etc/.wh.shadow' },
    { name: 'etc/.wh.passwd' },
    { name: 'var/lib/apt/.wh..wh..opq' },
    { name: 'var/lib/apt/lists/new', data: 'new' },
    { name: '.wh..wh..plnk', type: '5' },
  ]);
  for (const name of ['etc/passwd', 'etc/shadow']) {
    const whiteout = await lstat(path.join(dir.target, name));
    t.true(whiteout.isCharacterDevice(), name);
    t.is(whiteout.rdev, 0);
  }
  t.false(await exists(path.join(dir.target, 'etc/.wh.passwd')));
  t.deepEqual(getXattr(path.join(dir.target, 'var/lib/apt'), 'trusted.overlay.opaque'), Buffer.from('y'));
  t.is(getXattr(path.join(dir.target, 'var/lib'), 'trusted.overlay.opaque'), undefined);
  t.true(listXattrs(path.join(dir.target, 'var/lib/apt')).includes('trusted.overlay.opaque'));
  t.deepEqual(listXattrs(path.join(dir.target, 'var/lib')), []);
  t.is(await readFile(path.join(dir.target, 'var/lib/apt/lists/new'), 'utf8'), 'new');
  t.false(await exists(path.join(dir.target, '.wh..wh..plnk')), 'aufs bookkeeping is ignored');
});

rootTest('extract: a later entry replaces an earlier one; two directories merge', async (t) => {
  const dir = await scratch(t);
  await extract(dir, [
    { name: 'x', data: 'file first' },
    { name: 'x/', type: '5' },
    { name: 'x/child', data: 'c' },
    { name: 'y/old', data: 'o' },
    { name: 'y', data: 'now a file' },
    { name: 'z/keep', data: 'k' },
    { name: 'z/', type: '5', mode: 0o700 },
    { name: 'real/', type: '5' },
    { name: 'l', type: '2', linkname: 'real' },
    { name: 'l', data: 'replaces the link, not its target' },
    { name: 'f', data: 'one' },
    { name: 'f', data: 'two' },
    { name: 'd', type: '2', linkname: 'real' },
    { name: 'd/inside', data: 'through the link' },
    { name: 'd/', type: '5' },
    { name: 'd/again', data: 'in the directory now' },
  ]);
  const at = (name: string) => path.join(dir.target, name);
  t.is(await readFile(at('x/child'), 'utf8'), 'c');
  t.is(await readFile(at('y'), 'utf8'), 'now a file');
  t.is(await readFile(at('z/keep'), 'utf8'), 'k');
  t.is((await stat(at('z'))).mode & 0o7777, 0o700);
  t.true((await lstat(at('l'))).isFile());
  t.deepEqual(await readdir(at('real')), ['inside']);
  t.is(await readFile(at('f'), 'utf8'), 'two');
  t.true((await lstat(at('d'))).isDirectory());
  t.deepEqual(await readdir(at('d')), ['again']);
  t.is(await readFile(at('real/inside'), 'utf8'), 'through the link');
});

rootTest('extract: mapIds shifts every owner written, made parents included', async (t) => {
  const dir = await scratch(t);
  const seen = new Set<string>();
  await extract(
    dir,
    [
      { name: 'made/file', uid: 0, gid: 0 },
      { name: 'home/', type: '5', uid: 1000, gid: 1001 },
      { name: 'home/link', type: '2', linkname: '/nowhere', uid: 7, gid: 8 },
      { name: 'home/.wh.gone', uid: 3, gid: 4 },
    ],
    {
      mapIds: (id, kind) => {
        seen.add(kind);
        return id + (kind === 'uid' ? 100_000 : 200_000);
      },
    },
  );
  t.deepEqual([...seen].sort(), ['gid', 'uid']);
  t.like(await stat(path.join(dir.target, 'made')), { uid: 100_000, gid: 200_000 });
  t.like(await stat(path.join(dir.target, 'made/file')), { uid: 100_000, gid: 200_000 });
  t.like(await stat(path.join(dir.target, 'home')), { uid: 101_000, gid: 201_001 });
  t.like(await lstat(path.join(dir.target, 'home/link')), { uid: 100_007, gid: 200_008 });
  t.like(await lstat(path.join(dir.target, 'home/gone')), { uid: 100_003, gid: 200_004 });
});

rootTest('extract: devices under dev/ are skipped and listed; one elsewhere refuses the layer', async (t) => {
  const dir = await scratch(t);
  const result = await extract(dir, [
    { name: 'dev/', type: '5' },
    { name: 'dev/null', type: '3', devmajor: 1, devminor: 3 },
    { name: './dev/sda', type: '4', devmajor: 8, devminor: 0 },
    { name: 'etc/motd', data: 'hello' },
  ]);
  t.deepEqual(result, { entries: 4, bytes: 5, devicesSkipped: ['dev/null', './dev/sda'] });
  t.deepEqual(await readdir(path.join(dir.target, 'dev')), []);

  const other = await scratch(t);
  const error = await t.throwsAsync(extract(other, [{ name: 'etc/mem', type: '3', devmajor: 1, devminor: 1 }]), { instanceOf: HostileLayerError });
  t.is(error?.message, 'layer entry "etc/mem": a char device 1:1 outside dev/');
  t.false(await exists(path.join(other.target, 'etc/mem')));
});

const hostile: readonly (readonly [string, readonly Member[], RegExp])[] = [
  ['an absolute name', [{ name: '/sibling-abs', data: 'x' }], /absolute/],
  ['a ".." name', [{ name: '../sibling/x', data: 'x' }], /a name with a "\.\." component/],
  ['a ".." in the middle', [{ name: 'a/../../sibling/x', data: 'x' }], /"\.\." component/],
  [
    'a hard link to ../../etc/passwd',
    [{ name: 'h', type: '1', linkname: '../../etc/passwd' }],
    /hard link to "\.\.\/\.\.\/etc\/passwd" with a "\.\." component/,
  ],
  ['a hard link to /etc/passwd', [{ name: 'h', type: '1', linkname: '/etc/passwd' }], /that is absolute/],
  ['a hard link to a missing file', [{ name: 'h', type: '1', linkname: 'nothere' }], /hard link to nothere, which this layer does not hold/],
  [
    'a hard link through a symlink to the host /etc',
    [
      { name: 'e', type: '2', linkname: '/etc' },
      { name: 'h', type: '1', linkname: 'e/passwd' },
    ],
    /hard link to e\/passwd, which this layer does not hold/,
  ],
  [
    'a hard link to a directory',
    [
      { name: 'd/', type: '5' },
      { name: 'h', type: '1', linkname: 'd' },
    ],
    /hard link to d, a directory/,
  ],
  ['an overlay xattr', [{ name: 'd/', type: '5', xattrs: { 'trusted.overlay.opaque': 'y' } }], /trusted\.overlay\.opaque, which only the runtime may set/],
  ['a block device outside dev/', [{ name: 'disk', type: '4', devmajor: 8, devminor: 0 }], /a block device 8:0 outside dev\//],
  ['a whiteout of ".."', [{ name: 'a/.wh...' }], /a whiteout of "\.\."/],
  [
    'a symlink loop',
    [
      { name: 'loop', type: '2', linkname: 'loop' },
      { name: 'loop/x', data: 'x' },
    ],
    /too many levels of symbolic links/,
  ],
  [
    'a file as a parent',
    [
      { name: 'f', data: 'x' },
      { name: 'f/x', data: 'x' },
    ],
    /its parent f is not a directory/,
  ],
];

for (const [label, members, reason] of hostile) {
  rootTest(`extract refuses a hostile layer (${label}) and touches nothing outside the target`, async (t) => {
    const dir = await scratch(t);
    const error = await t.throwsAsync(extract(dir, members), { instanceOf: HostileLayerError });
    t.is(error?.code, 'HOSTILE_LAYER');
    t.regex(error?.reason ?? '', reason);
    t.is(error?.entry, members[members.length - 1]!.name);
    t.regex(error?.message ?? '', /^layer entry ".*": /);
    t.regex(error?.hint ?? '', /refused.*nothing outside/);
    await untouchedOutside(t, dir);
    t.false(await exists('/sibling-abs'));
  });
}

rootTest('extract keeps symlinks that point out of the layer inside it: evil -> / and evil -> ../.. lead to the target', async (t) => {
  const dir = await scratch(t);
  const passwd = await readFile('/etc/passwd');
  await extract(dir, [
    { name: 'evil', type: '2', linkname: '/' },
    { name: 'evil/file', data: 'at the layer root' },
    { name: 'up', type: '2', linkname: '../..' },
    { name: 'up/sibling/x', data: 'in a sibling of the layer root' },
    { name: 'host-etc', type: '2', linkname: '/etc' },
    { name: 'host-etc/passwd', data: 'not the host passwd' },
    { name: 'abs', type: '2', linkname: '/../../../sibling' },
    { name: 'abs/y', data: 'y' },
  ]);
  t.is(await readlink(path.join(dir.target, 'evil')), '/', 'the link itself is kept as written');
  t.is(await readFile(path.join(dir.target, 'file'), 'utf8'), 'at the layer root');
  t.is(await readFile(path.join(dir.target, 'sibling/x'), 'utf8'), 'in a sibling of the layer root');
  t.is(await readFile(path.join(dir.target, 'sibling/y'), 'utf8'), 'y');
  t.true((await lstat(path.join(dir.target, 'host-etc'))).isSymbolicLink());
  t.is(await readFile(path.join(dir.target, 'etc/passwd'), 'utf8'), 'not the host passwd', 'the in-root /etc');
  t.true((await readFile('/etc/passwd')).equals(passwd));
  await untouchedOutside(t, dir);
});
