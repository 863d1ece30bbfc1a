/**
 * Mount options as a plan lists them ("nodev", "lowerdir=...") split into mount(2) flags and the
 * data string, the way moby/sys/mount ParseOptions and containers/storage do before mount(2):
 * known flag words become MS_* bits, everything else is passed to the filesystem.
 */
import { MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, MS_REC } from '../system/libc.js';

// <linux/mount.h>; not in libc.ts because only the option parser needs them.
export const MS_SYNCHRONOUS = 0x10;
export const MS_REMOUNT = 0x20;
export const MS_MANDLOCK = 0x40;
export const MS_DIRSYNC = 0x80;
export const MS_NOATIME = 0x400;
export const MS_NODIRATIME = 0x800;
export const MS_RELATIME = 0x200000;
export const MS_STRICTATIME = 0x1000000;

/** [clear?, flag] per option word, as in moby/sys/mount flags_linux.go. */
const flagWords: Readonly<Record<string, readonly [boolean, number]>> = {
  defaults: [false, 0],
  ro: [false, MS_RDONLY],
  rw: [true, MS_RDONLY],
  suid: [true, MS_NOSUID],
  nosuid: [false, MS_NOSUID],
  dev: [true, MS_NODEV],
  nodev: [false, MS_NODEV],
  exec: [true, MS_NOEXEC],
  noexec: [false, MS_NOEXEC],
  sync: [false, MS_SYNCHRONOUS],
  async: [true, MS_SYNCHRONOUS],
  dirsync: [false, MS_DIRSYNC],
  remount: [false, MS_REMOUNT],
  mand: [false, MS_MANDLOCK],
  nomand: [true, MS_MANDLOCK],
  atime: [true, MS_NOATIME],
  noatime: [false, MS_NOATIME],
  diratime: [true, MS_NODIRATIME],
  nodiratime: [false, MS_NODIRATIME],
  bind: [false, MS_BIND],
  rbind: [false, MS_BIND | MS_REC],
  relatime: [false, MS_RELATIME],
  norelatime: [true, MS_RELATIME],
  strictatime: [false, MS_STRICTATIME],
  nostrictatime: [true, MS_STRICTATIME],
};

export interface SplitOptions {
  readonly flags: number;
  readonly data: string;
}

export function splitMountOptions(options: readonly string[]): SplitOptions {
  let flags = 0;
  const data: string[] = [];
  for (const option of options) {
    const word = flagWords[option];
    if (word === undefined) {
      if (option !== '') data.push(option);
    } else if (word[0]) {
      flags &= ~word[1];
    } else {
      flags |= word[1];
    }
  }
  return { flags, data: data.join(',') };
}
