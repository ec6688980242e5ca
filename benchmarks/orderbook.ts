// Order-book matching throughput: seeded random GTC limit orders (both sides, sizes 1–10, prices
// within ±10 ticks of a mid) into one book, through
// - the matching core alone (actors/order-book/matching.ts), over the whole stream;
// - the reference matcher (sorted arrays, linear scans) over a prefix, in the same run;
// - the order-book actor's `apply` (validation, idempotency, execution reports, market data) over a
//   prefix, without a log; the same wrapped in XState logic (`fromTransition`), the envelope the actor
//   runtime would need if books were statecharts rather than behaviour actors;
// - the event-sourced path (`eventSourcedOrdersPerSec`): the same prefix as client commands of the
//   `orders` service, appended to a durable LMDB log in batches, read back and applied by the book
//   actor on a worker shard (actor runtime: dedup, transaction, reply encoding across the worker
//   boundary), with each reply style of the service; and the same entries on an in-process Shard.
//
// Books are behaviour actors rather than XState logic: `xstateWrappedOrdersPerSec` against
// `actorApplyOrdersPerSec` is what the XState envelope alone would add per order, and as XState logic
// the book's SCHEDULE_TIMER / CANCEL_TIMER requests would have to be re-expressed as XState delayed
// events; as a behaviour they map one-to-one onto the shard's cluster timers.
//
// This module also exports `services`: the pool's worker imports it to host the book.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createActor, fromTransition } from 'xstate';
import type { ShardOutput } from '../actors/actor-runtime/protocol.ts';
import { Shard } from '../actors/actor-runtime/shard.ts';
import { EntryKind, type LogEntry } from '../actors/log/log-entry.ts';
import { MatchingBook } from '../actors/order-book/matching.ts';
import { OrderBook } from '../actors/order-book/order-book.ts';
import { defineOrdersService } from '../actors/order-book/service.ts';
import type { BookEvent, MatchingEngine } from '../actors/order-book/types.ts';
import { Random } from '../machines/random.ts';
import type { MemberStore } from '../persistence/index.ts';
import { ShardPool } from '../runtime/actor-runtime/shard-pool.ts';
import { ReferenceBook } from '../spec/actors/order-book/reference-matcher.ts';
import { type BenchOptions, type BenchResult, round, timeMs } from './harness.ts';
import { appendInBatches, BATCH, feedPool, IN_FLIGHT } from './log-pipeline.ts';

export const describe =
  'Order-book matching: seeded random limit orders into one book — matching core, reference matcher, actor apply path and the event-sourced path (durable log → book actor on a worker shard), orders per second.';

const MID = 10_000;
const ACCOUNTS = 1_000;

interface Workload {
  readonly buy: Uint8Array;
  readonly price: Int32Array;
  readonly quantity: Int32Array;
  readonly account: Uint16Array;
  readonly accounts: string[];
}

/** The order stream, generated up front so generation is not timed. */
const makeWorkload = (seed: number, count: number): Workload => {
  const rng = new Random(seed);
  const w: Workload = {
    buy: new Uint8Array(count),
    price: new Int32Array(count),
    quantity: new Int32Array(count),
    account: new Uint16Array(count),
    accounts: Array.from({ length: ACCOUNTS }, (_, i) => `account-${i}`),
  };
  for (let i = 0; i < count; i++) {
    w.buy[i] = rng.chance(0.5) ? 1 : 0;
    w.price[i] = MID + rng.int(-10, 10);
    w.quantity[i] = rng.int(1, 10);
    w.account[i] = rng.int(0, ACCOUNTS - 1);
  }
  return w;
};

/** Feed orders [0, count) into a matcher; returns how many events it produced (a cross-check). */
const feed = (book: MatchingEngine, w: Workload, count: number): number => {
  const out: BookEvent[] = [];
  let events = 0;
  for (let i = 0; i < count; i++) {
    book.submit(
      {
        id: i + 1,
        account: w.accounts[w.account[i]],
        clientOrderId: 'bench',
        sessionId: 1,
        side: w.buy[i] === 1 ? 'BUY' : 'SELL',
        type: 'LIMIT',
        price: w.price[i],
        quantity: w.quantity[i],
        timeInForce: 'GTC',
        postOnly: false,
      },
      true,
      out,
    );
    events += out.length;
    out.length = 0;
  }
  return events;
};

/** The book every actor-level figure uses, and the service that hosts it in the actor runtime. */
const BOOK_CONFIG = { maxQuantity: 10 } as const;
const ordersService = defineOrdersService({ instruments: { BENCH: BOOK_CONFIG } });
/** The same book replying with the requester's own reports only (`replyWith: 'own-reports'`). */
const ownReportsService = defineOrdersService({
  name: 'orders-own',
  instruments: { BENCH: BOOK_CONFIG },
  replyWith: 'own-reports',
});
export const services = [ordersService, ownReportsService];
type BenchService = typeof ordersService;

/** Order i of the workload as a NEW_ORDER command; applied as log entry i + 3 at cluster time 1,000,000 + i. */
const newOrder = (w: Workload, i: number) => ({
  type: 'NEW_ORDER',
  instrument: 'BENCH',
  account: w.accounts[w.account[i]],
  clientOrderId: `o${i}`,
  side: w.buy[i] === 1 ? 'BUY' : 'SELL',
  price: w.price[i],
  quantity: w.quantity[i],
});
const orderContext = (i: number) => ({ timestamp: 1_000_000 + i, index: i + 3, sessionId: 1 });
/** Entries 1 and 2 open the book: an opening auction, uncrossed at once. */
const OPENING = [
  { type: 'OPEN_AUCTION', instrument: 'BENCH' },
  { type: 'UNCROSS', instrument: 'BENCH' },
];

const openBook = (): OrderBook => {
  const book = new OrderBook({ instrument: 'BENCH', ...BOOK_CONFIG });
  for (const [i, c] of OPENING.entries()) book.apply(c, { timestamp: 1_000_000, index: i + 1, sessionId: 0 });
  return book;
};

/** Feed orders [0, count) to the bare actor: [outputs, execution reports] it produced. */
const feedActor = (book: OrderBook, w: Workload, count: number): [number, number] => {
  let outputs = 0;
  let reports = 0;
  for (let i = 0; i < count; i++) {
    const result = book.apply(newOrder(w, i), orderContext(i));
    outputs += result.length;
    for (const o of result) if (o.type === 'EXECUTION_REPORT') reports++;
  }
  return [outputs, reports];
};

/** The same orders through XState: the book as `fromTransition` logic, one `send` per order. */
const feedXStateWrapped = (w: Workload, count: number): number => {
  let outputs = 0;
  let i = 0;
  const logic = fromTransition((book: OrderBook, event: { type: string }) => {
    if (event.type.startsWith('xstate.')) return book; // XState's own init event
    outputs += book.apply(event, orderContext(i)).length;
    return book;
  }, openBook);
  const actor = createActor(logic).start();
  for (; i < count; i++) actor.send(newOrder(w, i));
  actor.stop();
  return outputs;
};

/**
 * The opening and `count` orders as committed SESSION_MESSAGE entries of `service` (session 1), from
 * log index `first`; the book sees the same cluster times as the bare actor.
 */
const orderEntries = (service: BenchService, w: Workload, count: number, first: number): LogEntry[] => {
  const entries: LogEntry[] = [];
  const entry = (command: object, timestamp: number): LogEntry => {
    const index = first + entries.length;
    return {
      index,
      term: 1,
      timestamp,
      kind: EntryKind.SESSION_MESSAGE,
      payload: service.commandPayload(command, 1, index),
    };
  };
  for (const c of OPENING) entries.push(entry(c, 1_000_000));
  for (let i = 0; i < count; i++) entries.push(entry(newOrder(w, i), 1_000_000 + i));
  return entries;
};

/** Book outputs carried by the replies to orders (all but the first two entries of a run). */
const counter = (firstOrderIndex: number) => {
  const counted = { outputs: 0 };
  const add = (outputs: readonly ShardOutput[]): void => {
    for (const o of outputs) {
      if (o.type !== 'REPLY' || o.index < firstOrderIndex) continue;
      if (!o.ok)
        throw new Error(`order at index ${o.index} failed in the actor runtime: ${o.error?.message}`);
      counted.outputs += (o.value as unknown[]).length;
    }
  };
  return { counted, add };
};

/**
 * The event-sourced path: `entries` (2 opening + orders) read back from the store's log and applied on
 * one worker shard, the first `warmup` orders untimed (JIT warm-up). Returns the timed ms and checks the
 * replies carried `expected` book outputs in all.
 */
const applyFromLog = async (
  store: MemberStore,
  entries: readonly LogEntry[],
  warmup: number,
  expected: number,
): Promise<number> => {
  const first = entries[0].index;
  const last = entries[entries.length - 1].index;
  const { counted, add } = counter(first + 2);
  const pool = await ShardPool.start({ shards: 1, servicesModule: new URL(import.meta.url) });
  let applyMs: number;
  try {
    const fromLog = (from: number, to: number) => store.log.read(from, to);
    await feedPool(pool, first, first + 1 + warmup, fromLog, add);
    applyMs = await feedPool(pool, first + 2 + warmup, last, fromLog, add);
  } finally {
    await pool.close();
  }
  if (counted.outputs !== expected) {
    throw new Error(
      `event-sourced book replied with ${counted.outputs} outputs, the bare actor gave ${expected}`,
    );
  }
  return applyMs;
};

/**
 * The event-sourced path for `count` orders, per reply style: append to an LMDB log (both services'
 * entries, one after the other), then read back and apply on a worker shard; and the 'all-outputs'
 * entries on an in-process Shard. `bare` is the bare actor's [outputs, reports] for the same orders.
 */
const eventSourced = async (w: Workload, count: number, warmup: number, bare: [number, number]) => {
  const all = orderEntries(ordersService, w, count, 1);
  const own = orderEntries(ownReportsService, w, count, all.length + 1);
  const { openMemberStore } = await import('../persistence/index.ts');
  const dir = await mkdtemp(join(tmpdir(), 'chorus-bench-orderbook-'));
  const store = await openMemberStore(dir, { mapSizeBytes: 2 * 1024 ** 3 });
  try {
    const appendMs = await appendInBatches(store, all);
    await appendInBatches(store, own);
    const applyMs = await applyFromLog(store, all, warmup, bare[0]);
    // Every order comes from session 1, so the requester's own reports are all the reports.
    const ownApplyMs = await applyFromLog(store, own, warmup, bare[1]);

    const shard = new Shard({ services });
    const { counted, add } = counter(3);
    add(shard.apply(all.slice(0, warmup + 2)));
    const shardMs = await timeMs(() => {
      for (let at = warmup + 2; at < all.length; at += BATCH) add(shard.apply(all.slice(at, at + BATCH)));
    });
    if (counted.outputs !== bare[0]) {
      throw new Error(
        `in-process shard replied with ${counted.outputs} outputs, the bare actor gave ${bare[0]}`,
      );
    }
    return { appendMs, applyMs, ownApplyMs, shardMs, timed: count - warmup };
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
};

export const run = async (options: BenchOptions): Promise<BenchResult> => {
  const orders = Number(options.orders ?? 1_000_000);
  const referenceOrders = Math.min(orders, Number(options.referenceOrders ?? 100_000));
  const actorOrders = Math.min(orders, Number(options.actorOrders ?? 200_000));
  const seed = Number(options.seed ?? 42);
  const w = makeWorkload(seed, orders);

  // Warm the JIT on a throwaway book so the timed run measures steady-state code.
  feed(new MatchingBook(), w, Math.min(orders, 50_000));

  const core = new MatchingBook();
  let coreEvents = 0;
  const coreMs = await timeMs(() => {
    coreEvents = feed(core, w, orders);
  });

  // Same prefix through both matchers must give the same number of events (the spec checks equality).
  const corePrefixEvents = feed(new MatchingBook(), w, referenceOrders);
  let referenceEvents = 0;
  const referenceMs = await timeMs(() => {
    referenceEvents = feed(new ReferenceBook(), w, referenceOrders);
  });
  if (referenceEvents !== corePrefixEvents) {
    throw new Error(
      `core and reference disagree on the prefix: ${corePrefixEvents} vs ${referenceEvents} events`,
    );
  }

  let bare: [number, number] = [0, 0];
  const actorMs = await timeMs(() => {
    bare = feedActor(openBook(), w, actorOrders);
  });
  const actorOutputs = bare[0];
  let wrappedOutputs = 0;
  const wrappedMs = await timeMs(() => {
    wrappedOutputs = feedXStateWrapped(w, actorOrders);
  });
  if (wrappedOutputs !== actorOutputs) {
    throw new Error(`XState-wrapped book produced ${wrappedOutputs} outputs, the bare actor ${actorOutputs}`);
  }

  // The event-sourced path on the same orders; the first tenth warms the worker's JIT, untimed.
  const warmup = Math.floor(actorOrders / 10);
  const es = await eventSourced(w, actorOrders, warmup, bare);
  const eventSourcedOrdersPerSec = (es.timed * 1000) / es.applyMs;
  const actorApplyOrdersPerSec = (actorOrders * 1000) / actorMs;

  const ordersPerSec = (orders * 1000) / coreMs;
  const referenceOrdersPerSec = (referenceOrders * 1000) / referenceMs;
  return {
    benchmark: 'orderbook',
    measured:
      `Orders per second for ${orders} seeded random GTC limit orders (sizes 1-10, mid ±10 ticks, ${ACCOUNTS} accounts) ` +
      `into one book through the matching core; the reference matcher on the first ${referenceOrders} of the same ` +
      `orders; the actor's apply path (zod validation, idempotency, reports, depth) on the first ${actorOrders}, ` +
      'bare and wrapped in XState fromTransition logic. eventSourcedOrdersPerSec: the same orders as orders-service ' +
      `client commands, appended to an LMDB log (batches of ${BATCH}, flushed; logAppendOrdersPerSec), then read ` +
      `back and applied by the book actor on 1 worker shard (${IN_FLIGHT} batches in flight, replies carrying every ` +
      `output encoded back to the main thread), timed after the first ${warmup} orders; ` +
      "eventSourcedOwnReportsOrdersPerSec: the same with replyWith 'own-reports' (execution reports only, no " +
      'trades or market data in the reply); inProcessShardOrdersPerSec: the all-outputs entries on an ' +
      "in-process Shard (no worker, no log). Every path is checked against the bare actor's outputs.",
    seed,
    orders,
    ordersPerSec: round(ordersPerSec),
    coreEvents,
    restingOrders: core.orderCount,
    referenceOrders,
    referenceOrdersPerSec: round(referenceOrdersPerSec),
    coreVsReference: round(ordersPerSec / referenceOrdersPerSec),
    actorOrders,
    actorApplyOrdersPerSec: round(actorApplyOrdersPerSec),
    xstateWrappedOrdersPerSec: round((actorOrders * 1000) / wrappedMs),
    actorOutputs,
    eventSourcedOrders: es.timed,
    eventSourcedOrdersPerSec: round(eventSourcedOrdersPerSec),
    eventSourcedOwnReportsOrdersPerSec: round((es.timed * 1000) / es.ownApplyMs),
    logAppendOrdersPerSec: round(((actorOrders + 2) * 1000) / es.appendMs),
    inProcessShardOrdersPerSec: round((es.timed * 1000) / es.shardMs),
    eventSourcedVsActorApply: round(eventSourcedOrdersPerSec / actorApplyOrdersPerSec),
  };
};
