// N shards in one thread: the simulator's actor runtime, and the reference the worker pool must match.
// Entries are routed by `shardOfEntry` (fnv1a of the actor address bytes % N); outputs are merged by log
// index, then shard number, so the merged stream does not depend on N for single-actor entries.

import type { LogEntry } from '../log/log-entry.ts';
import { pack, type ShardOutput, shardOfAddress, shardOfEntry, unpack } from './protocol.ts';
import { Shard, type ShardOptions } from './shard.ts';

/** The shards, in-process (ShardSet) or on worker threads (ShardPool): the contract the member and the simulator drive. */
export interface Shards {
  readonly shardCount: number;
  /** Apply committed entries (log order, no gaps); resolves to their outputs ordered by log index. */
  apply(entries: readonly LogEntry[]): ShardOutput[] | Promise<ShardOutput[]>;
  /** Every shard's snapshot at the last applied index, in shard order. */
  snapshot(): ShardSetSnapshot | Promise<ShardSetSnapshot>;
}

export interface ShardSetSnapshot {
  /** Log index the snapshot reflects (every entry up to it is applied, none after). */
  readonly index: number;
  /** One blob per shard, in shard order. */
  readonly shards: readonly Uint8Array[];
}

/** Merge per-shard output lists (each ordered by index) by (index, shard). */
export const mergeOutputs = (perShard: readonly (readonly ShardOutput[])[]): ShardOutput[] => {
  if (perShard.length === 1) return perShard[0] as ShardOutput[];
  const merged: ShardOutput[] = [];
  const at = perShard.map(() => 0);
  for (;;) {
    let best = -1;
    for (let s = 0; s < perShard.length; s++) {
      if (
        at[s] < perShard[s].length &&
        (best < 0 || perShard[s][at[s]].index < perShard[best][at[best]].index)
      )
        best = s;
    }
    if (best < 0) return merged;
    // Take this shard's whole run at that index, keeping its internal order.
    const index = perShard[best][at[best]].index;
    while (at[best] < perShard[best].length && perShard[best][at[best]].index === index)
      merged.push(perShard[best][at[best]++]);
  }
};

/** Split a batch into per-shard batches (broadcast entries go to every shard). */
export const routeEntries = (entries: readonly LogEntry[], shardCount: number): LogEntry[][] => {
  const batches: LogEntry[][] = Array.from({ length: shardCount }, () => []);
  for (const entry of entries) {
    const shard = shardOfEntry(entry, shardCount);
    if (shard === null) continue;
    if (shard < 0) for (const batch of batches) batch.push(entry);
    else batches[shard].push(entry);
  }
  return batches;
};

export class ShardSet implements Shards {
  readonly shards: readonly Shard[];
  private applied = 0;

  constructor(
    readonly shardCount: number,
    options: Omit<ShardOptions, 'shard' | 'shardCount'>,
    shards?: readonly Shard[],
  ) {
    if (!(Number.isInteger(shardCount) && shardCount >= 1)) {
      throw new RangeError(`ShardSet: shardCount must be an integer >= 1, got ${shardCount}`);
    }
    this.shards =
      shards ??
      Array.from({ length: shardCount }, (_, shard) => new Shard({ ...options, shard, shardCount }));
    this.applied = Math.max(0, ...this.shards.map((s) => s.lastApplied));
  }

  get lastApplied(): number {
    return this.applied;
  }

  apply(entries: readonly LogEntry[]): ShardOutput[] {
    const batches = routeEntries(entries, this.shardCount);
    const outputs = mergeOutputs(this.shards.map((shard, s) => shard.apply(batches[s])));
    if (entries.length > 0) this.applied = Math.max(this.applied, entries[entries.length - 1].index);
    return outputs;
  }

  snapshot(): ShardSetSnapshot {
    return { index: this.applied, shards: this.shards.map((shard) => shard.snapshot(this.applied)) };
  }

  /** Rebuild from a snapshot set; the shard count may differ from the one that wrote it. */
  static restore(
    snapshot: ShardSetSnapshot,
    shardCount: number,
    options: Omit<ShardOptions, 'shard' | 'shardCount'>,
  ): ShardSet {
    const same = shardCount === snapshot.shards.length;
    const shards = Array.from({ length: shardCount }, (_, shard) =>
      same
        ? Shard.restore(snapshot.shards[shard], { ...options, shard, shardCount })
        : Shard.restore(
            snapshot.shards,
            { ...options, shard, shardCount },
            (address) => shardOfAddress(address, shardCount) === shard,
          ),
    );
    const set = new ShardSet(shardCount, options, shards);
    set.applied = snapshot.index;
    return set;
  }

  /** The persisted state of one actor, wherever it lives. */
  actorState(address: string): unknown {
    return this.shards[shardOfAddress(address, this.shardCount)].actorState(address);
  }
}

export const SHARD_SET_SNAPSHOT_VERSION = 1;

/** One blob for a whole snapshot set (what the service records in the snapshot store). */
export const encodeShardSetSnapshot = (snapshot: ShardSetSnapshot): Uint8Array =>
  pack([SHARD_SET_SNAPSHOT_VERSION, snapshot.index, snapshot.shards]);

export const decodeShardSetSnapshot = (bytes: Uint8Array): ShardSetSnapshot => {
  const decoded = unpack(bytes) as [number, number, Uint8Array[]];
  if (!Array.isArray(decoded) || decoded[0] !== SHARD_SET_SNAPSHOT_VERSION) {
    throw new Error(
      `actor snapshot: format version ${Array.isArray(decoded) ? decoded[0] : 'unknown'} is not supported (this build reads ${SHARD_SET_SNAPSHOT_VERSION}); restore it with a matching build`,
    );
  }
  const [, index, shards] = decoded;
  if (!Number.isInteger(index) || index < 0 || !Array.isArray(shards) || shards.length === 0) {
    throw new Error('actor snapshot: header is damaged (index or shard list missing)');
  }
  return { index, shards };
};

/**
 * Start-up: restore from the newest snapshot that decodes and restores cleanly, falling back to older
 * ones. `candidates` are newest first; `null` means a start from the empty log. Replay resumes after
 * the returned `index`.
 */
export const restoreLatestValid = (
  candidates: readonly Uint8Array[],
  shardCount: number,
  options: Omit<ShardOptions, 'shard' | 'shardCount'>,
): { set: ShardSet; index: number; used: number | null; rejected: string[] } => {
  const rejected: string[] = [];
  for (let i = 0; i < candidates.length; i++) {
    try {
      const snapshot = decodeShardSetSnapshot(candidates[i]);
      return {
        set: ShardSet.restore(snapshot, shardCount, options),
        index: snapshot.index,
        used: i,
        rejected,
      };
    } catch (error) {
      rejected.push(`snapshot ${i}: ${(error as Error).message}`);
    }
  }
  return { set: new ShardSet(shardCount, options), index: 0, used: null, rejected };
};
