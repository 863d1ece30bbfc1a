/** Fakes for the drivers' services: a kernel to configure, a mount table that records, commands that record. */
import { realpath } from 'node:fs/promises';
import type { KernelSupport } from '../../../src/rootfs/kernel-support.js';
import type { MountService } from '../../../src/rootfs/mount-service.js';
import type { MountInfo } from '../../../src/rootfs/mountinfo.js';
import { fixturePath as repoFixturePath } from '../../helpers/fixture-path.js';
import type { CommandRunner, DriverDeps } from '../../../src/rootfs/drivers/types.js';

/** test/fixtures/rootfs. */
export function fixturePath(...parts: string[]): string {
  return repoFixturePath('rootfs', ...parts);
}

export interface FakeKernelOptions {
  filesystems?: readonly string[];
  paths?: readonly string[];
  pageSize?: number;
  initialUserNamespace?: boolean;
  dmTargets?: readonly string[];
}

/** A kernel with overlay and the overlay `index` parameter, 4 KiB pages, not in a user namespace. */
export class FakeKernel implements KernelSupport {
  readonly paths: Set<string>;
  constructor(private readonly options: FakeKernelOptions = {}) {
    this.paths = new Set(options.paths ?? ['/sys/module/overlay/parameters/index']);
  }
  async filesystems(): Promise<readonly string[]> {
    return this.options.filesystems ?? ['ext4', 'overlay', 'tmpfs'];
  }
  async pathExists(file: string): Promise<boolean> {
    return this.paths.has(file);
  }
  pageSize(): number {
    return this.options.pageSize ?? 4096;
  }
  async inInitialUserNamespace(): Promise<boolean> {
    return this.options.initialUserNamespace ?? true;
  }
  async deviceMapperTargets(): Promise<readonly string[] | undefined> {
    return this.options.dmTargets;
  }
}

export type MountCall =
  | { op: 'bind'; source: string; target: string }
  | { op: 'bindReadOnly'; source: string; target: string }
  | { op: 'mount'; source: string; target: string; fsType: string; flags: number; data: string }
  | { op: 'mountFrom'; cwd: string; source: string; target: string; fsType: string; flags: number; data: string; fds: readonly string[] }
  | { op: 'makePrivate'; target: string }
  | { op: 'unmount'; target: string; detach: boolean };

/** Records every call and keeps a mount table, so isMounted sees what was "mounted". */
export class RecordingMounts implements MountService {
  readonly calls: MountCall[] = [];
  readonly table: MountInfo[] = [];
  /** Make mount(2) of this fs type fail (EINVAL-like). */
  failType: string | undefined;

  private async add(target: string, fsType: string, source: string): Promise<void> {
    const mountPoint = await realpath(target).catch(() => target);
    this.table.push({
      id: this.table.length + 100,
      parentId: 1,
      device: '0:99',
      root: '/',
      mountPoint,
      mountOptions: ['rw'],
      optionalFields: [],
      fsType,
      source,
      superOptions: [],
    });
  }

  async bind(source: string, target: string): Promise<void> {
    this.calls.push({ op: 'bind', source, target });
    await this.add(target, 'ext4', source);
  }
  async bindReadOnly(source: string, target: string): Promise<void> {
    this.calls.push({ op: 'bindReadOnly', source, target });
    await this.add(target, 'ext4', source);
  }
  async mount(source: string, target: string, fsType: string, flags: number, data: string): Promise<void> {
    this.calls.push({ op: 'mount', source, target, fsType, flags, data });
    if (fsType === this.failType) throw new Error(`mount ${fsType} refused by the fake`);
    if ((flags & 0x20) === 0) await this.add(target, fsType, source);
  }
  async mountFrom(cwd: string, source: string, target: string, fsType: string, flags: number, data: string, fds: readonly string[] = []): Promise<void> {
    this.calls.push({ op: 'mountFrom', cwd, source, target, fsType, flags, data, fds });
    await this.add(target, fsType, source);
  }
  async makePrivate(target: string): Promise<void> {
    this.calls.push({ op: 'makePrivate', target });
  }
  async unmount(target: string, options: { readonly detach?: boolean } = {}): Promise<void> {
    this.calls.push({ op: 'unmount', target, detach: options.detach ?? false });
    const mountPoint = await realpath(target).catch(() => target);
    const index = this.table.map((m) => m.mountPoint).lastIndexOf(mountPoint);
    if (index < 0) throw new Error(`${target} is not mounted (fake)`);
    this.table.splice(index, 1);
  }
  async isMountPoint(file: string): Promise<boolean> {
    return this.table.some((m) => m.mountPoint === file);
  }
  async mounts(): Promise<MountInfo[]> {
    return [...this.table];
  }
}

export class RecordingCommands implements CommandRunner {
  readonly runs: (readonly string[])[] = [];
  failing = new Set<string>();
  async run(argv: readonly string[]): Promise<void> {
    this.runs.push(argv);
    if (argv[0] !== undefined && this.failing.has(argv[0])) throw new Error(`${argv[0]} failed (fake)`);
  }
}

export interface FakeDeps extends DriverDeps {
  readonly mounts: RecordingMounts;
  readonly kernel: FakeKernel;
  readonly commands: RecordingCommands;
}

export function fakeDeps(kernel: FakeKernelOptions = {}): FakeDeps {
  return { mounts: new RecordingMounts(), kernel: new FakeKernel(kernel), commands: new RecordingCommands() };
}
