// On-disk record formats. Every record the store writes carries a CRC32C (Castagnoli) so a flipped bit
// is found on read and by the start-up scan instead of being served (D3).
//
// Log entry record (little-endian), 36 bytes of overhead per entry:
//   0  u8   format version (1)
//   1  u8   entry kind (EntryKind)
//   2  u16  reserved, 0
//   4  u32  payload length
//   8  u32  index, high word     12 u32 index, low word      (indices may exceed 2^32)
//  16  u32  term, high word      20 u32 term, low word
//  24  f64  cluster timestamp (ms)
//  32  ...  payload
//  32+n u32 CRC32C over bytes [0, 32+n)
// The index is inside the checksummed bytes, so an entry that ends up under the wrong key is caught too.
//
// Small records (node state, recording log, snapshot metadata): msgpack body + u32 CRC32C trailer.

import { crc32c } from '@node-rs/crc32';
import { pack, unpack } from 'msgpackr';
import { EntryKind, type LogEntry } from '../actors/log/log-entry.ts';

export const ENTRY_FORMAT_VERSION = 1;
export const ENTRY_HEADER_BYTES = 32;
export const ENTRY_OVERHEAD_BYTES = ENTRY_HEADER_BYTES + 4;
const TWO_32 = 0x1_0000_0000;
/** CRC32C of any message followed by its own CRC32C (little-endian). */
const CRC32C_RESIDUE = 0x48674bc7;
const KNOWN_KINDS = new Set<number>(Object.values(EntryKind));

export const isEntryKind = (kind: unknown): kind is EntryKind =>
  typeof kind === 'number' && KNOWN_KINDS.has(kind);

/** lmdb-js hands out Buffers already; wrap a plain Uint8Array without copying. */
const asBuffer = (bytes: Uint8Array): Buffer =>
  Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);

/** Encode entries with their checksums into one allocation (the caller has validated them); each record is a view of it (lmdb-js copies on put). */
export const encodeEntries = (entries: readonly LogEntry[]): Buffer[] => {
  let total = 0;
  for (const entry of entries) total += ENTRY_OVERHEAD_BYTES + entry.payload.length;
  const block = Buffer.allocUnsafe(total);
  const records: Buffer[] = new Array(entries.length);
  let offset = 0;
  for (let i = 0; i < entries.length; i++) {
    const size = ENTRY_OVERHEAD_BYTES + entries[i].payload.length;
    records[i] = block.subarray(offset, offset + size);
    writeEntry(entries[i], records[i]);
    offset += size;
  }
  return records;
};

const writeEntry = (entry: LogEntry, record: Buffer): void => {
  const length = entry.payload.length;
  record[0] = ENTRY_FORMAT_VERSION;
  record[1] = entry.kind;
  record[2] = 0;
  record[3] = 0;
  record.writeUInt32LE(length, 4);
  record.writeUInt32LE(Math.floor(entry.index / TWO_32), 8);
  record.writeUInt32LE(entry.index >>> 0, 12);
  record.writeUInt32LE(Math.floor(entry.term / TWO_32), 16);
  record.writeUInt32LE(entry.term >>> 0, 20);
  record.writeDoubleLE(entry.timestamp, 24);
  record.set(entry.payload, ENTRY_HEADER_BYTES);
  record.writeUInt32LE(crc32c(record.subarray(0, ENTRY_HEADER_BYTES + length)), ENTRY_HEADER_BYTES + length);
};

/**
 * Check a stored entry record. Returns undefined when it is intact and stored under `expectedIndex`,
 * otherwise a sentence saying what failed.
 */
export const checkEntryRecord = (
  record: Uint8Array | undefined,
  expectedIndex: number,
): string | undefined => {
  if (record === undefined) return 'the entry is missing';
  if (record.length < ENTRY_OVERHEAD_BYTES)
    return `the record is ${record.length} bytes, shorter than its header`;
  const view = Buffer.from(record.buffer, record.byteOffset, record.length);
  if (view[0] !== ENTRY_FORMAT_VERSION) return `unknown record format version ${view[0]}`;
  const length = view.readUInt32LE(4);
  if (ENTRY_OVERHEAD_BYTES + length !== view.length) {
    return `the header says ${length} payload bytes but the record holds ${view.length - ENTRY_OVERHEAD_BYTES}`;
  }
  // A CRC32C over data followed by its own little-endian CRC32C is a constant: one pass, no sub-view.
  if (crc32c(view) >>> 0 !== CRC32C_RESIDUE) {
    const stored = view.readUInt32LE(ENTRY_HEADER_BYTES + length);
    const actual = crc32c(view.subarray(0, ENTRY_HEADER_BYTES + length));
    return `CRC32C mismatch (stored ${hex(stored)}, computed ${hex(actual)})`;
  }
  const index = view.readUInt32LE(8) * TWO_32 + view.readUInt32LE(12);
  if (index !== expectedIndex)
    return `the record says index ${index} but is stored under index ${expectedIndex}`;
  if (!isEntryKind(view[1])) return `unknown entry kind ${view[1]}`;
  return undefined;
};

/** Decode a record that `checkEntryRecord` accepted. The payload shares the record's memory. */
export const decodeEntryRecord = (record: Uint8Array): LogEntry => {
  const view = asBuffer(record);
  const length = view.readUInt32LE(4);
  return {
    index: view.readUInt32LE(8) * TWO_32 + view.readUInt32LE(12),
    term: view.readUInt32LE(16) * TWO_32 + view.readUInt32LE(20),
    timestamp: view.readDoubleLE(24),
    kind: view[1] as EntryKind,
    payload: view.subarray(ENTRY_HEADER_BYTES, ENTRY_HEADER_BYTES + length),
  };
};

/** The term in a record's header (no checksum check: callers check first). */
export const recordTerm = (record: Uint8Array): number => {
  const view = asBuffer(record);
  return view.readUInt32LE(16) * TWO_32 + view.readUInt32LE(20);
};

/** A small structured record: msgpack body followed by its CRC32C. */
export const encodeChecked = (value: unknown): Buffer => {
  const body = pack(value);
  const record = Buffer.allocUnsafe(body.length + 4);
  body.copy(record, 0);
  record.writeUInt32LE(crc32c(body), body.length);
  return record;
};

/** Decode a checked record; undefined with `problem` set when it is damaged. */
export const decodeChecked = <T>(record: Uint8Array): { value?: T; problem?: string } => {
  if (record.length < 5)
    return { problem: `the record is ${record.length} bytes, too short to hold a checksum` };
  const view = Buffer.from(record.buffer, record.byteOffset, record.length);
  const body = view.subarray(0, view.length - 4);
  const stored = view.readUInt32LE(view.length - 4);
  const actual = crc32c(body);
  if (stored !== actual)
    return { problem: `CRC32C mismatch (stored ${hex(stored)}, computed ${hex(actual)})` };
  try {
    return { value: unpack(body) as T };
  } catch (error) {
    return { problem: `the record does not decode: ${(error as Error).message}` };
  }
};

export const hex = (value: number): string => `0x${(value >>> 0).toString(16).padStart(8, '0')}`;
