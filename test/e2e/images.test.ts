/**
 * Containers from the images users already have, as root, with real runc and CRIU: an OCI
 * image layout written by umoci (three layers: whiteouts, an opaque directory, owners, modes,
 * xattrs, hard links, a sparse file), the same image as skopeo's docker archive and as an
 * uncompressed layout, hostile and damaged images, a user namespace, and a Redis image made the
 * same way that is snapshotted and reset over TCP.
 */
import test, { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, writeFile, copyFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { counterNow, e2e, repoRoot, sandbox, waitFor, type Sandbox } from './helpers.js';
import { blobPath, buildTestImage, dockerArchive, imageToolsMissing, manifestOf, pythonTar, uncompressedLayout, type TestImage } from './image-build.js';
import { connectRedis, containerId, freePort, waitForRedisTcp } from './databases.js';
import { LinuxMountService } from '../../src/rootfs/mount-service.js';
import type { ContainerLayers } from '../../src/rootfs/image/store.js';
import { CAP_SYS_RESOURCE, hasEffectiveCapability } from '../../src/runtime/privileges.js';

const serial = e2e(test);
const missingTools = imageToolsMissing();
if (missingTools) {
  // The image tests use the real tools; where they are missing the run fails, loudly.
  test('image tools are present', (t) => t.fail(`IMAGE TESTS CANNOT RUN: ${missingTools}`));
}
const treeScript = path.join(repoRoot, 'test/fixtures/images/tree.py');

type Tree = Record<string, Record<string, unknown>>;

function tree(dir: string, ...skip: string[]): Tree {
  return JSON.parse(execFileSync('python3', [treeScript, dir, ...skip], { maxBuffer: 64 * 1024 * 1024 }).toString()) as Tree;
}

async function containerPlace(box: Sandbox, id: string): Promise<ContainerLayers> {
  return JSON.parse(await readFile(path.join(box.imageRoot, 'containers', id, 'image.json'), 'utf8')) as ContainerLayers;
}

async function layerDirs(box: Sandbox): Promise<string[]> {
  return (await readdir(path.join(box.imageRoot, 'layers/sha256')).catch(() => [] as string[])).filter((n) => /^[a-f0-9]{64}$/.test(n)).sort();
}

/** A read-only overlay of the given layers (top first) mounted at a new directory, taken down at the end. */
async function mountLayers(t: ExecutionContext, lowers: readonly string[], at: string): Promise<string> {
  await mkdir(at, { recursive: true });
  const mounts = new LinuxMountService();
  await mounts.mount('overlay', at, 'overlay', 0, `lowerdir=${lowers.join(':')}`);
  t.teardown(() => mounts.unmount(at, { detach: true }).catch(() => undefined));
  return at;
}

async function initPid(box: Sandbox, id: string): Promise<number> {
  const state = await box.runtime.state(id);
  if (state.pid === undefined) throw new Error(`${id} has no pid (${state.status})`);
  return state.pid;
}

/** The sandbox, searchable by others: a user namespace's root mounts the rootfs below it. */
async function imageSandbox(t: ExecutionContext): Promise<Sandbox> {
  const box = await sandbox(t);
  await chmod(box.dir, 0o711);
  return box;
}

let shared: { dir: string; image: TestImage } | undefined;

/** The three-layer image, built once for the file (umoci takes a few seconds). */
async function testImage(t: ExecutionContext): Promise<TestImage> {
  if (!shared) {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'runtime-images-'));
    shared = { dir, image: await buildTestImage(path.join(dir, 'layout'), 'v1') };
  }
  t.pass();
  return shared.image;
}

test.after.always(async () => {
  if (shared) await rm(shared.dir, { recursive: true, force: true }).catch(() => undefined);
});

serial("a container from umoci's layout: its rootfs equals umoci unpack's, file by file; the second container copies no layer", async (t) => {
  const box = await imageSandbox(t);
  const image = await testImage(t);
  const run = await box.cli(['run', '-d', '--image', image.reference, 'first']);
  t.is(run.exitCode, 0, run.stderr);
  t.is((await box.runtime.state('first')).status, 'running');

  const place = await containerPlace(box, 'first');
  t.is(place.lowers.length, 3);
  const ours = tree(await mountLayers(t, place.lowers, path.join(box.dir, 'ours')));
  const unpacked = path.join(box.dir, 'umoci');
  await execa('umoci', ['unpack', '--image', `${image.layout}:${image.tag}`, unpacked]);
  const theirs = tree(path.join(unpacked, 'rootfs'));
  // The root directory's own mode and times are the bundle's in umoci's unpack, the layer's here.
  delete ours['.'];
  delete theirs['.'];
  t.deepEqual(ours, theirs);
  // What the layers do is all there: whiteouts, the opaque directory, changed modes, links, xattrs.
  t.false('data/gone' in ours);
  t.false('data/olddir' in ours);
  t.deepEqual(
    Object.keys(ours).filter((p) => p.startsWith('etc/conf.d/')),
    ['etc/conf.d/c'],
  );
  t.is(ours['data/owned']?.mode, '0o600');
  t.deepEqual(ours['data/linked']?.links, ['data/linked', 'data/linked-too']);
  t.deepEqual(ours['data/linked']?.xattrs, { 'user.origin': Buffer.from('umoci layer 1').toString('hex') });
  t.is(ours['data/setuid']?.mode, '0o4755');
  // The sparse file's 32 MiB of zeros take no blocks in the store.
  const sparse = place.lowers.map((l) => path.join(l, 'data/sparse')).find((f) => existsSync(f))!;
  const info = await stat(sparse);
  t.true(info.blocks * 512 < 1024 * 1024, `the sparse file takes ${info.blocks * 512} bytes`);

  // The running container sees the same tree through its own upper layer.
  const pid = await initPid(box, 'first');
  t.deepEqual((await readdir(`/proc/${pid}/root/etc/conf.d`)).sort(), ['c']);
  t.is(await readFile(`/proc/${pid}/root/data/changed`, 'utf8'), 'version 2\n');

  // A second container: no layer unpacked again, nothing copied, the same lowers.
  const layersBefore = await layerDirs(box);
  const inodes = await Promise.all(place.lowers.map(async (l) => (await stat(l)).ino));
  const second = await box.cli(['run', '-d', '--image', image.reference, 'second']);
  t.is(second.exitCode, 0, second.stderr);
  t.deepEqual(await layerDirs(box), layersBefore);
  const again = await containerPlace(box, 'second');
  t.deepEqual(again.lowers, place.lowers);
  t.deepEqual(await Promise.all(again.lowers.map(async (l) => (await stat(l)).ino)), inodes);
  const upperBytes = Number(String((await execa('du', ['-s', '-B1', again.upper])).stdout).split(/\s/)[0]);
  t.true(upperBytes < 64 * 1024, `the second container's own layer takes ${upperBytes} bytes`);
});

serial("config.json follows the image's config: user, groups, working directory, environment; -- CMD, -e and -u override", async (t) => {
  const box = await imageSandbox(t);
  const image = await testImage(t);
  t.is((await box.cli(['run', '-d', '--image', image.reference, 'cfg'])).exitCode, 0);
  const pid = await initPid(box, 'cfg');
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  t.regex(status, /^Uid:\s+1000\s+1000\s+1000\s+1000$/m);
  t.regex(status, /^Gid:\s+1000\s+1000\s+1000\s+1000$/m);
  t.deepEqual(/^Groups:\s*(.*)$/m.exec(status)?.[1]?.trim().split(/\s+/).sort(), ['1000', '50']);
  t.is(path.basename(await readlink(`/proc/${pid}/cwd`)), 'app');
  const environ = (await readFile(`/proc/${pid}/environ`, 'utf8')).split('\0');
  for (const entry of ['IMAGE_VAR=from-image', 'PATH=/bin', 'HOSTNAME=cfg', 'HOME=/home/app']) t.true(environ.includes(entry), entry);
  // Docker's network files: localhost and the container's own name resolve.
  t.regex(await readFile(`/proc/${pid}/root/etc/hosts`, 'utf8'), /^127\.0\.0\.1\s+localhost$/m);
  t.regex(await readFile(`/proc/${pid}/root/etc/hosts`, 'utf8'), /^127\.0\.1\.1\s+cfg$/m);
  t.is(await readFile(`/proc/${pid}/root/etc/hostname`, 'utf8'), 'cfg\n');
  const spec = JSON.parse(await readFile(path.join(box.imageRoot, 'containers/cfg/bundle/config.json'), 'utf8')) as {
    annotations?: Record<string, string>;
  };
  t.is(spec.annotations?.['org.opencontainers.image.stopSignal'], 'SIGINT');

  const script = 'id -u > /tmp/out; id -G >> /tmp/out; pwd >> /tmp/out; echo "$EXTRA $IMAGE_VAR" >> /tmp/out; sleep 1000';
  const run = await box.cli(['run', '-d', '--image', image.reference, '-u', 'root', '-w', '/data', '-e', 'EXTRA=given', 'over', '--', 'sh', '-c', script]);
  t.is(run.exitCode, 0, run.stderr);
  const out = await waitFor('the command to write', async () => {
    const text = await readFile(path.join(box.imageRoot, 'containers/over/bundle/rootfs/tmp/out'), 'utf8').catch(() => '');
    return text.split('\n').length >= 5 ? text : undefined;
  });
  t.is(out, '0\n0\n/data\ngiven from-image\n');

  // A user the image does not have: a clear error, and nothing left of the container.
  const bad = await box.cli(['run', '-d', '--image', image.reference, '-u', 'nobody-here', 'bad']);
  t.is(bad.exitCode, 1);
  t.regex(bad.stderr, /nobody-here/);
  t.false(existsSync(path.join(box.imageRoot, 'containers/bad')));
  t.is((await box.cli(['state', 'bad'])).exitCode, 1);
});

serial(
  "skopeo's docker archive and an uncompressed layout of the same image share its layers; images lists them; images rm removes only what no container uses",
  async (t) => {
    const box = await imageSandbox(t);
    const image = await testImage(t);
    t.is((await box.cli(['run', '-d', '--image', image.reference, 'from-layout'])).exitCode, 0);
    const layers = await layerDirs(box);
    t.is(layers.length, 3);

    const archive = await dockerArchive(image, path.join(box.dir, 'app.tar'), 'test/app:1');
    const fromArchive = await box.cli(['run', '-d', '--image', archive, 'from-archive']);
    t.is(fromArchive.exitCode, 0, fromArchive.stderr);
    const plain = await uncompressedLayout(image, path.join(box.dir, 'plain'));
    const fromPlain = await box.cli(['run', '-d', '--image', plain, 'from-plain']);
    t.is(fromPlain.exitCode, 0, fromPlain.stderr);
    // One set of layers for all three: keyed by the digest of their uncompressed content.
    t.deepEqual(await layerDirs(box), layers);
    t.deepEqual((await containerPlace(box, 'from-archive')).lowers, (await containerPlace(box, 'from-layout')).lowers);
    const pid = await initPid(box, 'from-archive');
    t.deepEqual((await readdir(`/proc/${pid}/root/etc/conf.d`)).sort(), ['c']);

    const listed = JSON.parse((await box.cli(['images', '--format', 'json'])).stdout) as {
      references: string[];
      containers: string[];
      diskBytes: number;
      uniqueBytes: number;
    }[];
    t.true(listed.length >= 2);
    const all = listed.flatMap((i) => i.references);
    for (const reference of [image.reference, plain]) t.true(all.includes(reference), reference);
    // The archive's name as Docker normalises it.
    t.true(all.includes(`docker-archive:${path.join(box.dir, 'app.tar')}:docker.io/test/app:1`), all.join(' '));
    t.true(listed.every((i) => i.diskBytes > 0 && i.uniqueBytes === 0));
    const table = await box.cli(['images']);
    t.regex(table.stdout, /^REFERENCE\s+DIGEST\s+PLATFORM\s+PORTS\s+LAYERS\s+SIZE\s+UNIQUE\s+CONTAINERS$/m);
    t.regex(table.stdout, /linux\/amd64\s+8080\/tcp\s+3\s/);

    // Another runtime (another state root) sharing the store judges none of these containers abandoned.
    const otherRoot = await box.cli(['--root', path.join(box.dir, 'other-state'), 'images', 'rm']);
    t.is(otherRoot.exitCode, 0, otherRoot.stderr);
    t.deepEqual((await readdir(path.join(box.imageRoot, 'containers'))).sort(), ['from-archive', 'from-layout', 'from-plain']);

    const refused = await box.cli(['images', 'rm', image.reference]);
    t.is(refused.exitCode, 1);
    t.regex(refused.stderr, /container from-layout/);
    t.deepEqual(await layerDirs(box), layers);

    for (const id of ['from-layout', 'from-archive', 'from-plain']) t.is((await box.cli(['delete', '-f', id])).exitCode, 0);
    t.deepEqual(await readdir(path.join(box.imageRoot, 'containers')), []);
    const removed = await box.cli(['images', 'rm']);
    t.is(removed.exitCode, 0, removed.stderr);
    t.regex(removed.stdout, /removed \d image\(s\) and 3 layer\(s\)/);
    t.deepEqual(await layerDirs(box), []);
    t.deepEqual(JSON.parse((await box.cli(['images', '--format', 'json'])).stdout), []);
  },
);

serial('checkpoint, restore, snapshots and reset work on a container made from an image', async (t) => {
  const box = await imageSandbox(t);
  const image = await testImage(t);
  // As the image's user (uid 1000) without a user namespace, this host's root cannot dump it:
  // warned at run, refused at checkpoint with what to do, and the container runs on.
  const asApp = await box.cli(['run', '-d', '--image', image.reference, 'as-app'], { env: { RUNTIME_LOG_LEVEL: 'warn' } });
  t.is(asApp.exitCode, 0, asApp.stderr);
  if (!hasEffectiveCapability(CAP_SYS_RESOURCE)) {
    t.regex(asApp.stderr, /runs as uid 1000.*CAP_SYS_RESOURCE.*--uidmap/);
    const refused = await box.cli(['checkpoint', 'as-app']);
    t.is(refused.exitCode, 1);
    t.regex(refused.stderr, /hint: the container runs processes of a non-root uid .*--uidmap/);
    t.is((await box.runtime.state('as-app')).status, 'running');
  }

  const counter = 'i=0; while true; do i=$((i+1)); echo $i > /tmp/count; sleep 0.1; done';
  t.is((await box.cli(['run', '-d', '--image', image.reference, '-u', 'root', 'counter', '--', 'sh', '-c', counter])).exitCode, 0);
  const rootfs = path.join(box.imageRoot, 'containers/counter/bundle/rootfs');
  const count = () => counterNow(path.dirname(rootfs), 'tmp/count');
  await waitFor('the counter', async () => ((await count()) > 3 ? true : undefined));

  const snapshot = await box.cli(['checkpoint', '--name', 'pristine', '--leave-running', 'counter']);
  t.is(snapshot.exitCode, 0, snapshot.stderr);
  await writeFile(path.join(rootfs, 'data/written-after'), 'a test wrote this\n');
  const before = await count();
  await waitFor('the counter to go on', async () => ((await count()) > before + 5 ? true : undefined));
  const reset = await box.cli(['reset', 'counter']);
  t.is(reset.exitCode, 0, reset.stderr);
  t.false(existsSync(path.join(rootfs, 'data/written-after')));
  t.is(await readFile(path.join(rootfs, 'data/changed'), 'utf8'), 'version 2\n');
  const afterReset = await count();
  t.true(afterReset <= before + 2, `the counter went back to ${afterReset} (it was ${before} when snapshotted, about)`);

  const checkpoint = await box.cli(['checkpoint', 'counter']);
  t.is(checkpoint.exitCode, 0, checkpoint.stderr);
  t.is((await box.runtime.state('counter')).status, 'checkpointed');
  // Its checkpoint under another id would share its writable layer: refused, saying how.
  const imagePath = path.join(box.checkpointRoot, 'counter', 'checkpoint');
  const elsewhere = await box.cli(['restore', '-d', '--image-path', imagePath, 'counter-copy']);
  t.is(elsewhere.exitCode, 1);
  t.regex(elsewhere.stderr, /container counter's own, made from an image/);
  t.is((await box.cli(['state', 'counter-copy'])).exitCode, 1);
  const restore = await box.cli(['restore', '-d', 'counter']);
  t.is(restore.exitCode, 0, restore.stderr);
  const restored = await count();
  await waitFor('the restored counter', async () => ((await count()) > restored + 3 ? true : undefined));

  for (const id of ['counter', 'as-app']) t.is((await box.cli(['delete', '-f', id])).exitCode, 0);
  t.deepEqual(await readdir(path.join(box.imageRoot, 'containers')), []);
  const left = (await new LinuxMountService().mounts()).filter((m) => m.mountPoint.startsWith(box.dir));
  t.deepEqual(left, []);
});

serial('a user namespace: the layers are used through a copy owned by the mapping, made once; the shared layers are never chowned', async (t) => {
  const box = await imageSandbox(t);
  const image = await testImage(t);
  const run = await box.cli(['run', '-d', '--image', image.reference, '--uidmap', '0:300000:65536', 'mapped']);
  t.is(run.exitCode, 0, run.stderr);
  const pid = await initPid(box, 'mapped');
  t.regex(await readFile(`/proc/${pid}/status`, 'utf8'), /^Uid:\s+301000\s+301000\s+301000\s+301000$/m);
  t.regex(await readFile(`/proc/${pid}/uid_map`, 'utf8'), /^\s*0\s+300000\s+65536$/m);
  const place = await containerPlace(box, 'mapped');
  t.true(place.lowers.every((l) => l.includes('/mapped/u300000-65536.g300000-65536/')));
  const owned = place.lowers.map((l) => path.join(l, 'data/owned')).find((f) => existsSync(f))!;
  t.like(await stat(owned), { uid: 301000, gid: 300050 });
  // The shared layer keeps the image's owners.
  const sharedOwned = (await layerDirs(box)).map((h) => path.join(box.imageRoot, 'layers/sha256', h, 'diff/data/owned')).find((f) => existsSync(f))!;
  t.like(await stat(sharedOwned), { uid: 1000, gid: 50 });
  // Inside, the container sees the image's owners.
  t.is(String((await execa('nsenter', ['-t', String(pid), '-U', '-m', '/bin/stat', '-c', '%u:%g', '/data/owned'])).stdout).trim(), '1000:50');

  const inodes = await Promise.all(place.lowers.map(async (l) => (await stat(l)).ino));
  t.is((await box.cli(['run', '-d', '--image', image.reference, '--uidmap', '0:300000:65536', 'mapped-too'])).exitCode, 0);
  t.deepEqual(await Promise.all((await containerPlace(box, 'mapped-too')).lowers.map(async (l) => (await stat(l)).ino)), inodes);
  const checkpoint = await box.cli(['checkpoint', '--name', 'p', '--leave-running', 'mapped']);
  t.is(checkpoint.exitCode, 0, checkpoint.stderr);
  t.is((await box.cli(['reset', 'mapped'])).exitCode, 0);
  t.regex(await readFile(`/proc/${await initPid(box, 'mapped')}/status`, 'utf8'), /^Uid:\s+301000/m);
});

serial('an image that lists one layer twice (an empty layer, as build steps leave them) runs, the layer stacked once', async (t) => {
  const box = await imageSandbox(t);
  const image = await testImage(t);
  const layout = path.join(box.dir, 'twice');
  await execa('cp', ['-a', image.layout, layout]);
  const empty = path.join(box.dir, 'empty.tar');
  await pythonTar(empty, '');
  for (let i = 0; i < 2; i++) await execa('umoci', ['raw', 'add-layer', '--image', `${layout}:${image.tag}`, empty]);
  t.is((await manifestOf(layout, image.tag)).layers.length, 5);
  const run = await box.cli(['run', '-d', '--image', `oci:${layout}:${image.tag}`, 'twice']);
  t.is(run.exitCode, 0, run.stderr);
  const lowers = (await containerPlace(box, 'twice')).lowers;
  t.is(lowers.length, 4);
  t.is(new Set(lowers).size, 4);
});

/** A layout of umoci's whose one layer is the tar script makes (python3's tarfile). */
async function layoutWithLayer(dir: string, name: string, script: string): Promise<string> {
  const layout = path.join(dir, name);
  await execa('umoci', ['init', '--layout', layout]);
  await execa('umoci', ['new', '--image', `${layout}:t`]);
  const tar = path.join(dir, `${name}.tar`);
  await pythonTar(tar, script);
  await execa('umoci', ['raw', 'add-layer', '--image', `${layout}:t`, tar]);
  await execa('umoci', ['config', '--image', `${layout}:t`, '--config.cmd', '/bin/sh']);
  return `oci:${layout}:t`;
}

const file = (name: string, content = 'x') =>
  `i = tarfile.TarInfo(${JSON.stringify(name)}); i.size = ${content.length}; t.addfile(i, io.BytesIO(${JSON.stringify(content)}.encode()))`;
const entry = (name: string, type: string, extra = '') => `i = tarfile.TarInfo(${JSON.stringify(name)}); i.type = ${type}; ${extra}; t.addfile(i)`;

serial('hostile layers are refused, naming the entry, and nothing is made or removed outside the store', async (t) => {
  const box = await imageSandbox(t);
  const outside = path.join(box.dir, 'outside');
  await mkdir(outside);
  await writeFile(path.join(outside, 'keep'), 'untouched\n');
  const passwdLinks = (await stat('/etc/passwd')).nlink;
  const refused: [string, string, RegExp][] = [
    ['dotdot', file(`../../../../../../../../..${outside}/escaped`), /\.\./],
    ['absolute', file(`${outside}/escaped`), /absolute/],
    ['hardlink-out', entry('stolen', 'tarfile.LNKTYPE', "i.linkname = '../../../../../../../etc/passwd'"), /stolen/],
    ['hardlink-absolute', entry('stolen', 'tarfile.LNKTYPE', "i.linkname = '/etc/passwd'"), /stolen/],
    [
      'hardlink-through-link',
      [entry('e', 'tarfile.SYMTYPE', "i.linkname = '/etc'"), entry('stolen', 'tarfile.LNKTYPE', "i.linkname = 'e/passwd'")].join('\n'),
      /stolen/,
    ],
    ['device', entry('data/disk', 'tarfile.BLKTYPE', 'i.devmajor = 8; i.devminor = 0'), /data\/disk/],
    [
      'overlay-xattr',
      `i = tarfile.TarInfo('d'); i.type = tarfile.DIRTYPE; i.pax_headers = {'SCHILY.xattr.trusted.overlay.redirect': '/etc'}; t.addfile(i)`,
      /trusted\.overlay/,
    ],
  ];
  for (const [name, script, names] of refused) {
    const reference = await layoutWithLayer(box.dir, name, script);
    const result = await box.cli(['run', '-d', '--image', reference, name]);
    t.is(result.exitCode, 1, `${name}: ${result.stderr}`);
    t.regex(result.stderr, /layer entry "[^"]*": /, name);
    t.regex(result.stderr, names, name);
    t.is((await box.cli(['state', name])).exitCode, 1, name);
  }
  t.deepEqual(await layerDirs(box), []);

  // Written through a link that points out: resolved inside the layer, as the container will
  // see the path (containerd's rule), never on the host.
  const contained: [string, string][] = [
    ['symlink-out', [entry('evil', 'tarfile.SYMTYPE', `i.linkname = ${JSON.stringify(outside)}`), file('evil/escaped')].join('\n')],
    ['symlink-up', [entry('up', 'tarfile.SYMTYPE', "i.linkname = '../../../../../../../../..'"), file(`up${outside}/escaped`)].join('\n')],
  ];
  for (const [name, script] of contained) {
    const reference = await layoutWithLayer(box.dir, name, script);
    // The layer has no /bin/sh: the container cannot start, but its layer is unpacked.
    t.is((await box.cli(['run', '-d', '--image', reference, name])).exitCode, 1, name);
  }
  const inLayers = (await layerDirs(box)).map((hex) => path.join(box.imageRoot, 'layers/sha256', hex, 'diff', outside, 'escaped'));
  t.deepEqual(inLayers.filter((f) => existsSync(f)).length, 2);

  t.deepEqual(await readdir(outside), ['keep']);
  t.is(await readFile(path.join(outside, 'keep'), 'utf8'), 'untouched\n');
  t.is((await stat('/etc/passwd')).nlink, passwdLinks);
  t.deepEqual(await readdir(path.join(box.imageRoot, 'containers')), []);
  t.deepEqual(await readdir(path.join(box.imageRoot, 'tmp')), []);
});

serial('a damaged image is refused before it runs: a flipped byte in a layer, a config that does not match its digest', async (t) => {
  const box = await imageSandbox(t);
  const image = await testImage(t);
  const copy = path.join(box.dir, 'damaged');
  await execa('cp', ['-a', image.layout, copy]);
  const manifest = await manifestOf(copy, image.tag);
  const layer = blobPath(copy, manifest.layers[0]!.digest);
  const bytes = await readFile(layer);
  bytes[Math.floor(bytes.length / 2)]! ^= 0x20;
  await chmod(layer, 0o644);
  await writeFile(layer, bytes);
  const damaged = await box.cli(['run', '-d', '--image', `oci:${copy}:${image.tag}`, 'damaged']);
  t.is(damaged.exitCode, 1);
  t.regex(damaged.stderr, /digest|gzip|checksum|invalid/i);
  t.deepEqual(await layerDirs(box), []);
  t.deepEqual(await readdir(path.join(box.imageRoot, 'tmp')), []);

  const config = blobPath(copy, manifest.config.digest);
  const text = await readFile(config, 'utf8');
  await chmod(config, 0o644);
  await writeFile(config, text.replace('from-image', 'FROM-IMAGE'));
  const altered = await box.cli(['run', '-d', '--image', `oci:${copy}:${image.tag}`, 'altered']);
  t.is(altered.exitCode, 1);
  t.regex(altered.stderr, /digest/i);
  t.false(existsSync(path.join(box.imageRoot, 'containers/altered')));
});

/** A Redis image made by umoci: busybox, the host's redis-server and the libraries it loads. */
async function redisImage(dir: string): Promise<TestImage> {
  const libraries = String((await execa('ldd', ['/usr/bin/redis-server'])).stdout)
    .split('\n')
    .map((line) => /(\/\S+)\s+\(0x/.exec(line)?.[1])
    .filter((l): l is string => l !== undefined);
  return buildTestImage(path.join(dir, 'redis-layout'), '7', {
    user: 'root',
    port: '6379/tcp',
    command: ['/usr/bin/redis-server', '--bind', '0.0.0.0', '--port', '6379', '--protected-mode', 'no', '--save', '', '--appendonly', 'no'],
    extra: async (rootfs) => {
      for (const file of ['/usr/bin/redis-server', ...libraries]) {
        await mkdir(path.join(rootfs, path.dirname(file)), { recursive: true });
        await copyFile(file, path.join(rootfs, file));
      }
    },
  });
}

serial('a Redis image made with umoci runs, is snapshotted and reset to its snapshot over TCP (the library, with image in place of bundle)', async (t) => {
  const box = await imageSandbox(t);
  const image = await redisImage(box.dir);
  const port = await freePort();
  const id = containerId(box, 'redis-image');
  const redis = await box.runtime.pristine({
    id,
    image: { reference: image.reference },
    ports: [{ hostIp: '127.0.0.1', hostPort: port, containerPort: 6379 }],
    ready: async () => (await waitForRedisTcp(port)).destroy(),
  });
  t.teardown(() => redis.dispose().catch(() => undefined));
  for (let round = 0; round < 3; round++) {
    const client = await connectRedis(port);
    t.is(await client.dbSize(), 0, `round ${round} starts from the snapshot`);
    for (let i = 0; i < 100; i++) await client.set(`key:${round}:${i}`, `value ${i}`);
    t.is(await client.dbSize(), 100);
    client.destroy();
    await redis.reset();
    const after = await waitForRedisTcp(port);
    t.is(await after.dbSize(), 0);
    after.destroy();
  }
});
