// The event-sourced path the actor benchmarks share: entries appended to a member's durable LMDB log in
// batches (group-committed, flushed), then read back as committed entries and applied on worker shards
// with a few batches in flight — what a member does between commit and its service.

import { performance } from 'node:perf_hooks';
import type { LogEntry } from '../actors/log/log-entry.ts';
import type { MemberStore } from '../persistence/index.ts';
import type { ShardPool } from '../runtime/actor-runtime/shard-pool.ts';

/** Entries per append and per batch posted to the shards. */
export const BATCH = 1000;
/** Batches posted ahead of the oldest unfinished one (the pipeline depth). */
export const IN_FLIGHT = 8;

/** Append `entries` to the store's log in batches of BATCH, all issued at once; elapsed ms until flushed. */
export const appendInBatches = async (store: MemberStore, entries: readonly LogEntry[]): Promise<number> => {
  const start = performance.now();
  const appends: Promise<void>[] = [];
  for (let at = 0; at < entries.length; at += BATCH)
    appends.push(store.log.append(entries.slice(at, at + BATCH)));
  await Promise.all(appends);
  return performance.now() - start;
};

/**
 * Feed `read(from, to)` batches for indexes first..last to the pool, IN_FLIGHT batches outstanding;
 * returns elapsed ms until every batch is applied. `onOutputs` sees each batch's outputs (e.g. to count).
 */
export const feedPool = async (
  pool: ShardPool,
  first: number,
  last: number,
  read: (from: number, to: number) => readonly LogEntry[],
  onOutputs?: (outputs: Awaited<ReturnType<ShardPool['apply']>>) => void,
): Promise<number> => {
  const start = performance.now();
  const inFlight: Promise<unknown>[] = [];
  for (let from = first; from <= last; from += BATCH) {
    if (inFlight.length >= IN_FLIGHT) await inFlight.shift();
    const applied = pool.apply(read(from, Math.min(last, from + BATCH - 1)));
    inFlight.push(onOutputs ? applied.then(onOutputs) : applied);
  }
  await Promise.all(inFlight);
  return performance.now() - start;
};
