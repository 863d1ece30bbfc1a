import test from 'ava';
import { PassThrough } from 'node:stream';
import { commands, main } from '../../../src/runtime/cli/main.js';
import type { CommandIo } from '../../../src/runtime/cli/command.js';
import { tempDir } from '../fixtures.js';

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function run(argv: readonly string[]): Promise<Run> {
  const stdin = new PassThrough();
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const chunks = { stdout: [] as Buffer[], stderr: [] as Buffer[] };
  stdout.on('data', (chunk: Buffer) => chunks.stdout.push(chunk));
  stderr.on('data', (chunk: Buffer) => chunks.stderr.push(chunk));
  const io = { stdin, stdout, stderr } as unknown as CommandIo;
  const code = await main(argv, io);
  stdin.end();
  return { code, stdout: Buffer.concat(chunks.stdout).toString('utf8'), stderr: Buffer.concat(chunks.stderr).toString('utf8') };
}

const commandNames = ['run', 'checkpoint', 'restore', 'state', 'list', 'kill', 'delete'];

test('--help lists every command and the global flags', async (t) => {
  for (const argv of [['--help'], ['-h'], ['help']]) {
    const result = await run(argv);
    t.is(result.code, 0);
    t.is(result.stderr, '');
    t.true(result.stdout.startsWith('runtime - checkpoint and restore OCI containers through CRIU\n'));
    for (const name of commandNames) t.regex(result.stdout, new RegExp(`\\n  ${name} +\\S`), name);
    for (const flag of ['--root VALUE', '--criu VALUE', '--log VALUE', '--log-format VALUE', '--debug', '-h, --help', '-v, --version']) {
      t.true(result.stdout.includes(flag), flag);
    }
  }
});

test('no command prints the help and exits 2', async (t) => {
  const result = await run([]);
  t.is(result.code, 2);
  t.true(result.stdout.startsWith('runtime - '));
});

test("`help <command>` prints that command's help", async (t) => {
  const result = await run(['help', 'kill']);
  t.is(result.code, 0);
  t.true(result.stdout.startsWith('runtime kill - '));
});

test('--version prints the package version', async (t) => {
  for (const flag of ['--version', '-v']) {
    const result = await run([flag]);
    t.is(result.code, 0);
    t.is(result.stdout, 'runtime 0.1.0\n');
    t.is(result.stderr, '');
  }
});

test('an unknown command exits 2 and lists the commands', async (t) => {
  const result = await run(['frobnicate', 'web1']);
  t.is(result.code, 2);
  t.is(result.stdout, '');
  t.is(result.stderr, `runtime: unknown command "frobnicate"\n  hint: the commands are: ${commands.map((c) => c.name).join(', ')}\n`);
  t.true(result.stderr.includes('run, checkpoint, restore, state, list, kill, delete'));
});

test('an unknown global flag exits 2', async (t) => {
  const result = await run(['--bogus', 'state', 'web1']);
  t.is(result.code, 2);
  t.regex(result.stderr, /^runtime: .*--bogus/);
  t.regex(result.stderr, /hint: see `runtime --help`/);
});

test('the wrong number of arguments exits 2', async (t) => {
  const none = await run(['state']);
  t.is(none.code, 2);
  t.is(none.stderr, 'runtime: state: expected <id>, got none\n  hint: usage: runtime state [flags] <id>\n');
  const two = await run(['checkpoint', 'a', 'b']);
  t.is(two.code, 2);
  t.is(two.stderr, 'runtime: checkpoint: expected <id>, got "a" "b"\n  hint: usage: runtime checkpoint [flags] <id>\n');
});

test('`checkpoint --help` lists every runc checkpoint flag', async (t) => {
  const result = await run(['checkpoint', '--help']);
  t.is(result.code, 0);
  t.true(result.stdout.startsWith('runtime checkpoint - '));
  const flags = [
    '--image-path',
    '--work-path',
    '--leave-running',
    '--tcp-established',
    '--ext-unix-sk',
    '--shell-job',
    '--file-locks',
    '--manage-cgroups-mode',
    '--auto-dedup',
    '--pre-dump',
    '--parent-path',
    '--page-server',
    '--lazy-pages',
  ];
  for (const flag of flags) t.regex(result.stdout, new RegExp(`\\n {6}${flag}( [A-Z:]+)? +\\S`), flag);
});

test('`restore --help` lists -d, --bundle and --pid-file with the CRIU flags', async (t) => {
  const result = await run(['restore', '--help']);
  t.is(result.code, 0);
  t.true(result.stdout.startsWith('runtime restore - '));
  t.regex(result.stdout, /\n {2}-d, --detach +\S/);
  t.regex(result.stdout, /\n {2}-b, --bundle DIR +\S/);
  t.regex(result.stdout, /\n {6}--pid-file FILE +\S/);
  for (const flag of ['--image-path', '--work-path', '--tcp-established', '--manage-cgroups-mode', '--lazy-pages']) {
    t.true(result.stdout.includes(flag), flag);
  }
  t.false(result.stdout.includes('--leave-running'));
});

test('`state` of an unknown id exits 1 naming the id', async (t) => {
  const root = await tempDir(t, 'cli-root-');
  const result = await run(['--root', root, 'state', 'ghost']);
  t.is(result.code, 1);
  t.is(result.stdout, '');
  t.true(result.stderr.startsWith(`runtime: container "ghost" does not exist in ${root}\n  hint: `), result.stderr);
  const withEquals = await run([`--root=${root}`, 'state', 'ghost']);
  t.is(withEquals.code, 1);
  t.regex(withEquals.stderr, /"ghost"/);
});

test('`state` of an invalid id exits 1', async (t) => {
  const root = await tempDir(t, 'cli-root-');
  const result = await run(['--root', root, 'state', '../etc']);
  t.is(result.code, 1);
  t.true(result.stderr.startsWith('runtime: invalid container id "../etc": it contains a path separator\n'), result.stderr);
});

test('a bad --manage-cgroups-mode is a usage error before anything runs', async (t) => {
  const root = await tempDir(t, 'cli-root-');
  const result = await run(['--root', root, 'checkpoint', '--manage-cgroups-mode', 'sloppy', 'web1']);
  t.is(result.code, 2);
  t.is(result.stderr, 'runtime: invalid --manage-cgroups-mode "sloppy"\n  hint: use one of: soft, full, strict, ignore\n');
});

test('reset --standbys takes a number; anything else is a usage error, before any container is looked at', async (t) => {
  const root = await tempDir(t);
  const result = await run(['--root', root, 'reset', '--standbys', 'two', 'db']);
  t.is(result.code, 2);
  t.is(result.stderr, 'runtime: invalid --standbys "two"\n  hint: give a number, such as 2 (0: none)\n');
});

test('reset takes --lazy-pages or --no-lazy-pages, not both', async (t) => {
  const root = await tempDir(t);
  const result = await run(['--root', root, 'reset', '--lazy-pages', '--no-lazy-pages', 'db']);
  t.is(result.code, 2);
  t.is(result.stderr, 'runtime: --lazy-pages and --no-lazy-pages contradict each other\n');
});

test('restore --no-lazy-pages goes with --name only', async (t) => {
  const root = await tempDir(t);
  const result = await run(['--root', root, 'restore', '--no-lazy-pages', 'db']);
  t.is(result.code, 2);
  t.is(result.stderr, 'runtime: --no-lazy-pages goes with --name\n  hint: a restore without --name is eager unless --lazy-pages is given\n');
});
