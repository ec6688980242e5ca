// Order-book matching throughput: seeded random GTC limit orders (both sides, sizes 1–10, prices
// within ±10 ticks of a mid) into one book, through
// - the matching core alone (actors/order-book/matching.ts), over the whole stream;
// - the reference matcher (sorted arrays, linear scans) over a prefix, in the same run;
// - the order-book actor's `apply` (validation, idempotency, execution reports, market data) over a
//   prefix, without a log.
// Orders go through the log and the actor runtime only once that runtime exists; the event-sourced
// figure (`eventSourcedOrdersPerSec`) is left out until then.

import { MatchingBook } from '../actors/order-book/matching.ts';
import { OrderBook } from '../actors/order-book/order-book.ts';
import { ReferenceBook } from '../actors/order-book/reference.ts';
import type { BookEvent, MatchingEngine } from '../actors/order-book/types.ts';
import { Random } from '../machines/random.ts';
import { type BenchOptions, type BenchResult, round, timeMs } from './harness.ts';

export const describe =
  'Order-book matching: seeded random limit orders into one book — matching core, reference matcher and actor apply path, orders per second.';

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

const feedActor = (book: OrderBook, w: Workload, count: number): number => {
  let outputs = 0;
  for (let i = 0; i < count; i++) {
    const result = book.apply(
      {
        type: 'NEW_ORDER',
        instrument: 'BENCH',
        account: w.accounts[w.account[i]],
        clientOrderId: `o${i}`,
        side: w.buy[i] === 1 ? 'BUY' : 'SELL',
        price: w.price[i],
        quantity: w.quantity[i],
      },
      { timestamp: 1_000_000 + i, index: i + 3, sessionId: 1 },
    );
    outputs += result.length;
  }
  return outputs;
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

  const actor = new OrderBook({ instrument: 'BENCH', maxQuantity: 10 });
  actor.apply(
    { type: 'OPEN_AUCTION', instrument: 'BENCH' },
    { timestamp: 1_000_000, index: 1, sessionId: 0 },
  );
  actor.apply({ type: 'UNCROSS', instrument: 'BENCH' }, { timestamp: 1_000_000, index: 2, sessionId: 0 });
  let actorOutputs = 0;
  const actorMs = await timeMs(() => {
    actorOutputs = feedActor(actor, w, actorOrders);
  });

  const ordersPerSec = (orders * 1000) / coreMs;
  const referenceOrdersPerSec = (referenceOrders * 1000) / referenceMs;
  return {
    benchmark: 'orderbook',
    measured:
      `Orders per second for ${orders} seeded random GTC limit orders (sizes 1-10, mid ±10 ticks, ${ACCOUNTS} accounts) ` +
      `into one book through the matching core; the reference matcher on the first ${referenceOrders} of the same ` +
      `orders; the actor's apply path (zod validation, idempotency, reports, depth) on the first ${actorOrders}. ` +
      'eventSourcedOrdersPerSec is not measured yet: it needs the actor runtime.',
    seed,
    orders,
    ordersPerSec: round(ordersPerSec),
    coreEvents,
    restingOrders: core.orderCount,
    referenceOrders,
    referenceOrdersPerSec: round(referenceOrdersPerSec),
    coreVsReference: round(ordersPerSec / referenceOrdersPerSec),
    actorOrders,
    actorApplyOrdersPerSec: round((actorOrders * 1000) / actorMs),
    actorOutputs,
  };
};
