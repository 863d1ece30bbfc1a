/** A checkpoint's command holds SIGINT, SIGTERM and SIGHUP back until its work is over. */
import test from 'ava';
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { exitCodeFor, holdingSignals } from '../../../src/runtime/cli/held-signals.js';

function captured(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (chunk: Buffer) => (text += chunk.toString()));
  return { stream, text: () => text };
}

test.serial('a signal during the work is acknowledged once, the work finishes, and the signal is reported after', async (t) => {
  const stderr = captured();
  const before = process.listenerCount('SIGINT');
  let finished = false;
  const outcome = await holdingSignals('the checkpoint of web1', stderr.stream, async () => {
    process.emit('SIGINT', 'SIGINT');
    process.emit('SIGTERM', 'SIGTERM');
    await sleep(50);
    finished = true;
    return 'done';
  });
  t.true(finished);
  t.deepEqual(outcome, { value: 'done', signal: 'SIGINT' });
  t.is(stderr.text(), 'runtime: SIGINT received; the checkpoint of web1 finishes first (stopping it half-way could leave the container frozen)\n');
  t.is(process.listenerCount('SIGINT'), before, 'the handlers are gone once the work is over');
  t.is(exitCodeFor('SIGINT'), 130);
  t.is(exitCodeFor('SIGTERM'), 143);
});

test.serial('without a signal, the outcome is the work value alone; an error passes through and the handlers go', async (t) => {
  const stderr = captured();
  t.deepEqual(await holdingSignals('x', stderr.stream, async () => 1), { value: 1 });
  const before = process.listenerCount('SIGTERM');
  await t.throwsAsync(
    holdingSignals('x', stderr.stream, async () => {
      throw new Error('the dump failed');
    }),
    { message: 'the dump failed' },
  );
  t.is(process.listenerCount('SIGTERM'), before);
  t.is(stderr.text(), '');
});
