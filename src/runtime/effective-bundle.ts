/**
 * The bundle the OCI runtime is actually given, in the container's state directory: the user's
 * config.json with root.path made absolute, a clean cgroup path (cgroups.ts), and stdio as pipes (the runtime gives
 * every container pipes held by its monitor: a tty could not be checkpointed the same way).
 */
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { containerCgroupPath } from './cgroups.js';
import type { Logger } from './logger.js';
import { parseSpec, type Bundle, type Spec } from './oci/index.js';

export interface EffectiveBundle {
  readonly dir: string;
  readonly spec: Spec;
  readonly cgroupPath: string;
}

export async function writeEffectiveBundle(dir: string, bundle: Bundle, id: string, logger: Logger, cgroupParent?: string): Promise<EffectiveBundle> {
  if (bundle.spec.process?.terminal) {
    logger.warn('process.terminal is true in the bundle; the runtime gives containers pipes, not a terminal', { id });
  }
  const cgroupPath = containerCgroupPath(bundle.spec.linux?.cgroupsPath, id, cgroupParent);
  const spec = {
    ...bundle.spec,
    root: { ...bundle.spec.root!, path: bundle.rootfs },
    process: { ...bundle.spec.process!, terminal: false },
    linux: { ...bundle.spec.linux, cgroupsPath: cgroupPath },
  } as Spec;
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFile(path.join(dir, 'config.json'), `${JSON.stringify(spec, null, 2)}\n`);
  return { dir, spec, cgroupPath };
}

/** The last spec parsed from each effective bundle, reused while the file's text is the same. */
const parsed = new Map<string, { readonly text: string; readonly spec: Spec }>();

/**
 * The effective bundle's spec. A monitor reads it at every reset and every standby; the text is
 * read each time (synchronously: a few kilobytes) and only parsed and checked again when it
 * changed. The spec returned is shared: callers do not change it.
 */
export async function readEffectiveSpec(dir: string): Promise<{ spec: Spec; text: string }> {
  const file = path.join(dir, 'config.json');
  const text = readFileSync(file, 'utf8');
  const cached = parsed.get(file);
  if (cached !== undefined && cached.text === text) return { spec: cached.spec, text };
  const spec = parseSpec(text, file);
  parsed.set(file, { text, spec });
  return { spec, text };
}
