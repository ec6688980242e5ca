// What recovery loads: the latest valid snapshot set whose snapshots are intact and which the log
// continues from, then the log after it; a set that fails is skipped (and listed), falling back to the one
// before it.

import { StorageError } from './errors.ts';
import type { LogStore } from './log-store.ts';
import type { NodeState, NodeStateStore } from './node-state.ts';
import type { RecordingLog, SnapshotEntry, SnapshotSet, TermEntry } from './recording-log.ts';
import type { SnapshotInfo, SnapshotStore } from './snapshot-store.ts';

export interface RecoveryPlan {
  /** The snapshot set to load, or undefined to replay the log from index 1. */
  readonly snapshotSet: SnapshotSet | undefined;
  readonly snapshots: readonly { readonly entry: SnapshotEntry; readonly info: SnapshotInfo }[];
  /** Replay entries replayFrom..replayTo (empty when replayFrom > replayTo). */
  readonly replayFrom: number;
  readonly replayTo: number;
  readonly lastTerm: TermEntry | undefined;
  readonly nodeState: NodeState;
  /** Valid sets passed over, newest first, and why. */
  readonly skipped: readonly { readonly setId: number; readonly logIndex: number; readonly reason: string }[];
}

/** The stores recovery reads. */
export interface RecoveredStores {
  readonly dir: string;
  readonly log: LogStore;
  readonly nodeState: NodeStateStore;
  readonly recordingLog: RecordingLog;
  readonly snapshots: SnapshotStore;
}

/**
 * What recovery loads: the latest valid snapshot set whose snapshots are intact and which the log
 * continues from, then the log after it. A set that fails is skipped (and listed), falling back to
 * the one before it. Throws COMPACTED when the log was purged and no usable snapshot covers the gap.
 */
export const planRecovery = (
  stores: RecoveredStores,
  options: { verifySnapshots?: boolean } = {},
): RecoveryPlan => {
  const verify = options.verifySnapshots ?? true;
  const skipped: { setId: number; logIndex: number; reason: string }[] = [];
  const { firstIndex, lastIndex } = stores.log;
  const nodeState = stores.nodeState.load();
  const lastTerm = stores.recordingLog.lastTerm();
  for (const set of stores.recordingLog.snapshotSets()) {
    if (!set.valid) continue;
    const reason = unusableReason(stores, set, verify);
    if (reason !== undefined) {
      skipped.push({ setId: set.setId, logIndex: set.logIndex, reason });
      continue;
    }
    const snapshots = set.snapshots.map((entry) => ({
      entry,
      info: stores.snapshots.info(entry.snapshotId)!,
    }));
    return {
      snapshotSet: set,
      snapshots,
      replayFrom: set.logIndex + 1,
      replayTo: lastIndex,
      lastTerm,
      nodeState,
      skipped,
    };
  }
  if (firstIndex > 1) {
    throw new StorageError(
      'COMPACTED',
      `no usable snapshot covers the log purged up to ${firstIndex - 1}` +
        (skipped.length > 0
          ? ` (skipped: ${skipped.map((s) => `${s.logIndex}: ${s.reason}`).join('; ')})`
          : '') +
        '; rebuild this member from the leader or restore a backup',
      { dir: stores.dir, index: firstIndex - 1 },
    );
  }
  return {
    snapshotSet: undefined,
    snapshots: [],
    replayFrom: 1,
    replayTo: lastIndex,
    lastTerm,
    nodeState,
    skipped,
  };
};

const unusableReason = (stores: RecoveredStores, set: SnapshotSet, verify: boolean): string | undefined => {
  const { firstIndex, lastIndex } = stores.log;
  if (set.logIndex + 1 < firstIndex) return `the log was purged past it (first index ${firstIndex})`;
  if (set.logIndex > lastIndex) return `it is beyond the log's last index ${lastIndex}`;
  let boundaryTerm: number | undefined;
  try {
    boundaryTerm = stores.log.termAt(set.logIndex);
  } catch (error) {
    return (error as Error).message;
  }
  if (boundaryTerm !== undefined && boundaryTerm !== set.term) {
    return `the log has term ${boundaryTerm} at ${set.logIndex}, the snapshot says ${set.term}`;
  }
  for (const entry of set.snapshots) {
    let info: SnapshotInfo | undefined;
    try {
      info = stores.snapshots.info(entry.snapshotId);
    } catch (error) {
      return (error as Error).message;
    }
    if (info === undefined) return `snapshot ${entry.snapshotId} (service ${entry.serviceId}) is missing`;
    if (info.serviceId !== entry.serviceId || info.logIndex !== set.logIndex) {
      return `snapshot ${entry.snapshotId} is of service ${info.serviceId} at ${info.logIndex}, not service ${entry.serviceId} at ${set.logIndex}`;
    }
    if (verify) {
      const failure = stores.snapshots.verify(entry.snapshotId);
      if (failure !== undefined) return failure.message;
    }
  }
  return undefined;
};
