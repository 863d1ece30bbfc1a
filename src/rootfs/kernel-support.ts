/**
 * What the running kernel offers the storage drivers, read from /proc, /sys and /dev. Everything
 * goes through KernelSupport so a test can point it at a fixture tree (ProcKernelSupport with
 * `root`) or replace it; the checks that refuse a mount take one.
 */
import { access, readFile } from 'node:fs/promises';
import path from 'node:path';
import koffi from 'koffi';
import { KernelSupportError } from './errors.js';
import { trackChild } from '../system/spawned.js';

/** execa is loaded only when a command is run: it is slow to load, and most runs need none. */
const loadExeca = async () => (await import('execa')).execa;

export interface KernelSupport {
  /** Filesystem names from /proc/filesystems ("overlay", "aufs", "ext4", ...). */
  filesystems(): Promise<readonly string[]>;
  /** True when a path exists (for /sys/module/..., /dev/mapper/control). */
  pathExists(path: string): Promise<boolean>;
  /** The page size: mount(2) copies at most one page of data. */
  pageSize(): number;
  /** False inside a user namespace (rootless): the engines then add "userxattr" or refuse aufs. */
  inInitialUserNamespace(): Promise<boolean>;
  /** Device-mapper target names (`dmsetup targets`), or undefined when they cannot be listed. */
  deviceMapperTargets(): Promise<readonly string[] | undefined>;
}

/** The filesystem names of /proc/filesystems text: the last field of each line ("nodev\toverlay"). */
export function parseFilesystems(text: string): string[] {
  return text
    .split('\n')
    .map((line) => line.trim().split(/\s+/).pop() ?? '')
    .filter((name) => name !== '');
}

/** Reads /proc/filesystems, or any file in its format (a test fixture). */
export async function readFilesystems(file = '/proc/filesystems'): Promise<string[]> {
  return parseFilesystems(await readFile(file, 'utf8'));
}

let getpagesize: (() => number) | undefined;

/** getpagesize(2) through koffi; Node has no API for it. */
export function systemPageSize(): number {
  getpagesize ??= koffi.load('libc.so.6').func('int getpagesize(void)') as () => number;
  return getpagesize();
}

export interface ProcKernelSupportOptions {
  /** Prefix for every /proc, /sys and /dev path: a fixture tree in tests; "/" for the host. */
  readonly root?: string;
  /** Page size to report instead of asking libc (tests pin it to 4096). */
  readonly pageSize?: number;
}

/** KernelSupport from the host's (or a fixture tree's) /proc, /sys and /dev. */
export class ProcKernelSupport implements KernelSupport {
  private readonly root: string;

  constructor(private readonly options: ProcKernelSupportOptions = {}) {
    this.root = options.root ?? '/';
  }

  private hostPath(file: string): string {
    return path.join(this.root, file);
  }

  filesystems(): Promise<readonly string[]> {
    return readFilesystems(this.hostPath('/proc/filesystems'));
  }

  async pathExists(file: string): Promise<boolean> {
    try {
      await access(this.hostPath(file));
      return true;
    } catch {
      return false;
    }
  }

  pageSize(): number {
    return this.options.pageSize ?? systemPageSize();
  }

  async inInitialUserNamespace(): Promise<boolean> {
    // The initial namespace maps all of 0..2^32-2 onto itself (user_namespaces(7)); moby's
    // userns.RunningInUserNS reads the same file the same way.
    try {
      const map = (await readFile(this.hostPath('/proc/self/uid_map'), 'utf8')).trim().split(/\s+/);
      return map.length === 3 && map[0] === '0' && map[1] === '0' && map[2] === '4294967295';
    } catch {
      return true;
    }
  }

  async deviceMapperTargets(): Promise<readonly string[] | undefined> {
    if (this.root !== '/') return undefined; // a fixture tree has no kernel to ask
    const result = await trackChild((await loadExeca())('dmsetup', ['targets'], { reject: false }));
    if (result.failed || result.exitCode !== 0) return undefined;
    return result.stdout
      .split('\n')
      .map((line) => line.trim().split(/\s+/)[0] ?? '')
      .filter((name) => name !== '');
  }
}

/** Refuses when /proc/filesystems lacks `fsType`. */
export async function requireFilesystem(kernel: KernelSupport, driver: string, fsType: string, hint: string): Promise<void> {
  if (!(await kernel.filesystems()).includes(fsType)) {
    throw new KernelSupportError(driver, `${fsType} is not in /proc/filesystems`, hint);
  }
}

export async function checkOverlaySupport(kernel: KernelSupport, driver: string): Promise<void> {
  await requireFilesystem(
    kernel,
    driver,
    'overlay',
    'load the overlay module (`modprobe overlay`; kernel option CONFIG_OVERLAY_FS), or restore with a dir rootfs',
  );
}

/** aufs: in /proc/filesystems and not in a user namespace, as moby's supportsAufs checks. */
export async function checkAufsSupport(kernel: KernelSupport): Promise<void> {
  await requireFilesystem(
    kernel,
    'aufs',
    'aufs',
    "aufs is not in mainline Linux: boot a kernel with the aufs patches (e.g. Ubuntu's linux-modules-extra, or aufs-dkms) and `modprobe aufs`, " +
      'or have the engine migrate the container to overlay2',
  );
  if (!(await kernel.inInitialUserNamespace())) {
    throw new KernelSupportError(
      'aufs',
      'aufs cannot be mounted in a user namespace',
      'run the runtime as root in the initial user namespace (not rootless)',
    );
  }
}

/** devicemapper: the control node and the thin target (dm-thin-pool). */
export async function checkDeviceMapperSupport(kernel: KernelSupport): Promise<void> {
  if (!(await kernel.pathExists('/dev/mapper/control'))) {
    throw new KernelSupportError(
      'devicemapper',
      '/dev/mapper/control does not exist (no device-mapper)',
      'load device-mapper (`modprobe dm_mod`; kernel option CONFIG_BLK_DEV_DM) and create the node with `dmsetup mknodes`',
    );
  }
  // dm-thin-pool registers /sys/module/dm_thin_pool (it has module parameters, so even when
  // built in); otherwise ask device-mapper itself.
  if (await kernel.pathExists('/sys/module/dm_thin_pool')) return;
  const targets = await kernel.deviceMapperTargets();
  if (targets?.includes('thin')) return;
  throw new KernelSupportError(
    'devicemapper',
    'the device-mapper "thin" target is not available (no dm-thin-pool)',
    'load it with `modprobe dm_thin_pool` (kernel option CONFIG_DM_THIN_PROVISIONING) and install dmsetup',
  );
}
