// The log's writes, group-committed: one ordered queue, drained group by group. A group is everything
// queued since the previous group started committing (all appends of one synchronous run, plus whatever
// arrived while the previous group committed), written as one LMDB transaction with one flush — never one
// fsync per entry. A group's promises resolve only once its transaction is flushed to disk; if a group
// fails, it and everything queued behind it is rejected (each was validated against the failed tail) and
// the store is told to reload its view. The projected view and the reads are persistence/log-store.ts.

import type { LogEntry } from '../actors/log/log-entry.ts';
import { type Committed, commitBatch } from './durable.ts';
import { StorageError, toStorageError } from './errors.ts';
import type { LogStoreParts, PurgeBoundary } from './log-store.ts';
import { encodeChecked } from './record-codec.ts';

export type WriteOp =
  | { readonly type: 'append'; readonly entries: readonly LogEntry[]; readonly records: readonly Buffer[] }
  | { readonly type: 'truncate'; readonly from: number; readonly to: number }
  | { readonly type: 'purge'; readonly from: number; readonly to: number; readonly boundary: PurgeBoundary };

interface QueuedOp {
  readonly op: WriteOp;
  /** The projected last index once this operation is applied. */
  readonly lastAfter: number;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/** The meta key of the checked PurgeBoundary record. */
export const BOUNDARY_KEY = 'purge-boundary';
/** Bytes LMDB needs per entry beyond the record: key, node header, page slack (estimate for quotas). */
const PER_ENTRY_LMDB_BYTES = 24;

/** The log store's LMDB parts, and what the queue tells the store. */
export interface LogWriteQueueParts
  extends Pick<LogStoreParts, 'dir' | 'env' | 'logDb' | 'metaDb' | 'checkSpace'> {
  /** An operation is flushed; the log's last index was `lastAfter` once it applied. Called in queue order. */
  readonly onFlushed: (op: WriteOp, lastAfter: number) => void;
  /** A group failed to commit (its operations and those behind it are rejected): reload the view. */
  readonly onFailed: () => void;
}

export class LogWriteQueue {
  private queue: QueuedOp[] = [];
  private writing = false;
  /** Promises of operations not settled yet, for sync(). */
  private readonly outstanding = new Set<Promise<void>>();

  constructor(private readonly parts: LogWriteQueueParts) {}

  /** Queue `op`; `lastAfter` is the projected last index once it applies. Resolves once it is flushed. */
  enqueue(op: WriteOp, lastAfter: number): Promise<void> {
    const promise = new Promise<void>((resolve, reject) => {
      this.queue.push({ op, lastAfter, resolve, reject });
      if (!this.writing) {
        this.writing = true;
        // A microtask: every append made in the current synchronous run joins this group, and appends
        // arriving while it commits join the next one, without adding an event-loop turn of latency.
        queueMicrotask(() => void this.drain());
      }
    });
    this.outstanding.add(promise);
    const settled = () => {
      this.outstanding.delete(promise);
    };
    promise.then(settled, settled);
    return promise;
  }

  /** Resolves once every operation queued so far is durable (or has failed). */
  async sync(): Promise<void> {
    await Promise.allSettled([...this.outstanding]);
  }

  /**
   * Write queued operations group by group. A group's commit is awaited before the next group starts
   * (so a failure never leaves a later group on top of a hole); its flush is awaited in the background,
   * overlapping the next group's commit, and its promises resolve when that flush completes.
   */
  private async drain(): Promise<void> {
    const { dir } = this.parts;
    while (this.queue.length > 0) {
      const group = this.queue;
      this.queue = [];
      let committed: Committed;
      try {
        committed = await this.commitGroup(group);
      } catch (error) {
        const failed = group.concat(this.queue);
        this.queue = [];
        const reason = error instanceof StorageError ? error : toStorageError(error, dir, 'writing the log');
        for (const queued of failed) queued.reject(reason);
        try {
          this.parts.onFailed();
        } catch {
          // The view stays as projected; the next read reports the damage.
        }
        continue;
      }
      committed.flushed.then(
        () => {
          for (const queued of group) {
            this.parts.onFlushed(queued.op, queued.lastAfter);
            queued.resolve();
          }
        },
        (error: unknown) => {
          const reason = toStorageError(error, dir, 'flushing the log');
          for (const queued of group) queued.reject(reason);
        },
      );
    }
    this.writing = false;
  }

  private async commitGroup(group: readonly QueuedOp[]): Promise<Committed> {
    const { env, dir, logDb, metaDb } = this.parts;
    let appendBytes = 0;
    let firstAppended: number | undefined;
    for (const { op } of group) {
      if (op.type !== 'append') continue;
      firstAppended ??= op.entries[0].index;
      for (const record of op.records) appendBytes += record.length + PER_ENTRY_LMDB_BYTES;
    }
    if (appendBytes > 0)
      this.parts.checkSpace(appendBytes, `appending entries from ${firstAppended}`, firstAppended);
    const doing =
      firstAppended === undefined
        ? 'truncating or purging the log'
        : `appending entries from ${firstAppended}`;
    return commitBatch(
      env,
      dir,
      doing,
      () => {
        for (const { op } of group) {
          switch (op.type) {
            case 'append':
              for (let i = 0; i < op.entries.length; i++) logDb.put(op.entries[i].index, op.records[i]);
              break;
            case 'truncate':
              for (let i = op.from; i <= op.to; i++) logDb.remove(i);
              break;
            case 'purge':
              for (let i = op.from; i <= op.to; i++) logDb.remove(i);
              metaDb.put(BOUNDARY_KEY, encodeChecked(op.boundary));
              break;
          }
        }
      },
      { index: firstAppended, bytes: appendBytes },
    );
  }
}
