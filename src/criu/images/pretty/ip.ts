/**
 * IP addresses as pycriu prints and reads `(criu).ipadd` fields: repeated u32 words in network
 * byte order (on this little-endian host, socket.ntohl swaps them), shown with Python's
 * ipaddress module: IPv4 for one word, IPv6 (compressed) for four. crit runs on the host's
 * python3 (bookworm's 3.11), which prints an IPv4-mapped address in hex like any other
 * ("::ffff:a00:1"); Python 3.13 would print "::ffff:10.0.0.1".
 */

function words(value: readonly number[], count: number): Uint8Array {
  const bytes = new Uint8Array(count * 4);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < count; i++) view.setUint32(i * 4, value[i]!, true);
  return bytes;
}

function ipv4Text(b: Uint8Array, at = 0): string {
  return `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
}

/** Python's IPv6Address._compress_hextets joined with ':'. */
function compressHextets(hextets: string[]): string {
  let bestStart = -1;
  let bestLength = 0;
  let start = -1;
  let length = 0;
  hextets.forEach((h, i) => {
    if (h === '0') {
      length++;
      if (start === -1) start = i;
      if (length > bestLength) {
        bestLength = length;
        bestStart = start;
      }
    } else {
      length = 0;
      start = -1;
    }
  });
  const out = [...hextets];
  if (bestLength > 1) {
    const end = bestStart + bestLength;
    if (end === out.length) out.push('');
    out.splice(bestStart, bestLength, '');
    if (bestStart === 0) out.unshift('');
  }
  return out.join(':');
}

function hextetsOf(b: Uint8Array, count: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < count; i++) out.push(((b[i * 2]! << 8) | b[i * 2 + 1]!).toString(16));
  return out;
}

/**
 * The address text for the words of an ipadd field, or undefined when pycriu would fail
 * (two or three words: it indexes four).
 */
export function formatIpWords(value: readonly number[]): string | undefined {
  if (value.length === 1) return ipv4Text(words(value, 1));
  if (value.length < 4) return undefined;
  return compressHextets(hextetsOf(words(value, 4), 8));
}

function parseIpv4(text: string): Uint8Array | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (const [i, part] of parts.entries()) {
    if (!/^[0-9]{1,3}$/.test(part) || (part.length > 1 && part.startsWith('0'))) return undefined;
    const n = Number(part);
    if (n > 255) return undefined;
    out[i] = n;
  }
  return out;
}

function parseIpv6(text: string): Uint8Array | undefined {
  const address = text.split('%')[0]!;
  const halves = address.split('::');
  if (halves.length > 2) return undefined;
  const part = (s: string): string[] => (s === '' ? [] : s.split(':'));
  const head = part(halves[0]!);
  const tail = halves.length === 2 ? part(halves[1]!) : [];
  const groups: number[] = [];
  const all = [...head, ...tail];
  const last = all[all.length - 1];
  let v4: Uint8Array | undefined;
  if (last !== undefined && last.includes('.')) {
    v4 = parseIpv4(last);
    if (!v4) return undefined;
    (tail.length ? tail : head).pop();
  }
  for (const h of [...head, ...tail]) if (!/^[0-9a-fA-F]{1,4}$/.test(h)) return undefined;
  const explicit = head.length + tail.length + (v4 ? 2 : 0);
  if (halves.length === 2 ? explicit > 7 : explicit !== 8) return undefined;
  groups.push(...head.map((h) => parseInt(h, 16)));
  if (halves.length === 2) for (let i = explicit; i < 8; i++) groups.push(0);
  groups.push(...tail.map((h) => parseInt(h, 16)));
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    out[i * 2] = g >> 8;
    out[i * 2 + 1] = g & 0xff;
  });
  if (v4) out.set(v4, 12);
  return out;
}

/** The words dict2pb stores for an address string (ipaddress.ip_address), or undefined if invalid. */
export function parseIpWords(text: string): number[] | undefined {
  const bytes = parseIpv4(text) ?? (text.includes(':') ? parseIpv6(text) : undefined);
  if (!bytes) return undefined;
  const view = new DataView(bytes.buffer);
  const out: number[] = [];
  for (let i = 0; i < bytes.length; i += 4) out.push(view.getUint32(i, true));
  return out;
}
