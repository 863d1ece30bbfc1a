/**
 * The Python behaviours pycriu's output depends on, checked against the Python that runs crit on
 * random inputs: quoted-printable (unix socket names), base64 encodebytes/decodebytes, json.dumps
 * (plain and indent=4), repr(bytes), ipaddress text, device numbers, int(s, 0).
 */
import anyTest, { type TestFn } from 'ava';
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { pythonBytesRepr } from '../../../src/criu/images/descriptors/python-bytes.js';
import { formatDev, makeDev } from '../../../src/criu/images/pretty/dev.js';
import { formatIpWords, parseIpWords } from '../../../src/criu/images/pretty/ip.js';
import { parsePyInt0 } from '../../../src/criu/images/pretty/python-int.js';
import { decodeBytesPython, encodeBytesPython } from '../../../src/criu/images/text/base64.js';
import { formatPythonJson, parsePythonJson } from '../../../src/criu/images/text/python-json.js';
import { quopriDecode, quopriEncode } from '../../../src/criu/images/text/quopri.js';
import type { CritJsonValue } from '../../../src/criu/images/types.js';
import { requiring } from './helpers.js';

const python = '/usr/bin/python3';
const test = requiring(anyTest as TestFn, 'python parity tests (/usr/bin/python3)', existsSync(python) ? undefined : `${python} is missing`);

const script = String.raw`
import base64, binascii, json, os, quopri, socket, sys
from ipaddress import IPv4Address, IPv6Address, ip_address
out = []
for kind, arg in json.load(sys.stdin):
    try:
        if kind == 'qp':
            b = bytes.fromhex(arg); e = quopri.encodestring(b).decode()
            out.append([e, quopri.decodestring(e).hex()])
        elif kind == 'qpdecode':
            out.append(quopri.decodestring(arg).hex())
        elif kind == 'b64':
            out.append(base64.encodebytes(bytes.fromhex(arg)).decode())
        elif kind == 'b64decode':
            out.append(base64.decodebytes(str.encode(arg)).hex())
        elif kind == 'json':
            out.append([json.dumps(arg), json.dumps(arg, indent=4)])
        elif kind == 'repr':
            out.append(str(bytes.fromhex(arg)))
        elif kind == 'ip':
            v = arg
            if len(v) == 1:
                out.append(IPv4Address(socket.ntohl(v[0])).compressed)
            else:
                n = (socket.ntohl(v[0]) << 96) + (socket.ntohl(v[1]) << 64) + (socket.ntohl(v[2]) << 32) + socket.ntohl(v[3])
                out.append(IPv6Address(n).compressed)
        elif kind == 'ipparse':
            val = ip_address(arg)
            if val.version == 4:
                out.append([socket.htonl(int(val))])
            else:
                i = int(val)
                out.append([socket.htonl((i >> s) & 0xFFFFFFFF) for s in (96, 64, 32, 0)])
        elif kind == 'dev':
            v = int(arg)
            out.append(['%d:%d' % (v >> 20, v & ((1 << 20) - 1)), '%d:%d' % (os.major(v), os.minor(v))])
        elif kind == 'makedev':
            a, b = arg
            out.append([str(a << 20 | b), str(os.makedev(a, b))])
        elif kind == 'int0':
            out.append(str(int(arg, 0)))
    except Exception as exc:
        out.append({'error': type(exc).__name__})
json.dump(out, sys.stdout)
`;

type Task = [kind: string, arg: unknown];

async function runPython(tasks: Task[]): Promise<unknown[]> {
  const { stdout } = await execa(python, ['-c', script], { input: JSON.stringify(tasks) });
  return JSON.parse(stdout) as unknown[];
}

function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const rnd = random(Number(process.env.RUNTIME_FUZZ_SEED ?? 12345));
const int = (n: number): number => Math.floor(rnd() * n);
const alphabet = [0x00, 0x09, 0x0a, 0x0d, 0x20, 0x2e, 0x3d, 0x41, 0x5f, 0x61, 0x7e, 0x7f, 0x80, 0xc3, 0xa9, 0xff];
function randomBytes(): string {
  const length = int(4) === 0 ? int(200) : int(12);
  const bytes = Array.from({ length }, () => (int(3) === 0 ? int(256) : alphabet[int(alphabet.length)]!));
  return Buffer.from(bytes).toString('hex');
}

test('quoted-printable, base64 and repr(bytes) match Python', async (t) => {
  const inputs = Array.from({ length: 400 }, randomBytes);
  inputs.push('', '2e', '2e0a', '200a', '090d0a', '0d0a200d0a', Buffer.from('x'.repeat(80)).toString('hex'), Buffer.from('=').toString('hex').repeat(30));
  const b64Text = ['', 'YQ==', 'YQ', 'YWI=\n', 'Y W J j', 'YWJj====', 'YWJj=YWJj', '!!YWJj!!', 'Y', 'YWJjZ', 'Y=Q=', 'é YQ=='];
  const qpText = ['=', '=4', '=41', '=4g', '==', 'a=\nb', 'a=\r\nb', 'a=\rb', '=ff=FF=fF', 'x =\n', '=\n'];
  const tasks: Task[] = [
    ...inputs.map((h): Task => ['qp', h]),
    ...inputs.map((h): Task => ['b64', h]),
    ...inputs.map((h): Task => ['repr', h]),
    ...b64Text.map((s): Task => ['b64decode', s]),
    ...qpText.map((s): Task => ['qpdecode', s]),
  ];
  const results = await runPython(tasks);
  tasks.forEach(([kind, arg], i) => {
    const expected = results[i];
    if (kind === 'qp') {
      const bytes = Buffer.from(arg as string, 'hex');
      const encoded = quopriEncode(bytes);
      t.is(encoded, (expected as string[])[0], `quopri.encodestring(${arg})`);
      t.is(Buffer.from(quopriDecode(encoded)).toString('hex'), (expected as string[])[1], `quopri round trip of ${arg}`);
    } else if (kind === 'b64') {
      t.is(encodeBytesPython(Buffer.from(arg as string, 'hex')), expected as string, `encodebytes(${arg})`);
    } else if (kind === 'repr') {
      t.is(pythonBytesRepr(Buffer.from(arg as string, 'hex')), expected as string, `repr(${arg})`);
    } else if (kind === 'b64decode') {
      if (typeof expected === 'string')
        t.is(Buffer.from(decodeBytesPython(arg as string)).toString('hex'), expected, `decodebytes(${JSON.stringify(arg)})`);
      else t.throws(() => decodeBytesPython(arg as string), undefined, `decodebytes(${JSON.stringify(arg)}) fails in Python`);
    } else {
      t.is(Buffer.from(quopriDecode(arg as string)).toString('hex'), expected as string, `decodestring(${JSON.stringify(arg)})`);
    }
  });
});

function randomString(): string {
  const pool = ['a', ' ', '"', '\\', '\n', '\t', '\b', '\f', '\r', '\u0000', '\u001f', '\u007f', 'é', '\u2028', '☃', '😀', '\ud800', '/'];
  return Array.from({ length: int(8) }, () => pool[int(pool.length)]!).join('');
}

function randomValue(depth: number): CritJsonValue {
  const k = int(depth > 2 ? 5 : 7);
  if (k === 0) return randomString();
  if (k === 1) return int(2) ? int(1000) : -int(1000);
  if (k === 2) return int(2) === 0;
  if (k === 3) return int(2) ? 18446744073709551615n : 9007199254740993n;
  if (k === 4) return null;
  if (k === 5) return Array.from({ length: int(4) }, () => randomValue(depth + 1));
  return Object.fromEntries(Array.from({ length: int(4) }, () => [randomString(), randomValue(depth + 1)]));
}

test('json.dumps text, plain and indent=4, matches Python; parsing keeps big integers', async (t) => {
  const values = Array.from({ length: 200 }, () => randomValue(0));
  const text = (v: CritJsonValue): string => formatPythonJson(v);
  // Hand the values to Python as JSON text that keeps big integers exact.
  const results = await execa(
    python,
    ['-c', `import json,sys\nprint(json.dumps([[json.dumps(v), json.dumps(v, indent=4)] for v in json.loads(sys.stdin.read())]))`],
    {
      input: `[${values.map(text).join(',')}]`,
    },
  );
  const expected = JSON.parse(results.stdout) as [string, string][];
  values.forEach((v, i) => {
    t.is(formatPythonJson(v), expected[i]![0]);
    t.is(formatPythonJson(v, 4), expected[i]![1]);
    t.deepEqual(parsePythonJson(expected[i]![1]), v);
  });
});

test('addresses, devices and int(s, 0) match Python', async (t) => {
  const words = (n: number): number[] => Array.from({ length: n }, () => [0, 0xffff0000, 0x0100007f, 0x01000000, int(2 ** 32)][int(5)]!);
  const ips = Array.from({ length: 200 }, () => words(int(2) ? 1 : 4));
  ips.push([0, 0, 0xffff0000, 0x0a00000a], [0, 0, 0, 0], [0x0000fe80, 0, 0, 0x01000000]);
  const texts = [
    '127.0.0.1',
    '::1',
    '::ffff:1.2.3.4',
    '1::',
    '2001:db8::8:800:200c:417a',
    '::',
    'fe80::1%eth0',
    '1.2.3',
    '01.2.3.4',
    '1:2:3:4:5:6:7:8',
    '1::2::3',
    'g::1',
    '::1.2.3.4',
  ];
  const devs = [0, 1, 2049, 264241152, 4294967295, 2 ** 40 + 5, 2 ** 52 + 12345];
  const pairs = [
    [8, 1],
    [252, 0],
    [4095, 1048575],
    [70000, 300],
  ];
  const ints = ['0x1f', '0X1F', '0o17', '0b101', '10', '-0x10', ' 42 ', '1_000', '0x_ff', '010', '00', '', '0x', '1__0', '+7', '9' + '9'.repeat(30)];
  const tasks: Task[] = [
    ...ips.map((w): Task => ['ip', w]),
    ...texts.map((s): Task => ['ipparse', s]),
    ...devs.map((v): Task => ['dev', v]),
    ...pairs.map((p): Task => ['makedev', p]),
    ...ints.map((s): Task => ['int0', s]),
  ];
  const results = await runPython(tasks);
  tasks.forEach(([kind, arg], i) => {
    const expected = results[i] as unknown;
    const failed = typeof expected === 'object' && expected !== null && 'error' in expected;
    if (kind === 'ip') t.is(formatIpWords(arg as number[]), expected as string, `ip ${JSON.stringify(arg)}`);
    else if (kind === 'ipparse') t.deepEqual(parseIpWords(arg as string), failed ? undefined : expected, `ip_address(${JSON.stringify(arg)})`);
    else if (kind === 'dev') {
      const v = BigInt(arg as number);
      t.deepEqual([formatDev(v, false), formatDev(v, true)], expected, `dev ${v}`);
    } else if (kind === 'makedev') {
      const [a, b] = (arg as number[]).map(BigInt) as [bigint, bigint];
      t.deepEqual([String(makeDev(a, b, false)), String(makeDev(a, b, true))], expected, `makedev ${a}:${b}`);
    } else {
      const value = parsePyInt0(arg as string);
      t.is(value === undefined ? undefined : String(value), failed ? undefined : (expected as string), `int(${JSON.stringify(arg)}, 0)`);
    }
  });
});
