/**
 * CriuService: the one way the runtime reaches CRIU (an injection token). It finds the binary,
 * checks its version through the RPC VERSION request and its features through FEATURE_CHECK
 * before an option needs one, and runs DUMP, PRE_DUMP and RESTORE requests over `criu swrk`.
 */
import { execFile } from 'node:child_process';
import { constants, openSync, closeSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { locateCriu } from './binary.js';
import { CriuFeatureMissingError, CriuRequestError, CriuTooOldError, CriuUnusableError } from './errors.js';
import { criuLogTail } from './log.js';
import { ReqType, reqTypeNames, type CgroupRoot, type CriuFeatures, type CriuOpts, type CriuResp, type InheritFd } from './rpc/messages.js';
import type { DirectorylessOpts, NetworkLockName } from './options.js';
import { SwrkConnectionClosedError, SwrkSession, type NotifyHandler, type StdioTarget } from './rpc/swrk.js';
import { formatVersion, isAtLeast, parseVersion, type CriuVersion } from './version.js';
import { RuntimeError } from '../system/errors.js';
import { LazyPagesDaemon, type RemotePages } from './lazy-pages.js';
import { prepareKerndatCache } from './kerndat-cache.js';
import { trackChild } from '../system/spawned.js';

export interface CriuSettings {
  /** The criu binary as configured (a path or a name), or empty for PATH. */
  readonly binary: string;
  /** The oldest version accepted, "major.minor[.sublevel]". */
  readonly minimumVersion: string;
}

export type FeatureName = 'mem_track' | 'lazy_pages';

export interface CriuDumpRequest {
  /** criu_opts; the service opens the directories and fills in their fds. */
  readonly opts: DirectorylessOpts;
  readonly imagePath: string;
  readonly workPath?: string;
  readonly preDump?: boolean;
  readonly onNotify?: NotifyHandler;
  /** Told CRIU's pid once it runs, before the request is sent (CRIU outlives a caller that dies). */
  readonly onStarted?: (criuPid: number) => Promise<void>;
}

/** A page server that takes the pages of a dump into imagePath (the destination of a migration). */
export interface CriuPageServerRequest {
  readonly imagePath: string;
  readonly workPath?: string;
  /** ps (address, port: 0 for one the kernel picks), TLS, log. */
  readonly opts: DirectorylessOpts;
}

export interface PageServer {
  /** Its pid, when CRIU says it (0 when not: it ends by itself once the dump hung up). */
  readonly pid: number;
  readonly port: number;
}

export interface CriuRestoreRequest {
  readonly opts: DirectorylessOpts;
  readonly imagePath: string;
  readonly workPath?: string;
  /** CRIU's fds 0-2, which the restored tree inherits through inherit_fd. */
  readonly stdio: readonly [StdioTarget, StdioTarget, StdioTarget];
  /** Files CRIU inherits by key (inherit_fd), e.g. a namespace joined by path: "extRootNetNS". */
  readonly inheritFiles?: readonly { readonly key: string; readonly path: string }[];
  /**
   * Called once CRIU runs, before RESTORE is sent: the runtime puts CRIU into the container's
   * cgroups here (as runc does) and answers with the cgroup roots to restore into.
   */
  readonly prepare?: (criuPid: number) => Promise<readonly CgroupRoot[]>;
  readonly onNotify?: NotifyHandler;
}

export interface CriuService {
  /** The resolved path of the criu binary. */
  binary(): Promise<string>;
  /** CRIU's version, read once through the RPC VERSION request. */
  version(): Promise<CriuVersion>;
  /** The version, after checking it against the minimum; throws CriuTooOldError below it. */
  requireVersion(): Promise<CriuVersion>;
  features(): Promise<CriuFeatures>;
  /** Throws CriuFeatureMissingError naming the feature and what needed it. */
  requireFeature(feature: FeatureName, neededFor: string): Promise<void>;
  /** The network lock a dump uses when none is asked for: nftables when this CRIU has it, else iptables. */
  preferredNetworkLock(): Promise<NetworkLockName>;
  dump(job: CriuDumpRequest): Promise<void>;
  /** Restores and returns the pid of the restored tree's root. */
  restore(job: CriuRestoreRequest): Promise<number>;
  /** Starts a page server (it serves one dump's connection, then exits); its pid and port. */
  startPageServer(job: CriuPageServerRequest): Promise<PageServer>;
  /** Writes this host's CPU description (cpuinfo.img) into imagePath (CPUINFO_DUMP). */
  cpuinfoDump(imagePath: string): Promise<void>;
  /** Checks that tasks dumped where imagePath's cpuinfo.img was written can run here (CPUINFO_CHECK). */
  cpuinfoCheck(imagePath: string): Promise<void>;
  /**
   * Starts CRIU's lazy-pages daemon serving imagePath's pages (userfaultfd) for a restore with
   * lazy_pages and the same work directory; resolves once it listens. It copies pages on demand
   * only where this CRIU can (lazyPagesOnDemand), else in the background too.
   */
  startLazyPages(imagePath: string, workPath: string, remote?: RemotePages): Promise<LazyPages>;
  /** Whether this CRIU's lazy-pages daemon takes --no-lazy-pages-background (the project's patch). */
  lazyPagesOnDemand(): Promise<boolean>;
}

/** A running lazy-pages daemon. */
export interface LazyPages {
  /** Copies pages only when a task faults on them; else also in the background, then exits. */
  readonly onDemand: boolean;
  /** Stops the daemon if it still runs. */
  stop(): Promise<void>;
  /**
   * Holds a background copy still (SIGSTOP) until resumed; nothing for a daemon on demand. Only for
   * a tree that is itself stopped, which asks for no page.
   */
  pause(): void;
  resume(): void;
  /**
   * Calls back if the daemon ends by itself with an error before stop(): the tree's memory that
   * was not filled in yet is gone (its next fault there kills the task).
   */
  onFailure(callback: (detail: string) => void): void;
}

/** What a request asks of CRIU's features; the one place each option's feature is checked. */
export interface FeatureNeeds {
  readonly preDump?: boolean;
  readonly parentPath?: string;
  readonly lazyPages?: boolean;
}

/** Checks, before anything is stopped, that CRIU and the kernel offer what the options need. */
export async function requireFeaturesFor(criu: CriuService, needs: FeatureNeeds): Promise<void> {
  if (needs.preDump || needs.parentPath) await criu.requireFeature('mem_track', needs.preDump ? '--pre-dump' : '--parent-path');
  if (needs.lazyPages) await criu.requireFeature('lazy_pages', '--lazy-pages');
}

export const CRIU_SERVICE = Symbol('CriuService');

const benign = /Can't setup RLIMIT_NOFILE/;

const featureWhy: Readonly<Record<FeatureName, string>> = {
  mem_track:
    'memory change tracking needs soft-dirty bits (CONFIG_MEM_SOFT_DIRTY), which this kernel does not offer; take a full dump instead of --pre-dump/--parent-path',
  lazy_pages: 'lazy pages need userfaultfd (CONFIG_USERFAULTFD) with non-cooperative events; restore without --lazy-pages',
};

export class SwrkCriuService implements CriuService {
  private binaryPath?: Promise<string>;
  private cachedVersion?: Promise<CriuVersion>;
  private cachedFeatures?: Promise<CriuFeatures>;
  private cachedNetworkLock?: Promise<NetworkLockName>;
  private cachedOnDemand?: Promise<boolean>;

  constructor(private readonly settings: CriuSettings) {}

  binary(): Promise<string> {
    // Every CRIU is started after this: the first makes sure CRIU can keep its kernel probe.
    this.binaryPath ??= locateCriu(this.settings.binary || undefined).then((binary) => {
      if (process.getuid?.() === 0) prepareKerndatCache();
      return binary;
    });
    return this.binaryPath;
  }

  version(): Promise<CriuVersion> {
    this.cachedVersion ??= this.askVersion();
    this.cachedVersion.catch(() => (this.cachedVersion = undefined));
    return this.cachedVersion;
  }

  async requireVersion(): Promise<CriuVersion> {
    const version = await this.version();
    const minimum = parseVersion(this.settings.minimumVersion);
    if (!isAtLeast(version, minimum)) throw new CriuTooOldError(await this.binary(), formatVersion(version), formatVersion(minimum));
    return version;
  }

  features(): Promise<CriuFeatures> {
    this.cachedFeatures ??= this.askFeatures();
    this.cachedFeatures.catch(() => (this.cachedFeatures = undefined));
    return this.cachedFeatures;
  }

  async requireFeature(feature: FeatureName, neededFor: string): Promise<void> {
    const features = await this.features();
    if (features[feature] !== true) throw new CriuFeatureMissingError(feature, neededFor, featureWhy[feature]);
  }

  preferredNetworkLock(): Promise<NetworkLockName> {
    // The RPC's FEATURE_CHECK does not cover it: `criu check --feature nftables` exits 0 when
    // CRIU was built with libnftables and the kernel has nf_tables.
    this.cachedNetworkLock ??= this.binary().then(
      (binary) =>
        new Promise((resolve) => {
          trackChild(execFile(binary, ['check', '--feature', 'nftables'], (error) => resolve(error ? 'iptables' : 'nftables')));
        }),
    );
    return this.cachedNetworkLock;
  }

  async dump(job: CriuDumpRequest): Promise<void> {
    const type = job.preDump ? ReqType.PRE_DUMP : ReqType.DUMP;
    await this.runJob(job, type, ['ignore', 'ignore', 'pipe'], async (session, _inherited, directoryFds) => {
      await job.onStarted?.(session.pid);
      const response = await session.call({ type, opts: { ...job.opts, ...directoryFds } }, job.onNotify);
      if (!response.success) throw await this.failure(response, job, session);
    });
  }

  async startLazyPages(imagePath: string, workPath: string, remote?: RemotePages): Promise<LazyPages> {
    // Pages served from another host are all copied (in the background), so that the source,
    // which serves them until the last one has moved, can end.
    return LazyPagesDaemon.start(await this.binary(), imagePath, workPath, {
      onDemand: remote ? false : await this.lazyPagesOnDemand(),
      ...(remote ? { remote } : {}),
    });
  }

  lazyPagesOnDemand(): Promise<boolean> {
    // An option CRIU does not know fails its argument parsing before --version is acted on.
    this.cachedOnDemand ??= this.binary().then(
      (binary) =>
        new Promise((resolve) => {
          trackChild(execFile(binary, ['--no-lazy-pages-background', '--version'], (error) => resolve(!error)));
        }),
    );
    return this.cachedOnDemand;
  }

  async restore(job: CriuRestoreRequest): Promise<number> {
    let pid = 0;
    await this.runJob(job, ReqType.RESTORE, job.stdio, async (session, inherited, directoryFds) => {
      const cgroupRoots = job.prepare ? await job.prepare(session.pid) : [];
      const opts: CriuOpts = { ...job.opts, ...directoryFds, inherit_fd: [...(job.opts.inherit_fd ?? []), ...inherited] };
      if (cgroupRoots.length > 0) opts.cg_root = [...cgroupRoots];
      const response = await session.call({ type: ReqType.RESTORE, opts }, job.onNotify);
      if (!response.success || !response.restore) throw await this.failure(response, job, session);
      pid = response.restore.pid;
    });
    return pid;
  }

  async startPageServer(job: CriuPageServerRequest): Promise<PageServer> {
    let server: PageServer | undefined;
    await this.runJob(job, ReqType.PAGE_SERVER, ['ignore', 'ignore', 'pipe'], async (session, _inherited, directoryFds) => {
      const response = await session.call({ type: ReqType.PAGE_SERVER, opts: { ...job.opts, ...directoryFds } });
      if (!response.success || !response.ps?.port) throw await this.failure(response, job, session);
      // CRIU 4.2 answers pid 0 for its daemon (cr_page_server returns 0 in the parent).
      server = { pid: response.ps.pid ?? 0, port: response.ps.port };
    });
    return server!;
  }

  async cpuinfoDump(imagePath: string): Promise<void> {
    await this.cpuinfoRequest(ReqType.CPUINFO_DUMP, imagePath);
  }

  async cpuinfoCheck(imagePath: string): Promise<void> {
    await this.cpuinfoRequest(ReqType.CPUINFO_CHECK, imagePath);
  }

  private async cpuinfoRequest(type: ReqType, imagePath: string): Promise<void> {
    const job = { imagePath, opts: { log_level: 4, log_file: type === ReqType.CPUINFO_DUMP ? 'cpuinfo-dump.log' : 'cpuinfo-check.log' } };
    await this.runJob(job, type, ['ignore', 'ignore', 'pipe'], async (session, _inherited, directoryFds) => {
      const response = await session.call({ type, opts: { ...job.opts, ...directoryFds } });
      if (!response.success) throw await this.failure(response, job, session);
    });
  }

  private async runJob(
    job: CriuDumpRequest | CriuRestoreRequest | CriuPageServerRequest,
    type: ReqType,
    stdio: readonly [StdioTarget, StdioTarget, StdioTarget],
    body: (session: SwrkSession, inherited: InheritFd[], directoryFds: { images_dir_fd: number; work_dir_fd?: number }) => Promise<void>,
  ): Promise<void> {
    const binary = await this.binary();
    if (job.workPath) mkdirSync(job.workPath, { recursive: true, mode: 0o700 });
    const ownFds: number[] = [];
    const handedFds: number[] = [];
    const inherited: InheritFd[] = [];
    let session: SwrkSession | undefined;
    try {
      // The directories stay ours: CRIU opens them through /proc/<our pid>/fd/N.
      const imagesFd = openSync(job.imagePath, constants.O_RDONLY | constants.O_DIRECTORY);
      ownFds.push(imagesFd);
      const directoryFds: { images_dir_fd: number; work_dir_fd?: number } = { images_dir_fd: imagesFd };
      if (job.workPath) {
        directoryFds.work_dir_fd = openSync(job.workPath, constants.O_RDONLY | constants.O_DIRECTORY);
        ownFds.push(directoryFds.work_dir_fd);
      }
      // inherit_fd names CRIU's own fds: these are handed to it as fds 4, 5, ... in order.
      for (const file of 'inheritFiles' in job ? (job.inheritFiles ?? []) : []) {
        inherited.push({ key: file.key, fd: 4 + handedFds.length });
        handedFds.push(openSync(file.path, constants.O_RDONLY));
      }
      session = await SwrkSession.start({ binary, stdio, extraFds: handedFds });
      await body(session, inherited, directoryFds);
    } catch (error) {
      if (error instanceof SwrkConnectionClosedError) {
        throw await this.failure({ type, success: false }, job, session, error);
      }
      throw error;
    } finally {
      for (const fd of [...ownFds, ...handedFds]) closeSync(fd);
      await session?.close();
    }
  }

  private async failure(
    response: CriuResp,
    job: CriuDumpRequest | CriuRestoreRequest | CriuPageServerRequest,
    session?: SwrkSession,
    cause?: unknown,
  ): Promise<RuntimeError> {
    const logPath = path.join(job.workPath ?? job.imagePath, job.opts.log_file ?? '');
    const logTail = await criuLogTail(logPath);
    const stderr = session?.stderr.trim();
    // CRIU's own message is its first error; a harmless one (it cannot raise its own file limit
    // inside a container) is passed over for the last real one.
    const first = response.cr_errmsg && !benign.test(response.cr_errmsg) ? response.cr_errmsg : undefined;
    const lastReal = [...logTail].reverse().find((line) => !benign.test(line) && !/Restoring FAILED|cgroupd: recv req error/.test(line));
    return new CriuRequestError(
      {
        request: reqTypeNames[response.type] ?? String(response.type),
        errno: response.cr_errno,
        criuMessage:
          first ??
          lastReal?.replace(/^\(\d+\.\d+\)\s*/, '') ??
          response.cr_errmsg ??
          (cause instanceof Error ? cause.message : undefined) ??
          (stderr || undefined),
        logPath,
        logTail,
      },
      cause === undefined ? {} : { cause },
    );
  }

  private async askVersion(): Promise<CriuVersion> {
    const binary = await this.binary();
    const response = await this.simpleRequest(binary, { type: ReqType.VERSION });
    const message = response.version;
    if (!response.success || !message) throw new CriuUnusableError(binary, 'it did not answer the RPC VERSION request (CRIU before 3.0?)');
    return {
      major: message.major_number,
      minor: message.minor_number,
      sublevel: message.sublevel ?? 0,
      gitId: message.gitid || undefined,
    };
  }

  private async askFeatures(): Promise<CriuFeatures> {
    const binary = await this.binary();
    const response = await this.simpleRequest(binary, {
      type: ReqType.FEATURE_CHECK,
      features: { mem_track: true, lazy_pages: true },
    });
    if (!response.success || !response.features) throw new CriuUnusableError(binary, 'it did not answer the RPC FEATURE_CHECK request');
    return response.features;
  }

  private async simpleRequest(binary: string, request: Parameters<SwrkSession['call']>[0]): Promise<CriuResp> {
    let session: SwrkSession;
    try {
      session = await SwrkSession.start({ binary });
    } catch (cause) {
      throw new CriuUnusableError(binary, `it could not be started (${(cause as Error).message})`, { cause });
    }
    try {
      return await session.call(request);
    } catch (cause) {
      throw new CriuUnusableError(binary, `\`criu swrk\` failed: ${(cause as Error).message}`, { cause });
    } finally {
      await session.close();
    }
  }
}
