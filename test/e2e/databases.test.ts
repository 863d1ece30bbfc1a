/**
 * Real databases, end to end, with real clients over TCP through a published port: a PostgreSQL
 * (Debian's server, as its own non-root user in a user namespace) and a Redis, each loaded with a
 * schema or data set and snapshotted, then changed and reset a hundred times. After each reset the
 * client reconnects to the same host port and finds exactly the snapshot's data: row counts and
 * checksums of the contents, the schema, and the files the server flushed (WAL and pg_control,
 * the append-only file).
 */
import test from 'ava';
import { readFile } from 'node:fs/promises';
import { e2e, sandbox } from './helpers.js';
import { describeTree } from './reset-helpers.js';
import {
  connectPostgres,
  connectRedis,
  containerId,
  databasesMissing,
  freePort,
  lsn,
  percentile,
  postgresBundle,
  postgresChanges,
  postgresDigest,
  postgresIds,
  postgresSchema,
  postgresServer,
  redisInfo,
  redisTcpBundle,
  redisTcpDigest,
  rewriteAof,
  userNamespace,
  waitForNoConnections,
  waitForPostgres,
  waitForRedisTcp,
  type PostgresDigest,
  type PostgresServer,
} from './databases.js';
import type { RedisDigest } from './reset-helpers.js';

const serial = e2e(test);

const missing = databasesMissing();
if (missing && process.env.CI) serial('the database servers are installed', (t) => t.fail(`THE DATABASE TESTS CANNOT RUN: ${missing}`));
else if (missing) console.warn(`\n!!! DATABASE TESTS SKIPPED: ${missing}. !!!\n`);
const withDatabases = missing ? (test.serial.skip as unknown as typeof serial) : serial;

const rounds = 100;

function timings(what: string, times: readonly number[]): string {
  return `${what}: median ${percentile(times, 0.5).toFixed(0)} ms, p90 ${percentile(times, 0.9).toFixed(0)} ms, max ${Math.max(...times).toFixed(0)} ms over ${times.length}`;
}

/** A process's host uid and the uid map of its user namespace. */
async function identity(pid: number): Promise<{ uid: number; uidMap: string }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const uidMap = (await readFile(`/proc/${pid}/uid_map`, 'utf8')).trim().split(/\s+/).join(' ');
  return { uid: Number(/^Uid:\s+(\d+)/m.exec(status)![1]), uidMap };
}

withDatabases(`postgresql: ${rounds} rounds of writes, DDL and a flushed WAL, each reset back to exactly the snapshot's data`, async (t) => {
  t.timeout(200_000);
  const box = await sandbox(t);
  const hostPort = await freePort();
  const bundle = await postgresBundle(box, 'pg');
  let loaded: { digest: PostgresDigest; server: PostgresServer } | undefined;

  const app = await box.runtime.pristine({
    id: containerId(box, 'pg'),
    bundle,
    ports: [{ hostIp: '127.0.0.1', hostPort, containerPort: 5432 }],
    // The snapshot is taken with the schema and fixtures loaded and no client connected.
    ready: async (container) => {
      const client = await waitForPostgres(hostPort);
      try {
        await client.query(await postgresSchema());
        loaded = { digest: await postgresDigest(client), server: await postgresServer(client) };
      } finally {
        await client.end();
      }
      await waitForNoConnections(await container.pid(), 5432);
    },
  });
  const snapshot = loaded!;
  t.deepEqual(
    Object.fromEntries(Object.entries(snapshot.digest.tables).map(([name, { rows }]) => [name, rows])),
    { customers: 1000, orders: 3000, products: 200 },
    'the fixtures are loaded',
  );
  // The client reached the server through the published port: it connected to the host port,
  // and the server saw the connection arrive on its own port in the container.
  t.not(hostPort, 5432);
  t.like(snapshot.server, { serverAddress: '127.0.0.1', serverPort: 5432 });
  // The server runs as the postgres user of the container's user namespace.
  const first = await identity(await app.pid());
  t.deepEqual(first, { uid: userNamespace.hostId + postgresIds.uid, uidMap: `0 ${userNamespace.hostId} ${userNamespace.size}` });

  const resets: number[] = [];
  const answers: number[] = [];
  for (let round = 1; round <= rounds; round++) {
    const client = await connectPostgres(hostPort);
    let dirty: { digest: PostgresDigest; server: PostgresServer };
    try {
      await client.query(postgresChanges(round));
      dirty = { digest: await postgresDigest(client), server: await postgresServer(client) };
    } finally {
      await client.end();
    }
    // The changes happened, and were written to disk: a checkpoint newer than the snapshot's.
    const changed =
      t.notDeepEqual(dirty.digest, snapshot.digest, `round ${round}: the changes changed the data`) &&
      t.true(
        dirty.digest.columns.some((column) => column.startsWith(`customers.round_${round} `)),
        `round ${round}: the column was added`,
      ) &&
      t.true(`scratch_${round}` in dirty.digest.tables, `round ${round}: the table was created`) &&
      t.true(lsn(dirty.server.checkpointLsn) > lsn(snapshot.server.checkpointLsn), `round ${round}: pg_control holds a newer checkpoint`);
    if (!changed) break;

    const started = performance.now();
    await app.reset();
    resets.push(performance.now() - started);

    const after = await connectPostgres(hostPort);
    try {
      await after.query('SELECT 1');
      answers.push(performance.now() - started);
      const digest = await postgresDigest(after);
      const server = await postgresServer(after);
      const ok =
        t.deepEqual(digest, snapshot.digest, `round ${round}: exactly the snapshot's rows, sequences and schema`) &&
        t.is(server.startedAt, snapshot.server.startedAt, `round ${round}: the same server, restored, not restarted`) &&
        t.is(server.checkpointLsn, snapshot.server.checkpointLsn, `round ${round}: pg_control on disk is the snapshot's`) &&
        t.true(lsn(server.flushLsn) < lsn(dirty.server.flushLsn), `round ${round}: the WAL is back before the round's`) &&
        t.like(server, { serverAddress: '127.0.0.1', serverPort: 5432 }, `round ${round}: through the published port`);
      if (!ok) break;
    } finally {
      await after.end();
    }
  }
  t.is(resets.length, rounds);
  t.like(await identity(await app.pid()), { uid: first.uid, uidMap: first.uidMap }, 'still postgres in its user namespace');
  t.log(timings(`reset of PostgreSQL (${Object.keys(snapshot.digest.tables).length} tables, 4200 rows)`, resets));
  t.log(timings('reset to the first answer over the published port', answers));
});

withDatabases(`redis: ${rounds} rounds of writes and a rewritten, fsynced AOF, each reset back to exactly the snapshot's data`, async (t) => {
  t.timeout(200_000);
  const box = await sandbox(t);
  const hostPort = await freePort();
  const bundle = await redisTcpBundle(box, 'redis');
  let loaded: { digest: RedisDigest; runId: string; files: Record<string, string> } | undefined;

  const app = await box.runtime.pristine({
    id: containerId(box, 'redis'),
    bundle,
    ports: [{ hostIp: '127.0.0.1', hostPort, containerPort: 6379 }],
    ready: async (container) => {
      const client = await waitForRedisTcp(hostPort);
      const pid = await container.pid();
      try {
        const writes: Promise<unknown>[] = [];
        for (let i = 0; i < 1000; i++) writes.push(client.set(`key:${String(i).padStart(4, '0')}`, `value ${i} `.repeat(1 + (i % 13))));
        writes.push(client.hSet('profile:1', { name: 'ada', lang: 'en', visits: '42' }));
        writes.push(
          client.rPush(
            'queue',
            Array.from({ length: 50 }, (_, i) => `job${i}`),
          ),
        );
        writes.push(
          client.sAdd(
            'tags',
            Array.from({ length: 30 }, (_, i) => `tag${i}`),
          ),
        );
        writes.push(
          client.zAdd(
            'scores',
            Array.from({ length: 30 }, (_, i) => ({ score: i * 1.5, value: `player${i}` })),
          ),
        );
        await Promise.all(writes);
        await rewriteAof(client);
        loaded = {
          digest: await redisTcpDigest(client),
          runId: (await redisInfo(client, 'server')).run_id!,
          files: await describeTree(`/proc/${pid}/root`, ['data']),
        };
      } finally {
        if (client.isOpen) await client.close();
      }
      await waitForNoConnections(pid, 6379);
    },
  });
  const snapshot = loaded!;
  t.is(snapshot.digest.keys, 1004, 'the data is loaded');
  t.true(
    Object.keys(snapshot.files).some((file) => file.endsWith('.manifest')),
    'in a multi-part AOF',
  );

  const resets: number[] = [];
  const answers: number[] = [];
  for (let round = 1; round <= rounds; round++) {
    const client = await connectRedis(hostPort);
    let dirty: RedisDigest;
    try {
      const key = (n: number) => `key:${String(n % 1000).padStart(4, '0')}`;
      await Promise.all([
        ...Array.from({ length: 5 }, (_, j) => client.set(`extra:${round}:${j}`, `written in round ${round}`)),
        client.del([key(round * 7), key(round * 13 + 1), key(round * 31 + 2)]),
        client.set(key(round * 17 + 3), `changed in round ${round}`),
        client.hSet('profile:1', 'visits', String(1000 + round)),
        client.lPush('queue', `round${round}`),
        client.sRem('tags', `tag${round % 30}`),
        client.zIncrBy('scores', 1, `player${round % 30}`),
      ]);
      if (round % 10 === 0) await client.flushDb();
      // Every write was fsynced to the AOF (appendfsync always); the rewrite makes a new base
      // file and manifest as well.
      const persistence = await rewriteAof(client);
      dirty = await redisTcpDigest(client);
      const clientInfo = await client.clientInfo();
      const changed =
        t.not(dirty.sha1, snapshot.digest.sha1, `round ${round}: the writes changed the data`) &&
        t.is(persistence.aof_last_bgrewrite_status, 'ok', `round ${round}: the AOF was rewritten`) &&
        t.notDeepEqual(await describeTree(`/proc/${await app.pid()}/root`, ['data']), snapshot.files, `round ${round}: the AOF files changed`) &&
        t.is(clientInfo.laddr, '127.0.0.1:6379', `round ${round}: the client came through the published port`);
      if (!changed) break;
    } finally {
      // A connection that broke is closed already; its error is the one to report.
      if (client.isOpen) await client.close();
    }

    const started = performance.now();
    await app.reset();
    resets.push(performance.now() - started);

    const after = await connectRedis(hostPort);
    try {
      await after.ping();
      answers.push(performance.now() - started);
      const pid = await app.pid();
      const ok =
        t.deepEqual(await redisTcpDigest(after), snapshot.digest, `round ${round}: exactly the snapshot's data`) &&
        t.is((await redisInfo(after, 'server')).run_id, snapshot.runId, `round ${round}: the same server, restored, not restarted`) &&
        t.deepEqual(await describeTree(`/proc/${pid}/root`, ['data']), snapshot.files, `round ${round}: the snapshot's AOF files`);
      if (!ok) break;
    } finally {
      if (after.isOpen) await after.close();
    }
  }
  t.is(resets.length, rounds);
  t.log(timings(`reset of Redis (${snapshot.digest.keys} keys, AOF)`, resets));
  t.log(timings('reset to the first answer over the published port', answers));
});
