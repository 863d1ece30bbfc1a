import test from 'ava';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { KERNDAT_CACHE_DIR, prepareKerndatCache, type KerndatCacheOps } from '../../src/criu/kerndat-cache.js';
import { fixturePath } from '../helpers/fixture-path.js';

/** A file of the repository. */
function repoPath(relative: string): string {
  return path.resolve(fixturePath(), '../..', relative);
}

const TMPFS = 0x01021994;
const EXT4 = 0xef53;

/** A file system of a few directories and files, recording what is done to it. */
function fakeOps(dirs: Record<string, number>, files: Record<string, number> = {}, failMount = false) {
  const done: string[] = [];
  const ops: KerndatCacheOps = {
    fsType: (dir) => dirs[dir],
    mkdir(dir) {
      done.push(`mkdir ${dir}`);
      // A new directory is on its parent's file system.
      dirs[dir] = dirs['/run']!;
    },
    mountTmpfs(dir) {
      done.push(`mount tmpfs ${dir}`);
      if (failMount) throw new Error('EPERM');
      dirs[dir] = TMPFS;
    },
    modifiedAt: (file) => files[file],
    remove(file) {
      done.push(`rm ${file}`);
      delete files[file];
    },
  };
  return { ops, done };
}

test('on a disk /run, the directory is made and a tmpfs mounted on it', (t) => {
  const { ops, done } = fakeOps({ '/run': EXT4 });
  t.is(prepareKerndatCache('/run/runtime-criu', ops), 'mounted');
  t.deepEqual(done, ['mkdir /run/runtime-criu', 'mount tmpfs /run/runtime-criu']);
});

test('on a tmpfs /run, the directory is only made; once a tmpfs, nothing is done', (t) => {
  const fresh = fakeOps({ '/run': TMPFS });
  t.is(prepareKerndatCache('/run/runtime-criu', fresh.ops), 'tmpfs');
  t.deepEqual(fresh.done, ['mkdir /run/runtime-criu']);

  const mounted = fakeOps({ '/run': EXT4, '/run/runtime-criu': TMPFS });
  t.is(prepareKerndatCache('/run/runtime-criu', mounted.ops), 'tmpfs');
  t.deepEqual(mounted.done, []);
});

test('a criu.kdat.tmp left by a CRIU that died is removed; one being written is not', (t) => {
  const now = 1_000_000;
  const stale = fakeOps({ '/run': EXT4, '/run/runtime-criu': TMPFS }, { '/run/runtime-criu/criu.kdat.tmp': now - 120_000 });
  prepareKerndatCache('/run/runtime-criu', stale.ops, now);
  t.deepEqual(stale.done, ['rm /run/runtime-criu/criu.kdat.tmp']);

  const fresh = fakeOps({ '/run': EXT4, '/run/runtime-criu': TMPFS }, { '/run/runtime-criu/criu.kdat.tmp': now - 5 });
  prepareKerndatCache('/run/runtime-criu', fresh.ops, now);
  t.deepEqual(fresh.done, []);
});

test('a mount that fails leaves CRIU without its cache, and nothing is thrown', (t) => {
  const { ops, done } = fakeOps({ '/run': EXT4 }, {}, true);
  t.is(prepareKerndatCache('/run/runtime-criu', ops), 'unavailable');
  t.deepEqual(done, ['mkdir /run/runtime-criu', 'mount tmpfs /run/runtime-criu']);
});

test('scripts/install-criu.sh builds CRIU with the directory the runtime prepares', async (t) => {
  const script = await readFile(repoPath('scripts/install-criu.sh'), 'utf8');
  t.is(/^kerndat_dir=(.*)$/m.exec(script)?.[1], KERNDAT_CACHE_DIR);
  t.regex(script, /RUNDIR="\$kerndat_dir"/);
});
