import test from 'ava';
import { UsageError } from '../../src/runtime/errors.js';
import { exitCodeForSignal, parseSignal, signalName } from '../../src/runtime/signals.js';

test('parseSignal takes names with or without SIG, in any case, and numbers', (t) => {
  t.is(parseSignal('KILL'), 9);
  t.is(parseSignal('SIGKILL'), 9);
  t.is(parseSignal('sigterm'), 15);
  t.is(parseSignal('term'), 15);
  t.is(parseSignal('Hup'), 1);
  t.is(parseSignal('USR1'), 10);
  t.is(parseSignal('9'), 9);
  t.is(parseSignal('15'), 15);
  t.is(parseSignal('19'), 19);
});

test('parseSignal refuses unknown names and numbers', (t) => {
  for (const text of ['', 'NOPE', 'SIG', '0', '65', '-9', '9.0', ' 9', 'SIGKILL ', '0x9']) {
    const error = t.throws(() => parseSignal(text), { instanceOf: UsageError }, JSON.stringify(text));
    t.is(error.message, `unknown signal ${JSON.stringify(text)}`);
    t.is(error.hint, 'give a name such as TERM, SIGKILL or a number such as 9');
  }
});

test('signalName', (t) => {
  t.is(signalName(9), 'SIGKILL');
  t.is(signalName(15), 'SIGTERM');
  t.is(signalName(2), 'SIGINT');
  t.is(signalName(17), 'SIGCHLD');
  t.is(signalName(0), 'SIG0');
  t.is(signalName(99), 'SIG99');
});

test('names and numbers round-trip', (t) => {
  for (const name of [
    'SIGHUP',
    'SIGINT',
    'SIGQUIT',
    'SIGKILL',
    'SIGUSR1',
    'SIGSEGV',
    'SIGUSR2',
    'SIGPIPE',
    'SIGALRM',
    'SIGTERM',
    'SIGCHLD',
    'SIGCONT',
    'SIGSTOP',
    'SIGWINCH',
  ]) {
    t.is(signalName(parseSignal(name)), name);
  }
});

test('exitCodeForSignal is 128 + the signal, as shells report it', (t) => {
  t.is(exitCodeForSignal(9), 137);
  t.is(exitCodeForSignal(15), 143);
  t.is(exitCodeForSignal(parseSignal('INT')), 130);
});

test('a number with two names is named by the usual one', (t) => {
  t.is(signalName(6), 'SIGABRT');
  t.is(signalName(29), 'SIGIO');
});
