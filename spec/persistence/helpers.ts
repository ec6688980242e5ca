// Shared test helpers for the persistence specs: temporary member directories and entries.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { EntryKind, type LogEntry } from '../../actors/log/log-entry.ts';
import { StorageError, type StorageErrorCode } from '../../persistence/index.ts';

/** A fresh directory under the OS temp dir; remove it with `cleanup`. */
export const tempDir = (label: string): string => mkdtempSync(join(tmpdir(), `chorus-${label}-`));

export const cleanup = (...dirs: string[]): void => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
};

/** A deterministic payload for `index`, so tests can tell entries apart and check content. */
export const payloadFor = (index: number, size = 32): Uint8Array => {
  const payload = new Uint8Array(size);
  for (let i = 0; i < size; i++) payload[i] = (index * 31 + i * 7) & 0xff;
  return payload;
};

export const entry = (index: number, term: number, size = 32): LogEntry => ({
  index,
  term,
  timestamp: 1_700_000_000_000 + index,
  kind: EntryKind.SESSION_MESSAGE,
  payload: payloadFor(index, size),
});

/** Entries from..to inclusive, all in `term`. */
export const entries = (from: number, to: number, term: number, size = 32): LogEntry[] => {
  const result: LogEntry[] = [];
  for (let index = from; index <= to; index++) result.push(entry(index, term, size));
  return result;
};

/** Comparable form of an entry (payload as a plain array). */
export const plain = (e: LogEntry | undefined) =>
  e === undefined ? undefined : { ...e, payload: Array.from(e.payload) };

/** The entry the crash-test child writes at `index`: size and bytes follow from the index. */
export const crashEntry = (index: number, term: number): LogEntry => entry(index, term, 16 + (index % 200));

/** The snapshot the crash-test child writes for `serviceId` at `logIndex` (several 16 KiB chunks). */
export const crashSnapshot = (serviceId: number, logIndex: number): Buffer => {
  const data = Buffer.alloc(50_000 + (logIndex % 1000));
  for (let i = 0; i < data.length; i++) data[i] = (logIndex + serviceId * 7 + i) & 0xff;
  return data;
};

/** Expect `promise` to reject with a StorageError of `code` whose message matches `pattern`; the error. */
export const rejectsWith = async (
  promise: Promise<unknown>,
  code: StorageErrorCode,
  pattern: RegExp,
): Promise<StorageError> => {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, 'expected a StorageError').to.be.instanceOf(StorageError);
  expect((error as StorageError).code).to.equal(code);
  expect((error as StorageError).message).to.match(pattern);
  return error as StorageError;
};

/**
 * Expect a store call to be refused the way the member relies on: no synchronous throw, a promise that
 * rejects with a StorageError of `code` whose message matches `pattern`.
 */
export const refuses = (
  call: () => Promise<unknown>,
  code: StorageErrorCode,
  pattern: RegExp,
): Promise<StorageError> => {
  let promise: Promise<unknown>;
  try {
    promise = call();
  } catch (error) {
    expect.fail(`threw synchronously instead of returning a rejected promise: ${(error as Error).message}`);
  }
  return rejectsWith(promise, code, pattern);
};
