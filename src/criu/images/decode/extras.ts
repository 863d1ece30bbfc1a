/**
 * The payloads after a message, read as pycriu's extra handlers do: base64 (encodebytes) for raw
 * bytes, a list of u16 for semaphores, alternating message dicts and base64 for message queues,
 * {inq, outq} for TCP queues. The sizes come from the plain dict of the message just read, with
 * protobuf's default (0) for fields that are not set.
 */
import { CorruptImageError } from '../errors.js';
import type { ImageCatalog } from '../catalog.js';
import type { ExtraKind } from '../handlers.js';
import { roundUp } from '../handlers.js';
import type { ByteReader } from '../framing/byte-reader.js';
import { readPayload, readRecord, skipPayload } from '../framing/records.js';
import { encodeBytesPython } from '../text/base64.js';
import type { CritJsonObject, CritJsonValue } from '../types.js';
import { decodeRecord } from './records.js';

/** An integer field of a plain dict as a payload length (pycriu reads the attribute: unset is 0). */
export function lengthField(reader: ByteReader, offset: number, plain: CritJsonObject, name: string, required = false): number {
  const value = plain[name];
  if (value === undefined) {
    // pb2dict(pbuff)[name] in pycriu: a KeyError when the field is not set.
    if (required) throw new CorruptImageError(reader.name, offset, `the entry has no ${name}, which gives its payload size`);
    return 0;
  }
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new CorruptImageError(reader.name, offset, `payload size ${name} = ${String(value)} is invalid`);
  return n;
}

/** Reads the payload of one entry whose message (plain form) is `plain`. */
export async function loadExtra(
  kind: ExtraKind,
  reader: ByteReader,
  catalog: ImageCatalog,
  plain: CritJsonObject,
  offset: number,
): Promise<CritJsonValue> {
  const size = (name: string, required = false): number => lengthField(reader, offset, plain, name, required);
  switch (kind) {
    case 'pipes':
      return encodeBytesPython(await readPayload(reader, size('bytes'), 'pipe data'));
    case 'skQueues':
      return encodeBytesPython(await readPayload(reader, size('length'), 'socket queue data'));
    case 'bpfmap':
      return encodeBytesPython(await readPayload(reader, size('keys_bytes') + size('values_bytes'), 'BPF map data'));
    case 'tcpStream': {
      const inq = await readPayload(reader, size('inq_len'), 'TCP input queue');
      const inqText = encodeBytesPython(inq);
      const outq = await readPayload(reader, size('outq_len'), 'TCP output queue');
      return { inq: inqText, outq: encodeBytesPython(outq) };
    }
    case 'ipcSem': {
      const bytes = 2 * size('nsems', true);
      const data = await readPayload(reader, bytes, 'semaphore values');
      await skipPayload(reader, roundUp(bytes, 8) - bytes, 'semaphore padding');
      const values: number[] = [];
      for (let i = 0; i < bytes; i += 2) values.push(data[i]! | (data[i + 1]! << 8));
      return values;
    }
    case 'ipcShm': {
      // As pycriu: f.read(size) then a seek past the padding, neither of which fails at the end
      // of the file. That matters: with in_pagemaps CRIU writes no data here (the segment is in
      // pagemap-shmem), and crit then takes what follows (the next entry, or nothing) as data.
      const bytes = size('size', true);
      const data = reader.take((await reader.ensure(bytes)) ? bytes : reader.available);
      await reader.skip(roundUp(bytes, 4) - bytes);
      return encodeBytesPython(data);
    }
    case 'ipcMsg': {
      const out: CritJsonValue[] = [];
      const schema = catalog.type('ipc_msg');
      const count = size('qnum', true);
      for (let i = 0; i < count; i++) {
        // pycriu stops quietly when the file ends before qnum messages.
        const record = await readRecord(reader);
        if (!record) break;
        const msg = decodeRecord(reader, schema, record);
        const msize = lengthField(reader, record.offset, msg, 'msize');
        const data = await readPayload(reader, msize, 'message data');
        await skipPayload(reader, roundUp(msize, 8) - msize, 'message padding');
        out.push(msg, encodeBytesPython(data));
      }
      return out;
    }
  }
}

/** pycriu's human_readable() for `crit show --nopl`. */
export function humanReadable(size: number): string {
  let num = size;
  for (const unit of ['', 'K', 'M', 'G', 'T', 'P', 'E', 'Z']) {
    if (num < 1024) return Number.isInteger(num) ? `${Math.trunc(num)}${unit}B` : `${pyFixed1(num)}${unit}B`;
    num /= 1024;
  }
  return `${pyFixed1(num)}YB`;
}

/** "%.1f" with Python's round-half-even on the exact binary value. */
function pyFixed1(value: number): string {
  const scaled = value * 10;
  const floor = Math.floor(scaled);
  if (scaled - floor === 0.5) return ((floor % 2 === 0 ? floor : floor + 1) / 10).toFixed(1);
  return value.toFixed(1);
}

/** Skips the payload for `crit show --nopl`; returns the "... <size>" text pycriu puts in its place. */
export async function skipExtra(kind: ExtraKind, reader: ByteReader, catalog: ImageCatalog, plain: CritJsonObject, offset: number): Promise<string> {
  const size = (name: string, required = false): number => lengthField(reader, offset, plain, name, required);
  let shown: number;
  switch (kind) {
    case 'pipes':
      shown = size('bytes');
      await skipPayload(reader, shown, 'pipe data');
      break;
    case 'skQueues':
      shown = size('length');
      await skipPayload(reader, shown, 'socket queue data');
      break;
    case 'bpfmap':
      // pycriu's skip reads a field that does not exist and fails; this skips keys and values.
      shown = size('keys_bytes') + size('values_bytes');
      await skipPayload(reader, shown, 'BPF map data');
      break;
    case 'tcpStream':
      // As pycriu: the size of both queues, and everything after them is skipped too.
      shown = size('inq_len') + size('outq_len');
      await reader.skip(Number.MAX_SAFE_INTEGER);
      break;
    case 'ipcSem': {
      shown = 2 * size('nsems', true);
      await skipPayload(reader, roundUp(shown, 8), 'semaphore values');
      break;
    }
    case 'ipcShm': {
      // pycriu seeks past the data without checking the end of the file (see above).
      shown = size('size', true);
      await reader.skip(roundUp(shown, 4));
      break;
    }
    case 'ipcMsg': {
      shown = 0;
      const schema = catalog.type('ipc_msg');
      const count = size('qnum', true);
      for (let i = 0; i < count; i++) {
        const record = await readRecord(reader);
        if (!record) break;
        const msize = lengthField(reader, record.offset, decodeRecord(reader, schema, record), 'msize');
        shown += record.bytes.length + msize;
        await skipPayload(reader, roundUp(msize, 8), 'message data');
      }
      break;
    }
  }
  return `... <${humanReadable(shown)}>`;
}

/** Skips the payload exactly, for counting entries. */
export async function skipExtraExactly(kind: ExtraKind, reader: ByteReader, catalog: ImageCatalog, plain: CritJsonObject, offset: number): Promise<void> {
  if (kind === 'tcpStream') {
    const n = lengthField(reader, offset, plain, 'inq_len') + lengthField(reader, offset, plain, 'outq_len');
    await skipPayload(reader, n, 'TCP queues');
    return;
  }
  if (kind === 'ipcShm') {
    // The true layout, as CRIU writes it: a segment kept in pagemap-shmem has no data here.
    if (plain.in_pagemaps === true) return;
    const n = lengthField(reader, offset, plain, 'size', true);
    await skipPayload(reader, roundUp(n, 4), 'shared memory');
    return;
  }
  await skipExtra(kind, reader, catalog, plain, offset);
}
