import test from 'ava';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { criuLogTail, tailOfLog } from '../../src/criu/log.js';
import { coreFixturePath, readCoreFixture, tempDir } from '../runtime/fixtures.js';

const dumpErrors = [
  '(00.004100) Error (criu/mount.c:1088): mnt: Mount 613 ./sys/fs/cgroup/cpu,cpuacct (master_id: 14 shared_id: 0) has unreachable sharing. Try --enable-external-masters.',
  "(00.004200) Error (criu/mount.c:1115): mnt: Can't proceed 613 ./sys/fs/cgroup/cpu,cpuacct",
  '(00.004600) Error (criu/cr-dump.c:2093): Dumping FAILED.',
];

test('picks CRIU\'s "Error (file:line)" lines, oldest first', (t) => {
  t.deepEqual(tailOfLog(readCoreFixture('dump-error.log')), dumpErrors);
});

test('the limit keeps the last error lines', (t) => {
  t.deepEqual(tailOfLog(readCoreFixture('dump-error.log'), 2), dumpErrors.slice(1));
  t.deepEqual(tailOfLog(readCoreFixture('dump-error.log'), 1), dumpErrors.slice(2));
});

test('"Error" must be a word: "Errors" and "ErrorCode" are not error lines', (t) => {
  const text = '(00.1) 3 Errors were ignored\n(00.2) ErrorCode=0\n(00.3) Error (criu/files.c:5): bad fd\n(00.4) done\n';
  t.deepEqual(tailOfLog(text), ['(00.3) Error (criu/files.c:5): bad fd']);
});

test('without error lines, the last lines; blank lines and trailing blanks dropped', (t) => {
  const lines = Array.from({ length: 8 }, (_, i) => `(00.00${i}) step ${i}`);
  t.deepEqual(tailOfLog(`${lines.join('  \n\n')}\n\n`), lines.slice(3));
  t.deepEqual(tailOfLog(lines.join('\n'), 2), lines.slice(6));
  t.deepEqual(tailOfLog(''), []);
  t.deepEqual(tailOfLog('\n\n  \n'), []);
});

test('criuLogTail on a missing file is empty', async (t) => {
  const dir = await tempDir(t, 'criu-log-');
  t.deepEqual(await criuLogTail(join(dir, 'dump.log')), []);
});

test('criuLogTail on a directory is empty', async (t) => {
  t.deepEqual(await criuLogTail(await tempDir(t, 'criu-log-')), []);
});

test('criuLogTail reads a real log', async (t) => {
  t.deepEqual(await criuLogTail(coreFixturePath('dump-error.log')), dumpErrors);
  t.deepEqual(await criuLogTail(coreFixturePath('dump-error.log'), 1), [dumpErrors[2]]);
});

test('criuLogTail reads only the end of a big log', async (t) => {
  const file = join(await tempDir(t, 'criu-log-'), 'restore.log');
  // An error early in a log larger than the 64 KiB window is out of sight; the last one is seen.
  const early = '(00.000001) Error (criu/early.c:1): early failure\n';
  const filler = '(00.000002) filler line of the log that carries no error at all........\n'.repeat(2000);
  const late = '(09.999999) Error (criu/cr-restore.c:2): late failure\n';
  await writeFile(file, early + filler + late);
  t.deepEqual(await criuLogTail(file), ['(09.999999) Error (criu/cr-restore.c:2): late failure']);
});
