// A simulated member directory: what is durable, and the writes issued but not yet flushed. Two
// flush queues, as a member has a log and a node-state/snapshot store: each completes its own writes
// in order, but the two complete in no fixed order relative to each other (a snapshot install can be
// durable after appends issued behind it, a vote after a later append). A crash keeps, of each
// queue, any prefix of its unflushed writes (a disk may persist what it never acknowledged), and may
// cut the last append of that prefix short (a torn last record): never more than was written, never
// out of order within a queue.

import type { ModuleInput } from '../../actors/consensus/module-types.ts';
import type { PersistedState, SnapshotImage } from '../../actors/consensus/types.ts';
import type { LogEntry } from '../../actors/log/log-entry.ts';
import type { Random } from '../../machines/random.ts';

export type DiskOp =
  | { op: 'append'; entries: readonly LogEntry[] }
  | { op: 'truncate'; fromIndex: number }
  | { op: 'purge'; toIndex: number }
  | { op: 'state'; currentTerm: number; candidateTermId: number; votedFor: number | null }
  | { op: 'snapshot'; image: SnapshotImage }
  | { op: 'install'; image: SnapshotImage };

export type FlushQueue = 'log' | 'state';

export const queueOf = (op: DiskOp): FlushQueue =>
  op.op === 'append' || op.op === 'truncate' || op.op === 'purge' ? 'log' : 'state';

/** A write issued and not yet flushed; `seq` orders writes across both queues by issue time. */
export interface PendingWrite {
  readonly op: DiskOp;
  readonly seq: number;
  readonly queue: FlushQueue;
  readonly done: ModuleInput | null;
}

export class VirtualDisk {
  currentTerm = 0;
  candidateTermId = 0;
  votedFor: number | null = null;
  snapshot: SnapshotImage | null = null;
  /** Log entries after the snapshot, by index, with the issue seq of the write that put them there. */
  private log = new Map<number, { entry: LogEntry; seq: number }>();
  /** When each queue is next free to complete a flush (virtual ms). */
  readonly freeAt: Record<FlushQueue, number> = { log: 0, state: 0 };
  /** A stalled queue completes nothing before this time. */
  readonly stallUntil: Record<FlushQueue, number> = { log: 0, state: 0 };
  /**
   * A slow queue: each flush of a write issued now completes no earlier than this many ms later. Set
   * on one queue only, the other queue's flushes overtake it by that much.
   */
  readonly latency: Record<FlushQueue, number> = { log: 0, state: 0 };
  pending: PendingWrite[] = [];
  private issued = 0;
  /** The last index of the contiguous log after the snapshot (recomputed after a change). */
  private end: number | null = null;

  get base(): number {
    return this.snapshot?.index ?? 0;
  }

  issue(op: DiskOp, done: ModuleInput | null): PendingWrite {
    const write: PendingWrite = { op, seq: ++this.issued, queue: queueOf(op), done };
    this.pending.push(write);
    return write;
  }

  /** The write flushed: it becomes durable. */
  complete(write: PendingWrite): void {
    const at = this.pending.indexOf(write);
    if (at >= 0) this.pending.splice(at, 1);
    this.apply(write.op, write.seq);
  }

  /** A crash: keep a random prefix of each queue's unflushed writes (the last append maybe torn). */
  crash(rng: Random, keepUnflushed: boolean): void {
    const pending = this.pending;
    this.pending = [];
    if (!keepUnflushed) return;
    for (const queue of ['log', 'state'] as const) {
      const writes = pending.filter((w) => w.queue === queue);
      const keep = rng.int(0, writes.length);
      for (let i = 0; i < keep; i++) this.apply(writes[i].op, writes[i].seq);
      const torn = writes[keep];
      if (torn?.op.op === 'append' && torn.op.entries.length > 1) {
        const entries = torn.op.entries.slice(0, rng.int(1, torn.op.entries.length - 1));
        this.apply({ op: 'append', entries }, torn.seq);
      }
    }
  }

  /** The disk is well again: no stall, no extra latency (for writes issued from now on). */
  calm(): void {
    for (const queue of ['log', 'state'] as const) {
      this.stallUntil[queue] = 0;
      this.latency[queue] = 0;
    }
  }

  /** The member directory is lost: the member restarts empty. */
  wipe(): void {
    this.end = null;
    this.currentTerm = 0;
    this.candidateTermId = 0;
    this.votedFor = null;
    this.snapshot = null;
    this.log.clear();
    this.pending = [];
  }

  private apply(op: DiskOp, seq: number): void {
    this.end = null;
    switch (op.op) {
      case 'append':
        for (const entry of op.entries)
          if (entry.index > this.base) this.log.set(entry.index, { entry, seq });
        return;
      case 'truncate':
        for (const index of [...this.log.keys()]) if (index >= op.fromIndex) this.log.delete(index);
        return;
      case 'purge':
        if (op.toIndex <= this.base) this.dropThrough(op.toIndex);
        return;
      case 'state':
        this.currentTerm = op.currentTerm;
        this.candidateTermId = op.candidateTermId;
        this.votedFor = op.votedFor;
        return;
      case 'snapshot':
        if (op.image.index <= this.base) return; // older than the one installed
        this.snapshot = op.image;
        this.dropThrough(op.image.index);
        return;
      case 'install': {
        // The install replaces the log as it stood when it was issued: a suffix that agrees at the
        // snapshot stays; otherwise what was written before the install goes, what was written after stays.
        const keep = this.log.get(op.image.index)?.entry.term === op.image.term;
        this.snapshot = op.image;
        this.dropThrough(op.image.index);
        if (!keep) for (const [index, at] of [...this.log]) if (at.seq < seq) this.log.delete(index);
        return;
      }
    }
  }

  private dropThrough(index: number): void {
    for (const key of [...this.log.keys()]) if (key <= index) this.log.delete(key);
  }

  /** What a restarting member reads: the snapshot and the contiguous log after it. */
  load(): PersistedState {
    const entries: LogEntry[] = [];
    for (let i = this.base + 1; i <= this.lastIndex; i++)
      entries.push((this.log.get(i) as { entry: LogEntry }).entry);
    return {
      currentTerm: this.currentTerm,
      candidateTermId: this.candidateTermId,
      votedFor: this.votedFor,
      snapshot: this.snapshot,
      entries,
    };
  }

  get lastIndex(): number {
    if (this.end === null) {
      let i = this.base;
      while (this.log.has(i + 1)) i++;
      this.end = i;
    }
    return this.end;
  }

  /** Durable: would a restart read this entry (in the contiguous log, or covered by the snapshot)? */
  holds(entry: LogEntry): boolean {
    if (entry.index <= this.base) return true;
    return entry.index <= this.lastIndex && this.log.get(entry.index)?.entry.term === entry.term;
  }
}
