import test from 'ava';
import { FEW_PAGES, MAX_PRE_DUMPS, nextPreDump, planPreDumps, preCopyRounds } from '../../../src/runtime/migration/pre-copy.js';

const rounds = (...pages: number[]) => pages.map((pagesWritten) => ({ pagesWritten }));

test('the first pre-dump always runs', (t) => {
  t.deepEqual(nextPreDump([], 3), { next: true });
});

test('pre-dumps go on while each writes fewer pages than the one before', (t) => {
  t.deepEqual(nextPreDump(rounds(65536, 20000), 8), { next: true });
  t.deepEqual(nextPreDump(rounds(65536, 20000, 21000), 8), { next: true }, 'growth within 10% is noise');
});

test('they stop with few pages left, when the copy does not converge, or at the limit', (t) => {
  t.deepEqual(nextPreDump(rounds(65536, FEW_PAGES), 8), { next: false, reason: 'few pages left' });
  t.deepEqual(nextPreDump(rounds(65536, 20000, 22001), 8), { next: false, reason: 'not converging' });
  t.deepEqual(nextPreDump(rounds(65536, 30000, 20000), 3), { next: false, reason: 'round limit' });
});

test('the number of pre-dumps asked is checked', (t) => {
  t.is(planPreDumps(3), 3);
  for (const bad of [0, -1, 1.5, MAX_PRE_DUMPS + 1]) t.throws(() => planPreDumps(bad), { message: /--pre-dump/ });
});

test('the rounds run one after another, each numbered, until the rules say stop; the reason is kept', async (t) => {
  const asked: number[] = [];
  const pages = [50_000, 9_000, 30, 1];
  const result = await preCopyRounds(8, async (n) => {
    asked.push(n);
    return { pagesWritten: pages[n - 1]! };
  });
  t.deepEqual(asked, [1, 2, 3]);
  t.deepEqual(result, { rounds: rounds(50_000, 9_000, 30), reason: 'few pages left' });
  const limited = await preCopyRounds(2, async () => ({ pagesWritten: 10_000 }));
  t.deepEqual(limited, { rounds: rounds(10_000, 10_000), reason: 'round limit' });
});

test('a round that fails ends the rounds with its error: no round runs after it', async (t) => {
  const asked: number[] = [];
  const error = await t.throwsAsync(
    preCopyRounds(8, async (n) => {
      asked.push(n);
      if (n === 2) throw new Error('the page server went away');
      return { pagesWritten: 50_000 };
    }),
  );
  t.is(error?.message, 'the page server went away');
  t.deepEqual(asked, [1, 2]);
});
