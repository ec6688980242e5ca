// The replicated log on LMDB: group-committed appends, checked reads, suffix truncation (a follower's
// conflicting tail) and prefix purge (compaction after a snapshot).
//
// Writes go through one ordered queue (persistence/log-write-queue.ts), drained group by group, one LMDB
// transaction and one flush per group; a group's promises resolve only once it is flushed to disk.
//
// The store keeps a *projected* view (first/last index, last term) that already includes queued
// operations, so the consensus module can append, read back and append again without awaiting each
// flush; entries not yet flushed are served from an in-memory overlay. If a group fails (disk full, I/O
// error) that group and everything queued behind it is rejected (each was validated against the failed
// tail) and the view is reloaded from what LMDB actually holds.
//
// The writers (append, truncateFrom, purgeTo) never throw: a bad argument or a closed store is refused
// with a rejected promise carrying a StorageError (INVALID_ARGUMENT, CLOSED), and the log is left as it
// was. The readers (entry, read, termAt) are synchronous and throw.

import type { Database, RootDatabase } from 'lmdb';
import type { LogEntry } from '../actors/log/log-entry.ts';
import { StorageError, toStorageError } from './errors.ts';
import { BOUNDARY_KEY, LogWriteQueue, type WriteOp } from './log-write-queue.ts';
import {
  checkEntryRecord,
  decodeChecked,
  decodeEntryRecord,
  ENTRY_OVERHEAD_BYTES,
  encodeEntries,
  isEntryKind,
  recordTerm,
} from './record-codec.ts';
import { isSafeNonNegative, isTerm, MAX_TERM } from './values.ts';

/** The last purged position: entries up to `index` are gone, but their last term is still known. */
export interface PurgeBoundary {
  readonly index: number;
  readonly term: number;
}

export interface LogStoreParts {
  readonly dir: string;
  readonly env: RootDatabase;
  /** index -> entry record */
  readonly logDb: Database<Buffer, number>;
  /** 'purge-boundary' -> checked PurgeBoundary */
  readonly metaDb: Database<Buffer, string>;
  /** Throws DISK_FULL when `bytes` more would exceed the configured size. */
  readonly checkSpace: (bytes: number, doing: string, index?: number) => void;
  /** The term of a valid snapshot set recorded at `index`, if any (the recording log). */
  readonly snapshotTermAt?: (index: number) => number | undefined;
}

export class LogStore {
  readonly dir: string;
  private readonly logDb: Database<Buffer, number>;
  private readonly metaDb: Database<Buffer, string>;
  private readonly snapshotTermAt: (index: number) => number | undefined;

  // Projected view, including queued operations.
  private boundary: PurgeBoundary = { index: 0, term: 0 };
  private last = 0;
  private lastTermValue = 0;
  /** Appended entries whose group is not flushed yet; they take precedence over LMDB. */
  private readonly overlay = new Map<number, LogEntry>();
  /** The last index known flushed to disk. */
  private durable = 0;

  private readonly writes: LogWriteQueue;
  private closed = false;

  constructor(parts: LogStoreParts) {
    this.dir = parts.dir;
    this.logDb = parts.logDb;
    this.metaDb = parts.metaDb;
    this.snapshotTermAt = parts.snapshotTermAt ?? (() => undefined);
    this.reloadView();
    this.durable = this.last;
    this.writes = new LogWriteQueue({
      ...parts,
      onFlushed: (op, lastAfter) => this.flushed(op, lastAfter),
      onFailed: () => this.reloadView(),
    });
  }

  /** The first index still in the log (1 for a log never purged; boundary + 1 after a purge). */
  get firstIndex(): number {
    return this.boundary.index + 1;
  }

  /** The last index appended (including appends not yet flushed); the boundary when the log is empty. */
  get lastIndex(): number {
    return this.last;
  }

  get lastTerm(): number {
    return this.lastTermValue;
  }

  /**
   * The last index known to be flushed to disk: what this member may count towards a quorum. At most
   * lastIndex; it lags while appends are in flight.
   */
  get durableIndex(): number {
    return Math.min(this.durable, this.last);
  }

  /** Where the last purge stopped: the snapshot boundary, whose term Raft's log-matching check needs. */
  get purgeBoundary(): PurgeBoundary {
    return this.boundary;
  }

  /**
   * Append entries after the current last index. Resolves once they are flushed to disk; rejects with
   * DISK_FULL (nothing written) or another StorageError. A bad argument (a gap, a term going back, an
   * unknown kind) rejects with INVALID_ARGUMENT and nothing is queued; it never throws.
   * Until the flush the entries are served from memory as given: do not mutate them or their payloads.
   */
  async append(entries: readonly LogEntry[]): Promise<void> {
    this.assertOpen('append');
    if (!Array.isArray(entries)) {
      throw this.invalid('append(entries) takes an array of LogEntry objects');
    }
    if (entries.length === 0) return Promise.resolve();
    let expected = this.last + 1;
    let previousTerm = this.lastTermValue;
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i];
      const where = `append: entries[${i}]`;
      if (entry === null || typeof entry !== 'object')
        throw this.invalid(`${where} is not a LogEntry object`);
      if (entry.index !== expected) {
        throw this.invalid(
          `${where} has index ${String(entry.index)} but the log expects ${expected} (last index ${this.last}); ` +
            'append contiguous indices, truncating a conflicting tail first',
          expected,
        );
      }
      if (!isTerm(entry.term) || entry.term < 1) {
        throw this.invalid(
          `${where} has term ${String(entry.term)}; a term is an integer from 1 to ${MAX_TERM}`,
          expected,
        );
      }
      if (entry.term < previousTerm) {
        throw this.invalid(
          `${where} has term ${entry.term}, lower than the term before it (${previousTerm}); terms never decrease along a log`,
          expected,
        );
      }
      if (typeof entry.timestamp !== 'number' || !Number.isFinite(entry.timestamp)) {
        throw this.invalid(
          `${where} has timestamp ${String(entry.timestamp)}; use cluster time in ms`,
          expected,
        );
      }
      if (!isEntryKind(entry.kind)) {
        throw this.invalid(`${where} has kind ${String(entry.kind)}; use a value of EntryKind`, expected);
      }
      if (!(entry.payload instanceof Uint8Array)) {
        throw this.invalid(
          `${where} has a payload that is not a Uint8Array; msgpack-encode it first`,
          expected,
        );
      }
      previousTerm = entry.term;
      expected++;
    }
    const records = encodeEntries(entries);
    for (const entry of entries) this.overlay.set(entry.index, entry);
    this.last = expected - 1;
    this.lastTermValue = previousTerm;
    return this.enqueue({ type: 'append', entries, records });
  }

  /**
   * Remove every entry from `index` on (a follower's conflicting tail). `index` must be above the purge
   * boundary: compacted entries are committed and never truncated. Resolves once durable; refuses (a
   * rejected promise, INVALID_ARGUMENT) an index at or below the boundary.
   */
  async truncateFrom(index: number): Promise<void> {
    this.assertOpen('truncateFrom');
    if (!isSafeNonNegative(index) || index <= this.boundary.index) {
      throw this.invalid(
        `truncateFrom(${String(index)}): the index must be an integer above the purge boundary ${this.boundary.index}`,
      );
    }
    if (index > this.last) return Promise.resolve(); // nothing to remove
    const newLastTerm = this.termAt(index - 1);
    if (newLastTerm === undefined)
      throw this.invalid(`truncateFrom(${index}): the term before it is unknown`, index);
    for (let i = index; i <= this.last; i++) this.overlay.delete(i);
    const op: WriteOp = { type: 'truncate', from: index, to: this.last };
    this.last = index - 1;
    this.lastTermValue = newLastTerm;
    return this.enqueue(op);
  }

  /**
   * Remove every entry up to and including `index` (compaction after a snapshot at `index`). The term
   * at `index` stays answerable. `term` is the snapshot's term; when omitted it is the log's term at
   * `index`, or the term of a valid snapshot set the recording log holds at `index`. Installing a
   * leader's snapshot follows Raft: if the log has no entry at `index`, or one of another term, the whole
   * log is discarded and restarts after `index`. Resolves once durable; refuses (a rejected promise,
   * INVALID_ARGUMENT) a bad index or term.
   */
  async purgeTo(index: number, term?: number): Promise<void> {
    this.assertOpen('purgeTo');
    if (!isSafeNonNegative(index)) {
      throw this.invalid(`purgeTo(${String(index)}): the index must be a safe integer >= 0`);
    }
    if (term !== undefined && (!isTerm(term) || term < 1)) {
      throw this.invalid(
        `purgeTo(${index}, ${String(term)}): a term is an integer from 1 to ${MAX_TERM}`,
        index,
      );
    }
    if (index <= this.boundary.index) return Promise.resolve(); // already purged
    let logTerm: number | undefined;
    try {
      logTerm = index <= this.last ? this.termAt(index) : undefined;
    } catch (error) {
      // A damaged entry at `index` cannot match the snapshot: the log is discarded (rebuilt from the leader).
      if (!(error instanceof StorageError && error.code === 'CORRUPT_ENTRY')) throw error;
    }
    const boundaryTerm = term ?? this.snapshotTermAt(index) ?? logTerm;
    if (boundaryTerm === undefined) {
      throw this.invalid(
        `purgeTo(${index}) is beyond the last index ${this.last} and no snapshot is recorded there: pass the snapshot's term`,
        index,
      );
    }
    if (boundaryTerm < this.boundary.term) {
      throw this.invalid(
        `purgeTo(${index}, ${boundaryTerm}): the term is below the purge boundary's term ${this.boundary.term}`,
        index,
      );
    }
    // Keep the suffix after `index` only when the log agrees with the snapshot at `index`.
    const keepSuffix = logTerm === boundaryTerm;
    const from = this.boundary.index + 1;
    const to = keepSuffix ? index : this.last;
    for (let i = from; i <= to; i++) this.overlay.delete(i);
    const boundary = { index, term: boundaryTerm };
    this.boundary = boundary;
    if (!keepSuffix || index >= this.last) {
      this.last = index;
      this.lastTermValue = boundaryTerm;
    }
    return this.enqueue({ type: 'purge', from, to, boundary });
  }

  /** The entry at `index`, checked; undefined outside [firstIndex, lastIndex]. Throws CORRUPT_ENTRY. */
  entry(index: number): LogEntry | undefined {
    this.assertOpen('entry');
    if (!Number.isSafeInteger(index) || index < this.firstIndex || index > this.last) return undefined;
    const pending = this.overlay.get(index);
    if (pending !== undefined) return pending;
    return this.checked(this.readRecord(index), index);
  }

  /**
   * Entries from `from` to `to` inclusive (`to` is clamped to the last index), stopping early once the
   * payloads reach `maxBytes` (at least one entry is returned). Throws COMPACTED when `from` is below
   * the first index (send a snapshot instead), CORRUPT_ENTRY for a damaged entry.
   */
  read(from: number, to: number = this.last, options: { maxBytes?: number } = {}): LogEntry[] {
    this.assertOpen('read');
    if (!Number.isSafeInteger(from) || !Number.isSafeInteger(to)) {
      throw this.invalid(`read(${String(from)}, ${String(to)}): indices must be safe integers`);
    }
    if (from < this.firstIndex) {
      throw new StorageError(
        'COMPACTED',
        `read(${from}, ${to}): entries up to ${this.boundary.index} were purged after a snapshot; send the snapshot`,
        { dir: this.dir, index: from },
      );
    }
    let end = Math.min(to, this.last);
    if (end < from) return [];
    if (options.maxBytes !== undefined) end = this.endWithin(from, end, options.maxBytes);
    const result: LogEntry[] = new Array(end - from + 1);
    // Read the stored range in one cursor pass, then lay the unflushed overlay on top.
    let next = from;
    try {
      for (const { key, value } of this.logDb.getRange({ start: from, end: end + 1 })) {
        if (key !== next) break; // a gap: reported below as a missing entry
        result[next - from] = this.overlay.get(next) ?? this.checked(value, next);
        next++;
      }
    } catch (error) {
      throw toStorageError(error, this.dir, `reading entries ${from}..${end}`, next);
    }
    for (; next <= end; next++) {
      result[next - from] = this.overlay.get(next) ?? this.checked(undefined, next);
    }
    return result;
  }

  /** The last index from `from` whose payloads up to it fit in `maxBytes` (at least `from`). */
  private endWithin(from: number, end: number, maxBytes: number): number {
    let bytes = 0;
    for (let index = from; index <= end; index++) {
      const pending = this.overlay.get(index);
      const record = pending === undefined ? this.logDb.getBinaryFast(index) : undefined;
      bytes += pending?.payload.length ?? (record === undefined ? 0 : record.length - ENTRY_OVERHEAD_BYTES);
      if (bytes > maxBytes) return Math.max(from, index - 1);
    }
    return end;
  }

  /** The term of the entry at `index`; the boundary's term at the purge point; 0 at index 0. */
  termAt(index: number): number | undefined {
    this.assertOpen('termAt');
    if (!Number.isSafeInteger(index) || index < this.boundary.index || index > this.last) return undefined;
    if (index === this.boundary.index) return this.boundary.term;
    if (index === this.last) return this.lastTermValue;
    const pending = this.overlay.get(index);
    if (pending !== undefined) return pending.term;
    const record = this.readRecord(index);
    this.checked(record, index);
    return recordTerm(record!);
  }

  /** Resolves once every operation queued so far is durable (or has failed). */
  async sync(): Promise<void> {
    await this.writes.sync();
  }

  /** Stop accepting operations and wait for queued ones to finish. Called by the member store. */
  async close(): Promise<void> {
    this.closed = true;
    await this.sync();
  }

  // --- internals -------------------------------------------------------------------------------------

  /** Rebuild the view from what LMDB holds (at open, and after a failed group). */
  private reloadView(): void {
    this.overlay.clear();
    const raw = this.metaDb.get(BOUNDARY_KEY);
    if (raw !== undefined) {
      const { value, problem } = decodeChecked<PurgeBoundary>(raw);
      if (problem !== undefined || !isSafeNonNegative(value?.index) || !isSafeNonNegative(value?.term)) {
        throw new StorageError(
          'CORRUPT_RECORD',
          `the log's purge boundary record is damaged (${problem ?? 'bad fields'}); rebuild this member from the leader`,
          { dir: this.dir },
        );
      }
      this.boundary = { index: value!.index, term: value!.term };
    } else {
      this.boundary = { index: 0, term: 0 };
    }
    let lastKey: number | undefined;
    for (const key of this.logDb.getKeys({ reverse: true, limit: 1 })) lastKey = key;
    if (lastKey === undefined || lastKey <= this.boundary.index) {
      this.last = this.boundary.index;
      this.lastTermValue = this.boundary.term;
    } else {
      this.last = lastKey;
      // Taken from the header even when the checksum fails: the start-up scan reports the damage, and
      // reads of that entry refuse to serve it.
      const record = this.readRecord(lastKey);
      this.lastTermValue =
        record !== undefined && record.length >= ENTRY_OVERHEAD_BYTES ? recordTerm(record) : 0;
    }
  }

  private readRecord(index: number): Buffer | undefined {
    try {
      return this.logDb.get(index);
    } catch (error) {
      throw toStorageError(error, this.dir, `reading entry ${index}`, index);
    }
  }

  private checked(record: Uint8Array | undefined, index: number): LogEntry {
    const problem = checkEntryRecord(record, index);
    if (problem !== undefined) {
      throw new StorageError('CORRUPT_ENTRY', `log entry ${index} is not served: ${problem}`, {
        dir: this.dir,
        index,
      });
    }
    return decodeEntryRecord(record!);
  }

  private enqueue(op: WriteOp): Promise<void> {
    return this.writes.enqueue(op, this.last);
  }

  /** An operation is durable: its appended entries leave the overlay; the durable index moves. */
  private flushed(op: WriteOp, lastAfter: number): void {
    if (op.type === 'append') {
      for (const entry of op.entries) {
        if (this.overlay.get(entry.index) === entry) this.overlay.delete(entry.index);
      }
    }
    this.durable = lastAfter;
  }

  private assertOpen(doing: string): void {
    if (this.closed) throw new StorageError('CLOSED', `${doing}: the log store is closed`, { dir: this.dir });
  }

  private invalid(message: string, index?: number): StorageError {
    return new StorageError('INVALID_ARGUMENT', message, { dir: this.dir, index });
  }
}
