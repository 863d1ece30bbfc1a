/**
 * CRIU's nftables network lock, lifted by hand where CRIU leaves it. While it dumps a tree with a
 * network namespace of its own, CRIU adds a table `inet CRIU-<run id>` there that drops every
 * packet but its own (netfilter.c), and removes it when the dump ends, except on one path: a
 * lazy (post-copy) dump whose page serving fails after the post-dump notification resumes the
 * tree with the table still in place (cr_dump_finish unlocks before serving), and a CRIU killed
 * mid-dump never removes it. Either leaves a running container cut off from everything, its own
 * loopback included.
 */
import { existsSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * nftables' own nft, from the system's directories: a PATH that begins with a Node project's
 * node_modules/.bin may name another `nft` (@vercel/nft, a file tracer).
 */
function nftBinary(): string {
  return ['/usr/sbin/nft', '/sbin/nft', '/usr/bin/nft'].find((candidate) => existsSync(candidate)) ?? 'nft';
}

/** The names of CRIU's lock tables, as `nft list tables` prints them. */
const LOCK_TABLE = /^table inet (CRIU-[A-Za-z0-9_-]+)$/;

/**
 * Removes CRIU's lock tables from the network namespace of pid (a container's init with a network
 * namespace of its own: the caller checks, the host's tables are not this one's to touch);
 * returns the tables removed. Needs `nft` (Debian's nftables).
 */
export async function liftNetworkLocks(pid: number): Promise<string[]> {
  const binary = nftBinary();
  const nft = (args: readonly string[]) => run('nsenter', ['-t', String(pid), '-n', '--', binary, ...args], { encoding: 'utf8' });
  const { stdout } = await nft(['list', 'tables']);
  const tables = stdout
    .split('\n')
    .map((line) => LOCK_TABLE.exec(line.trim())?.[1])
    .filter((name): name is string => name !== undefined);
  for (const table of tables) await nft(['delete', 'table', 'inet', table]);
  return tables;
}
