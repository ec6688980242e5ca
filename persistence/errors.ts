// Typed storage errors. Every failure the store reports names the member directory, what was being
// done (the log index, the snapshot id, the record) and what failed, so an operator reading a log line
// knows which member to rebuild and why (runbook rows D1-D5, N5, N6, O2, O3).

import { statfsSync } from 'node:fs';

export type StorageErrorCode =
  /** A log entry failed its CRC32C, or its header contradicts its key (D3). */
  | 'CORRUPT_ENTRY'
  /** A snapshot chunk or a whole snapshot failed its checksum or length (D3). */
  | 'CORRUPT_SNAPSHOT'
  /** A node-state or recording-log record failed its checksum (D3). */
  | 'CORRUPT_RECORD'
  /** LMDB itself reports a damaged file (MDB_CORRUPTED, MDB_PAGE_NOTFOUND, MDB_INVALID) (D3, D4). */
  | 'CORRUPT_STORE'
  /** The configured map size is used up, or the disk returned ENOSPC (D1, D2). */
  | 'DISK_FULL'
  /** A caller passed something the store cannot accept (a gap in indices, a term going backwards). */
  | 'INVALID_ARGUMENT'
  /** The operation needs data that compaction already removed. */
  | 'COMPACTED'
  /** The store was closed. */
  | 'CLOSED'
  /** A backup is missing, inconsistent or fails validation (N6, O2). */
  | 'INVALID_BACKUP'
  /** A restore target already holds data. */
  | 'TARGET_NOT_EMPTY'
  /** Another live process (or this one) already has the member directory open. */
  | 'LOCKED'
  /** Any other I/O failure reported by LMDB or the file system. */
  | 'IO_ERROR';

export interface StorageErrorDetails {
  /** The member directory the error is about. */
  readonly dir: string;
  readonly index?: number;
  readonly snapshotId?: number;
  readonly chunk?: number;
  readonly cause?: unknown;
}

export class StorageError extends Error {
  override readonly name = 'StorageError';
  readonly code: StorageErrorCode;
  readonly dir: string;
  readonly index?: number;
  readonly snapshotId?: number;
  readonly chunk?: number;

  constructor(code: StorageErrorCode, message: string, details: StorageErrorDetails) {
    super(`${code}: ${message} [member directory ${details.dir}]`, { cause: details.cause });
    this.code = code;
    this.dir = details.dir;
    this.index = details.index;
    this.snapshotId = details.snapshotId;
    this.chunk = details.chunk;
  }
}

/** LMDB error numbers that mean the file itself is damaged. */
const LMDB_CORRUPTION_CODES = new Set([
  -30796 /* MDB_CORRUPTED */, -30797 /* MDB_PAGE_NOTFOUND */, -30793 /* MDB_INVALID */,
]);
const MDB_MAP_FULL = -30792;
const ENOSPC = 28;

const errorCode = (error: unknown): unknown =>
  typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;

/**
 * lmdb-js rejects a failed commit with a generic "Commit failed" error whose `commitError` property is a
 * second (rejected) promise holding the real cause. Unwrap it, and mark it handled so it never surfaces
 * as an unhandled rejection.
 */
export const unwrapCommitError = async (error: unknown): Promise<unknown> => {
  const nested =
    typeof error === 'object' && error !== null
      ? (error as { commitError?: unknown }).commitError
      : undefined;
  if (nested instanceof Promise) {
    return nested.then(
      () => error,
      (cause: unknown) => cause,
    );
  }
  return error;
};

/** Free bytes on the file system holding `dir`, or undefined if it cannot be asked. */
const freeBytes = (dir: string): number | undefined => {
  try {
    const stats = statfsSync(dir);
    return stats.bavail * stats.bsize;
  } catch {
    return undefined;
  }
};

/** Below this much free space, a write that failed with an I/O error is taken to be a full disk. */
export const NEARLY_FULL_BYTES = 1024 * 1024;

/**
 * Translate a failed commit. LMDB reports a short write on a full disk as EIO as often as ENOSPC, so an
 * I/O error while the file system has less than NEARLY_FULL_BYTES (+ twice what was being written)
 * free is reported as DISK_FULL, with the free space in the message.
 */
export const toWriteError = (
  error: unknown,
  dir: string,
  doing: string,
  index?: number,
  bytes = 0,
): StorageError => {
  const translated = toStorageError(error, dir, doing, index);
  if (translated.code !== 'IO_ERROR') return translated;
  const free = freeBytes(dir);
  if (free === undefined || free >= NEARLY_FULL_BYTES + 2 * bytes) return translated;
  return new StorageError(
    'DISK_FULL',
    `${doing} failed: the disk is full (${free} bytes free; LMDB said: ${(error as Error).message}); ` +
      'nothing flushed before was changed — free disk space, then retry',
    { dir, index, cause: error },
  );
};

/** Translate an error thrown by lmdb-js or the file system into a StorageError about `dir`. */
export const toStorageError = (error: unknown, dir: string, doing: string, index?: number): StorageError => {
  if (error instanceof StorageError) return error;
  const code = errorCode(error);
  const text = error instanceof Error ? error.message : String(error);
  if (
    code === ENOSPC ||
    code === 'ENOSPC' ||
    code === MDB_MAP_FULL ||
    /No space left|MDB_MAP_FULL/i.test(text)
  ) {
    return new StorageError(
      'DISK_FULL',
      `${doing} failed: the disk is full (${text}); nothing flushed before was changed — free disk space or raise mapSizeBytes, then retry`,
      { dir, index, cause: error },
    );
  }
  if (
    (typeof code === 'number' && LMDB_CORRUPTION_CODES.has(code)) ||
    /MDB_CORRUPTED|MDB_PAGE_NOTFOUND|MDB_INVALID/.test(text)
  ) {
    return new StorageError(
      'CORRUPT_STORE',
      `${doing} failed: LMDB reports a damaged data file (${text}); rebuild this member from the leader or restore a backup`,
      { dir, index, cause: error },
    );
  }
  return new StorageError('IO_ERROR', `${doing} failed: ${text}`, { dir, index, cause: error });
};
