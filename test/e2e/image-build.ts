/**
 * Images made in the tests by the real tools, offline, from local files: umoci (init, new,
 * unpack, repack, config, raw add-layer) writes OCI image layouts and skopeo copies them into
 * docker archives (docker save's format) and into layouts with other compression. The test
 * image has three layers: a busybox base with owners, modes, xattrs, hard links, a sparse file,
 * a fifo and links; a second that deletes files and a directory (whiteouts) and changes others;
 * a third, added verbatim, that makes a directory opaque.
 */
import { execFileSync } from 'node:child_process';
import { chmod, chown, mkdir, readFile, rm, symlink, link, truncate, writeFile, appendFile, copyFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';

/** Why the image tests cannot run here, or undefined. */
export function imageToolsMissing(): string | undefined {
  for (const tool of ['umoci', 'skopeo', 'python3']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      return `${tool} is not installed (scripts/install-system-deps.sh installs umoci and skopeo)`;
    }
  }
  return undefined;
}

const applets = ['sh', 'cat', 'id', 'sleep', 'ls', 'env', 'pwd', 'echo', 'stat', 'mkdir', 'touch', 'rm', 'head', 'true', 'test', 'wc', 'seq'];

async function umoci(...args: string[]): Promise<void> {
  await execa('umoci', args);
}

/** Unpacks the tagged image, lets change edit its rootfs, and repacks it as one more layer. */
async function addLayer(work: string, image: string, change: (rootfs: string) => Promise<void>): Promise<void> {
  const bundle = path.join(work, 'unpacked');
  await rm(bundle, { recursive: true, force: true });
  await umoci('unpack', '--image', image, bundle);
  await change(path.join(bundle, 'rootfs'));
  await umoci('repack', '--image', image, bundle);
  await rm(bundle, { recursive: true, force: true });
}

/** A tar made by python3's tarfile: entries as [name, kind, extra]. */
export async function pythonTar(file: string, script: string): Promise<void> {
  await execa('python3', [
    '-c',
    `import tarfile, io, os\nt = tarfile.open(${JSON.stringify(file)}, 'w', format=tarfile.PAX_FORMAT)\n${script}\nt.close()`,
  ]);
}

export interface TestImage {
  /** The OCI image layout directory. */
  readonly layout: string;
  readonly tag: string;
  /** `oci:<layout>:<tag>` */
  readonly reference: string;
}

/**
 * The three-layer test image, tagged `tag` in the layout `layout`, running `command` as `user`
 * (a name from its /etc/passwd) in /home/app, exposing port (8080/tcp), stopping with SIGINT.
 */
export async function buildTestImage(
  layout: string,
  tag: string,
  options: { command?: readonly string[]; user?: string; port?: string; extra?: (rootfs: string) => Promise<void> } = {},
): Promise<TestImage> {
  const work = `${layout}.work`;
  await mkdir(work, { recursive: true });
  const image = `${layout}:${tag}`;
  await umoci('init', '--layout', layout);
  await umoci('new', '--image', image);
  await addLayer(work, image, async (r) => {
    await mkdir(path.join(r, 'bin'), { recursive: true });
    await copyFile('/bin/busybox', path.join(r, 'bin/busybox'));
    for (const applet of applets) await symlink('busybox', path.join(r, 'bin', applet));
    await mkdir(path.join(r, 'etc/conf.d'), { recursive: true });
    await writeFile(path.join(r, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n');
    await writeFile(path.join(r, 'etc/group'), 'root:x:0:\napp:x:1000:\nstaff:x:50:app\n');
    await writeFile(path.join(r, 'etc/conf.d/a'), 'a\n');
    await writeFile(path.join(r, 'etc/conf.d/b'), 'b\n');
    await mkdir(path.join(r, 'home/app'), { recursive: true });
    await chown(path.join(r, 'home/app'), 1000, 1000);
    await mkdir(path.join(r, 'data/olddir/deeper'), { recursive: true });
    await writeFile(path.join(r, 'data/olddir/deeper/x'), 'x\n');
    await writeFile(path.join(r, 'data/gone'), 'to be deleted\n');
    await writeFile(path.join(r, 'data/changed'), 'version 1\n');
    await writeFile(path.join(r, 'data/setuid'), '#!/bin/sh\n');
    await chmod(path.join(r, 'data/setuid'), 0o4755);
    await writeFile(path.join(r, 'data/owned'), 'owned by app\n');
    await chown(path.join(r, 'data/owned'), 1000, 50);
    await writeFile(path.join(r, 'data/linked'), 'one inode, two names\n');
    await link(path.join(r, 'data/linked'), path.join(r, 'data/linked-too'));
    await execa('python3', ['-c', `import os; os.setxattr(${JSON.stringify(path.join(r, 'data/linked'))}, 'user.origin', b'umoci layer 1')`]);
    await writeFile(path.join(r, 'data/sparse'), '');
    await truncate(path.join(r, 'data/sparse'), 32 * 1024 * 1024);
    await appendFile(path.join(r, 'data/sparse'), 'the end\n');
    await execa('mkfifo', [path.join(r, 'data/fifo')]);
    await symlink('/etc/passwd', path.join(r, 'data/absolute-link'));
    await symlink('../etc/group', path.join(r, 'data/relative-link'));
    await mkdir(path.join(r, 'tmp'));
    await chmod(path.join(r, 'tmp'), 0o1777);
    await options.extra?.(r);
  });
  await addLayer(work, image, async (r) => {
    await rm(path.join(r, 'data/gone'));
    await rm(path.join(r, 'data/olddir'), { recursive: true });
    await writeFile(path.join(r, 'data/changed'), 'version 2\n');
    await chmod(path.join(r, 'data/owned'), 0o600);
    await writeFile(path.join(r, 'data/new'), 'added by layer 2\n');
  });
  // Layer 3 by hand: etc/conf.d made opaque (a and b hidden), with c in it. umoci's repack
  // writes whiteouts for deletions but never an opaque directory.
  const opaque = path.join(work, 'opaque.tar');
  await pythonTar(
    opaque,
    [
      "d = tarfile.TarInfo('etc/conf.d'); d.type = tarfile.DIRTYPE; d.mode = 0o750; t.addfile(d)",
      "o = tarfile.TarInfo('etc/conf.d/.wh..wh..opq'); t.addfile(o, io.BytesIO(b''))",
      "c = tarfile.TarInfo('etc/conf.d/c'); c.size = 2; c.mode = 0o640; t.addfile(c, io.BytesIO(b'c\\n'))",
    ].join('\n'),
  );
  await umoci('raw', 'add-layer', '--image', image, opaque);
  const config = ['--config.env', 'IMAGE_VAR=from-image', '--config.env', 'PATH=/bin', '--config.workingdir', '/home/app'];
  config.push('--config.exposedports', options.port ?? '8080/tcp', '--config.stopsignal', 'SIGINT', '--config.user', options.user ?? 'app');
  for (const part of options.command ?? ['sh', '-c', 'while true; do sleep 1; done']) config.push('--config.cmd', part);
  await umoci('config', '--image', image, ...config);
  await rm(work, { recursive: true, force: true });
  return { layout, tag, reference: `oci:${layout}:${tag}` };
}

/** skopeo's copy of an image into a docker archive (what `docker save` writes), named name:tag. */
export async function dockerArchive(image: TestImage, file: string, name: string): Promise<string> {
  await execa('skopeo', ['copy', '--quiet', `oci:${image.layout}:${image.tag}`, `docker-archive:${file}:${name}`]);
  return `docker-archive:${file}:${name}`;
}

/** skopeo's copy of an image into another layout, its layers stored uncompressed. */
export async function uncompressedLayout(image: TestImage, layout: string): Promise<string> {
  await execa('skopeo', ['copy', '--quiet', '--dest-decompress', `oci:${image.layout}:${image.tag}`, `oci:${layout}:${image.tag}`]);
  return `oci:${layout}:${image.tag}`;
}

/** The layout's manifest for tag (its JSON and the blobs directory). */
export async function manifestOf(layout: string, tag: string): Promise<{ layers: { digest: string; mediaType: string }[]; config: { digest: string } }> {
  const index = JSON.parse(await readFile(path.join(layout, 'index.json'), 'utf8')) as {
    manifests: { digest: string; annotations?: Record<string, string> }[];
  };
  const entry = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag)!;
  return JSON.parse(await readFile(blobPath(layout, entry.digest), 'utf8')) as {
    layers: { digest: string; mediaType: string }[];
    config: { digest: string };
  };
}

export function blobPath(layout: string, digest: string): string {
  return path.join(layout, 'blobs', 'sha256', digest.replace(/^sha256:/, ''));
}
