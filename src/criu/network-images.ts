/**
 * A dump of a network namespace holds, beside CRIU's own images, what `ip addr save`, `ip route
 * save` (v4 and v6), `ip rule save` and `iptables-save` (v4 and v6) printed; on restore CRIU runs
 * `ip ... restore` for each, `ip rule flush` and `ip rule delete table local` before the rules, and
 * the `iptables-restore`s: eight execs, 35 ms on a quiet machine here and over 100 ms under load,
 * in every restore and every reset. CRIU skips such an image when the file is missing (not when
 * it is empty: `ip` fails on a zero-length dump, and `iptables-restore` runs for nothing).
 *
 * For a namespace that has nothing but lo, up (a container whose ports are published by the
 * runtime's forwarder, which enters the namespace), these images only restate what the kernel
 * gives every new namespace when lo goes up: 127.0.0.1/8 and ::1 on lo (`ip addr restore` even
 * fails on them with "Address already assigned", which ip does not count as an error), no route
 * in the main tables, the three default rules, no firewall rules. Such images are removed after
 * the dump. An image with anything else in it, or that this code cannot read to the last byte,
 * is kept.
 */
import { readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { decodeImage, encodeImage, type ImageEntry } from './images/index.js';
import { replaceFile } from '../system/files.js';

/** iproute2's dump magics (the first 4 bytes, host order), from ip/ipaddress.c, iproute.c, iprule.c. */
const MAGIC = { ifaddr: 0x47361222, route: 0x45311224, rule: 0x71706986 } as const;

const RTM_NEWADDR = 20;
const RTM_NEWRULE = 32;
const AF_INET = 2;
const AF_INET6 = 10;
const RT_SCOPE_HOST = 254;
const LOOPBACK_IFINDEX = 1;
const IFA_F_PERMANENT = 0x80;
const FR_ACT_TO_TBL = 1;
const RTPROT_KERNEL = 2;

const IFA = { address: 1, local: 2, label: 3, cacheinfo: 6, flags: 8, proto: 11 } as const;
/** IFA_PROTO_KERNEL_LO: the kernel's own loopback address. */
const IFA_PROTO_KERNEL_LO = 1;
const FRA = { priority: 6, suppressPrefixlen: 14, table: 15, protocol: 21 } as const;

interface Message {
  readonly type: number;
  readonly body: Buffer;
}

/** The netlink messages after the magic; undefined unless the whole buffer is well formed. */
function messages(image: Buffer, magic: number): Message[] | undefined {
  if (image.length < 4 || image.readUInt32LE(0) !== magic) return undefined;
  const list: Message[] = [];
  let offset = 4;
  while (offset < image.length) {
    if (offset + 16 > image.length) return undefined;
    const length = image.readUInt32LE(offset);
    if (length < 16 || offset + length > image.length) return undefined;
    list.push({ type: image.readUInt16LE(offset + 4), body: image.subarray(offset + 16, offset + length) });
    offset += (length + 3) & ~3;
  }
  return offset === image.length ? list : undefined;
}

/** Route attributes after a fixed header; undefined if malformed or an attribute repeats. */
function attributes(body: Buffer, headerLength: number): Map<number, Buffer> | undefined {
  const found = new Map<number, Buffer>();
  let offset = headerLength;
  while (offset < body.length) {
    if (offset + 4 > body.length) return undefined;
    const length = body.readUInt16LE(offset);
    const type = body.readUInt16LE(offset + 2) & 0x3fff;
    if (length < 4 || offset + length > body.length || found.has(type)) return undefined;
    found.set(type, body.subarray(offset + 4, offset + length));
    offset += (length + 3) & ~3;
  }
  return offset >= body.length ? found : undefined;
}

function only(found: Map<number, Buffer>, allowed: readonly number[]): boolean {
  return [...found.keys()].every((type) => allowed.includes(type));
}

function u32(value: Buffer | undefined): number | undefined {
  return value?.length === 4 ? value.readUInt32LE(0) : undefined;
}

const LOOPBACK_V4 = Buffer.from([127, 0, 0, 1]);
const LOOPBACK_V6 = Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);

/** Exactly lo's two addresses as the kernel assigns them when lo goes up. */
export function isDefaultAddressDump(image: Buffer): boolean {
  const list = messages(image, MAGIC.ifaddr);
  if (!list || list.length !== 2) return false;
  const families = new Set<number>();
  for (const { type, body } of list) {
    if (type !== RTM_NEWADDR || body.length < 8) return false;
    const [family, prefixLength, flags, scope] = [body[0]!, body[1]!, body[2]!, body[3]!];
    if (body.readUInt32LE(4) !== LOOPBACK_IFINDEX || scope !== RT_SCOPE_HOST || (flags & ~IFA_F_PERMANENT) !== 0) return false;
    const found = attributes(body, 8);
    if (!found || !only(found, [IFA.address, IFA.local, IFA.label, IFA.cacheinfo, IFA.flags, IFA.proto])) return false;
    const extraFlags = u32(found.get(IFA.flags));
    if (extraFlags !== undefined && (extraFlags & ~IFA_F_PERMANENT) !== 0) return false;
    const proto = found.get(IFA.proto);
    if (proto !== undefined && (proto.length !== 1 || proto[0] !== IFA_PROTO_KERNEL_LO)) return false;
    if (family === AF_INET) {
      const label = found.get(IFA.label);
      if (prefixLength !== 8 || !found.get(IFA.address)?.equals(LOOPBACK_V4) || !found.get(IFA.local)?.equals(LOOPBACK_V4)) return false;
      if (label === undefined || label.toString('latin1').replace(/\0+$/, '') !== 'lo') return false;
    } else if (family === AF_INET6) {
      if (prefixLength !== 128 || !found.get(IFA.address)?.equals(LOOPBACK_V6) || found.has(IFA.local) || found.has(IFA.label)) return false;
    } else {
      return false;
    }
    families.add(family);
  }
  return families.size === 2;
}

/** No route at all: `ip route save` found nothing in the main table. */
export function isEmptyRouteDump(image: Buffer): boolean {
  return messages(image, MAGIC.route)?.length === 0;
}

/** The kernel's default rules of a new namespace: lookup local (0), main (32766), default (32767). */
const DEFAULT_RULES: Record<number, readonly (readonly [priority: number, table: number])[]> = {
  [AF_INET]: [
    [0, 255],
    [32766, 254],
    [32767, 253],
  ],
  [AF_INET6]: [
    [0, 255],
    [32766, 254],
  ],
};

/** Exactly the default rules (of IPv4, and of IPv6 if it was saved), nothing else. */
export function isDefaultRuleDump(image: Buffer): boolean {
  const list = messages(image, MAGIC.rule);
  if (!list) return false;
  const seen = new Map<number, string[]>();
  for (const { type, body } of list) {
    if (type !== RTM_NEWRULE || body.length < 12) return false;
    // struct fib_rule_hdr: family, dst_len, src_len, tos, table, res1, res2, action, flags.
    const [family, dstLength, srcLength, tos, table, , , action] = body;
    if (dstLength !== 0 || srcLength !== 0 || tos !== 0 || action !== FR_ACT_TO_TBL || body.readUInt32LE(8) !== 0) return false;
    const found = attributes(body, 12);
    if (!found || !only(found, [FRA.table, FRA.priority, FRA.protocol, FRA.suppressPrefixlen])) return false;
    if (u32(found.get(FRA.table)) !== table) return false;
    const suppress = found.get(FRA.suppressPrefixlen);
    if (suppress !== undefined && u32(suppress) !== 0xffffffff) return false;
    const protocol = found.get(FRA.protocol);
    if (protocol !== undefined && (protocol.length !== 1 || protocol[0] !== RTPROT_KERNEL)) return false;
    const priority = found.has(FRA.priority) ? u32(found.get(FRA.priority)) : 0;
    if (priority === undefined || DEFAULT_RULES[family!] === undefined) return false;
    seen.set(family!, [...(seen.get(family!) ?? []), `${priority}:${table}`]);
  }
  if (!seen.has(AF_INET)) return false;
  for (const [family, rules] of seen) {
    const expected = DEFAULT_RULES[family]!.map(([priority, table]) => `${priority}:${table}`);
    if (rules.length !== expected.length || !expected.every((rule) => rules.includes(rule))) return false;
  }
  return true;
}

/** iptables-save printed nothing: the legacy tables were never loaded in the namespace. */
function isEmptyFirewallDump(image: Buffer): boolean {
  return image.length === 0;
}

const checks: readonly { readonly prefix: string; readonly isDefault: (image: Buffer) => boolean }[] = [
  { prefix: 'ifaddr', isDefault: isDefaultAddressDump },
  { prefix: 'route', isDefault: isEmptyRouteDump },
  { prefix: 'route6', isDefault: isEmptyRouteDump },
  { prefix: 'rule', isDefault: isDefaultRuleDump },
  { prefix: 'iptables', isDefault: isEmptyFirewallDump },
  { prefix: 'ip6tables', isDefault: isEmptyFirewallDump },
];

/**
 * Removes the images of each dumped network namespace in `dir` that only restate the kernel's
 * defaults (see above). Returns the names of the images it removed.
 */
export async function removeDefaultNetworkImages(dir: string): Promise<string[]> {
  const names = await readdir(dir);
  const namespaces = names.map((name) => /^netns-(\d+)\.img$/.exec(name)?.[1]).filter((id): id is string => id !== undefined);
  const removed: string[] = [];
  for (const id of namespaces) {
    for (const { prefix, isDefault } of checks) {
      const name = `${prefix}-${id}.img`;
      if (!names.includes(name)) continue;
      const file = path.join(dir, name);
      const image = await readFile(file);
      if (isDefault(image)) {
        await rm(file);
        removed.push(name);
      }
    }
  }
  return removed;
}

/** CRIU's numbering of the network lock in the inventory (not the RPC's). */
const LOCK_NFTABLES = 1;
const LOCK_SKIP = 2;
/** The mark CRIU's own packets carry through its lock (soccr's SOCCR_MARK). */
const CRIU_MARK = '0x0000c114';

/**
 * The ruleset `nft list ruleset` prints for the table CRIU locks a namespace with at the dump,
 * and nothing else. The table is named after the dump's run id, cut to fit CRIU's 32 bytes
 * ("inet CRIU-" and 21 characters).
 */
export function dumpLockRuleset(runId: string): string {
  const chain = (hook: string) =>
    `\tchain ${hook} {\n\t\ttype filter hook ${hook} priority filter; policy drop;\n\t\tmeta mark ${CRIU_MARK} accept\n\t}\n`;
  return `table inet CRIU-${runId.slice(0, 21)} {\n${chain('output')}\n${chain('input')}}\n`;
}

/**
 * A dump locks the network namespace with an nftables table (the default method), and its
 * ruleset image then holds that table: a restore puts it back, so the restored namespace stays
 * locked, and deletes it once the tasks run (libnftables twice, about 11 ms of a 45 ms restore
 * on a quiet machine here). The lock keeps packets away from the sockets until all are restored.
 * In a namespace whose only device is lo, none can come: the tasks' own TCP sockets are in repair
 * mode until the end, and no one outside has an interface in it.
 *
 * For such a dump (one network namespace, lo alone, a ruleset that is CRIU's lock and nothing
 * else), the ruleset image is removed and the inventory says no lock was taken, so the restore
 * neither locks nor unlocks. The image goes first: should the inventory then fail to change,
 * the restore at worst runs nftables for a lock that is not there. Returns whether it did.
 */
export async function dropRestoreLock(dir: string): Promise<boolean> {
  const names = await readdir(dir);
  const namespaces = names.map((name) => /^netns-(\d+)\.img$/.exec(name)?.[1]).filter((id): id is string => id !== undefined);
  if (namespaces.length !== 1) return false;
  const id = namespaces[0]!;
  const ruleset = path.join(dir, `nftables-${id}.img`);
  if (!names.includes(`nftables-${id}.img`) || !names.includes(`netdev-${id}.img`)) return false;
  const devices = (await decodeImage(path.join(dir, `netdev-${id}.img`))).entries as { type?: unknown }[];
  if (devices.length === 0 || devices.some((device) => device.type !== 'LOOPBACK')) return false;
  const inventoryFile = path.join(dir, 'inventory.img');
  const inventory = await decodeImage(inventoryFile);
  const entry = inventory.entries[0] as { network_lock_method?: unknown; dump_criu_run_id?: unknown } | undefined;
  if (inventory.entries.length !== 1 || entry?.network_lock_method !== LOCK_NFTABLES || typeof entry.dump_criu_run_id !== 'string') return false;
  if ((await readFile(ruleset, 'utf8')) !== dumpLockRuleset(entry.dump_criu_run_id)) return false;
  await rm(ruleset);
  await replaceFile(inventoryFile, encodeImage({ magic: inventory.magic, entries: [{ ...entry, network_lock_method: LOCK_SKIP } as ImageEntry] }));
  return true;
}
