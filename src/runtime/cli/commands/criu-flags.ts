/** The CRIU flags checkpoint and restore share, with runc's names, and their mapping to options. */
import { parseCgroupsMode, type CommonCriuOptions } from '../../../criu/options.js';
import type { FlagSpec, ParsedFlags } from '../command.js';

export const commonCriuFlags = {
  'image-path': { type: 'string', value: 'DIR', description: "directory of the checkpoint images (default: the container's managed checkpoint)" },
  'work-path': { type: 'string', value: 'DIR', description: "directory for CRIU's log and work files (default: the image directory)" },
  'tcp-established': { type: 'boolean', description: 'checkpoint/restore established TCP connections' },
  'ext-unix-sk': { type: 'boolean', description: 'allow external unix sockets' },
  'shell-job': { type: 'boolean', description: 'the container is a shell job (session outside it)' },
  'file-locks': { type: 'boolean', description: 'checkpoint/restore file locks' },
  'manage-cgroups-mode': { type: 'string', value: 'MODE', description: "cgroups mode: soft, full, strict or ignore (default: CRIU's)" },
  'auto-dedup': { type: 'boolean', description: 'punch holes in images as pages are used (saves space)' },
  'lazy-pages': { type: 'boolean', description: 'use userfaultfd lazy pages (restore returns before all memory is copied)' },
  'page-server': { type: 'string', value: 'ADDR:PORT', description: 'a CRIU page server to send pages to or take them from' },
} as const satisfies Record<string, FlagSpec>;

export function commonCriuOptions(flags: ParsedFlags<typeof commonCriuFlags>): CommonCriuOptions {
  return {
    ...(flags['image-path'] ? { imagePath: flags['image-path'] } : {}),
    ...(flags['work-path'] ? { workPath: flags['work-path'] } : {}),
    ...(flags['tcp-established'] ? { tcpEstablished: true } : {}),
    ...(flags['ext-unix-sk'] ? { extUnixSk: true } : {}),
    ...(flags['shell-job'] ? { shellJob: true } : {}),
    ...(flags['file-locks'] ? { fileLocks: true } : {}),
    ...(flags['manage-cgroups-mode'] ? { manageCgroupsMode: parseCgroupsMode(flags['manage-cgroups-mode']) } : {}),
    ...(flags['auto-dedup'] ? { autoDedup: true } : {}),
    ...(flags['lazy-pages'] ? { lazyPages: true } : {}),
    ...(flags['page-server'] ? { pageServer: flags['page-server'] } : {}),
  };
}
