/**
 * JSON text as CRIT reads and writes it. formatPythonJson reproduces Python's json.dump byte for
 * byte (ensure_ascii, ", "/": " separators, or indent=4 for --pretty); parsePythonJson keeps
 * integers beyond 2^53 exact as bigints, as Python's json.load does with its unbounded ints.
 */
import type { CritJsonValue } from '../types.js';
import { narrow } from '../wire/reader.js';

const shortEscapes: Readonly<Record<number, string>> = {
  0x22: '\\"',
  0x5c: '\\\\',
  0x0a: '\\n',
  0x0d: '\\r',
  0x09: '\\t',
  0x08: '\\b',
  0x0c: '\\f',
};

/** Python's json string encoding with ensure_ascii=True. */
export function pythonJsonString(value: string): string {
  let out = '"';
  let run = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c >= 0x20 && c <= 0x7e && c !== 0x22 && c !== 0x5c) continue;
    out += value.slice(run, i);
    out += shortEscapes[c] ?? `\\u${c.toString(16).padStart(4, '0')}`;
    run = i + 1;
  }
  return `${out}${value.slice(run)}"`;
}

function formatNumber(value: number): string {
  if (Number.isInteger(value)) return String(value);
  if (Number.isNaN(value)) return 'NaN';
  if (!Number.isFinite(value)) return value > 0 ? 'Infinity' : '-Infinity';
  return String(value);
}

/** json.dumps(value) (indent undefined) or json.dumps(value, indent=indent). */
export function formatPythonJson(value: CritJsonValue, indent?: number): string {
  const parts: string[] = [];
  const write = (v: CritJsonValue, depth: number): void => {
    if (typeof v === 'string') parts.push(pythonJsonString(v));
    else if (typeof v === 'number') parts.push(formatNumber(v));
    else if (typeof v === 'bigint') parts.push(v.toString());
    else if (typeof v === 'boolean') parts.push(v ? 'true' : 'false');
    else if (v === null) parts.push('null');
    else if (Array.isArray(v)) {
      if (v.length === 0) {
        parts.push('[]');
        return;
      }
      const [open, sep, close] = brackets('[', ']', depth);
      parts.push(open);
      v.forEach((item, i) => {
        if (i > 0) parts.push(sep);
        write(item, depth + 1);
      });
      parts.push(close);
    } else {
      const keys = Object.keys(v);
      if (keys.length === 0) {
        parts.push('{}');
        return;
      }
      const [open, sep, close] = brackets('{', '}', depth);
      parts.push(open);
      keys.forEach((key, i) => {
        if (i > 0) parts.push(sep);
        parts.push(pythonJsonString(key), ': ');
        write(v[key]!, depth + 1);
      });
      parts.push(close);
    }
  };
  const brackets = (open: string, close: string, depth: number): [string, string, string] => {
    if (indent === undefined) return [open, ', ', close];
    const inner = `\n${' '.repeat(indent * (depth + 1))}`;
    return [open + inner, `,${inner}`, `\n${' '.repeat(indent * depth)}${close}`];
  };
  write(value, 0);
  return parts.join('');
}

export class JsonSyntaxError extends SyntaxError {
  constructor(
    readonly offset: number,
    reason: string,
  ) {
    super(`${reason} at offset ${offset}`);
    this.name = 'JsonSyntaxError';
  }
}

/** JSON.parse, but integers outside the safe range come back as exact bigints. */
export function parsePythonJson(text: string): CritJsonValue {
  let i = 0;
  const fail = (reason: string): never => {
    throw new JsonSyntaxError(i, reason);
  };
  const space = (): void => {
    for (;;) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else return;
    }
  };
  const numberPattern = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/y;
  const value = (depth: number): CritJsonValue => {
    if (depth > 1000) fail('nesting too deep');
    space();
    const c = text[i];
    if (c === '{') {
      i++;
      const obj: Record<string, CritJsonValue> = {};
      space();
      if (text[i] === '}') {
        i++;
        return obj;
      }
      for (;;) {
        space();
        if (text[i] !== '"') fail('expected a key');
        const key = str();
        space();
        if (text[i] !== ':') fail("expected ':'");
        i++;
        const v = value(depth + 1);
        // Python's dict keeps the last value but the first position of a repeated key.
        obj[key] = v;
        space();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return obj;
        }
        fail("expected ',' or '}'");
      }
    }
    if (c === '[') {
      i++;
      const arr: CritJsonValue[] = [];
      space();
      if (text[i] === ']') {
        i++;
        return arr;
      }
      for (;;) {
        arr.push(value(depth + 1));
        space();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return arr;
        }
        fail("expected ',' or ']'");
      }
    }
    if (c === '"') return str();
    if (text.startsWith('true', i)) {
      i += 4;
      return true;
    }
    if (text.startsWith('false', i)) {
      i += 5;
      return false;
    }
    if (text.startsWith('null', i)) {
      i += 4;
      return null;
    }
    if (text.startsWith('NaN', i)) {
      i += 3;
      return NaN;
    }
    if (text.startsWith('Infinity', i)) {
      i += 8;
      return Infinity;
    }
    if (text.startsWith('-Infinity', i)) {
      i += 9;
      return -Infinity;
    }
    numberPattern.lastIndex = i;
    const m = numberPattern.exec(text);
    if (!m) return fail('unexpected character');
    i += m[0].length;
    if (m[1] !== undefined || m[2] !== undefined) return Number(m[0]);
    return m[0].length < 16 ? Number(m[0]) : narrow(BigInt(m[0]));
  };
  const str = (): string => {
    i++;
    let out = '';
    let run = i;
    for (;;) {
      if (i >= text.length) fail('unterminated string');
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        out += text.slice(run, i);
        i++;
        return out;
      }
      if (c < 0x20) fail('control character in string');
      if (c !== 0x5c) {
        i++;
        continue;
      }
      out += text.slice(run, i);
      const e = text[i + 1];
      const simple: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
      if (e !== undefined && simple[e] !== undefined) {
        out += simple[e];
        i += 2;
      } else if (e === 'u') {
        const hex = text.slice(i + 2, i + 6);
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail('bad \\u escape');
        out += String.fromCharCode(parseInt(hex, 16));
        i += 6;
      } else fail('bad escape');
      run = i;
    }
  };
  const result = value(0);
  space();
  if (i !== text.length) fail('extra data');
  return result;
}
