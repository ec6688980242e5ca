// Committed entries cross the worker boundary as one transferred buffer per batch, not as cloned
// objects: a fixed 32-byte header per entry then its payload bytes. The receiver's payloads are views
// into that one buffer (no copy).
//
//   f64 index | f64 term | f64 timestamp | u32 kind | u32 payload length | payload bytes

import type { EntryKind, LogEntry } from '../../actors/log/log-entry.ts';

const HEADER = 32;

export const encodeBatch = (entries: readonly LogEntry[]): Uint8Array => {
  let size = 4;
  for (const entry of entries) size += HEADER + entry.payload.length;
  const bytes = new Uint8Array(new ArrayBuffer(size));
  const view = new DataView(bytes.buffer);
  view.setUint32(0, entries.length, true);
  let at = 4;
  for (const entry of entries) {
    view.setFloat64(at, entry.index, true);
    view.setFloat64(at + 8, entry.term, true);
    view.setFloat64(at + 16, entry.timestamp, true);
    view.setUint32(at + 24, entry.kind, true);
    view.setUint32(at + 28, entry.payload.length, true);
    bytes.set(entry.payload, at + HEADER);
    at += HEADER + entry.payload.length;
  }
  return bytes;
};

export const decodeBatch = (bytes: Uint8Array): LogEntry[] => {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = view.getUint32(0, true);
  const entries: LogEntry[] = new Array(count);
  let at = 4;
  for (let i = 0; i < count; i++) {
    const length = view.getUint32(at + 28, true);
    if (at + HEADER + length > bytes.byteLength) {
      throw new RangeError(
        `decodeBatch: entry ${i} of ${count} runs past the end of the batch (corrupt batch)`,
      );
    }
    entries[i] = {
      index: view.getFloat64(at, true),
      term: view.getFloat64(at + 8, true),
      timestamp: view.getFloat64(at + 16, true),
      kind: view.getUint32(at + 24, true) as EntryKind,
      payload: bytes.subarray(at + HEADER, at + HEADER + length),
    };
    at += HEADER + length;
  }
  return entries;
};
