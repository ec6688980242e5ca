// How a member carries out the consensus module's storage effects: in the order the module emitted them.
//
// Log appends, truncations and purges and node-state saves are started at once, in emission order: the
// stores queue them in call order, and one event-loop turn's appends share a group commit. A snapshot
// install is a barrier: its writes (the snapshot data, the recording-log set, the purge of the log up to
// it) must be in place before anything emitted after it reaches the store, so everything after it waits
// until it has completed. Without the barrier, the entries the leader sends after its snapshot reach the
// log before the purge that makes room for them, and the store refuses them (issue 10: "entries[0] has
// index 16008 but the log expects 15850").
//
// A step never throws past here: a synchronous throw or a refusal (a rejected promise), or a throw from
// its completion callback, is reported once through `onFailure` (the member's one failure path: log
// FATAL and exit 70), and nothing after it starts.

import { statfsSync } from 'node:fs';
import type { SnapshotImage } from '../actors/consensus/index.ts';
import { snapshotParts } from '../actors/consensus/snapshot-parts.ts';
import { CONSENSUS_MODULE_SERVICE_ID, type MemberStore } from '../persistence/index.ts';

/** The service id the hosted service's snapshot is recorded under. */
export const SERVICE_SNAPSHOT_ID = 0;

export interface StorageStep {
  /** What the step does, for the failure report ("log append", "snapshot install"). */
  readonly what: string;
  /** Start the writes (enqueue them in the store now); resolves once they are durable. */
  readonly start: () => Promise<unknown>;
  /** Called once the writes are durable. */
  readonly done?: () => void;
  /** Nothing after this step starts before it has completed. */
  readonly barrier?: boolean;
}

export class StorageSequence {
  private readonly waiting: StorageStep[] = [];
  /** The barrier in flight, if any. */
  private barrier: Promise<unknown> | null = null;
  private stopped = false;

  constructor(private readonly onFailure: (error: Error, what: string) => void) {}

  /** Carry out `step` after every step run before it (at once, unless a barrier is in flight). */
  run(step: StorageStep): void {
    if (this.stopped) return;
    if (this.barrier !== null || this.waiting.length > 0) this.waiting.push(step);
    else this.start(step);
  }

  /** Steps held behind a barrier. */
  get held(): number {
    return this.waiting.length;
  }

  /** Start nothing more; resolves once the barrier in flight (if any) has settled. */
  async close(): Promise<void> {
    this.stopped = true;
    this.waiting.length = 0;
    await this.barrier?.catch(() => {});
  }

  private start(step: StorageStep): void {
    let written: Promise<unknown>;
    try {
      written = step.start();
    } catch (error) {
      written = Promise.reject(error);
    }
    if (step.barrier) this.barrier = written;
    written.then(
      () => {
        if (step.barrier) {
          this.barrier = null;
          while (this.barrier === null && !this.stopped && this.waiting.length > 0)
            this.start(this.waiting.shift() as StorageStep);
        }
        if (this.stopped) return;
        try {
          step.done?.();
        } catch (error) {
          this.fail(error, `${step.what} (on completion)`);
        }
      },
      (error: unknown) => {
        if (!this.stopped) this.fail(error, step.what);
      },
    );
  }

  /** Report a failure once and start nothing more. */
  private fail(error: unknown, what: string): void {
    this.stopped = true;
    this.waiting.length = 0;
    this.onFailure(error instanceof Error ? error : new Error(String(error)), what);
  }
}

/**
 * Snapshot sets are recorded one at a time, in the order asked: the member's own (once its service has
 * produced the bytes) and the leader's (when its install starts). A set is recorded only if it is still
 * newer than the snapshot the consensus module stands on (see Member.takeSnapshot): a snapshot the member
 * was taking when the leader's arrived must not be recorded after it, or pruning would keep it and drop
 * the leader's, and the log is already purged past it.
 */
export class SnapshotSetWrites {
  private last: Promise<unknown> = Promise.resolve();

  /** Run `write` once every write queued before it has settled; its own outcome. */
  run<T>(write: () => Promise<T>): Promise<T> {
    const result = this.last.then(write);
    this.last = result.catch(() => {});
    return result;
  }
}

/** Where a snapshot set sits in the log, and when. */
export interface SnapshotPosition {
  readonly index: number;
  readonly term: number;
  readonly timestamp: number;
}

/**
 * Record a snapshot set (the consensus module's part and the service's) durably: both snapshots, then the
 * recording-log entry that makes them a set. A part that is null is left out (the service's may be).
 */
export const recordSnapshotSet = async (
  store: MemberStore,
  at: SnapshotPosition,
  parts: { readonly module: Uint8Array; readonly service: Uint8Array | null },
): Promise<void> => {
  const snapshots: { serviceId: number; snapshotId: number }[] = [];
  for (const [serviceId, bytes] of [
    [CONSENSUS_MODULE_SERVICE_ID, parts.module],
    [SERVICE_SNAPSHOT_ID, parts.service],
  ] as const) {
    if (bytes === null) continue;
    const { snapshotId } = await store.snapshots.save(
      { serviceId, logIndex: at.index, term: at.term, timestamp: at.timestamp },
      bytes,
    );
    snapshots.push({ serviceId, snapshotId });
  }
  await store.recordingLog.appendSnapshotSet({
    term: at.term,
    logIndex: at.index,
    timestamp: at.timestamp,
    snapshots,
  });
};

/**
 * The storage half of installing a leader's snapshot: record its set, then purge the log up to it. The
 * purge drops every entry up to the snapshot's index (all of them if the log disagrees with it or is
 * shorter, as for a wiped member), so the leader's next entries append after it (D5).
 */
export const storeLeaderSnapshot = async (store: MemberStore, snapshot: SnapshotImage): Promise<void> => {
  const { module, service } = snapshotParts(snapshot.data);
  if (module === null) {
    throw new Error(`the leader's snapshot at ${snapshot.index} has no consensus module part`);
  }
  await recordSnapshotSet(
    store,
    { index: snapshot.index, term: snapshot.term, timestamp: 0 },
    { module, service },
  );
  await store.log.purgeTo(snapshot.index, snapshot.term);
};

/** Free space a member wants before it tries writing again after the disk filled up. */
const FREE_BYTES_TO_REJOIN = 2 * 1024 * 1024;

/**
 * Whether the store takes writes again after it failed with a full disk (D1, D2): the file system has
 * room, and a node-state write (the same record again) is flushed.
 */
export const storageWorks = async (store: MemberStore): Promise<boolean> => {
  try {
    const stats = statfsSync(store.dir);
    if (stats.bavail * stats.bsize < FREE_BYTES_TO_REJOIN) return false;
    await store.nodeState.save(store.nodeState.load());
    return true;
  } catch {
    return false;
  }
};
