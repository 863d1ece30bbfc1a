import test from 'ava';
import { commandHelp, defineCommand, parseCommandArgs } from '../../../src/runtime/cli/command.js';
import { checkpointCommand } from '../../../src/runtime/cli/commands/checkpoint.js';
import { UsageError } from '../../../src/runtime/errors.js';

const demo = defineCommand({
  name: 'demo',
  summary: 'a command for the tests',
  usage: '<id> [SIGNAL]',
  positionals: { min: 1, max: 2 },
  flags: {
    force: { type: 'boolean', short: 'f', description: 'do it anyway' },
    bundle: { type: 'string', short: 'b', value: 'DIR', description: 'the bundle' },
    label: { type: 'string', multiple: true, description: 'a label, repeatable' },
  },
  async run() {
    return 0;
  },
});

test('flags, short flags, repeated flags and positionals', (t) => {
  t.deepEqual(parseCommandArgs(demo, ['-f', '--bundle', '/b', 'web1', '--label=a', '--label', 'b', 'KILL']), {
    flags: { force: true, bundle: '/b', label: ['a', 'b'] },
    positionals: ['web1', 'KILL'],
    help: false,
  });
  t.deepEqual(parseCommandArgs(demo, ['-b/b', 'web1']), { flags: { bundle: '/b' }, positionals: ['web1'], help: false });
  t.deepEqual(parseCommandArgs(demo, ['--', '-web1']), { flags: {}, positionals: ['-web1'], help: false });
});

test('--help skips the argument count check', (t) => {
  t.deepEqual(parseCommandArgs(demo, ['--help']), { flags: {}, positionals: [], help: true });
  t.deepEqual(parseCommandArgs(demo, ['-h', 'a', 'b', 'c']), { flags: {}, positionals: ['a', 'b', 'c'], help: true });
});

test('the wrong number of arguments is a usage error', (t) => {
  const none = t.throws(() => parseCommandArgs(demo, []), { instanceOf: UsageError });
  t.is(none.message, 'demo: expected <id> [SIGNAL], got none');
  t.is(none.hint, 'usage: runtime demo [flags] <id> [SIGNAL]');
  const many = t.throws(() => parseCommandArgs(demo, ['a', 'b', 'c']), { instanceOf: UsageError });
  t.is(many.message, 'demo: expected <id> [SIGNAL], got "a" "b" "c"');
});

test('an unknown flag, or a string flag without a value, is a usage error', (t) => {
  const unknown = t.throws(() => parseCommandArgs(demo, ['--nope', 'web1']), { instanceOf: UsageError });
  t.true(unknown.message.startsWith('demo: '));
  t.regex(unknown.message, /--nope/);
  t.is(unknown.hint, 'see `runtime demo --help`');
  t.throws(() => parseCommandArgs(demo, ['web1', '--bundle']), { instanceOf: UsageError });
  t.throws(() => parseCommandArgs(demo, ['--force=yes', 'web1']), { instanceOf: UsageError });
});

test('commandHelp lists the usage, every flag and --help', (t) => {
  t.is(
    commandHelp(demo),
    [
      'runtime demo - a command for the tests',
      '',
      'usage: runtime demo [flags] <id> [SIGNAL]',
      '',
      'flags:',
      `  ${'-f, --force'.padEnd(34)} do it anyway`,
      `  ${'-b, --bundle DIR'.padEnd(34)} the bundle`,
      `  ${'    --label VALUE'.padEnd(34)} a label, repeatable`,
      `  ${'-h, --help'.padEnd(34)} show this help`,
      '',
    ].join('\n'),
  );
});

test('commandHelp includes the description', (t) => {
  const help = commandHelp(checkpointCommand);
  t.true(
    help.startsWith('runtime checkpoint - checkpoint a running container through CRIU\n\nusage: runtime checkpoint [flags] <id>\n\nDumps the container'),
  );
  t.regex(help, /\n {6}--image-path DIR +directory of the checkpoint images/);
});
