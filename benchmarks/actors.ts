// Actor runtime throughput: a counter actor type, 10,000 actors, INC commands appended to a durable
// LMDB log (persistence/), read back as committed entries and applied on worker shards (1 and 2), against
// plain in-memory XState `createActor(...).send` of the same machine in the same run. Then a snapshot of
// 1,000,000 actors (2 shards, most passivated) and the start-up path: restore that snapshot and replay
// committed entries from the durable log after it.
//
// This module also exports `services`: the pool's workers import it to host the counter actors.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { assign, createActor, setup } from 'xstate';
import { z } from 'zod';
import { defineService, update } from '../actors/actor-runtime/service.ts';
import type { ShardSetSnapshot } from '../actors/actor-runtime/shard-set.ts';
import { EntryKind, type LogEntry } from '../actors/log/log-entry.ts';
import { Random } from '../machines/random.ts';
import { ShardPool } from '../runtime/actor-runtime/shard-pool.ts';
import { type BenchOptions, type BenchResult, round } from './harness.ts';
import { appendInBatches, BATCH, feedPool, IN_FLIGHT } from './log-pipeline.ts';

export const describe =
  'Actor events routed through a durable log and applied on 1 and 2 worker shards vs raw XState; snapshot and start-up replay.';

const counter = setup({
  types: { context: {} as { count: number }, events: {} as { type: 'INC'; by: number } },
}).createMachine({
  id: 'counter',
  context: { count: 0 },
  on: { INC: { actions: assign({ count: ({ context, event }) => context.count + event.by }) } },
});

// The context-update styles compared on the hot path: a nested update by spreading vs by an immer draft.
type Nested = { count: number; last: { by: number; seen: number } };
type Inc = { type: 'INC'; by: number };
const nested = setup({ types: { context: {} as Nested, events: {} as Inc } });
const nestedInitial: Nested = { count: 0, last: { by: 0, seen: 0 } };
const spreadCounter = nested.createMachine({
  context: nestedInitial,
  on: {
    INC: {
      actions: assign(({ context, event }) => ({
        count: context.count + event.by,
        last: { by: event.by, seen: context.last.seen + 1 },
      })),
    },
  },
});
const immerCounter = nested.createMachine({
  context: nestedInitial,
  on: {
    INC: {
      actions: assign(
        update<Nested, Inc>((draft, event) => {
          draft.count += event.by;
          draft.last.by = event.by;
          draft.last.seen += 1;
        }),
      ),
    },
  },
});

/** Plain in-memory XState: `events` sends round-robin over `actors` started actors of `machine`. */
const rawEventsPerSec = (
  machine: typeof counter | typeof spreadCounter,
  actors: number,
  events: number,
): number => {
  const raw = Array.from({ length: actors }, () => createActor(machine as typeof counter).start());
  const start = performance.now();
  for (let i = 0; i < events; i++) raw[i % actors].send({ type: 'INC', by: 1 });
  return events / ((performance.now() - start) / 1000);
};

const benchService = defineService({
  name: 'bench',
  actors: { counter: { machine: counter, reply: (snapshot) => snapshot.context.count } },
  commands: { INC: z.object({ type: z.literal('INC'), id: z.string().min(1), by: z.number().int() }) },
  route: ({ id, by }) => ({ actorType: 'counter', actorId: id, event: { type: 'INC', by } }),
});

export const services = [benchService];

/** `count` INC commands from one client session (correlation ids 1, 2, ...): one per actor, then random. */
const commandEntries = (
  count: number,
  actors: number,
  firstIndex: number,
  seed: number,
  sessionId: number,
): LogEntry[] => {
  const rng = new Random(seed);
  const entries: LogEntry[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const index = firstIndex + i;
    const id = `c${i < actors ? i : rng.int(0, actors - 1)}`; // every actor first, then random ones
    entries[i] = {
      index,
      term: 1,
      timestamp: 1_000_000 + index,
      kind: EntryKind.SESSION_MESSAGE,
      payload: benchService.commandPayload({ type: 'INC', id, by: 1 }, sessionId, i + 1),
    };
  }
  return entries;
};

const option = (options: BenchOptions, name: string, fallback: number): number =>
  options[name] === undefined ? fallback : Number(options[name]);

export const run = async (options: BenchOptions): Promise<BenchResult> => {
  const actors = option(options, 'actors', 10_000);
  const events = option(options, 'events', 200_000);
  const snapshotActors = option(options, 'snapshotActors', 1_000_000);
  const servicesModule = new URL(import.meta.url);

  // 1. Raw XState in memory: the same machine, the same actors, createActor(...).send; and the cost of
  // immer on a nested context update against the same update written with spreads.
  rawEventsPerSec(counter, actors, events); // warm-up: the JIT, like the shards' untimed creation phase
  const rawXState = Math.max(
    rawEventsPerSec(counter, actors, events),
    rawEventsPerSec(counter, actors, events),
  );
  const spreadPerSec = rawEventsPerSec(spreadCounter, actors, events);
  const immerPerSec = rawEventsPerSec(immerCounter, actors, events);

  // 2. The durable log: append the commands (group-committed, flushed), then apply what it holds.
  const { openMemberStore } = await import('../persistence/index.ts');
  const dir = await mkdtemp(join(tmpdir(), 'chorus-bench-actors-'));
  const store = await openMemberStore(dir, { mapSizeBytes: 2 * 1024 ** 3 });
  try {
    if (!(events > actors)) throw new RangeError('bench actors: events must be larger than actors');
    const entries = commandEntries(events, actors, 1, 42, 1);
    const appendEntriesPerSec = events / ((await appendInBatches(store, entries)) / 1000);
    const fromLog = (from: number, to: number) => store.log.read(from, to);

    // Interleaved rounds (1, 2, 2, 1 shards), best of each: the machine is shared, so one slow round
    // from someone else's load should not decide the ratio.
    const perShardCount: Record<number, number> = { 1: 0, 2: 0 };
    for (const shards of [1, 2, 2, 1]) {
      const pool = await ShardPool.start({ shards, servicesModule, maxLiveActors: actors });
      try {
        // The first `actors` entries create the actors (raw XState creates its actors untimed too);
        // the rest are timed: steady-state events on existing actors, read from the log and applied.
        const refused: string[] = [];
        const check = (outputs: Awaited<ReturnType<ShardPool['apply']>>) => {
          for (const o of outputs) if (o.type === 'REPLY' && !o.ok) refused.push(o.error?.message ?? '?');
        };
        await feedPool(pool, 1, actors, fromLog, check);
        const ms = await feedPool(pool, actors + 1, events, fromLog, check);
        // A benchmark of refusals measures nothing: every command must have been applied.
        if (refused.length > 0) {
          throw new Error(`bench actors: ${refused.length} commands were not applied, e.g. ${refused[0]}`);
        }
        perShardCount[shards] = Math.max(perShardCount[shards], (events - actors) / (ms / 1000));
      } finally {
        await pool.close();
      }
    }

    // 3. Snapshot of `snapshotActors` actors on 2 shards (50,000 live per shard, the rest passivated).
    const snapPool = await ShardPool.start({ shards: 2, servicesModule, maxLiveActors: 50_000 });
    let snapshot: ShardSetSnapshot;
    let snapshotMs: number;
    try {
      // Another session: its correlation ids must not make the replayed session-1 commands look like retries.
      const creation = commandEntries(snapshotActors, snapshotActors, 1, 7, 2);
      await feedPool(snapPool, 1, snapshotActors, (from, to) => creation.slice(from - 1, to));
      const snapStart = performance.now();
      snapshot = await snapPool.snapshot();
      snapshotMs = performance.now() - snapStart;
    } finally {
      await snapPool.close();
    }
    const snapshotBytes = snapshot.shards.reduce((sum, blob) => sum + blob.byteLength, 0);

    // 4. Start-up: restore that snapshot, then replay the durable log's entries after it (re-indexed to
    // follow the snapshot; the actors they hit were passivated, so replay also rehydrates them).
    const restoreStart = performance.now();
    const replayPool = await ShardPool.start({ shards: 2, servicesModule, maxLiveActors: 50_000, snapshot });
    const restoreMs = performance.now() - restoreStart;
    let replayMs: number;
    try {
      const shift = snapshot.index;
      replayMs = await feedPool(replayPool, 1, events, (from, to) =>
        store.log.read(from, to).map((entry) => ({ ...entry, index: entry.index + shift })),
      );
    } finally {
      await replayPool.close();
    }

    const eventsPerSec1Shard = perShardCount[1];
    const eventsPerSec2Shards = perShardCount[2];
    return {
      benchmark: 'actors',
      measured:
        `INC events for ${actors} counter actors: appended to an LMDB log, read back and applied on 1 and 2 ` +
        `worker shards (batches of ${BATCH}, ${IN_FLIGHT} in flight; steady state after each actor's first ` +
        `event, best of 2 interleaved rounds) vs raw createActor().send (best of 2); immer vs spread ` +
        `for a nested context update (raw XState); a snapshot of ` +
        `${snapshotActors} actors on 2 shards; start-up = restore that snapshot + replay ${events} logged entries.`,
      actors,
      events,
      eventsPerSec1Shard: round(eventsPerSec1Shard),
      eventsPerSec2Shards: round(eventsPerSec2Shards),
      rawXStateEventsPerSec: round(rawXState),
      ratioVsRaw: round(eventsPerSec1Shard / rawXState),
      shardScaling: round(eventsPerSec2Shards / eventsPerSec1Shard),
      appendEntriesPerSec: round(appendEntriesPerSec),
      spreadAssignEventsPerSec: round(spreadPerSec),
      immerAssignEventsPerSec: round(immerPerSec),
      immerVsAssign: round(immerPerSec / spreadPerSec),
      snapshotActors,
      snapshotMs: round(snapshotMs),
      snapshotBytes,
      restoreMs: round(restoreMs),
      replayEntriesPerSec: round(events / (replayMs / 1000)),
    };
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
};
