// The start-up scan: every checksum in a member directory — each log entry (contiguous indexes, terms
// never decreasing), the purge boundary, the node state, the recording log, snapshot metadata and (by
// default) every snapshot's data, and that the recording log's valid snapshots exist (D3, N5, O3).

import type { Database } from 'lmdb';
import { StorageError, type StorageErrorCode, toStorageError } from './errors.ts';
import type { LogStore } from './log-store.ts';
import type { NodeStateStore } from './node-state.ts';
import { checkEntryRecord, recordTerm } from './record-codec.ts';
import type { RecordingLog } from './recording-log.ts';
import type { SnapshotStore } from './snapshot-store.ts';

export interface ScanProblem {
  readonly code: StorageErrorCode;
  readonly dir: string;
  readonly index?: number;
  readonly snapshotId?: number;
  readonly chunk?: number;
  readonly message: string;
}

export interface ScanReport {
  readonly dir: string;
  readonly ok: boolean;
  readonly entriesChecked: number;
  readonly firstIndex: number;
  readonly lastIndex: number;
  readonly snapshotsChecked: number;
  /** The first problems found (at most MAX_REPORTED_PROBLEMS); `problemCount` counts them all. */
  readonly problems: readonly ScanProblem[];
  readonly problemCount: number;
}

export const MAX_REPORTED_PROBLEMS = 100;

export class StartupScanError extends StorageError {
  constructor(readonly report: ScanReport) {
    const first = report.problems[0];
    super(
      first.code,
      `the start-up scan found ${report.problemCount} problem(s); first: ${first.message}. ` +
        'This member refuses to start: rebuild it from the leader (wipe the directory) or restore a backup',
      { dir: report.dir, index: first.index, snapshotId: first.snapshotId, chunk: first.chunk },
    );
  }
}

/** What the scan reads: the member's stores and the raw log database (to check records without decoding). */
export interface ScannedStores {
  readonly dir: string;
  readonly log: LogStore;
  readonly logDb: Database<Buffer, number>;
  readonly nodeState: NodeStateStore;
  readonly recordingLog: RecordingLog;
  readonly snapshots: SnapshotStore;
}

/**
 * Check every checksum: each log entry (and that indices are contiguous and terms never decrease),
 * the purge boundary, the node state, the recording log, snapshot metadata and (by default) every
 * snapshot's data, and that the recording log's valid snapshots exist.
 */
export const scanMember = (stores: ScannedStores, options: { snapshots?: boolean } = {}): ScanReport => {
  const problems: ScanProblem[] = [];
  let problemCount = 0;
  const report = (problem: Omit<ScanProblem, 'dir'>): void => {
    problemCount++;
    if (problems.length < MAX_REPORTED_PROBLEMS) problems.push({ ...problem, dir: stores.dir });
  };
  const { firstIndex, lastIndex } = stores.log;
  let entriesChecked = 0;
  let expected = firstIndex;
  let previousTerm = stores.log.purgeBoundary.term;
  try {
    // Keys, then each value through getBinaryFast (a reused buffer, not a copy: nothing keeps it).
    for (const key of stores.logDb.getKeys({ start: firstIndex, end: lastIndex + 1 })) {
      const value = stores.logDb.getBinaryFast(key);
      if (key !== expected) {
        report({
          code: 'CORRUPT_ENTRY',
          index: expected,
          message: `log entries ${expected}..${key - 1} are missing (a hole in the log)`,
        });
        expected = key;
      }
      entriesChecked++;
      const problem = checkEntryRecord(value, key);
      if (problem !== undefined) {
        report({ code: 'CORRUPT_ENTRY', index: key, message: `log entry ${key}: ${problem}` });
      } else {
        const term = recordTerm(value!);
        if (term < previousTerm) {
          report({
            code: 'CORRUPT_ENTRY',
            index: key,
            message: `log entry ${key} has term ${term}, lower than the term ${previousTerm} before it`,
          });
        }
        previousTerm = term;
      }
      expected++;
    }
  } catch (error) {
    const failure = toStorageError(error, stores.dir, 'scanning the log', expected);
    report({ code: failure.code, index: expected, message: failure.message });
  }
  if (expected <= lastIndex) {
    report({
      code: 'CORRUPT_ENTRY',
      index: expected,
      message: `log entries ${expected}..${lastIndex} are missing`,
    });
  }
  try {
    stores.nodeState.load();
  } catch (error) {
    report({ code: 'CORRUPT_RECORD', message: (error as Error).message });
  }
  for (const { entryId, problem } of stores.recordingLog.damaged()) {
    report({ code: 'CORRUPT_RECORD', message: `recording log entry ${entryId} is damaged: ${problem}` });
  }
  for (const { snapshotId, problem } of stores.snapshots.damagedMetadata()) {
    report({
      code: 'CORRUPT_SNAPSHOT',
      snapshotId,
      message: `snapshot ${snapshotId} metadata is damaged: ${problem}`,
    });
  }
  let snapshotsChecked = 0;
  if (options.snapshots ?? true) {
    for (const info of stores.snapshots.list()) {
      const failure = stores.snapshots.verify(info.snapshotId);
      snapshotsChecked++;
      if (failure !== undefined) {
        report({
          code: failure.code,
          snapshotId: info.snapshotId,
          chunk: failure.chunk,
          message: failure.message,
        });
      }
    }
  }
  try {
    const stored = new Set(stores.snapshots.list().map((info) => info.snapshotId));
    for (const set of stores.recordingLog.snapshotSets()) {
      if (!set.valid) continue;
      for (const entry of set.snapshots) {
        if (!stored.has(entry.snapshotId)) {
          report({
            code: 'CORRUPT_SNAPSHOT',
            snapshotId: entry.snapshotId,
            message: `the recording log's valid snapshot ${entry.snapshotId} (service ${entry.serviceId}, log index ${entry.logIndex}) is missing from the snapshot store`,
          });
        }
      }
    }
  } catch {
    // A damaged recording log is already reported above.
  }
  return {
    dir: stores.dir,
    ok: problemCount === 0,
    entriesChecked,
    firstIndex,
    lastIndex,
    snapshotsChecked,
    problems,
    problemCount,
  };
};
