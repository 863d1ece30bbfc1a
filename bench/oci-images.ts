/**
 * Containers from an image: 1 and 10 containers started from one OCI image layout with a few
 * hundred MiB of layers, `runtime run -d --image` against what users do without the runtime's
 * store, `umoci unpack` of the image into a bundle per container followed by `runtime run -d
 * --bundle` of it. Like with like: whole process against whole process, every command a process
 * of its own, the same layout on the same disk, the containers started one after the other (as
 * a test suite's setup starts them), each running the same `sleep`.
 *
 *   timed       each container from spawn of its first command to the exit of its last (the
 *               runtime: one `run -d --image`; umoci: `umoci unpack` then `run -d --bundle`), and
 *               the sum over a series; the runtime's first container includes unpacking the
 *               layers into an empty store, as a fresh machine does
 *   not timed   building the image (umoci, before any series), deleting the containers and
 *               emptying the store between series
 *   disk        `du -s -x` of the image store (layers once, plus each container's own layer) and of
 *               the umoci bundles, after the series
 *
 * The image: busybox and the host's PostgreSQL server files (layer 1), then files of
 * /usr/lib/x86_64-linux-gnu in name order up to BENCH_OCI_MIB (layer 2), gzip-compressed by
 * umoci as registries store them. Prints a table and writes bench-results/oci-images.json.
 *
 *   BENCH_OCI_MIB=256        MiB of library files in layer 2
 *   BENCH_OCI_COUNTS=1,10    containers per series
 *   BENCH_OCI_DIR=DIR        where the layout, store and bundles go (default: /var/tmp, on disk)
 */
import { copyFile, mkdir, mkdtemp, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Cleanup } from './cleanup.js';
import { BenchError, timedCommand } from './exec.js';
import { formatTable, round, summarize } from './stats.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const cli = path.join(repoRoot, 'dist/bin/runtime');
const resultsFile = path.join(repoRoot, 'bench-results/oci-images.json');

interface Series {
  readonly way: 'runtime run --image' | 'umoci unpack + run --bundle';
  readonly count: number;
  readonly containerMs: readonly number[];
  readonly diskBytes: number;
}

/** Blocks a tree takes, not counting what is mounted below it (each container's merged rootfs). */
function du(dir: string): number {
  return Number(execFileSync('du', ['-s', '-x', '-B1', dir]).toString().split(/\s/)[0]);
}

function run(argv: readonly string[]): void {
  execFileSync(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** The benchmark's image, made by umoci; returns the layout and the bytes its layer 2 holds. */
async function buildImage(dir: string, libraryMiB: number): Promise<{ layout: string; libraryBytes: number }> {
  const layout = path.join(dir, 'layout');
  const image = `${layout}:bench`;
  run(['umoci', 'init', '--layout', layout]);
  run(['umoci', 'new', '--image', image]);
  const unpacked = path.join(dir, 'unpacked');
  const layer = async (fill: (rootfs: string) => Promise<void>) => {
    await rm(unpacked, { recursive: true, force: true });
    run(['umoci', 'unpack', '--image', image, unpacked]);
    await fill(path.join(unpacked, 'rootfs'));
    run(['umoci', 'repack', '--image', image, unpacked]);
  };
  await layer(async (rootfs) => {
    await mkdir(path.join(rootfs, 'bin'), { recursive: true });
    await copyFile('/bin/busybox', path.join(rootfs, 'bin/busybox'));
    for (const applet of ['sh', 'sleep']) await symlink('busybox', path.join(rootfs, 'bin', applet));
    await mkdir(path.join(rootfs, 'usr/lib'), { recursive: true });
    run(['cp', '-a', '/usr/lib/postgresql', path.join(rootfs, 'usr/lib/')]);
  });
  let libraryBytes = 0;
  await layer(async (rootfs) => {
    const source = '/usr/lib/x86_64-linux-gnu';
    const names = (await readdir(source)).sort();
    await mkdir(path.join(rootfs, 'usr/lib/x86_64-linux-gnu'), { recursive: true });
    for (const name of names) {
      const info = await stat(path.join(source, name)).catch(() => undefined);
      if (!info?.isFile()) continue;
      if (libraryBytes + info.size > libraryMiB * 1024 * 1024) break;
      await copyFile(path.join(source, name), path.join(rootfs, 'usr/lib/x86_64-linux-gnu', name));
      libraryBytes += info.size;
    }
  });
  run(['umoci', 'config', '--image', image, '--config.cmd', 'sleep', '--config.cmd', '1000000']);
  await rm(unpacked, { recursive: true, force: true });
  return { layout, libraryBytes };
}

export async function benchmarkOciImages(cleanup: Cleanup, abort: AbortSignal): Promise<void> {
  if (process.getuid?.() !== 0) throw new BenchError('BENCH_NOT_ROOT', 'containers need root', { hint: 'run `sudo npm run bench`' });
  for (const tool of ['umoci', 'runc', 'criu']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`]);
    } catch {
      throw new BenchError('BENCH_MISSING_TOOL', `${tool} is not installed`, { hint: 'run scripts/install-system-deps.sh' });
    }
  }
  const libraryMiB = Number(process.env.BENCH_OCI_MIB ?? '256');
  const counts = (process.env.BENCH_OCI_COUNTS ?? '1,10').split(',').map(Number);
  const base = await mkdtemp(path.join(process.env.BENCH_OCI_DIR ?? '/var/tmp', 'runtime-bench-oci-'));
  const cgroupParent = `/runtime-bench/${path.basename(base)}`;
  const env = {
    ...process.env,
    RUNTIME_ROOT: path.join(base, 'state'),
    RUNTIME_CHECKPOINT_ROOT: path.join(base, 'checkpoints'),
    RUNTIME_IMAGE_ROOT: path.join(base, 'store'),
    RUNTIME_CGROUP_PARENT: cgroupParent,
    RUNTIME_LOG_LEVEL: 'warn',
  };
  const logPath = path.join(base, 'commands.log');
  const removeAll = async () => {
    for (const id of execFileSync(cli, ['list', '-q'], { env })
      .toString()
      .split('\n')
      .filter((l) => l !== '')) {
      await timedCommand([cli, 'delete', '-f', id], { env, logPath });
    }
    await rm(path.join(base, 'store'), { recursive: true, force: true });
    await rm(path.join(base, 'bundles'), { recursive: true, force: true });
  };
  cleanup.add(`remove ${base}`, async () => {
    await removeAll().catch(() => undefined);
    await rm(base, { recursive: true, force: true });
    // The containers' cgroups went with them; their parent, in each hierarchy, goes now.
    execFileSync('sh', ['-c', `find /sys/fs/cgroup -mindepth 2 -maxdepth 3 -type d -path '*${cgroupParent}' -exec rmdir {} + 2>/dev/null || true`]);
  });

  process.stderr.write(`oci-images: building the image with umoci (${libraryMiB} MiB of libraries in layer 2), not timed\n`);
  const { layout, libraryBytes } = await buildImage(base, libraryMiB);
  const layoutBytes = du(path.join(layout, 'blobs'));
  const reference = `oci:${layout}:bench`;
  const results: Series[] = [];
  for (const count of counts) {
    for (const way of ['runtime run --image', 'umoci unpack + run --bundle'] as const) {
      if (abort.aborted) throw abort.reason;
      await removeAll();
      const containerMs: number[] = [];
      for (let i = 0; i < count; i++) {
        const id = `oci-${i}`;
        if (way === 'runtime run --image') {
          containerMs.push(await timedCommand([cli, 'run', '-d', '--image', reference, id], { env, logPath, timeoutMs: 600_000 }));
        } else {
          const bundle = path.join(base, 'bundles', id);
          await mkdir(path.dirname(bundle), { recursive: true });
          const unpack = await timedCommand(['umoci', 'unpack', '--image', `${layout}:bench`, bundle], { env, logPath, timeoutMs: 600_000 });
          containerMs.push(unpack + (await timedCommand([cli, 'run', '-d', '--bundle', bundle, id], { env, logPath })));
        }
      }
      const diskBytes = du(path.join(base, way === 'runtime run --image' ? 'store' : 'bundles'));
      results.push({ way, count, containerMs, diskBytes });
      process.stderr.write(`oci-images: ${count} container(s), ${way}: ${round(containerMs.reduce((a, b) => a + b, 0))} ms\n`);
    }
  }
  await removeAll();

  const mib = (bytes: number) => (bytes / 1024 ** 2).toFixed(0);
  const find = (way: Series['way'], count: number) => results.find((r) => r.way === way && r.count === count)!;
  const rows = results.map((r) => {
    const total = r.containerMs.reduce((a, b) => a + b, 0);
    const other = find(r.way === 'runtime run --image' ? 'umoci unpack + run --bundle' : 'runtime run --image', r.count);
    const umoci = r.way === 'runtime run --image' ? other : r;
    const umociTotal = umoci.containerMs.reduce((a, b) => a + b, 0);
    const later = r.containerMs.slice(1);
    return [
      String(r.count),
      r.way,
      String(round(r.containerMs[0]!, 0)),
      later.length > 0 ? String(round(summarize(later).median, 0)) : '-',
      String(round(total, 0)),
      (total / umociTotal).toFixed(2),
      mib(r.diskBytes),
      (r.diskBytes / umoci.diskBytes).toFixed(2),
    ];
  });
  const table = formatTable(['containers', 'way', 'first ms', 'each later ms (median)', 'total ms', 'total/umoci', 'disk MiB', 'disk/umoci'], rows);
  process.stdout.write(
    [
      `containers from one image: ${mib(layoutBytes)} MiB of gzip layers in the layout (${mib(libraryBytes)} MiB of library files in layer 2),`,
      'each container a whole `runtime run -d` (and `umoci unpack` before it) from spawn to exit, one after the other',
      '',
      table,
    ].join('\n') + '\n',
  );
  await mkdir(path.dirname(resultsFile), { recursive: true });
  await writeFile(
    resultsFile,
    `${JSON.stringify({ benchmark: 'oci-images', date: new Date().toISOString(), layoutBytes, libraryBytes, results }, null, 2)}\n`,
  );
}
