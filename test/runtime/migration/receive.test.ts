/**
 * receive's order of steps and its source's word, with the fake runtime (its CRIU and monitors
 * recording) behind a real receiver on the loopback, spoken to over a real mutual-TLS channel.
 */
import 'reflect-metadata';
import test, { type ExecutionContext } from 'ava';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { connectChannel, type MessageChannel } from '../../../src/runtime/migration/channel.js';
import { expect, MigrationPeerError, PROTOCOL_VERSION, type OfferMessage } from '../../../src/runtime/migration/protocol.js';
import { fakeRuntime, runningContainer, type FakeRuntime } from '../../helpers/fake-runtime.js';
import { checkpoint, defaultImagePath } from '../../../src/runtime/checkpoint.js';
import { execa } from 'execa';
import { loopbackReceiver } from '../../helpers/receiver.js';

const TOKEN = '0123456789abcdef0123456789abcdef';

interface Receiving {
  readonly runtime: FakeRuntime;
  readonly source: MessageChannel;
  readonly events: string[];
  /** A new connection from the source, past hello and welcome. */
  connect(): Promise<MessageChannel>;
}

/** A receiver on 127.0.0.1 and a source's channel to it, past hello and welcome. */
async function receiverAndSource(t: ExecutionContext, runtime?: FakeRuntime): Promise<Receiving> {
  runtime ??= await fakeRuntime(t);
  const { receiver, events, sourceTls } = await loopbackReceiver(t, runtime, runtime.root);
  const connect = async () => {
    const channel = await connectChannel({ host: '127.0.0.1', port: receiver.port }, sourceTls, { timeoutMs: 5_000 });
    t.teardown(() => channel.destroy());
    await channel.send({ type: 'hello', version: PROTOCOL_VERSION, runtimeVersion: 'test', criu: { major: 4, minor: 2, sublevel: 1 } });
    expect(await channel.receive({ timeoutMs: 5_000 }), 'welcome');
    return channel;
  };
  return { runtime, source: await connect(), events, connect };
}

/** An offer of web1 with the config.json of bundle, over storage both sides see unless changed. */
async function offerOf(bundle: string, changes: Partial<OfferMessage> = {}): Promise<OfferMessage> {
  return {
    type: 'offer',
    token: TOKEN,
    id: 'web1',
    mode: 'stop-and-copy',
    sharedStorage: true,
    bundle,
    tcpEstablished: false,
    cpuinfo: '',
    config: await readFile(path.join(bundle, 'config.json'), 'utf8'),
    rootfs: { kind: 'none' },
    ...changes,
  };
}

/** Offers web1 over storage both sides see (the bundle's rootfs stays where it is); the accept awaited. */
async function offerShared(source: MessageChannel, bundle: string, mode: OfferMessage['mode']): Promise<void> {
  await source.send(await offerOf(bundle, { mode }));
  expect(await source.receive({ timeoutMs: 5_000 }), 'accept');
}

/** The source's word over a connection of its own, and the destination's answer (settled, or its error thrown). */
async function say(receiving: Receiving, moved: boolean): Promise<void> {
  const channel = await receiving.connect();
  await channel.send({ type: 'verdict', id: 'web1', token: TOKEN, moved });
  expect(await channel.receive({ timeoutMs: 5_000 }), 'settled');
}

test('a step out of its turn is refused before anything acts on it, and nothing of the migration is left', async (t) => {
  const { runtime, source } = await receiverAndSource(t);
  await offerShared(source, runtime.bundleDir, 'stop-and-copy');
  await source.send({ type: 'restore' });
  const error = await t.throwsAsync(async () => expect(await source.receive({ timeoutMs: 5_000 }), 'restored'), { instanceOf: MigrationPeerError });
  t.is(error?.code, 'MIGRATION_PROTOCOL');
  t.regex(error?.message ?? '', /a restore message where the protocol expects images/);
  t.deepEqual(
    runtime.fakes.criu.calls.filter((call) => call.op === 'restore'),
    [],
  );
  t.false(existsSync(path.join(runtime.context.config.checkpointRoot, 'web1')));
  t.false(await runtime.context.store.exists('web1'));
});

test('pre-copy: rounds come in order, the final dump after one at least; a round out of its turn is refused and nothing is left', async (t) => {
  for (const [steps, refused] of [
    [[{ type: 'dump' }], /a dump message where the protocol expects pre-dump/],
    [[{ type: 'pre-dump', round: 2 }], /pre-dump round 2 where round 1 comes next/],
    [
      [
        { type: 'pre-dump', round: 1 },
        { type: 'pre-dump', round: 1 },
      ],
      /pre-dump round 1 where round 2 comes next/,
    ],
    [
      [
        { type: 'pre-dump', round: 1 },
        { type: 'images', files: 0, bytes: 0 },
      ],
      /a images message where the protocol expects dump/,
    ],
  ] as const) {
    const { runtime, source } = await receiverAndSource(t);
    await offerShared(source, runtime.bundleDir, 'pre-copy');
    let answer;
    for (const step of steps) {
      await source.send(step);
      answer = await source
        .receive({ timeoutMs: 5_000 })
        .then((message) => expect(message, 'page-server'))
        .catch((error: unknown) => error);
    }
    t.true(answer instanceof MigrationPeerError, JSON.stringify(steps));
    t.regex((answer as MigrationPeerError).message, refused);
    t.is((answer as MigrationPeerError).code, 'MIGRATION_PROTOCOL');
    t.false(existsSync(path.join(runtime.context.config.checkpointRoot, 'web1')));
  }
});

test('an offer whose memory and rootfs do not fit in the free space here is refused before anything stops, naming both', async (t) => {
  const { runtime, source } = await receiverAndSource(t);
  await source.send(
    await offerOf(runtime.bundleDir, {
      sharedStorage: false,
      rootfs: { kind: 'directory', path: '/srv/web1/rootfs' },
      imageBytes: 2 ** 50,
      rootfsBytes: 3 * 1024 * 1024,
    }),
  );
  const error = await t.throwsAsync(async () => expect(await source.receive({ timeoutMs: 5_000 }), 'accept'), { instanceOf: MigrationPeerError });
  t.is(error?.code, 'MIGRATION_REFUSED');
  t.regex(error?.message ?? '', /web1 needs about [\d.]+ GiB in .* \(its memory 1048576\.0 GiB, rootfs 3\.0 MiB\), which has [\d.]+ [KMG]iB free/);
  t.deepEqual(
    runtime.fakes.criu.calls.filter((call) => call.op === 'startPageServer'),
    [],
  );
  t.false(existsSync(path.join(runtime.context.config.checkpointRoot, 'web1')));
});

test("a container made from an image this host's store does not hold is refused before anything stops, naming the image; no place is made for it", async (t) => {
  const { runtime, source } = await receiverAndSource(t);
  const digest = `sha256:${'ab'.repeat(32)}`;
  const offer = await offerOf(runtime.bundleDir, {
    sharedStorage: false,
    bundle: '/var/lib/runtime/images/containers/web1/bundle',
    rootfs: { kind: 'image', manifestDigest: digest, reference: 'oci:/images/redis:7', place: '/var/lib/runtime/images/containers/web1' },
  });
  // Its network files are bind-mounted from its place on the source, which this host has not.
  const config = {
    ...JSON.parse(offer.config),
    mounts: [{ destination: '/etc/hosts', type: 'bind', source: '/var/lib/runtime/images/containers/web1/hosts' }],
  };
  await source.send({ ...offer, config: JSON.stringify(config) });
  const error = await t.throwsAsync(async () => expect(await source.receive({ timeoutMs: 5_000 }), 'accept'), { instanceOf: MigrationPeerError });
  t.is(error?.code, 'IMAGE_NOT_STORED');
  t.regex(error?.message ?? '', new RegExp(`no image oci:/images/redis:7 \\(${digest}\\) in the store`));
  t.regex(error?.hint ?? '', /runtime images add REF/);
  t.false(existsSync(path.join(runtime.context.config.imageRoot, 'containers', 'web1')));
  t.false(existsSync(path.join(runtime.context.config.checkpointRoot, 'web1')));
});

test("an image container's place that is not an absolute, normal path is refused: the spec's paths below it would not be its own", async (t) => {
  for (const place of ['containers/web1', '/var/lib/runtime/images/../../../etc', '/']) {
    const { runtime, source } = await receiverAndSource(t);
    const rootfs = { kind: 'image', manifestDigest: `sha256:${'ab'.repeat(32)}`, reference: 'oci:/images/redis:7', place } as const;
    await source.send(await offerOf(runtime.bundleDir, { sharedStorage: false, rootfs }));
    const error = await t.throwsAsync(async () => expect(await source.receive({ timeoutMs: 5_000 }), 'accept'), { instanceOf: MigrationPeerError });
    t.is(error?.code, 'MIGRATION_REFUSED', place);
    t.regex(error?.message ?? '', /is not an absolute, normal path below \//);
  }
});

test('a word that a migration moved, of which nothing was restored here, is refused, naming it', async (t) => {
  const receiving = await receiverAndSource(t);
  const error = await t.throwsAsync(say(receiving, true), { instanceOf: MigrationPeerError });
  t.is(error?.code, 'MIGRATION_REFUSED');
  t.regex(error?.message ?? '', /no migration of web1 by that token was restored here/);
  t.false(receiving.events.some((line) => /runs here now/.test(line)));
});

test('the word, said again over new connections once the channel broke after restored: the copy held stopped runs on done, a word said twice is answered the same, a later abort drops it, and a copy dropped is not brought back', async (t) => {
  // The source's checkpoint, made by the fake runtime; the destination's monitor answers as if it restored.
  const from = await fakeRuntime(t);
  await runningContainer(from, 'web1');
  await checkpoint(from.context, { id: 'web1' });
  const images = (await execa('tar', ['--create', '--file=-', '-C', defaultImagePath(from.context, 'web1'), '.'], { encoding: 'buffer' })).stdout;
  const to = await fakeRuntime(t);
  to.fakes.monitors.launchMode = { kind: 'answer', pid: 777 };
  const receiving = await receiverAndSource(t, to);
  const { source } = receiving;

  await offerShared(source, from.bundleDir, 'post-copy');
  await source.send({ type: 'images', files: 0, bytes: images.length });
  await source.sendStream(
    (async function* () {
      yield Buffer.from(images);
    })(),
  );
  await source.send({ type: 'restore' });
  t.is(expect(await source.receive({ timeoutMs: 5_000 }), 'restored').pid, 777);
  t.like(to.fakes.monitors.launched[0], { kind: 'restore', id: 'web1', leaveStopped: true });
  source.destroy();
  await waitUntil(() => receiving.events.some((line) => /web1 is held stopped here/.test(line)));
  const cgroupPath = (await to.context.store.load('web1')).cgroupPath;
  const resumes = () => to.fakes.cgroups.callsOf('signal').filter((call) => call.cgroupPath === cgroupPath && call.signal === 'SIGCONT').length;
  t.is(resumes(), 0, 'held stopped');

  await say(receiving, true);
  t.is(resumes(), 1);
  await say(receiving, true);
  t.is(resumes(), 1, 'said twice, done once');

  await say(receiving, false);
  t.false(await to.context.store.exists('web1'));
  t.false(existsSync(path.join(to.context.config.checkpointRoot, 'web1')));
  await say(receiving, false);
  const error = await t.throwsAsync(say(receiving, true), { instanceOf: MigrationPeerError });
  t.regex(error?.message ?? '', /was dropped here on its source's earlier word/);
});

test('an abort of a migration that holds nothing here is settled at once: there is nothing to drop', async (t) => {
  const receiving = await receiverAndSource(t);
  await say(receiving, false);
  t.true(receiving.events.some((line) => /web1 stays on its source: nothing of that migration is here/.test(line)));
});

async function waitUntil(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i++) await new Promise((r) => setTimeout(r, 25));
  if (!condition()) throw new Error('timed out');
}
