/**
 * SwrkCriuService's probes of the binary, with fake criu scripts: whether its lazy-pages daemon
 * can copy on demand only (the project's patch) is read from how it takes the option.
 */
import test from 'ava';
import { chmod, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { SwrkCriuService } from '../../src/criu/service.js';
import { tempDir } from '../runtime/fixtures.js';

/** A criu that knows --no-lazy-pages-background or, like upstream's, refuses it as getopt does. */
async function fakeCriu(dir: string, patched: boolean): Promise<string> {
  const script = path.join(dir, patched ? 'criu-patched' : 'criu-upstream');
  const refuse = `echo "$0: unrecognized option '$1'" >&2; exit 1`;
  await writeFile(
    script,
    [
      '#!/bin/sh',
      `case "$1" in --no-lazy-pages-background) ${patched ? 'shift' : refuse} ;; esac`,
      '[ "$1" = --version ] && echo "Version: 4.2.1"',
      '',
    ].join('\n'),
  );
  await chmod(script, 0o755);
  return script;
}

test("the project's CRIU copies lazy pages on demand, an upstream one in the background", async (t) => {
  const dir = await tempDir(t);
  const patched = new SwrkCriuService({ binary: await fakeCriu(dir, true), minimumVersion: '4.2' });
  const upstream = new SwrkCriuService({ binary: await fakeCriu(dir, false), minimumVersion: '4.2' });
  t.true(await patched.lazyPagesOnDemand());
  t.false(await upstream.lazyPagesOnDemand());
});
