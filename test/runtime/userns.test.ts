import 'reflect-metadata';
import test from 'ava';
import { chmod, mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { checkpoint } from '../../src/runtime/checkpoint.js';
import { reset, Resetter } from '../../src/runtime/reset.js';
import { containerRoot, requireLazyPagesAllowed, shareWithContainerRoot, UserfaultfdRestrictedError } from '../../src/runtime/userns.js';
import type { Spec } from '../../src/runtime/oci/index.js';
import { FakeProcesses } from '../helpers/fakes.js';
import { fakeRuntime, runningContainer } from '../helpers/fake-runtime.js';

// The host ids of the container's root are this test's own, so that no root is needed to chgrp.
const uid = process.getuid?.() ?? 0;
const gid = process.getgid?.() ?? 0;

function usernsSpec(extra: Partial<NonNullable<Spec['linux']>> = {}): Spec {
  return {
    ociVersion: '1.0.2',
    linux: {
      namespaces: [{ type: 'pid' }, { type: 'mount' }, { type: 'user' }],
      uidMappings: [
        { containerID: 1000, hostID: 5000, size: 1 },
        { containerID: 0, hostID: uid, size: 1 },
      ],
      gidMappings: [{ containerID: 0, hostID: gid, size: 1 }],
      ...extra,
    },
  } as Spec;
}

const plainSpec = { ociVersion: '1.0.2', linux: { namespaces: [{ type: 'pid' }, { type: 'mount' }] } } as Spec;

/** The runtime's test bundle, with a user namespace whose root is this test's own uid and gid. */
function withUserNamespace(spec: Record<string, unknown>): void {
  const linux = spec.linux as { namespaces: { type: string }[]; uidMappings?: unknown; gidMappings?: unknown };
  linux.namespaces.push({ type: 'user' });
  linux.uidMappings = [{ containerID: 0, hostID: uid, size: 1 }];
  linux.gidMappings = [{ containerID: 0, hostID: gid, size: 1 }];
}

async function tempDir(t: { teardown(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'userns-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test("containerRoot is the host uid and gid of the container's id 0", (t) => {
  t.deepEqual(containerRoot(usernsSpec()), { uid, gid });
  t.is(containerRoot(plainSpec), undefined, 'no user namespace');
  t.is(containerRoot(usernsSpec({ namespaces: [{ type: 'user', path: '/proc/1/ns/user' }] })), undefined, 'a namespace joined by path');
  t.is(containerRoot(usernsSpec({ uidMappings: [{ containerID: 1000, hostID: 5000, size: 1 }] })), undefined, 'root not mapped');
});

test("shareWithContainerRoot gives the directory to the container's root group, search only, and keeps its owner", async (t) => {
  const dir = await tempDir(t);
  const images = path.join(dir, 'images');
  await mkdir(images, { mode: 0o700 });
  await chmod(images, 0o775);

  await shareWithContainerRoot(images, usernsSpec());

  const after = await stat(images);
  t.is(after.uid, uid);
  t.is(after.gid, gid);
  t.is(after.mode & 0o7777, 0o715, 'the group may only search; the owner and others keep their bits');
  // Done once: a second call (as on a snapshot's read-only view) changes nothing.
  await shareWithContainerRoot(images, usernsSpec());
  t.is((await stat(images)).ctimeMs, after.ctimeMs);
});

test('shareWithContainerRoot leaves the directory of a container without a user namespace alone', async (t) => {
  const dir = await tempDir(t);
  await chmod(dir, 0o700);
  const before = await stat(dir);
  await shareWithContainerRoot(dir, plainSpec);
  const after = await stat(dir);
  t.deepEqual([after.mode, after.gid, after.ctimeMs], [before.mode, before.gid, before.ctimeMs]);
});

test('lazy pages into a user namespace need vm.unprivileged_userfaultfd = 1', async (t) => {
  const processes = new FakeProcesses();
  processes.sysctls['vm.unprivileged_userfaultfd'] = '0';
  await t.throwsAsync(requireLazyPagesAllowed(processes, usernsSpec(), 'db', true), {
    instanceOf: UserfaultfdRestrictedError,
    code: 'USERFAULTFD_RESTRICTED',
    message: /--lazy-pages cannot restore db in its user namespace/,
  });
  await t.notThrowsAsync(requireLazyPagesAllowed(processes, usernsSpec(), 'db', false), 'not lazy');
  await t.notThrowsAsync(requireLazyPagesAllowed(processes, plainSpec, 'db', true), 'no user namespace: CRIU opens it with the privileges it has');
  processes.sysctls['vm.unprivileged_userfaultfd'] = '1';
  await t.notThrowsAsync(requireLazyPagesAllowed(processes, usernsSpec(), 'db', true));
});

test("a snapshot of a user-namespaced container: its images directory is searchable by the container's root group", async (t) => {
  const rt = await fakeRuntime(t, { editSpec: withUserNamespace });
  await runningContainer(rt);
  const { imagePath } = await checkpoint(rt.context, { id: 'web1', name: 'base', leaveRunning: true });
  const images = await stat(imagePath);
  t.is(images.gid, gid);
  t.is(images.mode & 0o777, 0o710);
  t.is((await stat(path.dirname(imagePath))).mode & 0o777, 0o700, 'the snapshot stays root-only');
});

test('a lazy reset of a user-namespaced container on a host that forbids it is refused before the instance is stopped', async (t) => {
  const rt = await fakeRuntime(t, { editSpec: withUserNamespace });
  await runningContainer(rt);
  await checkpoint(rt.context, { id: 'web1', name: 'base', leaveRunning: true });
  rt.fakes.processes.sysctls['vm.unprivileged_userfaultfd'] = '0';

  await t.throwsAsync(reset(rt.context, { id: 'web1', name: 'base', lazyPages: true }), { code: 'USERFAULTFD_RESTRICTED' });

  t.deepEqual(rt.fakes.processes.signals, [], 'nothing was killed');
  t.deepEqual(rt.fakes.cgroups.callsOf('killTree'), []);
  t.deepEqual(rt.fakes.monitors.launched, []);
  t.is((await rt.context.store.load('web1')).status, 'running');
});

test("a reset instance's overlay root takes the owner and mode of the snapshot's top layer", async (t) => {
  const rt = await fakeRuntime(t, { editSpec: withUserNamespace });
  await runningContainer(rt);
  await checkpoint(rt.context, { id: 'web1', name: 'base' });
  const top = rt.context.snapshots.paths('web1', 'base').rootfs;
  await chmod(top, 0o751);
  const resetter = new Resetter(rt.context, 'web1');
  t.teardown(() => resetter.shutdown().catch(() => undefined));

  await resetter.reset({ sourceId: 'web1', name: 'base', standbys: 0, criu: {} });

  const upper = await stat(path.join(rt.context.store.paths('web1').dir, 'instances', '1', 'upper'));
  const lower = await stat(top);
  t.deepEqual([upper.uid, upper.gid, upper.mode & 0o7777], [lower.uid, lower.gid, 0o751]);
});
