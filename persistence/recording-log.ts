// The recording log (Aeron's RecordingLog): which leadership terms the log holds and where, and which
// snapshots were taken at which log position. Recovery reads it to find the latest valid snapshot set
// and the log to replay after it. Each record carries a CRC32C and a `valid` flag; invalidating the
// latest snapshot set makes recovery fall back to the set before it.

import type { Database, RootDatabase } from 'lmdb';
import { durableBatch } from './durable.ts';
import { StorageError } from './errors.ts';
import { decodeChecked, encodeChecked } from './record-codec.ts';
import { CONSENSUS_MODULE_SERVICE_ID } from './snapshot-store.ts';
import { isSafeNonNegative, isTerm } from './values.ts';

export interface TermEntry {
  readonly entryId: number;
  readonly type: 'TERM';
  readonly term: number;
  /** The last log index before the term's first entry (Aeron's term base log position). */
  readonly baseIndex: number;
  /** The term's last log index once it is closed; null while it is the current term. */
  readonly endIndex: number | null;
  /** Cluster time the term began, ms. */
  readonly timestamp: number;
  readonly valid: boolean;
}

export interface SnapshotEntry {
  readonly entryId: number;
  readonly type: 'SNAPSHOT';
  /** The entry id of the first entry of the set this one belongs to. */
  readonly setId: number;
  readonly term: number;
  readonly logIndex: number;
  readonly timestamp: number;
  /** The service id; CONSENSUS_MODULE_SERVICE_ID (-1) for the consensus module. */
  readonly serviceId: number;
  /** The id in the snapshot store. */
  readonly snapshotId: number;
  readonly valid: boolean;
}

export type RecordingEntry = TermEntry | SnapshotEntry;

/** One snapshot per service plus one for the consensus module, all at one log position. */
export interface SnapshotSet {
  readonly setId: number;
  readonly term: number;
  readonly logIndex: number;
  readonly timestamp: number;
  readonly valid: boolean;
  /** Sorted by service id, the consensus module (-1) first. */
  readonly snapshots: readonly SnapshotEntry[];
}

export interface NewSnapshotSet {
  readonly term: number;
  readonly logIndex: number;
  readonly timestamp: number;
  readonly snapshots: readonly { readonly serviceId: number; readonly snapshotId: number }[];
}

const describeInvalid = (entry: RecordingEntry | undefined, key: number): string | undefined => {
  if (entry === null || typeof entry !== 'object') return 'not an object';
  if (entry.entryId !== key) return `it says entry ${String(entry.entryId)}`;
  if (typeof entry.valid !== 'boolean') return 'no valid flag';
  if (!isSafeNonNegative(entry.term) || typeof entry.timestamp !== 'number') return 'bad term or timestamp';
  if (entry.type === 'TERM') {
    if (!isSafeNonNegative(entry.baseIndex)) return 'bad base index';
    if (entry.endIndex !== null && !isSafeNonNegative(entry.endIndex)) return 'bad end index';
    return undefined;
  }
  if (entry.type === 'SNAPSHOT') {
    if (
      !isSafeNonNegative(entry.logIndex) ||
      !isSafeNonNegative(entry.snapshotId) ||
      !isSafeNonNegative(entry.setId)
    ) {
      return 'bad log index, snapshot id or set id';
    }
    if (!Number.isSafeInteger(entry.serviceId)) return 'bad service id';
    return undefined;
  }
  return `unknown type ${String((entry as { type?: unknown }).type)}`;
};

export class RecordingLog {
  private nextEntryId: number;

  constructor(
    readonly dir: string,
    private readonly env: RootDatabase,
    private readonly db: Database<Buffer, number>,
  ) {
    let last = -1;
    for (const key of db.getKeys({ reverse: true, limit: 1 })) last = key;
    this.nextEntryId = last + 1;
  }

  // Mutators never throw: a bad argument is refused with a rejected promise (INVALID_ARGUMENT) and nothing
  // is written; otherwise they resolve once the change is durable.

  /** Every entry, oldest first. Throws CORRUPT_RECORD naming the entry if one is damaged. */
  entries(): RecordingEntry[] {
    const result: RecordingEntry[] = [];
    for (const { key, value } of this.db.getRange({})) {
      const { value: entry, problem } = decodeChecked<RecordingEntry>(value);
      const reason = problem ?? describeInvalid(entry, key);
      if (reason !== undefined) {
        throw new StorageError('CORRUPT_RECORD', `recording log entry ${key} is damaged: ${reason}`, {
          dir: this.dir,
        });
      }
      result.push(entry!);
    }
    return result;
  }

  /** Damaged entries, for the start-up scan: [entry id, what failed]. */
  damaged(): { entryId: number; problem: string }[] {
    const result: { entryId: number; problem: string }[] = [];
    for (const { key, value } of this.db.getRange({})) {
      const { value: entry, problem } = decodeChecked<RecordingEntry>(value);
      const reason = problem ?? describeInvalid(entry, key);
      if (reason !== undefined) result.push({ entryId: key, problem: reason });
    }
    return result;
  }

  terms(): TermEntry[] {
    return this.entries().filter((entry): entry is TermEntry => entry.type === 'TERM');
  }

  /** The latest valid term entry, if any. */
  lastTerm(): TermEntry | undefined {
    return this.terms()
      .filter((entry) => entry.valid)
      .at(-1);
  }

  /**
   * Record that `term` begins after log index `baseIndex`, closing the previous open term at
   * `baseIndex`. Terms only grow. Resolves once durable.
   */
  async appendTerm(term: number, baseIndex: number, timestamp: number): Promise<TermEntry> {
    if (!isTerm(term) || term < 1 || !isSafeNonNegative(baseIndex) || typeof timestamp !== 'number') {
      throw this.invalid(
        `appendTerm(${term}, ${baseIndex}, ${timestamp}): term >= 1, baseIndex >= 0, timestamp in ms`,
      );
    }
    const previous = this.lastTerm();
    if (previous !== undefined && (term <= previous.term || baseIndex < previous.baseIndex)) {
      throw this.invalid(
        `appendTerm(${term}, ${baseIndex}): the last term is ${previous.term} from base ${previous.baseIndex}; ` +
          'a new term must be higher and start no earlier',
      );
    }
    const entry: TermEntry = {
      entryId: this.nextEntryId++,
      type: 'TERM',
      term,
      baseIndex,
      endIndex: null,
      timestamp,
      valid: true,
    };
    return this.write(`appending term ${term}`, (put) => {
      if (previous !== undefined && previous.endIndex === null) put({ ...previous, endIndex: baseIndex });
      put(entry);
    }).then(() => entry);
  }

  /** Record the last log index of `term` (on a clean shutdown or when the term ends). Durable. */
  async closeTerm(term: number, endIndex: number): Promise<void> {
    const entry = this.terms().find((candidate) => candidate.term === term && candidate.valid);
    if (entry === undefined) throw this.invalid(`closeTerm(${term}): the recording log has no term ${term}`);
    if (!isSafeNonNegative(endIndex) || endIndex < entry.baseIndex) {
      throw this.invalid(
        `closeTerm(${term}, ${endIndex}): the end must be at or after the base ${entry.baseIndex}`,
      );
    }
    return this.write(`closing term ${term}`, (put) => put({ ...entry, endIndex }));
  }

  /**
   * Record a snapshot set: one snapshot per service plus the consensus module's, all at `logIndex`,
   * written atomically. Resolves once durable.
   */
  async appendSnapshotSet(set: NewSnapshotSet): Promise<SnapshotSet> {
    if (!isTerm(set?.term) || !isSafeNonNegative(set.logIndex) || typeof set.timestamp !== 'number') {
      throw this.invalid('appendSnapshotSet: term and logIndex are integers >= 0 and timestamp is in ms');
    }
    const services = new Set<number>();
    for (const { serviceId, snapshotId } of set.snapshots ?? []) {
      if (!Number.isSafeInteger(serviceId) || !isSafeNonNegative(snapshotId) || services.has(serviceId)) {
        throw this.invalid(
          `appendSnapshotSet: snapshot (service ${serviceId}, id ${snapshotId}) needs a unique integer service id and an id >= 0`,
        );
      }
      services.add(serviceId);
    }
    if (!services.has(CONSENSUS_MODULE_SERVICE_ID)) {
      throw this.invalid(
        `appendSnapshotSet: the set at log index ${set.logIndex} has no consensus module snapshot (service id ${CONSENSUS_MODULE_SERVICE_ID})`,
      );
    }
    const setId = this.nextEntryId;
    const snapshots: SnapshotEntry[] = [...set.snapshots]
      .sort((a, b) => a.serviceId - b.serviceId)
      .map(({ serviceId, snapshotId }) => ({
        entryId: this.nextEntryId++,
        type: 'SNAPSHOT',
        setId,
        term: set.term,
        logIndex: set.logIndex,
        timestamp: set.timestamp,
        serviceId,
        snapshotId,
        valid: true,
      }));
    const recorded: SnapshotSet = {
      setId,
      term: set.term,
      logIndex: set.logIndex,
      timestamp: set.timestamp,
      valid: true,
      snapshots,
    };
    return this.write(`recording the snapshot set at log index ${set.logIndex}`, (put) =>
      snapshots.forEach(put),
    ).then(() => recorded);
  }

  /** Snapshot sets, newest first (valid and invalid). */
  snapshotSets(): SnapshotSet[] {
    const sets = new Map<number, SnapshotEntry[]>();
    for (const entry of this.entries()) {
      if (entry.type !== 'SNAPSHOT') continue;
      const list = sets.get(entry.setId) ?? [];
      list.push(entry);
      sets.set(entry.setId, list);
    }
    return [...sets.entries()]
      .sort(([a], [b]) => b - a)
      .map(([setId, snapshots]) => ({
        setId,
        term: snapshots[0].term,
        logIndex: snapshots[0].logIndex,
        timestamp: snapshots[0].timestamp,
        valid: snapshots.every((entry) => entry.valid),
        snapshots,
      }));
  }

  /** The newest set whose every entry is valid. */
  latestValidSnapshotSet(): SnapshotSet | undefined {
    return this.snapshotSets().find((set) => set.valid);
  }

  /**
   * Mark the latest valid snapshot set invalid, so recovery uses the one before it. Resolves once
   * durable with the set invalidated, or undefined if there was none.
   */
  async invalidateLatestSnapshot(): Promise<SnapshotSet | undefined> {
    const latest = this.latestValidSnapshotSet();
    if (latest === undefined) return undefined;
    await this.write(`invalidating the snapshot set at log index ${latest.logIndex}`, (put) => {
      for (const entry of latest.snapshots) put({ ...entry, valid: false });
    });
    return {
      ...latest,
      valid: false,
      snapshots: latest.snapshots.map((entry) => ({ ...entry, valid: false })),
    };
  }

  /** Drop snapshot entries of sets that are invalid or older than `keepSets` valid sets. Durable. */
  async removeOldSnapshotEntries(keepSets: number): Promise<SnapshotEntry[]> {
    const valid = this.snapshotSets().filter((set) => set.valid);
    const keep = new Set(valid.slice(0, Math.max(1, keepSets)).map((set) => set.setId));
    const doomed = this.snapshotSets()
      .filter((set) => !keep.has(set.setId))
      .flatMap((set) => set.snapshots);
    if (doomed.length > 0) {
      await durableBatch(this.env, this.dir, 'removing old snapshot entries from the recording log', () => {
        for (const entry of doomed) this.db.remove(entry.entryId);
      });
    }
    return doomed;
  }

  private async write(doing: string, fill: (put: (entry: RecordingEntry) => void) => void): Promise<void> {
    await durableBatch(this.env, this.dir, doing, () => {
      fill((entry) => {
        this.db.put(entry.entryId, encodeChecked(entry));
      });
    });
  }

  private invalid(message: string): StorageError {
    return new StorageError('INVALID_ARGUMENT', `recordingLog.${message}`, { dir: this.dir });
  }
}
