import { expect } from 'chai';
import { pack, unpack } from 'msgpackr';
import { transition } from 'xstate';
import { getAdjacencyMap, getShortestPaths } from 'xstate/graph';
import type { OrderBookConfigInput } from '../../../actors/order-book/commands.ts';
import { OrderBook, type OrderBookSnapshot } from '../../../actors/order-book/order-book.ts';
import type { ExecutionReport, OrderBookOutput } from '../../../actors/order-book/outputs.ts';
import { Random } from '../../../machines/random.ts';
import { type TradingPhaseEvent, tradingPhaseMachine } from '../../../machines/trading-phase.ts';
import { AFTER_AUCTION, AFTER_HALT, ALL_PHASE_EVENTS } from '../../support/trading-phase-events.ts';

const CONFIG: OrderBookConfigInput = {
  instrument: 'ACME',
  tickSize: 5,
  minPrice: 5,
  maxPrice: 10_000,
  lotSize: 1,
  maxQuantity: 1000,
  auctionMs: 1_000,
  haltMs: 5_000,
  circuitBreaker: { bandTicks: 25, windowMs: 10_000 },
  referencePrice: 500,
};

/** Feeds commands as successive log entries, with cluster time moving forward. */
class Driver {
  timestamp = 1_700_000_000_000;
  index = 0;
  private ids = 0;

  constructor(public book = new OrderBook(CONFIG)) {}

  send(command: unknown, sessionId = 1, advanceMs = 1): OrderBookOutput[] {
    this.timestamp += advanceMs;
    this.index++;
    return this.book.apply(command, { timestamp: this.timestamp, index: this.index, sessionId });
  }

  order(account: string, side: 'BUY' | 'SELL', price: number | undefined, quantity: number, extra = {}) {
    return this.send({
      type: 'NEW_ORDER',
      instrument: 'ACME',
      account,
      clientOrderId: `c${++this.ids}`,
      side,
      price,
      quantity,
      ...extra,
    });
  }

  phase(type: string): OrderBookOutput[] {
    return this.send({ type, instrument: 'ACME' }, 0);
  }

  open(): void {
    this.phase('OPEN_AUCTION');
    this.phase('UNCROSS');
    expect(this.book.phase).to.equal('CONTINUOUS');
  }

  /** Fire the pending cluster timer for `eventType`, at its due time. Returns null if none is pending. */
  fireTimer(eventType: string): OrderBookOutput[] | null {
    const timer = this.book.toSnapshot().timers.find((t) => t.eventType === eventType);
    if (timer === undefined) return null;
    return this.send({ type: 'TIMER', timerId: timer.timerId }, 0, Math.max(0, timer.dueAt - this.timestamp));
  }
}

const reports = (out: OrderBookOutput[]): ExecutionReport[] =>
  out.filter((o): o is ExecutionReport => o.type === 'EXECUTION_REPORT');
const ofType = <T extends OrderBookOutput['type']>(out: OrderBookOutput[], type: T) =>
  out.filter((o): o is Extract<OrderBookOutput, { type: T }> => o.type === type);

describe('order-book actor: orders, rejects and reports', () => {
  it('every reject names its reason and says what to do', () => {
    const d = new Driver();
    const cases: [Record<string, unknown>, string][] = [
      [{ instrument: 'OTHER' }, 'UNKNOWN_INSTRUMENT'],
      [{ price: 503 }, 'BAD_PRICE_TICK'],
      [{ price: 20_000 }, 'PRICE_OUT_OF_RANGE'],
      [{ quantity: 0 }, 'SIZE_LIMIT'],
      [{ quantity: 1001 }, 'SIZE_LIMIT'],
      [{ quantity: 2.5 }, 'SIZE_LIMIT'],
      [{ timeInForce: 'IOC' }, 'WRONG_PHASE'], // PRE_OPEN takes GTC limit orders only
      [{ orderType: 'MARKET', price: undefined }, 'WRONG_PHASE'],
      [{ postOnly: true, timeInForce: 'IOC' }, 'INVALID_ORDER'],
      [{ price: undefined }, 'INVALID_ORDER'],
      [{ side: 'SHORT' }, 'INVALID_ORDER'],
    ];
    for (const [extra, reason] of cases) {
      const out = d.order('A', 'BUY', 500, 10, extra);
      const [r] = reports(out);
      expect(r, JSON.stringify(extra)).to.include({ execType: 'REJECTED', reason, orderId: 0 });
      expect(r.text, reason).to.be.a('string').and.have.length.greaterThan(10);
    }
    expect(d.book.matching.orderCount).to.equal(0);

    d.open();
    d.order('A', 'SELL', 500, 10);
    const stp = reports(d.order('A', 'BUY', 500, 5))[0];
    expect(stp).to.include({ status: 'REJECTED', reason: 'SELF_TRADE_PREVENTED' });
    const post = reports(d.order('B', 'BUY', 500, 5, { postOnly: true }))[0];
    expect(post).to.include({ status: 'REJECTED', reason: 'POST_ONLY_WOULD_CROSS' });
    const unknown = reports(
      d.send({ type: 'CANCEL_ORDER', instrument: 'ACME', account: 'B', clientOrderId: 'x1', orderId: 1 }),
    )[0];
    expect(unknown).to.include({ execType: 'CANCEL_REJECTED', reason: 'UNKNOWN_ORDER' }); // order 1 is A's
    const elsewhere = reports(
      d.send({
        type: 'AMEND_ORDER',
        instrument: 'OTHER',
        account: 'A',
        clientOrderId: 'x2',
        orderId: 1,
        quantity: 1,
      }),
    )[0];
    expect(elsewhere).to.include({ execType: 'AMEND_REJECTED', reason: 'UNKNOWN_INSTRUMENT' });
    expect(d.book.matching.getOrder(1)?.openQty).to.equal(10);
    d.phase('HALT');
    const halted = reports(d.order('B', 'BUY', 495, 5))[0];
    expect(halted).to.include({ reason: 'WRONG_PHASE' });
    expect(halted.text).to.contain('HALTED');
    const garbage = d.send({ type: 'NOPE' });
    expect(garbage[0]).to.include({ type: 'COMMAND_REJECTED', reason: 'INVALID_ORDER' });
  });

  it('sends fills to each side’s own session, with trades and market data', () => {
    const d = new Driver();
    d.open();
    d.send(
      {
        type: 'NEW_ORDER',
        instrument: 'ACME',
        account: 'M',
        clientOrderId: 'm1',
        side: 'SELL',
        price: 505,
        quantity: 10,
      },
      7,
    );
    const out = d.send(
      {
        type: 'NEW_ORDER',
        instrument: 'ACME',
        account: 'T',
        clientOrderId: 't1',
        side: 'BUY',
        price: 510,
        quantity: 4,
      },
      9,
    );
    const [trade] = ofType(out, 'TRADE');
    expect(trade).to.include({ price: 505, quantity: 4, aggressor: 'BUY' });
    const maker = reports(out).find((r) => r.account === 'M')!;
    const taker = reports(out).filter((r) => r.account === 'T');
    expect(maker).to.include({
      sessionId: 7,
      execType: 'TRADE',
      status: 'PARTIALLY_FILLED',
      lastQty: 4,
      requestId: null,
    });
    expect(maker.tradeId).to.equal(trade.tradeId);
    expect(taker.map((r) => [r.sessionId, r.execType, r.status])).to.deep.equal([
      [9, 'NEW', 'NEW'],
      [9, 'TRADE', 'FILLED'],
    ]);
    expect(ofType(out, 'TOP_OF_BOOK')[0]).to.include({ bidPrice: null, askPrice: 505, askQty: 6 });
    expect(ofType(out, 'DEPTH')[0].asks).to.deep.equal([{ price: 505, quantity: 6, orders: 1 }]);
    // An order behind the touch changes depth but not the top of book.
    const deeper = d.order('M2', 'SELL', 515, 2);
    expect(ofType(deeper, 'TOP_OF_BOOK')).to.have.length(0);
    expect(ofType(deeper, 'DEPTH')[0].asks.map((l) => l.price)).to.deep.equal([505, 515]);
  });

  it('cancels and amends by orderId or origClientOrderId; a size decrease keeps priority', () => {
    const d = new Driver();
    d.open();
    d.send({
      type: 'NEW_ORDER',
      instrument: 'ACME',
      account: 'A',
      clientOrderId: 'a1',
      side: 'SELL',
      price: 505,
      quantity: 10,
    });
    d.send({
      type: 'NEW_ORDER',
      instrument: 'ACME',
      account: 'B',
      clientOrderId: 'b1',
      side: 'SELL',
      price: 505,
      quantity: 10,
    });
    const amend = d.send({
      type: 'AMEND_ORDER',
      instrument: 'ACME',
      account: 'A',
      clientOrderId: 'a2',
      origClientOrderId: 'a1',
      quantity: 3,
    });
    expect(reports(amend)[0]).to.include({
      execType: 'AMENDED',
      openQty: 3,
      clientOrderId: 'a1',
      requestId: 'a2',
    });
    const fill = d.order('C', 'BUY', 505, 1);
    expect(ofType(fill, 'TRADE')[0].sellOrderId).to.equal(1); // A is still first
    const badTick = d.send({
      type: 'AMEND_ORDER',
      instrument: 'ACME',
      account: 'A',
      clientOrderId: 'a3',
      orderId: 1,
      price: 507,
    });
    expect(reports(badTick)[0]).to.include({
      execType: 'AMEND_REJECTED',
      reason: 'BAD_PRICE_TICK',
      status: 'PARTIALLY_FILLED',
    });
    const cancel = d.send({
      type: 'CANCEL_ORDER',
      instrument: 'ACME',
      account: 'A',
      clientOrderId: 'a4',
      orderId: 1,
    });
    expect(reports(cancel)[0]).to.include({
      execType: 'CANCELLED',
      status: 'CANCELLED',
      filledQty: 1,
      reason: 'CLIENT_CANCEL',
    });
    expect(d.book.matching.depth(1).asks).to.deep.equal([{ price: 505, quantity: 10, orders: 1 }]);
  });

  it('C2: a resent request gets the original outcome and is applied once', () => {
    const d = new Driver();
    d.open();
    d.order('M', 'SELL', 505, 3);
    const request = {
      type: 'NEW_ORDER',
      instrument: 'ACME',
      account: 'T',
      clientOrderId: 'dup-1',
      side: 'BUY',
      price: 505,
      quantity: 5,
    };
    const first = d.send(request, 4);
    const bookAfterFirst = d.book.toSnapshot().book;
    // The client retries on a new session (it reconnected after a leader change): same answer, there.
    const again = d.send(request, 8);
    expect(ofType(again, 'TRADE')).to.have.length(0);
    expect(d.book.toSnapshot().book).to.deep.equal(bookAfterFirst);
    const original = reports(first).filter((r) => r.account === 'T');
    expect(reports(again)).to.deep.equal(original.map((r) => ({ ...r, sessionId: 8, duplicate: true })));
    // The same id for a different request is refused, and changes nothing.
    const clash = d.send({ ...request, quantity: 6 }, 8);
    expect(reports(clash)[0]).to.include({ reason: 'DUPLICATE_CLIENT_ORDER_ID', status: 'REJECTED' });
    expect(d.book.toSnapshot().book).to.deep.equal(bookAfterFirst);
    // Rejections are idempotent too.
    const bad = { ...request, clientOrderId: 'dup-2', price: 501 };
    const r1 = reports(d.send(bad, 4));
    const r2 = reports(d.send(bad, 4));
    expect(r2).to.deep.equal(r1.map((r) => ({ ...r, duplicate: true })));
    // And cancels: the second one answers CANCELLED again rather than UNKNOWN_ORDER.
    const cancel = {
      type: 'CANCEL_ORDER',
      instrument: 'ACME',
      account: 'T',
      clientOrderId: 'dup-3',
      origClientOrderId: 'dup-1',
    };
    const c1 = reports(d.send(cancel));
    const c2 = reports(d.send(cancel));
    expect(c1[0]).to.include({ execType: 'CANCELLED' });
    expect(c2).to.deep.equal(c1.map((r) => ({ ...r, duplicate: true })));
  });
});

describe('order-book actor: idempotency window', () => {
  it('C2: finished answers expire after dedupWindowMs; a resting order keeps its entry while it rests', () => {
    const d = new Driver(new OrderBook({ ...CONFIG, dedupWindowMs: 1_000 }));
    d.open();
    const rest = {
      type: 'NEW_ORDER',
      instrument: 'ACME',
      account: 'R',
      clientOrderId: 'r1',
      side: 'BUY',
      price: 495,
      quantity: 5,
    };
    const done = {
      type: 'NEW_ORDER',
      instrument: 'ACME',
      account: 'R',
      clientOrderId: 'r2',
      side: 'SELL',
      price: 3,
      quantity: 5,
    };
    d.send(rest);
    expect(reports(d.send(done))[0].reason).to.equal('BAD_PRICE_TICK');
    d.timestamp += 5_000;
    // The rejected request's answer has expired: the id is free again and the request is judged anew.
    expect(reports(d.send(done))[0].duplicate).to.equal(false);
    // The resting order's request is still known: a resend is answered, not entered twice.
    const again = reports(d.send(rest));
    expect(again.every((r) => r.duplicate)).to.equal(true);
    expect(d.book.matching.orderCount).to.equal(1);
    const cancel = d.send({
      type: 'CANCEL_ORDER',
      instrument: 'ACME',
      account: 'R',
      clientOrderId: 'r3',
      origClientOrderId: 'r1',
    });
    expect(reports(cancel)[0]).to.include({ execType: 'CANCELLED' });
    expect(d.book.toSnapshot().dedup.length).to.be.lessThan(4);
  });
});

describe('order-book actor: auctions and the circuit breaker', () => {
  it('uncrosses the opening auction at the max-volume price when its timer fires', () => {
    const d = new Driver();
    d.order('B1', 'BUY', 510, 5);
    d.order('B2', 'BUY', 500, 10);
    const open = d.phase('OPEN_AUCTION');
    expect(ofType(open, 'SCHEDULE_TIMER')[0]).to.include({ delayMs: 1_000 });
    d.order('S1', 'SELL', 495, 6);
    const indicative = d.order('S2', 'SELL', 505, 20);
    expect(ofType(indicative, 'INDICATIVE_UNCROSS')[0]).to.include({ price: 500, volume: 6, imbalance: 9 });
    expect(d.book.matching.bestBid()).to.be.greaterThan(d.book.matching.bestAsk()!); // crossed, no matching
    const out = d.fireTimer('xstate.after.AUCTION_DURATION.tradingPhase.OPENING_AUCTION')!;
    // 495: 15 vs 6 → 6; 500: 15 vs 6 → 6; 505: 5 vs 26 → 5. Tie 495/500 (imbalance 9): 500 is the reference.
    expect(ofType(out, 'AUCTION_UNCROSSED')[0]).to.include({ price: 500, volume: 6, imbalance: 9 });
    expect(ofType(out, 'TRADE').every((t) => t.price === 500 && t.aggressor === null)).to.equal(true);
    expect(ofType(out, 'PHASE_CHANGED')[0]).to.include({ previous: 'OPENING_AUCTION', phase: 'CONTINUOUS' });
    expect(d.book.phase).to.equal('CONTINUOUS');
  });

  it('trips on a move beyond the band within the window, halts, and resumes through an auction', () => {
    const d = new Driver();
    d.open();
    d.order('M', 'SELL', 500, 1);
    d.order('T', 'BUY', 500, 1); // last trade 500
    d.order('M', 'SELL', 520, 1);
    d.order('T', 'BUY', 520, 1); // within 500 ± 25
    d.order('M', 'SELL', 530, 2);
    d.order('M', 'SELL', 550, 2);
    // Window holds 500 and 520 → allowed 495..525: 530 is outside, nothing trades, the book halts.
    const out = d.order('T', 'BUY', 550, 3);
    expect(ofType(out, 'TRADE')).to.have.length(0);
    expect(ofType(out, 'CIRCUIT_BREAKER_TRIPPED')[0]).to.include({ low: 495, high: 525 });
    expect(d.book.phase).to.equal('HALTED');
    expect(d.book.matching.bestBid()).to.equal(550); // the GTC remainder rests for the auction
    expect(reports(d.order('T', 'BUY', 550, 1))[0].reason).to.equal('WRONG_PHASE');
    d.fireTimer('xstate.after.HALT_DURATION.tradingPhase.HALTED');
    expect(d.book.phase).to.equal('OPENING_AUCTION');
    const uncross = d.fireTimer('xstate.after.AUCTION_DURATION.tradingPhase.OPENING_AUCTION')!;
    // Buy 3 @550 vs asks 2@530, 2@550: 530 → 3 vs 2 = 2; 550 → 3 vs 4 = 3 (max).
    expect(ofType(uncross, 'AUCTION_UNCROSSED')[0]).to.include({ price: 550, volume: 3 });
    expect(d.book.phase).to.equal('CONTINUOUS');
    // The auction price is the new reference: 560 is within 550 ± 25.
    d.order('M', 'SELL', 560, 1);
    expect(ofType(d.order('T', 'BUY', 560, 1), 'TRADE')).to.have.length(1);
    expect(d.book.phase).to.equal('CONTINUOUS');
  });

  it('old trades leave the window: the same move trips within it and not after it', () => {
    const run = (gapMs: number) => {
      const d = new Driver();
      d.open();
      d.order('M', 'SELL', 500, 1);
      d.order('T', 'BUY', 500, 1);
      d.order('M', 'SELL', 520, 1);
      d.order('T', 'BUY', 520, 1);
      d.timestamp += gapMs;
      d.order('M', 'SELL', 540, 1);
      d.order('T', 'BUY', 540, 1); // 540 - 500 = 40 > 25 but 540 - 520 = 20
      return d.book.phase;
    };
    expect(run(0)).to.equal('HALTED');
    expect(run(10_001)).to.equal('CONTINUOUS');
  });

  it('a manual halt waits for RESUME; CLOSE cancels pending timers; REOPEN starts over', () => {
    const d = new Driver();
    d.open();
    d.phase('HALT');
    expect(d.fireTimer('xstate.after.HALT_DURATION.tradingPhase.HALTED')).to.deep.equal([]);
    expect(d.book.phase).to.equal('HALTED');
    d.phase('RESUME');
    expect(d.book.phase).to.equal('OPENING_AUCTION');
    const close = d.phase('CLOSE');
    expect(ofType(close, 'CANCEL_TIMER')).to.have.length(1);
    expect(d.book.toSnapshot().timers).to.deep.equal([]);
    expect(ofType(d.phase('UNCROSS'), 'COMMAND_REJECTED')[0]).to.include({ reason: 'WRONG_PHASE' });
    d.phase('REOPEN');
    expect(d.book.phase).to.equal('PRE_OPEN');
  });
});

// ---------------------------------------------------------------------------------------------
// Model-based: drive the real book along every transition of the phase machine.

/** Make `event` happen to the book the way it happens in production. False if it cannot happen here. */
const perform = (d: Driver, event: TradingPhaseEvent, expectChange: boolean): boolean => {
  const type = event.type as string;
  if (type === AFTER_AUCTION || type === AFTER_HALT) return d.fireTimer(type) !== null;
  if (type === 'CIRCUIT_BREAKER_TRIPPED') {
    if (d.book.phase !== 'CONTINUOUS') return false; // nothing matches outside continuous trading
    const snapshot = d.book.toSnapshot();
    for (const o of [...snapshot.book.bids, ...snapshot.book.asks]) {
      d.send({
        type: 'CANCEL_ORDER',
        instrument: 'ACME',
        account: o.account,
        clientOrderId: `x${d.index}`,
        orderId: o.id,
      });
    }
    const last = snapshot.window.last ?? 500;
    d.order('M', 'SELL', last, 1);
    d.order('T', 'BUY', last, 1);
    d.order('M', 'SELL', last + 100, 1);
    d.order('T', 'BUY', last + 100, 1);
    return true;
  }
  const out = d.phase(type);
  if (!expectChange)
    expect(ofType(out, 'COMMAND_REJECTED')[0], `${type} in ${d.book.phase}`).to.include({
      reason: 'WRONG_PHASE',
    });
  return true;
};

describe('order-book actor: model-based phase coverage', () => {
  it('follows the trading-phase machine along every (state, event) edge, timers included', () => {
    const adjacency = getAdjacencyMap(tradingPhaseMachine, { events: ALL_PHASE_EVENTS });
    const paths = getShortestPaths(tradingPhaseMachine, { events: ALL_PHASE_EVENTS });
    const key = (s: { value: unknown; context: unknown }) => JSON.stringify([s.value, s.context]);
    const changing = new Set<string>();
    const covered = new Set<string>();
    for (const vertex of Object.values(adjacency)) {
      const path = paths.find((p) => key(p.state) === key(vertex.state))!;
      for (const event of ALL_PHASE_EVENTS) {
        const [next] = transition(tradingPhaseMachine, vertex.state, event);
        const edge = `${key(vertex.state)} ${event.type}`;
        if (next.value !== vertex.state.value) changing.add(edge);
        const d = new Driver();
        // Give the opening auction something to uncross, so paths exercise real matching.
        d.order('B', 'BUY', 505, 3);
        d.order('S', 'SELL', 500, 2);
        for (const step of path.steps.slice(1)) {
          expect(perform(d, step.event, true), `path step ${step.event.type}`).to.equal(true);
          expect(d.book.phase).to.equal(step.state.value);
        }
        if (!perform(d, event, next.value !== vertex.state.value)) continue;
        covered.add(edge);
        expect(d.book.phase, edge).to.equal(next.value);
        const timers = d.book.toSnapshot().timers.map((t) => t.eventType);
        if (next.value === 'OPENING_AUCTION') expect(timers).to.deep.equal([AFTER_AUCTION]);
        else if (next.value === 'HALTED') expect(timers.filter((t) => t !== AFTER_HALT)).to.deep.equal([]);
        else expect(timers, edge).to.deep.equal([]);
      }
    }
    expect([...changing].filter((e) => !covered.has(e))).to.deep.equal([]);
    expect(changing.size).to.be.greaterThan(15);
  });
});

// ---------------------------------------------------------------------------------------------
// Replay equals live across snapshots and restarts.

/** A seeded stream of everything the book accepts: orders, cancels, amends, phase commands, timers. */
const workload = (seed: number, length: number) => {
  const rng = new Random(seed);
  const commands: { command: unknown; sessionId: number; advanceMs: number }[] = [];
  for (let i = 0; i < length; i++) {
    const account = `acct${rng.int(0, 4)}`;
    const roll = rng.int(0, 99);
    let command: unknown;
    if (roll < 60) {
      const market = rng.chance(0.05);
      command = {
        type: 'NEW_ORDER',
        instrument: rng.chance(0.01) ? 'OTHER' : 'ACME',
        account,
        clientOrderId: `o${rng.int(0, length)}`, // collisions exercise idempotency
        side: rng.chance(0.5) ? 'BUY' : 'SELL',
        orderType: market ? 'MARKET' : 'LIMIT',
        price: market ? undefined : 5 * rng.int(90, 110),
        quantity: rng.int(1, 10),
        timeInForce: rng.pick(['GTC', 'GTC', 'GTC', 'IOC', 'FOK']),
        postOnly: rng.chance(0.1),
      };
    } else if (roll < 75) {
      command = {
        type: 'CANCEL_ORDER',
        instrument: 'ACME',
        account,
        clientOrderId: `x${i}`,
        orderId: rng.int(1, i + 1),
      };
    } else if (roll < 88) {
      command = {
        type: 'AMEND_ORDER',
        instrument: 'ACME',
        account,
        clientOrderId: `a${i}`,
        origClientOrderId: `o${rng.int(0, length)}`,
        price: rng.chance(0.5) ? 5 * rng.int(90, 110) : undefined,
        quantity: rng.int(1, 12),
      };
    } else if (roll < 95) {
      command = {
        type: rng.pick(['OPEN_AUCTION', 'UNCROSS', 'HALT', 'RESUME', 'CLOSE', 'REOPEN']),
        instrument: 'ACME',
      };
    } else {
      command = { type: 'TIMER', timerId: rng.int(1, 20) };
    }
    commands.push({ command, sessionId: rng.int(1, 3), advanceMs: rng.int(0, 800) });
  }
  return commands;
};

const config = { ...CONFIG, circuitBreaker: { bandTicks: 40, windowMs: 3_000 } };

describe('order-book actor: replay equals live', () => {
  it('restored from a msgpack snapshot and fed the rest of the log, the book matches the uninterrupted one', () => {
    for (const seed of [1, 2, 3, 4, 5, 6]) {
      const commands = workload(seed, 1500);
      const live = new OrderBook(config);
      const liveOutputs: OrderBookOutput[][] = [];
      const snapshots = new Map<number, Buffer>();
      let timestamp = 1_000_000;
      commands.forEach((c, i) => {
        if (i % 250 === 0) snapshots.set(i, pack(live.toSnapshot()));
        timestamp += c.advanceMs;
        liveOutputs.push(live.apply(c.command, { timestamp, index: i + 1, sessionId: c.sessionId }));
      });
      const trades = liveOutputs.flat().filter((o) => o.type === 'TRADE').length;
      expect(trades, `seed ${seed} should trade`).to.be.greaterThan(50);
      expect(
        new Set(liveOutputs.flat().map((o) => o.type)).size,
        `seed ${seed} output variety`,
      ).to.be.greaterThan(8);
      for (const [at, bytes] of snapshots) {
        const restored = OrderBook.fromSnapshot(unpack(bytes) as OrderBookSnapshot);
        let ts = 1_000_000 + commands.slice(0, at).reduce((s, c) => s + c.advanceMs, 0);
        for (let i = at; i < commands.length; i++) {
          ts += commands[i].advanceMs;
          const out = restored.apply(commands[i].command, {
            timestamp: ts,
            index: i + 1,
            sessionId: commands[i].sessionId,
          });
          expect(out, `seed ${seed}, snapshot at ${at}, entry ${i}`).to.deep.equal(liveOutputs[i]);
        }
        expect(restored.toSnapshot(), `seed ${seed}, snapshot at ${at}`).to.deep.equal(live.toSnapshot());
      }
    }
  });
});
