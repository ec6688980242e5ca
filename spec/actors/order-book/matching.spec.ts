import { expect } from 'chai';
import fc from 'fast-check';
import { MatchingBook } from '../../../actors/order-book/matching.ts';
import {
  type BookEvent,
  type MatchingEngine,
  MatchStop,
  type OrderEvent,
  type OrderInput,
  type TradeEvent,
} from '../../../actors/order-book/types.ts';
import { checkProperty } from '../../support/property.ts';
import { ReferenceBook } from './reference-matcher.ts';

let nextId = 1;
const order = (o: Partial<OrderInput> & Pick<OrderInput, 'side'>): OrderInput => ({
  id: nextId++,
  account: 'A',
  clientOrderId: `c${nextId}`,
  sessionId: 1,
  type: 'LIMIT',
  price: 100,
  quantity: 10,
  timeInForce: 'GTC',
  postOnly: false,
  ...o,
});

const orders = (events: BookEvent[]): OrderEvent[] =>
  events.filter((e): e is OrderEvent => e.kind === 'ORDER');
const trades = (events: BookEvent[]): TradeEvent[] =>
  events.filter((e): e is TradeEvent => e.kind === 'TRADE');

// Every rule is checked on both matchers: the reference must be right too, or comparing against it
// proves nothing.
for (const [name, make] of [
  ['MatchingBook', () => new MatchingBook()],
  ['ReferenceBook', () => new ReferenceBook()],
] as const) {
  describe(`order-book ${name}: continuous matching rules`, () => {
    let book: MatchingEngine;
    let out: BookEvent[];
    beforeEach(() => {
      book = make();
      out = [];
    });

    it('matches price first, then time, at the resting price', () => {
      const s1 = order({ side: 'SELL', account: 'S1', price: 101, quantity: 5 });
      const s2 = order({ side: 'SELL', account: 'S2', price: 100, quantity: 5 });
      const s3 = order({ side: 'SELL', account: 'S3', price: 100, quantity: 5 });
      for (const s of [s1, s2, s3]) book.submit(s, true, out);
      out.length = 0;
      const buy = order({ side: 'BUY', account: 'B', price: 102, quantity: 12 });
      book.submit(buy, true, out);
      expect(trades(out).map((t) => [t.sellOrderId, t.price, t.quantity])).to.deep.equal([
        [s2.id, 100, 5],
        [s3.id, 100, 5],
        [s1.id, 101, 2],
      ]);
      expect(orders(out).at(-1)).to.include({ orderId: buy.id, status: 'FILLED', filledQty: 12 });
      expect(book.getOrder(s1.id)).to.include({ openQty: 3, filledQty: 2 });
      expect(book.bestAsk()).to.equal(101);
      expect(book.bestBid()).to.equal(null);
    });

    it('a size decrease keeps time priority; a size increase or price change loses it', () => {
      const a = order({ side: 'SELL', account: 'S1', quantity: 5 });
      const b = order({ side: 'SELL', account: 'S2', quantity: 5 });
      book.submit(a, true, out);
      book.submit(b, true, out);
      book.amend(a.id, 100, 3, true, out);
      book.submit(order({ side: 'BUY', account: 'B', quantity: 1 }), true, out);
      expect(trades(out).at(-1)!.sellOrderId).to.equal(a.id);
      book.amend(a.id, 100, 4, true, out); // increase: behind b now
      out.length = 0;
      book.submit(order({ side: 'BUY', account: 'B', quantity: 1 }), true, out);
      expect(trades(out)[0].sellOrderId).to.equal(b.id);
      expect(book.getOrder(a.id)).to.include({ openQty: 4, filledQty: 1, quantity: 5 });
    });

    it('an amend to a crossing price trades as an incoming order', () => {
      const bid = order({ side: 'BUY', account: 'B', price: 99, quantity: 4 });
      const ask = order({ side: 'SELL', account: 'S', price: 101, quantity: 4 });
      book.submit(bid, true, out);
      book.submit(ask, true, out);
      out.length = 0;
      book.amend(ask.id, 99, 4, true, out);
      expect(trades(out)).to.have.length(1);
      expect(trades(out)[0]).to.include({ price: 99, quantity: 4, aggressor: 'SELL' });
      expect(book.orderCount).to.equal(0);
    });

    it('IOC fills what it can and expires the rest; a market order never rests', () => {
      book.submit(order({ side: 'SELL', account: 'S', price: 100, quantity: 3 }), true, out);
      out.length = 0;
      book.submit(
        order({ side: 'BUY', account: 'B', price: 100, quantity: 5, timeInForce: 'IOC' }),
        true,
        out,
      );
      expect(orders(out).at(-1)).to.include({ status: 'EXPIRED', reason: 'IOC_REMAINDER', filledQty: 3 });
      out.length = 0;
      book.submit(order({ side: 'BUY', account: 'B', type: 'MARKET', price: 0, quantity: 5 }), true, out);
      expect(orders(out).map((e) => e.exec)).to.deep.equal(['NEW', 'EXPIRED']);
      expect(orders(out)[0].price).to.equal(null);
      expect(book.orderCount).to.equal(0);
    });

    it('FOK fills entirely or expires without touching the book', () => {
      book.submit(order({ side: 'SELL', account: 'S', price: 100, quantity: 3 }), true, out);
      book.submit(order({ side: 'SELL', account: 'S', price: 101, quantity: 3 }), true, out);
      out.length = 0;
      book.submit(
        order({ side: 'BUY', account: 'B', price: 101, quantity: 7, timeInForce: 'FOK' }),
        true,
        out,
      );
      expect(out).to.have.length(1);
      expect(out[0]).to.include({ exec: 'EXPIRED', status: 'EXPIRED', reason: 'FOK_NOT_FILLABLE' });
      expect(book.depth(5).asks.map((l) => l.quantity)).to.deep.equal([3, 3]);
      out.length = 0;
      book.submit(
        order({ side: 'BUY', account: 'B', price: 101, quantity: 6, timeInForce: 'FOK' }),
        true,
        out,
      );
      expect(trades(out).map((t) => t.quantity)).to.deep.equal([3, 3]);
      expect(book.orderCount).to.equal(0);
    });

    it('post-only is rejected when it would cross, and rests when it would not', () => {
      book.submit(order({ side: 'SELL', account: 'S', price: 100 }), true, out);
      out.length = 0;
      book.submit(order({ side: 'BUY', account: 'B', price: 100, postOnly: true }), true, out);
      expect(out).to.have.length(1);
      expect(out[0]).to.include({ status: 'REJECTED', reason: 'POST_ONLY_WOULD_CROSS' });
      book.submit(order({ side: 'BUY', account: 'B', price: 99, postOnly: true }), true, out);
      expect(book.bestBid()).to.equal(99);
    });

    it('self-trade prevention: rejected if the first contra order is its own, cancelled mid-sweep', () => {
      book.submit(order({ side: 'SELL', account: 'A', price: 100, quantity: 2 }), true, out);
      out.length = 0;
      book.submit(order({ side: 'BUY', account: 'A', price: 100, quantity: 2 }), true, out);
      expect(out).to.have.length(1);
      expect(out[0]).to.include({ status: 'REJECTED', reason: 'SELF_TRADE_PREVENTED' });

      book = make();
      book.submit(order({ side: 'SELL', account: 'X', price: 100, quantity: 2 }), true, out);
      book.submit(order({ side: 'SELL', account: 'A', price: 100, quantity: 2 }), true, out);
      out.length = 0;
      const stop = book.submit(order({ side: 'BUY', account: 'A', price: 100, quantity: 5 }), true, out);
      expect(stop).to.equal(MatchStop.SELF_TRADE);
      expect(trades(out)).to.have.length(1);
      expect(orders(out).at(-1)).to.include({
        status: 'CANCELLED',
        reason: 'SELF_TRADE_PREVENTED',
        filledQty: 2,
      });
      expect(book.depth(1).asks[0]).to.deep.equal({ price: 100, quantity: 2, orders: 1 });
    });

    it('stops at the price band and reports it', () => {
      book.submit(order({ side: 'SELL', account: 'S', price: 100, quantity: 2 }), true, out);
      book.submit(order({ side: 'SELL', account: 'S', price: 106, quantity: 2 }), true, out);
      out.length = 0;
      const stop = book.submit(
        order({ side: 'BUY', account: 'B', price: 110, quantity: 4 }),
        true,
        out,
        95,
        105,
      );
      expect(stop).to.equal(MatchStop.PRICE_BAND);
      expect(trades(out).map((t) => t.price)).to.deep.equal([100]);
      expect(book.bestBid()).to.equal(110); // the remainder rests; the halt's auction uncrosses it
    });

    it('cancel removes the order at once and reports CANCELLED', () => {
      const o = order({ side: 'BUY', price: 99 });
      book.submit(o, true, out);
      out.length = 0;
      expect(book.cancel(o.id, 'CLIENT_CANCEL', out)).to.equal(true);
      expect(out[0]).to.include({ status: 'CANCELLED', openQty: 0, reason: 'CLIENT_CANCEL' });
      expect(book.cancel(o.id, 'CLIENT_CANCEL', out)).to.equal(false);
      expect(book.bestBid()).to.equal(null);
    });
  });

  describe(`order-book ${name}: auction uncross`, () => {
    let book: MatchingEngine;
    let out: BookEvent[];
    const rest = (side: 'BUY' | 'SELL', price: number, quantity: number, account = side) =>
      book.submit(order({ side, price, quantity, account }), false, out);
    beforeEach(() => {
      book = make();
      out = [];
    });

    it('uncrosses at the price that executes the most volume', () => {
      rest('BUY', 103, 5);
      rest('BUY', 101, 10);
      rest('SELL', 99, 6);
      rest('SELL', 102, 20);
      // 99: buy 15 sell 6 → 6; 101: buy 15 sell 6 → 6; 102: buy 5 sell 26 → 5; 103: 5.
      // 99 and 101 tie on volume and imbalance (9); reference 100 is 1 from both → the lower, 99.
      expect(book.indicativeUncross(100)).to.deep.equal({ price: 99, volume: 6, imbalance: 9 });
      // With reference 101 the closer price wins.
      expect(book.uncross(101, out)).to.deep.equal({ price: 101, volume: 6, imbalance: 9 });
      expect(trades(out).every((t) => t.price === 101 && t.aggressor === null)).to.equal(true);
      expect(trades(out).reduce((s, t) => s + t.quantity, 0)).to.equal(6);
      expect(book.bestBid()).to.be.lessThan(book.bestAsk()!);
    });

    it('breaks a volume tie by the smallest imbalance', () => {
      rest('BUY', 102, 10);
      rest('SELL', 100, 4);
      rest('SELL', 101, 8);
      // 100: buy 10 sell 4 → 4; 101: buy 10 sell 12 → 10 (max); 102: buy 10 sell 12 → 10. Tie at 10,
      // imbalance -2 at both → reference decides.
      expect(book.indicativeUncross(102)?.price).to.equal(102);
      expect(book.indicativeUncross(null)?.price).to.equal(101);
      book = make();
      rest('BUY', 102, 6);
      rest('BUY', 100, 4);
      rest('SELL', 100, 6);
      rest('SELL', 102, 4);
      // 100: buy 10 sell 6 → 6 (imb 4); 102: buy 6 sell 10 → 6 (imb -4). Reference 99 → 100.
      expect(book.indicativeUncross(99)).to.deep.equal({ price: 100, volume: 6, imbalance: 4 });
    });

    it('returns null and trades nothing when the book does not cross', () => {
      rest('BUY', 99, 5);
      rest('SELL', 100, 5);
      expect(book.uncross(100, out)).to.equal(null);
      expect(trades(out)).to.have.length(0);
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Property: on random command streams the fast core and the reference produce the same events,
// the same book and the same statuses.

type Op =
  | { op: 'NEW'; side: 'BUY' | 'SELL'; kind: number; offset: number; qty: number; account: number }
  | { op: 'CANCEL'; pick: number }
  | { op: 'AMEND'; pick: number; offset: number; qty: number }
  | { op: 'AUCTION' }
  | { op: 'UNCROSS'; reference: number }
  | { op: 'BAND'; width: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 10,
    arbitrary: fc.record({
      op: fc.constant('NEW' as const),
      side: fc.constantFrom('BUY' as const, 'SELL' as const),
      // 0-4 GTC limit, 5 IOC, 6 FOK, 7 post-only, 8 market GTC-ish, 9 market IOC
      kind: fc.integer({ min: 0, max: 9 }),
      offset: fc.integer({ min: -6, max: 6 }),
      qty: fc.integer({ min: 1, max: 10 }),
      account: fc.integer({ min: 0, max: 3 }),
    }),
  },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('CANCEL' as const), pick: fc.nat() }) },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('AMEND' as const),
      pick: fc.nat(),
      offset: fc.integer({ min: -6, max: 6 }),
      qty: fc.integer({ min: 1, max: 12 }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ op: 'AUCTION' as const }) },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('UNCROSS' as const),
      reference: fc.integer({ min: 94, max: 106 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant('BAND' as const), width: fc.integer({ min: 0, max: 8 }) }),
  },
);

const runBoth = (ops: Op[]): void => {
  const core = new MatchingBook();
  const ref = new ReferenceBook();
  let match = true;
  let low = -Infinity;
  let high = Infinity;
  let id = 0;
  const issued: number[] = [];
  for (const [step, op] of ops.entries()) {
    const a: BookEvent[] = [];
    const b: BookEvent[] = [];
    let stops: [MatchStop | boolean | null, MatchStop | boolean | null] = [null, null];
    if (op.op === 'NEW') {
      const type = op.kind >= 8 ? 'MARKET' : 'LIMIT';
      const timeInForce = op.kind === 5 || op.kind === 9 ? 'IOC' : op.kind === 6 ? 'FOK' : 'GTC';
      // In auction call phases only GTC limit orders are accepted (the actor enforces that).
      if (!match && (type === 'MARKET' || timeInForce !== 'GTC')) continue;
      const input: OrderInput = {
        id: ++id,
        account: `acct${op.account}`,
        clientOrderId: `c${id}`,
        sessionId: op.account,
        side: op.side,
        type,
        price: type === 'MARKET' ? 0 : 100 + op.offset,
        quantity: op.qty,
        timeInForce,
        postOnly: op.kind === 7,
      };
      issued.push(id);
      stops = [core.submit(input, match, a, low, high), ref.submit(input, match, b, low, high)];
    } else if (op.op === 'CANCEL' || op.op === 'AMEND') {
      if (issued.length === 0) continue;
      const target = issued[op.pick % issued.length];
      const resting = core.getOrder(target);
      expect(ref.getOrder(target), `step ${step}: resting order ${target}`).to.deep.equal(resting);
      if (op.op === 'CANCEL') {
        stops = [core.cancel(target, 'CLIENT_CANCEL', a), ref.cancel(target, 'CLIENT_CANCEL', b)];
      } else if (resting !== undefined) {
        const price = resting.price + op.offset;
        stops = [
          core.amend(target, price, op.qty, match, a, low, high),
          ref.amend(target, price, op.qty, match, b, low, high),
        ];
      }
    } else if (op.op === 'AUCTION') {
      match = false;
    } else if (op.op === 'UNCROSS') {
      const ra = core.uncross(op.reference, a);
      const rb = ref.uncross(op.reference, b);
      expect(ra, `step ${step}: auction result`).to.deep.equal(rb);
      match = true;
      low = -Infinity;
      high = Infinity;
      const [bid, ask] = [core.bestBid(), core.bestAsk()];
      if (bid !== null && ask !== null) expect(bid, `step ${step}: uncrossed book`).to.be.lessThan(ask);
    } else {
      // A band around the current touch (or no band when the width is 0).
      const mid = core.bestBid() ?? core.bestAsk() ?? 100;
      [low, high] = op.width === 0 ? [-Infinity, Infinity] : [mid - op.width, mid + op.width];
    }
    expect(a, `step ${step}: events for ${JSON.stringify(op)}`).to.deep.equal(b);
    expect(stops[0], `step ${step}: result`).to.equal(stops[1]);
    if (match && low === -Infinity) {
      const [bid, ask] = [core.bestBid(), core.bestAsk()];
      if (bid !== null && ask !== null && ops.slice(0, step + 1).every((o) => o.op !== 'BAND')) {
        expect(bid, `step ${step}: continuous book never crossed`).to.be.lessThan(ask);
      }
    }
  }
  expect(core.toSnapshot()).to.deep.equal(ref.toSnapshot());
  expect(core.depth(50)).to.deep.equal(ref.depth(50));
  expect(core.orderCount).to.equal(ref.orderCount);
};

describe('order-book matching core vs reference matcher (property)', () => {
  it('same trades, same events, same statuses, same resting book on random streams', () => {
    checkProperty(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 120 }), (ops) => runBoth(ops)),
      { numRuns: 300 },
    );
  });

  it('same results on long continuous streams (no auctions, no band)', () => {
    const continuous = opArb.filter((o) => o.op !== 'AUCTION' && o.op !== 'BAND' && o.op !== 'UNCROSS');
    checkProperty(
      fc.property(fc.array(continuous, { minLength: 200, maxLength: 600 }), (ops) => runBoth(ops)),
      { numRuns: 40 },
    );
  });

  it('a snapshot restores the same book: restored + continued input = uninterrupted input', () => {
    checkProperty(
      fc.property(fc.array(opArb, { minLength: 2, maxLength: 120 }), fc.nat(), (ops, cut) => {
        const split = cut % ops.length;
        const apply = (book: MatchingBook, list: Op[], startId: number, out: BookEvent[]): number => {
          let id = startId;
          for (const op of list) {
            if (op.op !== 'NEW' || op.kind >= 5) continue;
            book.submit(
              {
                id: ++id,
                account: `acct${op.account}`,
                clientOrderId: `c${id}`,
                sessionId: 1,
                side: op.side,
                type: 'LIMIT',
                price: 100 + op.offset,
                quantity: op.qty,
                timeInForce: 'GTC',
                postOnly: op.kind === 7,
              },
              true,
              out,
            );
          }
          return id;
        };
        const live = new MatchingBook();
        const liveOut: BookEvent[] = [];
        const idAtCut = apply(live, ops.slice(0, split), 0, liveOut);
        const snapshot = structuredClone(live.toSnapshot());
        apply(live, ops.slice(split), idAtCut, liveOut);
        const restored = MatchingBook.fromSnapshot(snapshot);
        const restoredOut: BookEvent[] = [];
        apply(restored, ops.slice(split), idAtCut, restoredOut);
        const tail = liveOut.slice(liveOut.length - restoredOut.length);
        expect(restoredOut).to.deep.equal(tail);
        expect(restored.toSnapshot()).to.deep.equal(live.toSnapshot());
      }),
      { numRuns: 150 },
    );
  });
});
