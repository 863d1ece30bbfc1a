import test from 'ava';
import { copyFile } from 'node:fs/promises';
import path from 'node:path';
import {
  StatisticsNotFoundError,
  checkpointStatsReport,
  formatStatsReport,
  readCheckpointStats,
  readRestoreStats,
  restoreStatsReport,
} from '../../src/runtime/checkpoint-stats.js';
import { tempDir } from './fixtures.js';
import { inspectImagesDir, withPycriu } from './inspection/helpers.js';

const imageTest = withPycriu(test, 'statistics file tests');

const dump = {
  freezing_time: 595,
  frozen_time: 205476,
  memdump_time: 1500,
  memwrite_time: 268,
  pages_scanned: 70,
  pages_skipped_parent: 0,
  pages_written: 49,
  irmap_resolve: 0,
  pages_lazy: 0,
  page_pipes: 12,
  page_pipe_bufs: 12,
};

test("checkpoint: podman's keys, duration in whole microseconds", (t) => {
  const report = checkpointStatsReport(1234.6, dump);
  t.deepEqual(report, {
    runtime_checkpoint_duration: 1235,
    criu_statistics: { freezing_time: 595, frozen_time: 205476, memdump_time: 1500, memwrite_time: 268, pages_scanned: 70, pages_written: 49 },
  });
  t.deepEqual(Object.keys(report.criu_statistics), ['freezing_time', 'frozen_time', 'memdump_time', 'memwrite_time', 'pages_scanned', 'pages_written']);
});

test("restore: podman's keys; pages_restored is 0 when CRIU left it out", (t) => {
  const report = restoreStatsReport(99, { pages_compared: 18, pages_skipped_cow: 4, forking_time: 103, restore_time: 252529 });
  t.deepEqual(report, {
    runtime_restore_duration: 99,
    criu_statistics: { pages_compared: 18, pages_skipped_cow: 4, forking_time: 103, restore_time: 252529, pages_restored: 0 },
  });
});

test('the printed text is indented JSON that parses back', (t) => {
  const report = checkpointStatsReport(10, dump);
  const text = formatStatsReport(report);
  t.true(text.endsWith('}\n'));
  t.true(text.includes('\n    "runtime_checkpoint_duration": 10,\n'));
  t.deepEqual(JSON.parse(text), report);
});

imageTest('stats-dump and stats-restore are read from the image directory', async (t) => {
  const checkpoint = await readCheckpointStats(5000, inspectImagesDir);
  t.deepEqual(checkpoint.criu_statistics, {
    freezing_time: 100962,
    frozen_time: 334107,
    memdump_time: 5808,
    memwrite_time: 306,
    pages_scanned: 94,
    pages_written: 66,
  });
  const restore = await readRestoreStats(7000, inspectImagesDir);
  t.deepEqual(restore, {
    runtime_restore_duration: 7000,
    criu_statistics: { pages_compared: 28, pages_skipped_cow: 6, forking_time: 110, restore_time: 285680, pages_restored: 60 },
  });
});

imageTest('the work directory is looked at first; no file at all is a StatisticsNotFoundError', async (t) => {
  const work = await tempDir(t);
  const images = await tempDir(t);
  await copyFile(path.join(inspectImagesDir, 'stats-restore'), path.join(work, 'stats-restore'));
  t.is((await readRestoreStats(1, images, work)).criu_statistics.pages_restored, 60);
  const error = await t.throwsAsync(readCheckpointStats(1, images, work), { instanceOf: StatisticsNotFoundError });
  t.is(error!.code, 'CRIU_STATISTICS_NOT_FOUND');
  t.regex(error!.message, /stats-dump/);
});
