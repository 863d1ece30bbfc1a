/**
 * The layout Docker's overlay2 and containers/storage's overlay share: <home>/<id>/{diff,link,
 * lower,work,merged} and <home>/l/<NAME> -> ../<id>/diff, where NAME is the 26-character id in the
 * layer's `link` file. A layer's `lower` file lists its lower layers as "l/NAME" joined by ":",
 * uppermost first (moby overlay2/overlay.go getLower; containers/storage overlay/overlay.go).
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { BrokenLayoutError, MissingLayerError } from '../errors.js';
import { lstatOrUndefined, readlinkOrUndefined, readTextOrUndefined, statOrUndefined } from './layout.js';

/** The entries of a `lower` file, checked to be "l/<name>". */
export function parseLowerFile(driver: string, file: string, text: string): string[] {
  // The engines write the file without a newline; tolerate one left by hand editing.
  const entries = text.replace(/\n$/, '').split(':');
  for (const entry of entries) {
    if (!/^l\/[A-Za-z0-9_-]+$/.test(entry)) {
      throw new BrokenLayoutError(driver, file, `lower entry ${JSON.stringify(entry)} is not of the form l/<link id>`);
    }
  }
  return entries;
}

/** The layer whose `link` file holds `name`, to say which layer a dangling entry meant. */
async function layerOwningLink(home: string, name: string): Promise<string | undefined> {
  let entries: string[];
  try {
    entries = await readdir(home);
  } catch {
    return undefined;
  }
  for (const entry of entries) {
    if (entry === 'l') continue;
    const link = await readTextOrUndefined(path.join(home, entry, 'link')).catch(() => undefined);
    if (link?.trim() === name) return entry;
  }
  return undefined;
}

/**
 * Checks that lower entry `entry` ("l/NAME") of layer `layerId` leads to a layer's diff directory,
 * and returns the link's target as written ("../<id>/diff").
 */
export async function requireLowerLink(driver: string, home: string, layerId: string, entry: string): Promise<string> {
  const linkPath = path.join(home, entry);
  const name = path.basename(entry);
  const link = await lstatOrUndefined(linkPath);
  if (link === undefined) {
    const owner = await layerOwningLink(home, name);
    throw new MissingLayerError(
      driver,
      layerId,
      `the short link ${linkPath} does not exist` + (owner === undefined ? " and no layer's link file names it" : ` (it is layer ${owner}'s link)`),
      {
        hint:
          owner === undefined
            ? 'a lower layer was removed while this layer still needs it; pull the image again or recreate the container'
            : `recreate it: ln -s ../${owner}/diff ${linkPath} (containers/storage does this itself on its next start)`,
      },
    );
  }
  const target = await readlinkOrUndefined(linkPath);
  if (target === undefined) {
    throw new BrokenLayoutError(driver, linkPath, "is not a symbolic link to a layer's diff directory");
  }
  if (!(await statOrUndefined(linkPath))?.isDirectory()) {
    throw new MissingLayerError(driver, layerId, `${linkPath} points to ${target}, which is not a directory (the lower layer is gone)`, {
      hint: 'a lower layer was removed while this layer still needs it; pull the image again or recreate the container',
    });
  }
  return target;
}
