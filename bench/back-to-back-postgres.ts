/**
 * The reset benchmark with PostgreSQL holding about 1 GB (BENCH_PG_MB), reached over TCP through a
 * published port, as a test suite uses it: a short test changes the data, then the database is put
 * back, then the next test, with no idle time between them. The ways back, each in turn in blocks:
 *
 *   runtime reset (CLI)      `dist/bin/runtime reset --pid-file F <id> pristine` to its exit
 *   runtime reset (library)  Runtime.reset({ id, name: 'pristine' }) in this process
 *   template clone           DROP DATABASE app WITH (FORCE); CREATE DATABASE app TEMPLATE pristine,
 *                            over a connection to the server (what testcontainers' snapshot and
 *                            restore do), on the same running container, from this process (so
 *                            it compares with the library's reset; the CLI's is a process more)
 *   runc loop                `runc delete -f`, a fresh writable layer (overlay) over the pristine
 *                            rootfs, `runc restore -d` from runc's checkpoint of the same server:
 *                            the rootfs must go back with the memory, or the restored server
 *                            finds the test's changes in its files
 *   cold restart             `runc delete -f`, a fresh writable layer, `runc run -d`, until the
 *                            server accepts a connection (it recovers from its WAL first)
 *
 * runc's server is the same bundle on the same pristine rootfs (the snapshot's layers, read-only,
 * under a writable layer of its own), with one difference: it has no network namespace of its own
 * (runc has no published ports) and listens on a host port. A network namespace is less for runc's
 * restore to do than for the runtime's: the comparison leans runc's way.
 *
 * The server is Debian's PostgreSQL 15 as its own user in a user namespace (test/e2e/databases.ts),
 * with shared_buffers at Debian's default of 128 MB. Database `app` holds one table of BENCH_PG_MB
 * of rows, `pristine` is its copy made as the template; the snapshot is taken with both. The test
 * (not timed): connect to `app`, check that the previous test's table is gone and the row count is
 * the pristine one, insert, delete, update, create a table, disconnect. What is timed: from the
 * end of the test to the way back's return (the command's exit, the call's return, the two
 * statements' completion).
 *
 *   BENCH_PG_MB=1024       size of the data in `app`
 *   BENCH_PG_TESTS=15      kept tests per way (in blocks of BENCH_PG_BLOCK, one warm-up each)
 *   BENCH_PG_BLOCK=5
 *   BENCH_IMAGE_DIR=DIR    state and snapshots in DIR instead of the temporary directory (on disk)
 */
import { spawnSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { Runtime } from '../src/index.js';
import type { Cleanup } from './cleanup.js';
import { BenchError, timed, timedCommand } from './exec.js';
import { integerSetting, mountsBelow, runtimeCliEnv } from './roots.js';
import { distribution, runtimeCommand, type Distribution } from './back-to-back.js';
import { Runc } from './tools.js';
import { readPidFile } from './workload.js';
import { formatTable, round } from './stats.js';
import { bundleIn, type Sandbox } from '../test/e2e/helpers.js';
import { connectPostgres, databasesMissing, freePort, postgresBundle, waitForNoConnections, waitForPostgres } from '../test/e2e/databases.js';

type WayName = 'runtime-cli' | 'runtime-library' | 'template-clone' | 'runc-loop' | 'cold-restart';

const labels: Record<WayName, string> = {
  'runtime-cli': 'runtime reset (CLI)',
  'runtime-library': 'runtime reset (library)',
  'template-clone': 'DROP + CREATE DATABASE TEMPLATE',
  'runc-loop': 'runc delete + new layer + restore',
  'cold-restart': 'cold restart (runc run)',
};

/** The rows a test finds: the pristine count, and none of the previous test's table. */
async function testWork(port: number, number: number, pristineRows: number): Promise<void> {
  const client = await connectPostgres(port, 'app');
  try {
    const { rows } = await client.query<{ rows: string; previous: string | null }>(
      `SELECT count(*)::text AS rows, to_regclass('scratch_${number - 1}')::text AS previous FROM big`,
    );
    if (Number(rows[0]!.rows) !== pristineRows || rows[0]!.previous !== null) {
      throw new BenchError(
        'BENCH_NOT_PRISTINE',
        `test ${number}: app holds ${rows[0]!.rows} rows (pristine: ${pristineRows}) and scratch_${number - 1} is ${rows[0]!.previous ?? 'gone'}`,
      );
    }
    await client.query(`
      INSERT INTO big (id, payload) SELECT -g, md5(g::text) FROM generate_series(1, 100) AS g;
      DELETE FROM big WHERE id BETWEEN ${number * 10} AND ${number * 10 + 9};
      UPDATE big SET payload = 'changed by test ${number}' WHERE id BETWEEN ${number * 10 + 100} AND ${number * 10 + 109};
      CREATE TABLE scratch_${number} (id integer PRIMARY KEY);
      INSERT INTO scratch_${number} SELECT generate_series(1, 10);`);
  } finally {
    await client.end();
  }
}

/** A Sandbox (test/e2e/helpers.ts) over the benchmark's directories, for postgresBundle. */
function benchSandbox(dir: string, stateRoot: string, checkpointRoot: string, runtime: Runtime): Sandbox {
  return {
    dir,
    stateRoot,
    checkpointRoot,
    imageRoot: path.join(dir, 'images'),
    runtime,
    cli: () => Promise.reject(new Error('not used by the benchmark')),
    bundle: (name, command = [], edit) => bundleIn(dir, name, command, edit),
  };
}

/**
 * runc's PostgreSQL: the runtime's bundle over the runtime snapshot's rootfs layers (read-only) and
 * a writable layer of its own, in the host's network namespace on `port`. Started once, it is
 * checkpointed by runc (the writable layer then joins the read-only ones: the pristine rootfs
 * that goes with runc's images), and restored; then each way back starts from a new writable
 * layer. Old layers are removed after the way back is timed, as the runtime removes an old
 * instance's after its reset has returned.
 */
async function runcPostgres(options: {
  readonly dir: string;
  readonly bundle: string;
  readonly layers: readonly string[];
  readonly port: number;
  readonly id: string;
  readonly cleanup: Cleanup;
}): Promise<{ readonly loop: () => Promise<void>; readonly cold: () => Promise<void>; readonly tidy: () => Promise<void> }> {
  const { dir, port, id } = options;
  const bundle = path.join(dir, 'bundle');
  const rootfs = path.join(bundle, 'rootfs');
  await mkdir(rootfs, { recursive: true });
  await chmod(dir, 0o711);
  await chmod(bundle, 0o711);
  const spec = JSON.parse(await readFile(path.join(options.bundle, 'config.json'), 'utf8')) as {
    process: { args: string[] };
    linux: { namespaces: { type: string }[] };
    mounts: { destination: string }[];
  };
  spec.linux.namespaces = spec.linux.namespaces.filter((namespace) => namespace.type !== 'network');
  // A user namespace may mount no sysfs for a network namespace it does not own, and CRIU
  // cannot restore the host's /sys bound in its place: runc's server goes without /sys (the
  // server does not read it).
  spec.mounts = spec.mounts.filter((mount) => mount.destination !== '/sys' && !mount.destination.startsWith('/sys/'));

  spec.process.args.push('-c', `port=${port}`);
  await writeFile(path.join(bundle, 'config.json'), JSON.stringify(spec, null, 2));
  const runc = await Runc.create(path.join(dir, 'runc'));
  const pidFile = path.join(dir, 'runc.pid');
  const images = path.join(dir, 'images');
  options.cleanup.add(`delete runc container ${id}`, async () => {
    await runc.remove(id);
    spawnSync('umount', ['-l', rootfs]);
    await runc.close();
  });

  let lowers = options.layers;
  let generation = 0;
  const old: string[] = [];
  /** A new, empty writable layer over `lowers` at the bundle's rootfs. */
  const freshLayer = async () => {
    spawnSync('umount', [rootfs]);
    const layer = path.join(dir, `layer-${++generation}`);
    await mkdir(path.join(layer, 'upper'), { recursive: true });
    await mkdir(path.join(layer, 'work'));
    const mounted = spawnSync(
      'mount',
      ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lowers.join(':')},upperdir=${layer}/upper,workdir=${layer}/work`, rootfs],
      { encoding: 'utf8' },
    );
    if (mounted.status !== 0) throw new BenchError('BENCH_MOUNT', `mounting runc's rootfs failed: ${mounted.stderr.trim()}`);
    if (generation > 1) old.push(path.join(dir, `layer-${generation - 1}`));
  };
  const ready = async () => (await waitForPostgres(port)).end();

  await freshLayer();
  await runc.start(id, bundle, pidFile);
  await ready();
  await waitForNoConnections(await readPidFile(pidFile), port);
  const checkpointMs = await runc.checkpoint(id, images);
  process.stderr.write(`  runc checkpoint of its server in ${(checkpointMs / 1000).toFixed(1)} s\n`);
  // The tasks are restored from inside the user namespace, whose root must read the images (what
  // the runtime does for its own snapshots).
  spawnSync('chmod', ['-R', 'a+rX', images]);
  // The layer the server wrote until runc's checkpoint goes with runc's images, read-only.
  spawnSync('umount', [rootfs]);
  lowers = [path.join(dir, `layer-${generation}`, 'upper'), ...options.layers];
  await freshLayer();
  old.length = 0;
  await runc.restore(id, images, bundle, pidFile);
  return {
    async loop() {
      await runc.remove(id);
      await freshLayer();
      await runc.restore(id, images, bundle, pidFile);
    },
    async cold() {
      await runc.remove(id);
      await freshLayer();
      await runc.start(id, bundle, pidFile);
      await ready();
    },
    async tidy() {
      for (const layer of old.splice(0)) await rm(layer, { recursive: true, force: true });
    },
  };
}

export async function benchmarkPostgres(repoRoot: string, cleanup: Cleanup, abort: AbortSignal): Promise<void> {
  if (process.getuid?.() !== 0) throw new BenchError('BENCH_NOT_ROOT', 'reset needs root', { hint: 'run `sudo npm run bench`' });
  const missing = databasesMissing();
  if (missing) throw new BenchError('BENCH_MISSING_TOOL', missing, { hint: 'run `bash scripts/install-system-deps.sh`' });
  const dataMB = integerSetting('BENCH_PG_MB', process.env.BENCH_PG_MB ?? '1024', 1);
  const block = integerSetting('BENCH_PG_BLOCK', process.env.BENCH_PG_BLOCK ?? '5', 1);
  const tests = Math.ceil(integerSetting('BENCH_PG_TESTS', process.env.BENCH_PG_TESTS ?? '15', 1) / block) * block;
  const warmup = 1;

  const temp = await mkdtemp(path.join(os.tmpdir(), 'rp-'));
  // runc mounts the rootfs from inside the user namespace: each directory above it must be
  // searchable by others.
  await chmod(temp, 0o711);
  cleanup.add(`remove ${temp}`, async () => {
    for (const point of await mountsBelow(temp)) spawnSync('umount', ['-l', point]);
    await rm(temp, { recursive: true, force: true });
  });
  // On disk, where a test suite's database lives (a clone by template writes the data twice, into
  // files and the WAL: more than a tmpfs of RAM holds after a few).
  let storage = path.join(temp, 'm');
  await mkdir(storage, { mode: 0o711 });
  if (process.env.BENCH_IMAGE_DIR) {
    await mkdir(process.env.BENCH_IMAGE_DIR, { recursive: true });
    storage = await mkdtemp(path.join(path.resolve(process.env.BENCH_IMAGE_DIR), 'rp-'));
    await chmod(storage, 0o711);
    cleanup.add(`remove ${storage}`, async () => {
      for (const point of await mountsBelow(storage)) spawnSync('umount', ['-l', point]);
      await rm(storage, { recursive: true, force: true });
    });
  }
  const stateRoot = path.join(storage, 's');
  const checkpointRoot = path.join(storage, 'c');
  const cgroupParent = `/runtime-bench-pg-${process.pid}`;
  const runtime = Runtime.create({ stateRoot, checkpointRoot, cgroupParent, logLevel: 'warn' });
  // Registered before any container: it runs once they are gone.
  cleanup.add(`remove the cgroups below ${cgroupParent}`, async () => {
    const left = await runtime.context.cgroups.removeTree(cgroupParent);
    if (left.length > 0) throw new Error(`still busy: ${left.join(', ')}`);
  });
  const box = benchSandbox(path.join(storage, 'b'), stateRoot, checkpointRoot, runtime);
  await mkdir(box.dir, { recursive: true });
  const cliEnv = runtimeCliEnv({ stateRoot, checkpointRoot, cgroupParent });
  const cliLog = path.join(temp, 'runtime-cli.log');

  const id = `pg-${process.pid}`;
  const port = await freePort();
  const bundle = await postgresBundle(box, 'pg');
  // Debian's default shared_buffers, where the test fixture keeps 16 MB.
  const configFile = path.join(bundle, 'config.json');
  const spec = JSON.parse(await readFile(configFile, 'utf8')) as { process: { args: string[] } };
  spec.process.args.push('-c', 'shared_buffers=128MB');
  await writeFile(configFile, JSON.stringify(spec, null, 2));
  cleanup.add(`delete ${id}`, () => runtime.delete(id, { force: true }).catch(() => undefined));
  process.stderr.write(`bench: postgres back to back, ${dataMB} MB of data, ${tests} tests per way in blocks of ${block} (+${warmup} warm-up)\n`);

  await runtime.run({ id, bundle, ports: [{ hostIp: '127.0.0.1', hostPort: port, containerPort: 5432 }] });
  const admin = await waitForPostgres(port);
  const loading = await timed(async () => {
    await admin.query('CREATE DATABASE app');
    const app = await connectPostgres(port, 'app');
    try {
      await app.query('CREATE TABLE big (id bigint PRIMARY KEY, payload text NOT NULL)');
      // About 8,000 rows of ~100 bytes (with its index entry) per MB.
      const rows = dataMB * 8000;
      for (let from = 1; from <= rows; from += 1_000_000) {
        abort.throwIfAborted();
        const to = Math.min(rows, from + 999_999);
        await app.query(`INSERT INTO big SELECT g, md5(g::text) || md5((g * 7)::text) FROM generate_series(${from}, ${to}) AS g`);
      }
      await app.query('VACUUM ANALYZE big');
    } finally {
      await app.end();
    }
    await admin.query('CREATE DATABASE pristine TEMPLATE app');
    await admin.query('CHECKPOINT');
  });
  const { rows: sizes } = await admin.query<{ app: string; rows: string }>("SELECT pg_database_size('app')::text AS app, (SELECT 0)::text AS rows");
  await admin.end();
  const appMB = Number(sizes[0]!.app) / 2 ** 20;
  const counted = await connectPostgres(port, 'app');
  const pristineRows = Number((await counted.query<{ n: string }>('SELECT count(*)::text AS n FROM big')).rows[0]!.n);
  await counted.end();
  process.stderr.write(
    `  loaded ${appMB.toFixed(0)} MB (${pristineRows} rows) into app, and its template pristine, in ${(loading.ms / 1000).toFixed(0)} s\n`,
  );
  await waitForNoConnections((await runtime.state(id)).pid!, 5432);
  const snapshot = await timed(() => runtime.checkpoint({ id, name: 'pristine', leaveRunning: true }));
  process.stderr.write(`  snapshot "pristine" in ${(snapshot.ms / 1000).toFixed(1)} s\n`);

  const runcPort = await freePort();
  const runc = await runcPostgres({
    dir: path.join(storage, 'r'),
    bundle,
    layers: (await runtime.context.snapshots.read(id, 'pristine')).layers,
    port: runcPort,
    id: `pg-runc-${process.pid}`,
    cleanup,
  });

  const pidFile = path.join(temp, 'reset.pid');
  const ways: Record<WayName, () => Promise<void>> = {
    'runtime-cli': async () => {
      await timedCommand([runtimeCommand(repoRoot), 'reset', '--pid-file', pidFile, id, 'pristine'], {
        env: cliEnv,
        logPath: cliLog,
      });
    },
    'runtime-library': async () => {
      await runtime.reset({ id, name: 'pristine' });
    },
    'template-clone': async () => {
      const client: pg.Client = await connectPostgres(port);
      try {
        await client.query('DROP DATABASE app WITH (FORCE)');
        await client.query('CREATE DATABASE app TEMPLATE pristine');
      } finally {
        await client.end();
      }
    },
    'runc-loop': runc.loop,
    'cold-restart': runc.cold,
  };
  const portOf = (name: WayName) => (name === 'runc-loop' || name === 'cold-restart' ? runcPort : port);
  const names = Object.keys(ways) as WayName[];
  const kept = new Map<WayName, number[]>(names.map((name) => [name, []]));
  let number = 0;
  // The first test starts from the snapshot's state.
  await runtime.reset({ id, name: 'pristine' });
  for (let b = 0; b < tests / block; b++) {
    for (const name of [...names.slice(b % names.length), ...names.slice(0, b % names.length)]) {
      const times: number[] = [];
      for (let i = 0; i < warmup + block; i++) {
        abort.throwIfAborted();
        number++;
        await testWork(portOf(name), number, pristineRows);
        const { ms } = await timed(ways[name]);
        await runc.tidy();
        if (i >= warmup) times.push(ms);
      }
      kept.get(name)!.push(...times);
      const d = distribution(times);
      process.stderr.write(`  block ${b + 1}/${tests / block}, ${labels[name]}: median ${d.median} ms, p90 ${d.p90}, max ${d.max}\n`);
    }
  }
  await testWork(port, ++number, pristineRows);
  await testWork(runcPort, ++number, pristineRows);

  const results = names.map((name) => ({ way: name, samplesMs: kept.get(name)!.map((ms) => round(ms)), overhead: distribution(kept.get(name)!) }));
  const of = (name: WayName): Distribution => results.find((r) => r.way === name)!.overhead;
  const text = [
    `PostgreSQL 15 with ${appMB.toFixed(0)} MB in app: per-test overhead, ms, ${tests} tests back to back per way`,
    '',
    formatTable(
      ['data', 'way back to pristine', 'median', 'p90', 'max', 'median, like with like'],
      names.map((name) => [
        `${appMB.toFixed(0)} MB`,
        labels[name],
        of(name).median.toFixed(0),
        of(name).p90.toFixed(0),
        of(name).max.toFixed(0),
        // Whole processes against runc's loop; the library's reset (in this process) against the
        // template clone, which a test suite's own client runs from its process too.
        name === 'runtime-library' || name === 'template-clone'
          ? `${(of(name).median / of('template-clone').median).toFixed(2)}x template clone`
          : `${(of(name).median / of('runc-loop').median).toFixed(2)}x runc loop`,
      ]),
    ),
  ].join('\n');
  process.stdout.write(`\n${text}\n`);
  const report = {
    benchmark: 'reset-postgres',
    date: new Date().toISOString(),
    setup: {
      dataMB: round(appMB),
      rows: pristineRows,
      tests,
      block,
      warmupPerBlock: warmup,
      loadSeconds: round(loading.ms / 1000),
      snapshotSeconds: round(snapshot.ms / 1000),
    },
    results,
  };
  const resultsFile = path.join(repoRoot, 'bench-results/reset-postgres.json');
  await mkdir(path.dirname(resultsFile), { recursive: true });
  await writeFile(resultsFile, `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(`\nwritten to ${path.relative(process.cwd(), resultsFile)}\n`);
}
