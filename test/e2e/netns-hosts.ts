/**
 * Two "hosts" for migration tests on one machine: each host is a named network namespace, the two
 * joined by a veth pair on a /30 of their own, so that a dump on host a can talk to a page server
 * or lazy-pages daemon on host b over a link the test can cut and heal.
 *
 * Hosts are entered with `nsenter --net=/run/netns/NAME`, never `ip netns exec`: the latter also
 * remounts /sys for the namespace, which hides the cgroup mounts runc needs.
 *
 * `cut()` sets both ends of the veth down. An established TCP connection then stalls without a
 * reset (retransmissions fail to find a route and TCP keeps retrying), new connections fail at
 * once with ENETUNREACH, and after `heal()` a stalled connection resumes within about a second:
 * failed local retransmissions are retried on a short timer, not the exponential backoff a
 * silently dropped packet gets. `cut({ drop: true })` instead drops every packet arriving on
 * either end (iptables INPUT DROP): a faithful partition, where new connections hang in SYN-SENT,
 * but a connection resumes only at its next backed-off retransmission, up to two minutes after
 * `heal()`.
 *
 * Only network namespaces are created: the hosts share one kernel, one pid space and one file
 * system, so processes restored on host b must not take pids still in use on host a (put them in a
 * pid namespace of their own, as runc containers are).
 */
import { spawn as spawnChild, type ChildProcess, type StdioOptions } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readlinkSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import type { ExecutionContext } from 'ava';
import { execa } from 'execa';

export interface ExecOptions {
  /** Added to the inherited environment. */
  readonly env?: Record<string, string>;
  /** Written to the command's stdin (otherwise stdin is /dev/null). */
  readonly input?: string;
  /** Throw when the command fails (execa's error, with stderr); default true. */
  readonly reject?: boolean;
  /** Kill the command after this long; default 60 s. */
  readonly timeoutMs?: number;
}

export interface ExecResult {
  /** -1 when the command was killed by a signal or the timeout. */
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface SpawnOptions {
  /** Added to the inherited environment. */
  readonly env?: Record<string, string>;
  /** Default: stdin ignored, stdout and stderr piped. */
  readonly stdio?: StdioOptions;
  readonly cwd?: string;
}

export interface Host {
  /** The network namespace's name, as `ip netns list` shows it. */
  readonly name: string;
  /** The namespace's bind mount, /run/netns/NAME, for nsenter --net=. */
  readonly netns: string;
  /** This host's IPv4 address on the veth link. */
  readonly address: string;
  /** This host's end of the veth pair. */
  readonly device: string;
  /** Runs argv inside this host's network namespace and waits for it. */
  exec(argv: readonly string[], options?: ExecOptions): Promise<ExecResult>;
  /**
   * Starts argv inside this host's network namespace, in a process group of its own. Teardown
   * kills the group, and every process still inside the namespace.
   */
  spawn(argv: readonly string[], options?: SpawnOptions): ChildProcess;
}

export interface CutOptions {
  /** Drop every arriving packet (iptables) instead of setting the link down: see the file header. */
  readonly drop?: boolean;
}

export interface TwoHosts {
  readonly a: Host;
  readonly b: Host;
  /** Makes the link between a and b lose everything at once; established connections stall. */
  cut(options?: CutOptions): Promise<void>;
  /** Undoes cut(). */
  heal(): Promise<void>;
}

/** Every namespace this helper makes is named nh-<slug>-<pid>-<n><a|b>. */
const prefix = 'nh';
const ownName = /^nh-[a-z0-9-]*?-(\d+)-\d+[ab]$/;

let calls = 0;
const subnetsInUse = new Set<string>();

/** A short, name-safe form of a test's name, for `ip netns list` readers. */
function slug(name: string): string {
  return (
    name
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 16)
      .replace(/-+$/, '') || 'hosts'
  );
}

/**
 * A /30 in 10.64.0.0/10 and a tag for interface names, both from a hash of the test's name, this
 * worker's pid and a per-process count, so test files running side by side do not share them.
 * (The namespaces would keep equal addresses apart anyway; distinct ones keep logs unambiguous.)
 */
function allocate(name: string, n: number): { subnet: string; tag: string; a: string; b: string } {
  for (let attempt = 0; ; attempt++) {
    const hash = createHash('sha256').update(`${name}\0${process.pid}\0${n}\0${attempt}`).digest();
    const second = 64 + (hash[0]! & 0x3f);
    const third = hash[1]!;
    const fourth = hash[2]! & 0xfc;
    const subnet = `10.${second}.${third}.${fourth}`;
    if (subnetsInUse.has(subnet)) continue;
    subnetsInUse.add(subnet);
    return {
      subnet,
      tag: hash.subarray(3, 7).toString('hex'),
      a: `10.${second}.${third}.${fourth + 1}`,
      b: `10.${second}.${third}.${fourth + 2}`,
    };
  }
}

async function ip(args: readonly string[]): Promise<void> {
  await execa('ip', args, { stdin: 'ignore', timeout: 30_000 });
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes namespaces this helper made in workers that have since died without their teardown (a
 * killed test run). Their names carry the worker's pid.
 */
async function removeOrphans(): Promise<void> {
  const names = await readdir('/run/netns').catch(() => [] as string[]);
  for (const name of names) {
    const match = ownName.exec(name);
    if (match && !isRunning(Number(match[1]))) await ip(['netns', 'del', name]).catch(() => undefined);
  }
}

/**
 * SIGKILLs every process whose network namespace is the one mounted at netns. Each is checked
 * and killed in one synchronous step, which narrows to next to nothing the window in which a pid
 * found in the walk could become another process's (a test worker's, say) once its own died.
 */
async function killProcessesIn(netns: string): Promise<void> {
  const { ino } = await stat(netns);
  const wanted = `net:[${ino}]`;
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readlinkSync(`/proc/${entry}/ns/net`) === wanted) process.kill(Number(entry), 'SIGKILL');
    } catch {
      // Gone meanwhile.
    }
  }
}

function makeHost(name: string, address: string, device: string, children: ChildProcess[]): Host {
  const netns = `/run/netns/${name}`;
  return {
    name,
    netns,
    address,
    device,
    async exec(argv, options = {}) {
      const result = await execa('nsenter', [`--net=${netns}`, '--', ...argv], {
        reject: options.reject ?? true,
        timeout: options.timeoutMs ?? 60_000,
        env: options.env ?? {},
        ...(options.input !== undefined ? { input: options.input } : { stdin: 'ignore' as const }),
      });
      return { exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr) };
    },
    spawn(argv, options = {}) {
      const child = spawnChild('nsenter', [`--net=${netns}`, '--', ...argv], {
        stdio: options.stdio ?? ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, ...options.env },
        ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
        // A group of its own, so that teardown also reaches what the command forks.
        detached: true,
      });
      // A spawn failure must not become an unhandled 'error' that kills the worker.
      child.on('error', () => undefined);
      children.push(child);
      return child;
    },
  };
}

/**
 * Two hosts, a (.1) and b (.2), joined by a veth pair; removed, with everything running in them,
 * when the test ends, passed or failed.
 */
/** What twoHosts needs of its caller: somewhere to register the teardown (an ava test, or the benchmark's cleanup). */
export type Teardown = Pick<ExecutionContext, 'teardown' | 'log'>;

export async function twoHosts(t: Teardown, name: string): Promise<TwoHosts> {
  await removeOrphans();
  const n = calls++;
  const { subnet, tag, a: addressA, b: addressB } = allocate(name, n);
  const base = `${prefix}-${slug(name)}-${process.pid}-${n}`;
  const nameA = `${base}a`;
  const nameB = `${base}b`;
  // "v" + 8 hex + end letter: well inside the kernel's 15-character limit.
  const deviceA = `v${tag}a`;
  const deviceB = `v${tag}b`;
  const children: ChildProcess[] = [];
  let dropping = false;

  // Registered before anything exists, so that a failure half way still cleans up.
  t.teardown(async () => {
    for (const child of children) {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
    }
    for (const host of [nameA, nameB]) {
      // Daemons (criu restore -d, lazy-pages) leave the spawned group but not the namespace, and
      // would keep it alive after its mount is gone.
      await killProcessesIn(`/run/netns/${host}`).catch(() => undefined);
      await ip(['netns', 'del', host]).catch((error: unknown) => {
        if (!String(error).includes('No such file')) t.log(`removing network namespace ${host}: ${String(error)}`);
      });
    }
    subnetsInUse.delete(subnet);
  });

  await ip(['netns', 'add', nameA]);
  await ip(['netns', 'add', nameB]);
  // Made inside the namespaces directly: the names never exist in the root namespace, where
  // another test's devices could clash with them.
  await ip(['link', 'add', deviceA, 'netns', nameA, 'type', 'veth', 'peer', 'name', deviceB, 'netns', nameB]);

  const a = makeHost(nameA, addressA, deviceA, children);
  const b = makeHost(nameB, addressB, deviceB, children);
  for (const host of [a, b]) {
    await host.exec(['ip', 'link', 'set', 'lo', 'up']);
    await host.exec(['ip', 'addr', 'add', `${host.address}/30`, 'dev', host.device]);
    await host.exec(['ip', 'link', 'set', host.device, 'up']);
  }

  return {
    a,
    b,
    async cut(options = {}) {
      if (options.drop) {
        dropping = true;
        for (const host of [a, b]) await host.exec(['iptables', '-w', '-I', 'INPUT', '-i', host.device, '-j', 'DROP']);
      } else {
        for (const host of [a, b]) await host.exec(['ip', 'link', 'set', host.device, 'down']);
      }
    },
    async heal() {
      if (dropping) {
        dropping = false;
        for (const host of [a, b]) await host.exec(['iptables', '-w', '-D', 'INPUT', '-i', host.device, '-j', 'DROP'], { reject: false });
      }
      // Bringing the link up also puts back the /30's route, which going down removed.
      for (const host of [a, b]) await host.exec(['ip', 'link', 'set', host.device, 'up']);
    },
  };
}
