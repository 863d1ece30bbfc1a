import anyTest, { type TestFn } from 'ava';
import { copyFile } from 'node:fs/promises';
import path from 'node:path';
import { decodeImage } from '../../../src/criu/images/index.js';
import { readInspection } from '../../../src/runtime/inspection/read.js';
import type { ProcessNode } from '../../../src/runtime/inspection/model.js';
import { tempDir } from '../fixtures.js';
import { inspectImagesDir, partialImagesDir, withPycriu } from './helpers.js';

const test = withPycriu(anyTest as TestFn, 'inspection tests');

function shape(node: ProcessNode): unknown {
  return [node.pid, node.comm, node.children.map(shape)];
}

test("the process tree comes from pstree.img with each task's comm (core) and executable (mm)", async (t) => {
  const inspection = await readInspection(inspectImagesDir);
  t.deepEqual(shape(inspection.processTree!), [
    1,
    'sh',
    [
      [7, 'syslogd', []],
      [8, 'sleep', []],
      [11, 'sleep', []],
    ],
  ]);
  t.is(inspection.processTree!.exe, '/bin/busybox');
  t.is(inspection.processTree!.state, 'Alive');
  t.is(inspection.processTree!.threads, 1);
});

test('open files per task: fdinfo resolved through files.img, cwd and root', async (t) => {
  const { files } = await readInspection(inspectImagesDir);
  t.deepEqual(
    files.map((f) => f.pid),
    [1, 7, 8, 11],
  );
  const sh = files[0]!;
  t.deepEqual(
    sh.files.find((f) => f.fd === 3),
    { fd: 3, type: 'REG', path: '/data/a.txt' },
  );
  t.regex(sh.files.find((f) => f.fd === 0)!.path, /^pipe\[\d+\]$/);
  t.is(sh.cwd, '/');
  t.is(sh.root, '/');
  t.is(files[1]!.files.find((f) => f.fd === 0)!.type, 'UNIXSK');
});

test("sockets: syslogd's /dev/log, its quoted-printable name decoded", async (t) => {
  const { sockets } = await readInspection(inspectImagesDir);
  t.is(sockets.length, 1);
  t.is(sockets[0]!.pid, 7);
  t.like(sockets[0]!.sockets[0], { fd: 0, family: 'UNIX', type: 'DGRAM', state: 'CLOSE', local: '/dev/log' });
});

test('memory per task is the present pages of its pagemap times the page size; they add up to pages_written', async (t) => {
  const inspection = await readInspection(inspectImagesDir);
  t.deepEqual(
    inspection.memory.map((m) => m.pid),
    [1, 7, 8, 11],
  );
  for (const m of inspection.memory) {
    const pagemap = (await decodeImage(path.join(inspectImagesDir, `pagemap-${m.pid}.img`))).entries.slice(1);
    // The fixture is from CRIU 4.1.1: its counts are in field 2, compat_nr_pages to CRIU 4.2.
    const expected = pagemap.reduce((sum, e) => sum + (Number(e.flags) & 4 ? Number(e.nr_pages ?? e.compat_nr_pages) : 0), 0);
    t.true(expected > 0);
    t.is(m.pagesPresent, expected);
    t.is(m.presentBytes, expected * 4096);
    t.is(m.vmas, 11);
    t.true(m.mappedBytes > m.presentBytes);
  }
  const total = inspection.memory.reduce((sum, m) => sum + m.pagesPresent, 0);
  t.is(total, inspection.dumpStatistics!.pages_written);
  const bigPages = await readInspection(inspectImagesDir, { pageSize: 65536 });
  t.is(bigPages.memory[0]!.presentBytes, bigPages.memory[0]!.pagesPresent * 65536);
});

test('mounts come from mountpoints-*.img with the fstype name and the external key', async (t) => {
  const { mounts } = await readInspection(inspectImagesDir);
  t.like(
    mounts.find((m) => m.mountpoint === '/proc'),
    { fstype: 'proc', source: 'proc', root: '/' },
  );
  t.like(
    mounts.find((m) => m.mountpoint === '/proc/keys'),
    { fstype: 'tmpfs', external: '/dev/null' },
  );
  t.is(mounts.find((m) => m.mountpoint === '/')!.fstype, 'other');
  t.deepEqual(
    mounts.map((m) => m.mountpoint),
    [...mounts.map((m) => m.mountpoint)].sort((a, b) => a.localeCompare(b)),
  );
  t.true(mounts.every((m) => m.namespace === 13));
});

test("statistics and the runtime's metadata are read when present", async (t) => {
  const inspection = await readInspection(inspectImagesDir);
  t.like(inspection.dumpStatistics, {
    freezing_time: 100962,
    frozen_time: 334107,
    memdump_time: 5808,
    memwrite_time: 306,
    pages_scanned: 94,
    pages_written: 66,
  });
  t.like(inspection.restoreStatistics, { restore_time: 285680, forking_time: 110, pages_restored: 60, pages_compared: 28, pages_skipped_cow: 6 });
  t.like(inspection.container, { id: 'fix', ociRuntime: 'runc', criuVersion: '4.1.1', leftRunning: false });
  t.is(inspection.size.pagesBytes, 0, 'the fixture has no pages-*.img');
  t.true(inspection.size.totalBytes > 10_000);
});

test("a work directory's statistics come before the image directory's", async (t) => {
  const work = await tempDir(t);
  await copyFile(path.join(partialImagesDir, 'stats-dump'), path.join(work, 'stats-dump'));
  const inspection = await readInspection(inspectImagesDir, { workPath: work });
  t.is(inspection.dumpStatistics!.pages_written, 112, 'from the work directory');
  t.is(inspection.restoreStatistics!.pages_restored, 60, "the work directory has none: the image directory's");
});

test('missing task images leave parts out instead of failing (the partial fixture)', async (t) => {
  const inspection = await readInspection(partialImagesDir);
  t.is(inspection.processTree!.pid, 1);
  t.is(inspection.processTree!.comm, 'sh');
  t.deepEqual(
    inspection.processTree!.children.map((c) => [c.pid, c.comm]),
    [
      [7, ''],
      [8, ''],
      [9, ''],
      [10, ''],
      [13, 'syslogd'],
      [19, ''],
    ],
  );
  t.deepEqual(
    inspection.files.map((f) => f.pid),
    [1],
  );
  t.deepEqual(
    inspection.memory.map((m) => m.pid),
    [1],
  );
  t.is(inspection.container, undefined);
  t.is(inspection.restoreStatistics, undefined);
  t.is(inspection.size.pagesBytes, 8192);
});
