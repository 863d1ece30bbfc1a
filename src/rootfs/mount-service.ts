/**
 * All mounting goes through MountService (an injection token), so tests can swap it and so the
 * syscalls sit in one place. The Linux implementation calls mount(2)/umount2(2) directly.
 */
import { spawn } from 'node:child_process';
import { closeSync, constants as fsConstants, openSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { canonicalPath } from '../system/files.js';
import { mount, umount, MS_BIND, MS_REC, MS_PRIVATE, MS_REMOUNT, MS_RDONLY, MNT_DETACH } from '../system/libc.js';
import { SystemCallError } from '../system/errors.js';
import { MountError } from './errors.js';
import { readMountInfo, type MountInfo } from './mountinfo.js';
import type { MountFromFailure, MountFromRequest } from './mount-from.js';
import { trackChild } from '../system/spawned.js';

export interface MountService {
  /** Bind-mounts source on target (recursively: nested mounts come along). */
  bind(source: string, target: string): Promise<void>;
  /** Bind-mounts source on target read-only: nothing can be written through target. */
  bindReadOnly(source: string, target: string): Promise<void>;
  /** mount(2) of a filesystem with a data string, as a driver's plan says. */
  mount(source: string, target: string, fsType: string, flags: number, data: string): Promise<void>;
  /**
   * mount(2) with the working directory set to `cwd`, so relative paths in `data` resolve there
   * (the engines' "mountFrom", for layer chains whose absolute paths overflow one page). Each of
   * `fds` is a directory opened here and handed to the mounting process as fd 3, 4, ...
   */
  mountFrom(cwd: string, source: string, target: string, fsType: string, flags: number, data: string, fds?: readonly string[]): Promise<void>;
  /** Makes the mount at target private, so what is mounted under it does not propagate out. */
  makePrivate(target: string): Promise<void>;
  /** Unmounts target; `detach` for a lazy unmount (MNT_DETACH) when something may still use it. */
  unmount(target: string, options?: { readonly detach?: boolean }): Promise<void>;
  /** True when path is itself a mount point in this mount namespace. */
  isMountPoint(path: string): Promise<boolean>;
  /** The mounts of a process's mount namespace (this process by default). */
  mounts(pid?: number): Promise<MountInfo[]>;
}

export const MOUNT_SERVICE = Symbol('MountService');

export class LinuxMountService implements MountService {
  async bind(source: string, target: string): Promise<void> {
    mount(source, target, null, MS_BIND | MS_REC, null);
  }

  async bindReadOnly(source: string, target: string): Promise<void> {
    mount(source, target, null, MS_BIND, null);
    // A bind mount takes its read-only flag only on a remount.
    mount(null, target, null, MS_BIND | MS_REMOUNT | MS_RDONLY, null);
  }

  async mount(source: string, target: string, fsType: string, flags: number, data: string): Promise<void> {
    mount(source, target, fsType, flags, data);
  }

  async mountFrom(cwd: string, source: string, target: string, fsType: string, flags: number, data: string, fds: readonly string[] = []): Promise<void> {
    // Plain child_process, not execa: the directory fds must be inherited as raw fds 3, 4, ...,
    // which execa would try to pipe. The child is this same node running mount-from.js.
    const opened: number[] = [];
    try {
      for (const dir of fds) opened.push(openSync(dir, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY));
      const request: MountFromRequest = { cwd, source, target, fsType, flags, data };
      const { code, stdout, stderr } = await runMountFrom(request, opened);
      if (code === 0) return;
      let failure: MountFromFailure;
      try {
        failure = JSON.parse(stdout) as MountFromFailure;
      } catch {
        failure = { message: `mount helper exited with ${code}: ${stderr.trim() || stdout.trim()}` };
      }
      const detail = `${source} on ${target} type ${fsType} from ${cwd}`;
      if (failure.errno !== undefined) throw new SystemCallError('mount', failure.errno, detail);
      throw new MountError(`${detail}: ${failure.message}`);
    } finally {
      for (const fd of opened) closeSync(fd);
    }
  }

  async makePrivate(target: string): Promise<void> {
    mount(null, target, null, MS_PRIVATE | MS_REC, null);
  }

  async unmount(target: string, options: { readonly detach?: boolean } = {}): Promise<void> {
    umount(target, options.detach ? MNT_DETACH : 0);
  }

  async isMountPoint(path: string): Promise<boolean> {
    // The mount table names mount points by their real paths.
    const real = canonicalPath(path);
    return (await readMountInfo()).some((m) => m.mountPoint === real);
  }

  async mounts(pid?: number): Promise<MountInfo[]> {
    return readMountInfo(pid ?? 'self');
  }
}

const mountFromScript = fileURLToPath(new URL('./mount-from.js', import.meta.url));

function runMountFrom(request: MountFromRequest, fds: readonly number[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = trackChild(spawn(process.execPath, [mountFromScript], { stdio: ['pipe', 'pipe', 'pipe', ...fds] }));
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin?.end(JSON.stringify(request));
  });
}
