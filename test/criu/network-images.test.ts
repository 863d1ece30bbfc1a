/**
 * The `ip` and `iptables` images of a network namespace dump that only restate the kernel's defaults
 * are removed; anything else is kept. The images are a real dump's: a runc container with lo only,
 * checkpointed by CRIU 4.2.1 on this machine's kernel (6.18).
 */
import test from 'ava';
import { chmod, readFile, writeFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import {
  dropRestoreLock,
  dumpLockRuleset,
  removeDefaultNetworkImages,
  isDefaultAddressDump,
  isDefaultRuleDump,
  isEmptyRouteDump,
} from '../../src/criu/network-images.js';
import { decodeImage, encodeImage, type ImageEntry } from '../../src/criu/images/index.js';
import { tempDir } from '../runtime/fixtures.js';

const hex = (text: string) => Buffer.from(text, 'hex');

/** lo's 127.0.0.1/8 (label lo, permanent) and ::1/128 (permanent, proto kernel_lo). */
const ifaddr = hex(
  '221236474c00000014000200e48f0e6b2d330000020880fe01000000080001007f000001080002007f000001070003006c6f0000080008008000000014000600ffffffffffffffffa3470300a34703005000000014000200e48f0e6b2d3300000a8080fe01000000140001000000000000000000000000000000000114000600ffffffffffffffffa3470300a3470300080008008000000005000b0001000000',
);
/** The default rules: local (priority 0), main (32766), default (32767). */
const rules = hex(
  '866970713400000020000200e48f0e6b3033000002000000ff0000010000000008000f00ff00000008000e00ffffffff05001500020000003c00000020000200e48f0e6b3033000002000000fe0000010000000008000f00fe00000008000e00ffffffff050015000200000008000600fe7f00003c00000020000200e48f0e6b3033000002000000fd0000010000000008000f00fd00000008000e00ffffffff050015000200000008000600ff7f0000',
);
const noRoutes = hex('24123145');

/**
 * A copy of `image` with the byte at `offset` set to `value`. Offsets count the 4-byte magic: a
 * message's netlink header follows it (16 bytes), then ifaddrmsg (family, prefix length, flags,
 * scope, index) or fib_rule_hdr (family, dst_len, src_len, tos, table, res, res, action, flags),
 * then the attributes.
 */
function patched(image: Buffer, offset: number, value: number): Buffer {
  const copy = Buffer.from(image);
  copy[offset] = value;
  return copy;
}

test("a real dump's images of lo alone are the kernel's defaults", (t) => {
  t.true(isDefaultAddressDump(ifaddr));
  t.true(isDefaultRuleDump(rules));
  t.true(isEmptyRouteDump(noRoutes));
});

test('an address other than lo defaults is kept', (t) => {
  // 127.0.0.2 in IFA_LOCAL of the first message.
  t.false(isDefaultAddressDump(patched(ifaddr, 0x2b, 2)));
  // /16 instead of /8.
  t.false(isDefaultAddressDump(patched(ifaddr, 0x15, 16)));
  // On interface 2, not lo.
  t.false(isDefaultAddressDump(patched(ifaddr, 0x18, 2)));
  // Only the IPv4 address (lo's ::1 removed by the user): restoring must remove it too.
  t.false(isDefaultAddressDump(ifaddr.subarray(0, 4 + 0x4c)));
  // A third address after the two.
  t.false(isDefaultAddressDump(Buffer.concat([ifaddr, ifaddr.subarray(4, 4 + 0x4c)])));
  // Flags other than permanent (IFA_F_NODAD).
  t.false(isDefaultAddressDump(patched(ifaddr, 0x16, 0x82)));
});

test('a rule other than the defaults, or a default missing, is kept', (t) => {
  // The main rule's priority moved from 32766 to 32765.
  t.false(isDefaultRuleDump(patched(rules, 0x70, 0xfd)));
  // A selector: from /8.
  t.false(isDefaultRuleDump(patched(rules, 0x16, 8)));
  // Only the first rule: the user deleted main and default.
  t.false(isDefaultRuleDump(rules.subarray(0, 4 + 0x34)));
  // No rule at all.
  t.false(isDefaultRuleDump(rules.subarray(0, 4)));
  // Lookup table 100 instead of main.
  t.false(isDefaultRuleDump(patched(patched(rules, 0x4c, 100), 0x58, 100)));
});

test('a route, a wrong magic or a truncated image is kept', (t) => {
  t.false(isEmptyRouteDump(Buffer.concat([noRoutes, rules.subarray(4)])));
  t.false(isEmptyRouteDump(hex('24123146')));
  t.false(isDefaultAddressDump(ifaddr.subarray(0, ifaddr.length - 3)));
  t.false(isDefaultRuleDump(rules.subarray(0, rules.length - 1)));
  t.false(isDefaultAddressDump(rules));
});

test('removeDefaultNetworkImages removes the default images of each dumped namespace, and only those', async (t) => {
  const dir = await tempDir(t);
  await writeFile(path.join(dir, 'netns-10.img'), 'netns');
  await writeFile(path.join(dir, 'ifaddr-10.img'), ifaddr);
  await writeFile(path.join(dir, 'route-10.img'), noRoutes);
  await writeFile(path.join(dir, 'route6-10.img'), noRoutes);
  await writeFile(path.join(dir, 'rule-10.img'), rules);
  await writeFile(path.join(dir, 'iptables-10.img'), '');
  await writeFile(path.join(dir, 'ip6tables-10.img'), '');
  // A second namespace whose rules were changed and which has a firewall rule.
  await writeFile(path.join(dir, 'netns-12.img'), 'netns');
  const changed = patched(rules, 0x70, 0xfd);
  await writeFile(path.join(dir, 'rule-12.img'), changed);
  await writeFile(path.join(dir, 'route-12.img'), noRoutes);
  const firewall = '*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 22 -j DROP\nCOMMIT\n';
  await writeFile(path.join(dir, 'iptables-12.img'), firewall);
  // Images of no dumped namespace are not touched.
  await writeFile(path.join(dir, 'route-99.img'), noRoutes);

  const removed = await removeDefaultNetworkImages(dir);
  t.deepEqual(removed.sort(), ['ifaddr-10.img', 'ip6tables-10.img', 'iptables-10.img', 'route-10.img', 'route-12.img', 'route6-10.img', 'rule-10.img']);
  t.deepEqual((await readdir(dir)).sort(), ['iptables-12.img', 'netns-10.img', 'netns-12.img', 'route-99.img', 'rule-12.img']);
  t.deepEqual(await readFile(path.join(dir, 'rule-12.img')), changed);
  t.is(await readFile(path.join(dir, 'iptables-12.img'), 'utf8'), firewall);
  t.deepEqual(await readFile(path.join(dir, 'route-99.img')), noRoutes);
  // Idempotent.
  t.deepEqual(await removeDefaultNetworkImages(dir), []);
});

const runId = 'fae37590-c764-4d94-bc17-ea9e32f3d278';
/** The ruleset image of a real dump here (CRIU 4.2.1, nftables 1.0.6): CRIU's lock table alone. */
const lockRuleset =
  'table inet CRIU-fae37590-c764-4d94-bc {\n\tchain output {\n\t\ttype filter hook output priority filter; policy drop;\n\t\tmeta mark 0x0000c114 accept\n\t}\n\n' +
  '\tchain input {\n\t\ttype filter hook input priority filter; policy drop;\n\t\tmeta mark 0x0000c114 accept\n\t}\n}\n';
const lo = { type: 'LOOPBACK', ifindex: 1, mtu: 65536, flags: 65609, name: 'lo' };

async function lockedDump(
  t: Parameters<typeof tempDir>[0],
  options: { devices?: object[]; method?: number; ruleset?: string; namespaces?: string[] } = {},
): Promise<string> {
  const dir = await tempDir(t);
  for (const id of options.namespaces ?? ['10']) await writeFile(path.join(dir, `netns-${id}.img`), 'netns');
  await writeFile(path.join(dir, 'netdev-10.img'), encodeImage({ magic: 'NETDEV', entries: (options.devices ?? [lo]) as ImageEntry[] }));
  const inventory = { img_version: 2, network_lock_method: options.method ?? 1, dump_criu_run_id: runId };
  await writeFile(path.join(dir, 'inventory.img'), encodeImage({ magic: 'INVENTORY', entries: [inventory as ImageEntry] }));
  await chmod(path.join(dir, 'inventory.img'), 0o640);
  await writeFile(path.join(dir, 'nftables-10.img'), options.ruleset ?? lockRuleset);
  return dir;
}

test("dumpLockRuleset: the ruleset of CRIU's lock table, named after the dump's run id cut to CRIU's 32 bytes", (t) => {
  t.is(dumpLockRuleset(runId), lockRuleset);
});

test("dropRestoreLock: a namespace with lo alone and CRIU's lock alone loses the ruleset image, and the inventory says no lock", async (t) => {
  const dir = await lockedDump(t);
  t.true(await dropRestoreLock(dir));
  t.deepEqual((await readdir(dir)).sort(), ['inventory.img', 'netdev-10.img', 'netns-10.img']);
  const inventory = await decodeImage(path.join(dir, 'inventory.img'));
  t.deepEqual(inventory.entries, [{ img_version: 2, network_lock_method: 2, dump_criu_run_id: runId }]);
  t.is((await stat(path.join(dir, 'inventory.img'))).mode & 0o777, 0o640, 'the inventory keeps its mode');
  // Once done, nothing more to do.
  t.false(await dropRestoreLock(dir));
});

test('dropRestoreLock: another device, another rule, another lock method or a second namespace keeps the lock', async (t) => {
  const veth = { ...lo, type: 'VETH', ifindex: 2, name: 'eth0' };
  const withRule = lockRuleset.replace('meta mark 0x0000c114 accept\n\t}\n}', 'meta mark 0x0000c114 accept\n\t\ttcp dport 22 drop\n\t}\n}');
  const cases = [
    { devices: [lo, veth] },
    { ruleset: withRule },
    { ruleset: `${lockRuleset}table inet filter {\n}\n` },
    { ruleset: lockRuleset.replace('CRIU-fae37590', 'CRIU-00000000') },
    { method: 0 },
    { namespaces: ['10', '12'] },
  ];
  for (const options of cases) {
    const dir = await lockedDump(t, options);
    t.false(await dropRestoreLock(dir), JSON.stringify(options));
    t.true((await readdir(dir)).includes('nftables-10.img'));
    t.is(((await decodeImage(path.join(dir, 'inventory.img'))).entries[0] as { network_lock_method: number }).network_lock_method, options.method ?? 1);
  }
});
