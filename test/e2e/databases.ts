/**
 * Helpers for the database tests: PostgreSQL and Redis containers made of the host's Debian
 * packages (a busybox rootfs with the host's /usr and libraries bind-mounted read-only), reached
 * from the host over TCP through a published port by npm clients that speak the protocols (pg,
 * redis), and exact digests of what each server holds.
 */
import { existsSync } from 'node:fs';
import { appendFile, chmod, chown, copyFile, mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import pg from 'pg';
import { createClient } from 'redis';
import { repoRoot, waitFor, type Sandbox } from './helpers.js';
import { bindHostPackages, digestScript, type RedisDigest } from './reset-helpers.js';

const fixtures = path.join(repoRoot, 'test/fixtures/databases');
export const postgresBin = '/usr/lib/postgresql/15/bin';
const redisServer = '/usr/bin/redis-server';

/** Why the database tests cannot run here, or undefined. */
export function databasesMissing(): string | undefined {
  for (const file of [`${postgresBin}/postgres`, `${postgresBin}/initdb`]) {
    if (!existsSync(file)) return `${file} is not installed (scripts/install-system-deps.sh installs postgresql-15)`;
  }
  if (!existsSync(redisServer)) return `${redisServer} is not installed (apt-get install redis-server)`;
  return undefined;
}

/**
 * A container id unique to this sandbox. A container's cgroups are /runtime/<id> on the host,
 * whatever its state root: two test runs on one host (two worktrees, say) that both name a
 * container "redis" share its cgroups, and one's delete or CRIU run lands in the other's.
 */
export function containerId(box: Sandbox, name: string): string {
  return `${name}-${path.basename(box.dir).replace(/^runtime-e2e-/, '')}`;
}

export { freePort } from '../helpers/net.js';

/**
 * The PostgreSQL container's user namespace: its ids 0..65535 are the host's 100000..165535.
 * Root on these machines lacks CAP_SYS_RESOURCE, so CRIU cannot dump a process of another uid in
 * the initial user namespace ("Can't get rlimit 0: Operation not permitted"); in a user namespace
 * that root owns, it can.
 */
export const userNamespace = { hostId: 100_000, size: 65_536 } as const;
/** The postgres user and group inside the container (on the host: hostId + 999). */
export const postgresIds = { uid: 999, gid: 999 } as const;
export const postgresPassword = 'pristine-secret';
/** The database's directory in the container, made by the entrypoint's initdb on the first start. */
export const postgresData = '/var/lib/postgresql/data';

/**
 * A bundle whose init is test/fixtures/databases/postgres-entrypoint.sh as the postgres user in a
 * user namespace: initdb on the first start, then the host's postgres on 127.0.0.1:5432 in the
 * container's network namespace, password (SCRAM) authentication over TCP.
 */
export async function postgresBundle(box: Sandbox, name: string): Promise<string> {
  // runc mounts the rootfs from inside the user namespace, whose root is not the host's: each
  // directory above the rootfs must be searchable by others (the sandbox's is 0700).
  await chmod(box.dir, 0o711);
  const bundle = await box.bundle(name, ['/bin/postgres-entrypoint'], (spec) => {
    bindHostPackages(spec);
    spec.linux.namespaces.push({ type: 'user' });
    const mapping = [{ containerID: 0, hostID: userNamespace.hostId, size: userNamespace.size }];
    spec.linux.uidMappings = mapping;
    spec.linux.gidMappings = mapping;
    spec.process.user = { uid: postgresIds.uid, gid: postgresIds.gid };
    spec.process.env.push(`POSTGRES_PASSWORD=${postgresPassword}`);
  });
  const rootfs = path.join(bundle, 'rootfs');
  await copyFile(path.join(fixtures, 'postgres-entrypoint.sh'), path.join(rootfs, 'bin/postgres-entrypoint'));
  await chmod(path.join(rootfs, 'bin/postgres-entrypoint'), 0o755);
  await appendFile(
    path.join(rootfs, 'etc/passwd'),
    `postgres:x:${postgresIds.uid}:${postgresIds.gid}:PostgreSQL administrator:/var/lib/postgresql:/bin/sh\n`,
  );
  await appendFile(path.join(rootfs, 'etc/group'), `postgres:x:${postgresIds.gid}:\n`);
  await mkdir(path.join(rootfs, 'var/lib/postgresql'), { recursive: true });
  await chmod(path.join(rootfs, 'tmp'), 0o1777);
  // The rootfs belongs to the namespace's root, the database's directory to its postgres user.
  await execa('chown', ['-R', '-h', `${userNamespace.hostId}:${userNamespace.hostId}`, rootfs]);
  await chown(path.join(rootfs, 'var/lib/postgresql'), userNamespace.hostId + postgresIds.uid, userNamespace.hostId + postgresIds.gid);
  await chmod(path.join(rootfs, 'var/lib/postgresql'), 0o700);
  return bundle;
}

/** The schema and fixtures (test/fixtures/databases/schema.sql). */
export function postgresSchema(): Promise<string> {
  return readFile(path.join(fixtures, 'schema.sql'), 'utf8');
}

/** A pg client connected over TCP to the host port, as the postgres role with its password. */
export async function connectPostgres(port: number, database = 'postgres'): Promise<pg.Client> {
  const client = new pg.Client({
    host: '127.0.0.1',
    port,
    user: 'postgres',
    password: postgresPassword,
    database,
    connectionTimeoutMillis: 5000,
  });
  // A connection the server or the forwarder closes is reported here as well as to the query.
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

/** Connects once the server accepts connections (the first start runs initdb). */
export function waitForPostgres(port: number): Promise<pg.Client> {
  return waitFor(`postgres to accept connections on 127.0.0.1:${port}`, () => connectPostgres(port), 60_000);
}

export interface PostgresDigest {
  /** Per table of the public schema: its rows and the md5 of its rows in id order. */
  readonly tables: Record<string, { readonly rows: number; readonly md5: string }>;
  /** table.column type nullability default, in column order. */
  readonly columns: readonly string[];
  readonly indexes: readonly string[];
  readonly constraints: readonly string[];
  /** Each sequence's last value (serial ids): an INSERT moves them. */
  readonly sequences: Record<string, string | null>;
}

/** The contents and the schema of the public schema, exactly. */
export async function postgresDigest(client: pg.Client): Promise<PostgresDigest> {
  const tables: Record<string, { rows: number; md5: string }> = {};
  const names = await client.query<{ name: string }>(
    "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name",
  );
  for (const { name } of names.rows) {
    const table = client.escapeIdentifier(name);
    const { rows } = await client.query<{ rows: number; md5: string }>(
      `SELECT count(*)::integer AS rows, md5(coalesce(string_agg(t::text, ',' ORDER BY t.id), '')) AS md5 FROM ${table} AS t`,
    );
    tables[name] = rows[0]!;
  }
  const columns = await client.query<{ line: string }>(
    `SELECT concat_ws(' ', table_name || '.' || column_name, data_type, is_nullable, column_default) AS line
     FROM information_schema.columns WHERE table_schema = 'public' ORDER BY table_name, ordinal_position`,
  );
  const indexes = await client.query<{ line: string }>("SELECT indexdef AS line FROM pg_indexes WHERE schemaname = 'public' ORDER BY indexname");
  const constraints = await client.query<{ line: string }>(
    `SELECT conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid) AS line
     FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY conrelid::regclass::text, conname`,
  );
  const sequences = await client.query<{ name: string; last: string | null }>(
    "SELECT sequencename AS name, last_value::text AS last FROM pg_sequences WHERE schemaname = 'public' ORDER BY sequencename",
  );
  return {
    tables,
    columns: columns.rows.map((row) => row.line),
    indexes: indexes.rows.map((row) => row.line),
    constraints: constraints.rows.map((row) => row.line),
    sequences: Object.fromEntries(sequences.rows.map((row) => [row.name, row.last])),
  };
}

export interface PostgresServer {
  /** pg_postmaster_start_time(): a restarted server has a new one, a restored one keeps it. */
  readonly startedAt: string;
  /** The last checkpoint's WAL position, read from global/pg_control on disk. */
  readonly checkpointLsn: string;
  /** Where WAL is flushed up to (pg_current_wal_flush_lsn). */
  readonly flushLsn: string;
  /** The address and port the server sees this connection on, in the container. */
  readonly serverAddress: string;
  readonly serverPort: number;
}

export async function postgresServer(client: pg.Client): Promise<PostgresServer> {
  const { rows } = await client.query<PostgresServer>(
    `SELECT pg_postmaster_start_time()::text AS "startedAt", (pg_control_checkpoint()).checkpoint_lsn::text AS "checkpointLsn",
            pg_current_wal_flush_lsn()::text AS "flushLsn", host(inet_server_addr()) AS "serverAddress", inet_server_port() AS "serverPort"`,
  );
  return rows[0]!;
}

/** A WAL position ("16/B374D848") as a number, to compare two. */
export function lsn(text: string): bigint {
  const [high, low] = text.split('/');
  return (BigInt(`0x${high}`) << 32n) + BigInt(`0x${low}`);
}

/**
 * One round of changes: inserts (with the sequences they move), deletes, updates, a column added
 * and a table created, every tenth round a table truncated; then a CHECKPOINT (data files and
 * pg_control written and fsynced) and a WAL segment switch.
 */
export function postgresChanges(round: number): string {
  return `
    INSERT INTO customers (name, email, created_at)
      SELECT 'round ${round} customer ' || i, 'r${round}-' || i || '@example.com', now() FROM generate_series(1, 20) AS i;
    INSERT INTO orders (customer_id, product_id, quantity, note)
      SELECT id, 1 + id % 200, 2, 'round ${round}' FROM customers WHERE name LIKE 'round ${round} customer %';
    DELETE FROM orders WHERE id % 50 = ${round % 50};
    DELETE FROM customers WHERE id = ${1 + ((round * 37) % 1000)};
    UPDATE products SET price = price + 1, title = title || ' (round ${round})' WHERE id % 7 = ${round % 7};
    ALTER TABLE customers ADD COLUMN round_${round} integer NOT NULL DEFAULT ${round};
    CREATE TABLE scratch_${round} (id integer PRIMARY KEY, payload text NOT NULL);
    INSERT INTO scratch_${round} SELECT i, md5(i::text) FROM generate_series(1, 100) AS i;
    ${round % 10 === 0 ? 'TRUNCATE orders;' : ''}
    CHECKPOINT;
    SELECT pg_switch_wal();`;
}

/**
 * A bundle whose init is the host's redis-server as root, on 127.0.0.1:6379 in the container's
 * network namespace, with an append-only file in /data fsynced after every write.
 */
export async function redisTcpBundle(box: Sandbox, name: string): Promise<string> {
  const args = [redisServer, '--bind', '127.0.0.1', '--port', '6379', '--dir', '/data', '--appendonly', 'yes', '--appendfsync', 'always', '--save', ''];
  const bundle = await box.bundle(name, args, bindHostPackages);
  await mkdir(path.join(bundle, 'rootfs/data'));
  return bundle;
}

export type RedisClient = ReturnType<typeof createClient>;

/** A redis client connected over TCP to the host port; it does not reconnect by itself. */
export async function connectRedis(port: number): Promise<RedisClient> {
  const client = createClient({ socket: { host: '127.0.0.1', port, connectTimeout: 5000, reconnectStrategy: false } });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

export function waitForRedisTcp(port: number): Promise<RedisClient> {
  return waitFor(`redis to answer on 127.0.0.1:${port}`, async () => {
    const client = await connectRedis(port);
    if ((await client.ping()) === 'PONG') return client;
    client.destroy();
    return undefined;
  });
}

/** The whole dataset's digest (test/fixtures/reset/digest.lua), through EVAL. */
export async function redisTcpDigest(client: RedisClient): Promise<RedisDigest> {
  const [keys, sha1] = (await client.eval(await readFile(digestScript, 'utf8'), { keys: [], arguments: [] })) as [number, string];
  return { keys: Number(keys), sha1 };
}

/** An INFO section as fields. */
export async function redisInfo(client: RedisClient, section: string): Promise<Record<string, string>> {
  const text = await client.info(section);
  return Object.fromEntries(
    text
      .split('\r\n')
      .filter((line) => line.includes(':'))
      .map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1)]),
  );
}

/** Rewrites the append-only file (BGREWRITEAOF) and waits until the new one is in place. */
export async function rewriteAof(client: RedisClient): Promise<Record<string, string>> {
  await client.sendCommand(['BGREWRITEAOF']);
  return waitFor('the AOF rewrite to finish', async () => {
    const info = await redisInfo(client, 'persistence');
    return info.aof_rewrite_in_progress === '0' && info.aof_rewrite_scheduled === '0' ? info : undefined;
  });
}

/**
 * Waits until no process in the network namespace of pid holds a TCP socket to or from port
 * other than its listener: a connection a client closed can linger on the server's side for a
 * moment, and CRIU refuses to dump a connected socket without --tcp-established. Sockets no
 * process holds (inode 0: TIME_WAIT, orphans) are not dumped.
 */
export function waitForNoConnections(pid: number, port: number): Promise<true> {
  return waitFor(`the connections to port ${port} in the container to close`, async () => {
    const tables = await Promise.all(['tcp', 'tcp6'].map((name) => readFile(`/proc/${pid}/net/${name}`, 'utf8')));
    const held = tables
      .flatMap((table) => table.split('\n').slice(1))
      .map((line) => line.trim().split(/\s+/))
      .filter((fields) => fields.length > 9)
      .filter(([, local, remote, state, , , , , , inode]) => {
        const ports = [local, remote].map((address) => parseInt(address!.split(':')[1]!, 16));
        return ports.includes(port) && state !== '0A' && inode !== '0';
      });
    return held.length === 0 ? true : undefined;
  });
}

/** The value below which a fraction p of the values lie (nearest rank). */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!;
}
