/**
 * Live migration between two hosts made of two network namespaces joined by a veth pair
 * (test/e2e/netns-hosts.ts), each with its own runtime roots, certificates of one test CA. A
 * memhog container (bench/fixtures/memhog.c) holding 256 MiB and 1 GiB of touched pages is moved
 * from host a to host b three ways, in one run:
 *
 *   checkpoint + copy + restore   what users do today (podman's export/import shape):
 *                                 `runtime checkpoint --image-path DIR` on a, the directory copied
 *                                 over the same link as a tar over mutual TLS (bench/tls-copy.ts,
 *                                 the same certificates, as scp would), `runtime restore -d
 *                                 --image-path --bundle` on b; total = the three commands from the
 *                                 first spawn to the last exit
 *   stop-and-copy                 `runtime migrate` (CRIU's page server over TLS); total = the
 *                                 command's wall time
 *   post-copy                     `runtime migrate --lazy`; the memory follows after the restore
 *
 * Downtime, in every way alike, is what the workload itself saw: memhog wakes every 5 ms and notes
 * the longest time it went without waking (memhog.c); the freeze on a, the dump, the transfer and
 * the restore on b show as one gap, read on b once memhog has run there (both hosts are one
 * machine: one clock). migrate's own figure (from the dump's start to the destination's
 * `settled`) is printed beside it.
 *
 * Not timed: starting the container and waiting for its memory, the receiver's start, checking
 * the memory on b (every byte, after each move: a wrong figure of a broken move is no figure),
 * deleting it. The bundle's rootfs goes along (a busybox rootfs, 2 MiB) in every way.
 *
 *   BENCH_MIGRATE_SIZES=256,1024   MiB the container holds
 *   BENCH_MIGRATE_ROUNDS=2         rounds per size and way (the median is kept)
 */
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Cleanup } from './cleanup.js';
import { BenchError } from './exec.js';
import { formatTable, round, summarize } from './stats.js';
import { buildMemhog, gapAbove, longestGapMs, makeBundle, verifyMemory, waitReady } from './workload.js';
import { twoHosts, type Host } from '../test/e2e/netns-hosts.js';
import { makePki } from '../test/helpers/certs.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const cli = path.join(repoRoot, 'dist/bin/runtime');
const resultsFile = path.join(repoRoot, 'bench-results/migration.json');
const ways = ['checkpoint + copy + restore', 'stop-and-copy', 'post-copy'] as const;
type Way = (typeof ways)[number];

interface Sample {
  readonly way: Way;
  readonly sizeMiB: number;
  readonly downtimeMs: number;
  readonly totalMs: number;
  /** migrate's own report (dump start to `settled`), for the two migrations. */
  readonly reportedDowntimeMs?: number;
}

export async function benchmarkMigration(cleanup: Cleanup, abort: AbortSignal): Promise<void> {
  if (process.getuid?.() !== 0) throw new BenchError('BENCH_NOT_ROOT', 'migration needs root', { hint: 'run `sudo npm run bench`' });
  const sizes = (process.env.BENCH_MIGRATE_SIZES ?? '256,1024').split(',').map(Number);
  const rounds = Number(process.env.BENCH_MIGRATE_ROUNDS ?? '2');
  const base = await mkdtemp(path.join(os.tmpdir(), 'runtime-bench-migrate-'));
  await chmod(base, 0o711);
  cleanup.add(`remove ${base}`, () => rm(base, { recursive: true, force: true }));
  const hosts = await twoHosts({ teardown: (fn: () => Promise<void> | void) => cleanup.add('the two hosts', fn), log: () => undefined } as never, 'bench');
  const pipeMax = '/proc/sys/fs/pipe-max-size';
  const pipeBefore = (await readFile(pipeMax, 'utf8')).trim();
  if (Number(pipeBefore) < 4_194_304) {
    await writeFile(pipeMax, '4194304');
    cleanup.add('fs.pipe-max-size back', () => writeFile(pipeMax, pipeBefore));
  }
  const pkiDir = path.join(base, 'pki');
  await mkdir(pkiDir);
  const pki = await makePki(pkiDir, 'bench');
  const certs = { a: await pki.issue('host-a', { ip: hosts.a.address }), b: await pki.issue('host-b', { ip: hosts.b.address }) };
  const env = (host: Host) => ({
    RUNTIME_ROOT: path.join(base, host.name, 'state'),
    RUNTIME_CHECKPOINT_ROOT: path.join(base, host.name, 'checkpoints'),
    RUNTIME_IMAGE_ROOT: path.join(base, host.name, 'images'),
    RUNTIME_CGROUP_PARENT: `/runtime-bench/${path.basename(base)}-${host.name.slice(-1)}`,
    RUNTIME_LOG_LEVEL: 'warn',
  });
  const run = async (host: Host, args: readonly string[]) => {
    const started = process.hrtime.bigint();
    const result = await host.exec([cli, ...args], { env: env(host), reject: false, timeoutMs: 600_000 });
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    if (result.exitCode !== 0) throw new BenchError('BENCH_COMMAND_FAILED', `runtime ${args.join(' ')} on ${host.name} failed: ${result.stderr.trim()}`);
    return { ms, stdout: result.stdout };
  };
  cleanup.add('delete the containers', async () => {
    for (const host of [hosts.a, hosts.b]) await host.exec([cli, 'delete', '-f', 'hog'], { env: env(host), reject: false });
    // The containers' cgroups went with them; each host's parent, in each hierarchy, goes now.
    for (const host of [hosts.a, hosts.b]) {
      spawnSync('sh', [
        '-c',
        `find /sys/fs/cgroup -mindepth 2 -maxdepth 3 -type d -path '*${env(host).RUNTIME_CGROUP_PARENT}' -exec rmdir {} + 2>/dev/null || true`,
      ]);
    }
  });

  // The receiver on b, for the two migration ways.
  const receiver = hosts.b.spawn(
    [cli, 'receive', '--listen', `${hosts.b.address}:0`, '--tls-cert', certs.b.cert, '--tls-key', certs.b.key, '--tls-ca', certs.b.ca],
    { env: env(hosts.b) },
  );
  let out = '';
  receiver.stdout?.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  receiver.stderr?.resume();
  cleanup.add('stop the receiver', () => void receiver.kill('SIGTERM'));
  const deadline = Date.now() + 20_000;
  while (!/listening on port (\d+)/.test(out)) {
    if (Date.now() > deadline) throw new BenchError('BENCH_RECEIVER', 'the receiver did not start');
    await new Promise((r) => setTimeout(r, 50));
  }
  const port = Number(/listening on port (\d+)/.exec(out)![1]);

  const memhog = await buildMemhog(path.join(repoRoot, 'bench/fixtures/memhog.c'), path.join(repoRoot, 'node_modules/.cache/runtime-bench'));
  const samples: Sample[] = [];
  for (const sizeMiB of sizes) {
    for (let r = 0; r < rounds; r++) {
      for (const way of ways) {
        if (abort.aborted) throw abort.reason;
        const dir = path.join(base, `${way.replace(/\W+/g, '-')}-${sizeMiB}-${r}`);
        const bundle = path.join(dir, 'bundle');
        await makeBundle(repoRoot, bundle, memhog, sizeMiB, { gaps: true });
        await run(hosts.a, ['run', '-d', '--bundle', bundle, 'hog']);
        await waitReady(bundle, sizeMiB, 120_000);
        // The longest gap before the move: its own is longer (a freeze and a restore at least).
        await new Promise((r) => setTimeout(r, 200));
        const before = await longestGapMs(bundle);
        let sample: Sample;
        let arrived: string;
        if (way === 'checkpoint + copy + restore') {
          const images = path.join(dir, 'images');
          const received = path.join(dir, 'received');
          await mkdir(received, { mode: 0o700 });
          const copyPort = port + 1 + r;
          const started = process.hrtime.bigint();
          await run(hosts.a, ['checkpoint', '--image-path', images, 'hog']);
          await tlsCopy(hosts, copyPort, images, received, certs);
          await run(hosts.b, ['restore', '-d', '--image-path', received, '--bundle', bundle, 'hog']);
          const ms = Number(process.hrtime.bigint() - started) / 1e6;
          arrived = bundle;
          sample = { way, sizeMiB, downtimeMs: await gapAbove(arrived, before), totalMs: ms };
          // What the way leaves on a: its checkpointed record (not timed).
          await run(hosts.a, ['delete', '-f', 'hog']);
        } else {
          const certA = certs.a;
          const args = [
            'migrate',
            'hog',
            '--to',
            `${hosts.b.address}:${port}`,
            '--tls-cert',
            certA.cert,
            '--tls-key',
            certA.key,
            '--tls-ca',
            certA.ca,
            '--timeout',
            '300',
          ];
          const result = await run(hosts.a, way === 'post-copy' ? [...args, '--lazy'] : args);
          const reported = JSON.parse(result.stdout) as { downtimeMs: number };
          arrived = path.join(env(hosts.b).RUNTIME_CHECKPOINT_ROOT, 'hog', 'bundle');
          sample = { way, sizeMiB, downtimeMs: await gapAbove(arrived, before), totalMs: result.ms, reportedDowntimeMs: reported.downtimeMs };
        }
        const state = JSON.parse((await run(hosts.b, ['state', 'hog'])).stdout) as { pid: number };
        await verifyMemory(arrived, state.pid, sizeMiB);
        samples.push(sample);
        const reported = sample.reportedDowntimeMs === undefined ? '' : ` (migrate reported ${round(sample.reportedDowntimeMs)} ms)`;
        process.stderr.write(`migration: ${sizeMiB} MiB, ${way}: downtime ${round(sample.downtimeMs)} ms${reported}, total ${round(sample.totalMs)} ms\n`);
        await run(hosts.b, ['delete', '-f', 'hog']);
        await rm(dir, { recursive: true, force: true });
      }
    }
  }

  const median = (way: Way, sizeMiB: number, key: 'downtimeMs' | 'totalMs' | 'reportedDowntimeMs') =>
    summarize(samples.filter((s) => s.way === way && s.sizeMiB === sizeMiB).map((s) => s[key] ?? 0)).median;
  const rows = sizes.flatMap((sizeMiB) =>
    ways.map((way) => {
      const stop = median('stop-and-copy', sizeMiB, 'downtimeMs');
      const today = median('checkpoint + copy + restore', sizeMiB, 'downtimeMs');
      const downtime = median(way, sizeMiB, 'downtimeMs');
      return [
        `${sizeMiB} MiB`,
        way,
        String(round(downtime, 0)),
        way === 'checkpoint + copy + restore' ? '-' : String(round(median(way, sizeMiB, 'reportedDowntimeMs'), 0)),
        String(round(median(way, sizeMiB, 'totalMs'), 0)),
        (downtime / today).toFixed(2),
        (downtime / stop).toFixed(2),
      ];
    }),
  );
  process.stdout.write(
    [
      `live migration between two network-namespace hosts over a veth, median of ${rounds} rounds; memhog's memory checked on arrival (not timed)`,
      "downtime: the longest time the workload went without running, as it measured it itself (every way alike); migrate's own figure beside it",
      '',
      formatTable(['size', 'way', 'downtime ms', 'migrate says ms', 'total ms', 'downtime/today', 'downtime/stop-and-copy'], rows),
    ].join('\n') + '\n',
  );
  await mkdir(path.dirname(resultsFile), { recursive: true });
  await writeFile(resultsFile, `${JSON.stringify({ benchmark: 'migration', date: new Date().toISOString(), rounds, samples }, null, 2)}\n`);
}

/** The images directory from a to b as a tar over mutual TLS (bench/tls-copy.ts). */
async function tlsCopy(
  hosts: { a: Host; b: Host },
  port: number,
  from: string,
  to: string,
  certs: { a: { cert: string; key: string; ca: string }; b: { cert: string; key: string; ca: string } },
): Promise<void> {
  const script = path.join(repoRoot, 'dist/bench/tls-copy.js');
  const receiving = hosts.b.spawn(['node', script, 'receive', hosts.b.address, String(port), to, certs.b.cert, certs.b.key, certs.b.ca], {});
  let out = '';
  receiving.stdout?.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  while (!out.includes('listening')) await new Promise((r) => setTimeout(r, 10));
  const sending = spawn(
    'nsenter',
    [`--net=${hosts.a.netns}`, '--', 'node', script, 'send', hosts.b.address, String(port), from, certs.a.cert, certs.a.key, certs.a.ca],
    {
      stdio: 'inherit',
    },
  );
  const [[sent], [received]] = await Promise.all([once(sending, 'exit'), once(receiving, 'exit')]);
  if (sent !== 0 || received !== 0) throw new BenchError('BENCH_COPY', `the copy of ${from} failed (send ${sent}, receive ${received})`);
}
