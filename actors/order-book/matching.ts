// The matching core: one instrument's limit order book as a plain, fast, deterministic data structure.
// No I/O, no clock, no randomness: the caller (the order-book actor) passes everything in, and the
// core reports what happened as BookEvents pushed onto an array the caller owns.
//
// Layout (measured on the benchmark workload: 1,000,000 random limit orders within ±10 ticks of a mid):
// - Each side keeps its price levels in an array sorted so the BEST level is LAST (bids ascending,
//   asks descending), plus a Map from price to level. Taking the best level is `arr[arr.length - 1]`,
//   removing an exhausted best level is `pop()`, and new levels land near the end (orders cluster
//   around the touch), so the splice is short.
// - Measured alternative: an array indexed by tick offset with best-index tracking was 15-25% faster
//   on that narrow workload (about 1.1-1.5M vs 0.6-1.2M orders/s, single cold runs on a shared
//   2-core machine). It was not kept: it needs a configured price range and memory per tick of that
//   range (instruments with wide bands have millions of ticks), and scans empty ticks when the best
//   level empties after a gap. The sorted array works for any range, at 7-20x the 80k orders/s figure.
// - Each level is an intrusive doubly linked FIFO of order objects: O(1) append, O(1) unlink.
// - A Map from order id to order gives O(1) cancel and amend by id.

import { BookSide, Order } from './price-levels.ts';
import {
  type AuctionResult,
  type BookEvent,
  type BookSnapshot,
  betterAuctionPrice,
  type Depth,
  type DepthLevel,
  type ExecType,
  type MatchingEngine,
  MatchStop,
  type OrderInput,
  type OrderStatus,
  type Reason,
  type RestingOrder,
} from './types.ts';

const liveStatus = (order: Order): OrderStatus =>
  order.openQty === 0 ? 'FILLED' : order.filledQty > 0 ? 'PARTIALLY_FILLED' : 'NEW';

const emit = (
  out: BookEvent[],
  exec: ExecType,
  order: Order,
  status: OrderStatus,
  lastQty: number,
  lastPrice: number,
  reason: Reason | null,
): void => {
  out.push({
    kind: 'ORDER',
    exec,
    orderId: order.id,
    account: order.account,
    clientOrderId: order.clientOrderId,
    sessionId: order.sessionId,
    side: order.side,
    price: order.isMarket ? null : order.price,
    quantity: order.quantity,
    openQty: order.openQty,
    filledQty: order.filledQty,
    lastQty,
    lastPrice,
    status,
    reason,
  });
};

const view = (o: Order): RestingOrder => ({
  id: o.id,
  account: o.account,
  clientOrderId: o.clientOrderId,
  sessionId: o.sessionId,
  side: o.side,
  price: o.price,
  quantity: o.quantity,
  openQty: o.openQty,
  filledQty: o.filledQty,
  postOnly: o.postOnly,
});

/** The production matcher. See `MatchingEngine` in types.ts for the rules it implements. */
export class MatchingBook implements MatchingEngine {
  private readonly bids = new BookSide(true);
  private readonly asks = new BookSide(false);
  private readonly orders = new Map<number, Order>();
  private nextTradeId = 1;

  get orderCount(): number {
    return this.orders.size;
  }

  submit(input: OrderInput, match: boolean, out: BookEvent[], low = -Infinity, high = Infinity): MatchStop {
    const isBuy = input.side === 'BUY';
    const isMarket = input.type === 'MARKET';
    const order = new Order(
      input.id,
      input.account,
      input.clientOrderId,
      input.sessionId,
      input.side,
      isMarket,
      isMarket ? 0 : input.price,
      input.quantity,
      input.postOnly,
    );
    if (!match) {
      emit(out, 'NEW', order, 'NEW', 0, 0, null);
      this.rest(order);
      return MatchStop.NONE;
    }
    const contra = isBuy ? this.asks : this.bids;
    const best = contra.best();
    const crosses =
      best !== undefined && (isMarket || (isBuy ? best.price <= order.price : best.price >= order.price));
    if (crosses) {
      if (order.postOnly) return this.refuse(out, order, 'REJECTED', 'POST_ONLY_WOULD_CROSS');
      if (best.price >= low && best.price <= high && best.head!.account === order.account) {
        return this.refuse(out, order, 'REJECTED', 'SELF_TRADE_PREVENTED');
      }
    }
    if (input.timeInForce === 'FOK' && !this.canFill(order, contra, low, high)) {
      return this.refuse(out, order, 'EXPIRED', 'FOK_NOT_FILLABLE');
    }
    emit(out, 'NEW', order, 'NEW', 0, 0, null);
    const stop = crosses ? this.sweep(order, contra, out, low, high) : MatchStop.NONE;
    if (order.openQty > 0) {
      if (stop === MatchStop.SELF_TRADE) {
        order.openQty = 0;
        emit(out, 'CANCELLED', order, 'CANCELLED', 0, 0, 'SELF_TRADE_PREVENTED');
      } else if (isMarket || input.timeInForce !== 'GTC') {
        order.openQty = 0;
        emit(out, 'EXPIRED', order, 'EXPIRED', 0, 0, 'IOC_REMAINDER');
      } else {
        this.rest(order);
      }
    }
    return stop;
  }

  cancel(orderId: number, reason: Reason, out: BookEvent[]): boolean {
    const order = this.orders.get(orderId);
    if (order === undefined) return false;
    this.remove(order);
    order.openQty = 0;
    emit(out, 'CANCELLED', order, 'CANCELLED', 0, 0, reason);
    return true;
  }

  amend(
    orderId: number,
    price: number,
    openQty: number,
    match: boolean,
    out: BookEvent[],
    low = -Infinity,
    high = Infinity,
  ): MatchStop {
    const order = this.orders.get(orderId);
    if (order === undefined) throw new RangeError(`amend: order ${orderId} is not resting in this book`);
    if (price === order.price && openQty <= order.openQty) {
      // A size decrease (or no change) keeps time priority: adjust in place.
      const decrease = order.openQty - openQty;
      order.openQty = openQty;
      order.quantity -= decrease;
      order.level!.qty -= decrease;
      emit(out, 'AMENDED', order, liveStatus(order), 0, 0, null);
      return MatchStop.NONE;
    }
    const isBuy = order.side === 'BUY';
    const contra = isBuy ? this.asks : this.bids;
    let crosses = false;
    if (match) {
      const best = contra.best();
      crosses = best !== undefined && (isBuy ? best.price <= price : best.price >= price);
      if (crosses) {
        if (order.postOnly) return this.refuseAmend(out, order, 'POST_ONLY_WOULD_CROSS');
        if (best!.price >= low && best!.price <= high && best!.head!.account === order.account) {
          return this.refuseAmend(out, order, 'SELF_TRADE_PREVENTED');
        }
      }
    }
    // A price change or a size increase loses priority: leave the queue and re-enter as new.
    this.remove(order);
    order.price = price;
    order.openQty = openQty;
    order.quantity = order.filledQty + openQty;
    emit(out, 'AMENDED', order, liveStatus(order), 0, 0, null);
    const stop = crosses ? this.sweep(order, contra, out, low, high) : MatchStop.NONE;
    if (order.openQty > 0) {
      if (stop === MatchStop.SELF_TRADE) {
        order.openQty = 0;
        emit(out, 'CANCELLED', order, 'CANCELLED', 0, 0, 'SELF_TRADE_PREVENTED');
      } else {
        this.rest(order);
      }
    }
    return stop;
  }

  indicativeUncross(referencePrice: number | null): AuctionResult | null {
    const topBid = this.bids.best();
    const topAsk = this.asks.best();
    if (topBid === undefined || topAsk === undefined || topBid.price < topAsk.price) return null;
    const lowest = topAsk.price;
    const highest = topBid.price;
    // Candidate prices: the limit prices of resting orders inside the crossed range.
    const candidates: number[] = [];
    const bidLevels = this.bids.sorted;
    const askLevels = this.asks.sorted;
    for (let i = bidLevels.length - 1; i >= 0 && bidLevels[i].price >= lowest; i--)
      candidates.push(bidLevels[i].price);
    for (let i = askLevels.length - 1; i >= 0 && askLevels[i].price <= highest; i--)
      candidates.push(askLevels[i].price);
    candidates.sort((a, b) => a - b);
    const n = candidates.length;
    // Cumulative buy volume at or above each candidate, then sell volume at or below it.
    const buyVolume = new Array<number>(n);
    let acc = 0;
    let b = bidLevels.length - 1;
    for (let c = n - 1; c >= 0; c--) {
      while (b >= 0 && bidLevels[b].price >= candidates[c]) acc += bidLevels[b--].qty;
      buyVolume[c] = acc;
    }
    let best: AuctionResult | null = null;
    acc = 0;
    let a = askLevels.length - 1;
    for (let c = 0; c < n; c++) {
      while (a >= 0 && askLevels[a].price <= candidates[c]) acc += askLevels[a--].qty;
      if (c > 0 && candidates[c] === candidates[c - 1]) continue;
      const candidate = {
        price: candidates[c],
        volume: Math.min(buyVolume[c], acc),
        imbalance: buyVolume[c] - acc,
      };
      if (betterAuctionPrice(candidate, best, referencePrice)) best = candidate;
    }
    return best;
  }

  uncross(referencePrice: number | null, out: BookEvent[]): AuctionResult | null {
    const result = this.indicativeUncross(referencePrice);
    if (result === null) return null;
    const price = result.price;
    for (;;) {
      const bidLevel = this.bids.best();
      const askLevel = this.asks.best();
      if (
        bidLevel === undefined ||
        askLevel === undefined ||
        bidLevel.price < price ||
        askLevel.price > price
      )
        break;
      const buy = bidLevel.head!;
      const sell = askLevel.head!;
      const qty = Math.min(buy.openQty, sell.openQty);
      this.fill(buy, qty);
      this.fill(sell, qty);
      out.push({
        kind: 'TRADE',
        tradeId: this.nextTradeId++,
        price,
        quantity: qty,
        buyOrderId: buy.id,
        sellOrderId: sell.id,
        buyAccount: buy.account,
        sellAccount: sell.account,
        aggressor: null,
      });
      emit(out, 'TRADE', buy, liveStatus(buy), qty, price, null);
      emit(out, 'TRADE', sell, liveStatus(sell), qty, price, null);
      if (buy.openQty === 0) this.remove(buy);
      if (sell.openQty === 0) this.remove(sell);
    }
    return result;
  }

  getOrder(orderId: number): RestingOrder | undefined {
    const order = this.orders.get(orderId);
    return order === undefined ? undefined : view(order);
  }

  hasOrder(orderId: number): boolean {
    return this.orders.has(orderId);
  }

  bestBid(): number | null {
    return this.bids.best()?.price ?? null;
  }

  bestAsk(): number | null {
    return this.asks.best()?.price ?? null;
  }

  /** Open quantity at the best bid and best ask (0 when a side is empty). */
  bestQuantities(): [bid: number, ask: number] {
    return [this.bids.best()?.qty ?? 0, this.asks.best()?.qty ?? 0];
  }

  depth(levels: number): Depth {
    const side = (book: BookSide): DepthLevel[] => {
      const result: DepthLevel[] = [];
      const arr = book.sorted;
      for (let i = arr.length - 1; i >= 0 && result.length < levels; i--) {
        result.push({ price: arr[i].price, quantity: arr[i].qty, orders: arr[i].count });
      }
      return result;
    };
    return { bids: side(this.bids), asks: side(this.asks) };
  }

  toSnapshot(): BookSnapshot {
    const side = (book: BookSide): RestingOrder[] => {
      const result: RestingOrder[] = [];
      for (let i = book.sorted.length - 1; i >= 0; i--) {
        for (let o = book.sorted[i].head; o !== null; o = o.next) result.push(view(o));
      }
      return result;
    };
    return { version: 1, nextTradeId: this.nextTradeId, bids: side(this.bids), asks: side(this.asks) };
  }

  static fromSnapshot(snapshot: BookSnapshot): MatchingBook {
    if (snapshot.version !== 1) {
      throw new RangeError(`order book snapshot version ${snapshot.version} is not supported (expected 1)`);
    }
    const book = new MatchingBook();
    book.nextTradeId = snapshot.nextTradeId;
    for (const r of [...snapshot.bids, ...snapshot.asks]) {
      const order = new Order(
        r.id,
        r.account,
        r.clientOrderId,
        r.sessionId,
        r.side,
        false,
        r.price,
        r.quantity,
        r.postOnly,
      );
      order.openQty = r.openQty;
      order.filledQty = r.filledQty;
      book.rest(order);
    }
    return book;
  }

  /** Emit a refusal before acknowledgement: the order never entered the book. */
  private refuse(out: BookEvent[], order: Order, status: 'REJECTED' | 'EXPIRED', reason: Reason): MatchStop {
    order.openQty = 0;
    emit(out, status, order, status, 0, 0, reason);
    return MatchStop.NONE;
  }

  private refuseAmend(out: BookEvent[], order: Order, reason: Reason): MatchStop {
    emit(out, 'AMEND_REJECTED', order, liveStatus(order), 0, 0, reason);
    return MatchStop.NONE;
  }

  /** Could `order` fill completely now, before meeting its own account, within its limit and the band? */
  private canFill(order: Order, contra: BookSide, low: number, high: number): boolean {
    const isBuy = order.side === 'BUY';
    let need = order.quantity;
    const arr = contra.sorted;
    for (let i = arr.length - 1; i >= 0; i--) {
      const p = arr[i].price;
      if (!order.isMarket && (isBuy ? p > order.price : p < order.price)) return false;
      if (p < low || p > high) return false;
      for (let m = arr[i].head; m !== null; m = m.next) {
        if (m.account === order.account) return false;
        need -= m.openQty;
        if (need <= 0) return true;
      }
    }
    return false;
  }

  /** Continuous matching of an incoming order against the contra side, best level first, FIFO within. */
  private sweep(taker: Order, contra: BookSide, out: BookEvent[], low: number, high: number): MatchStop {
    const isBuy = taker.side === 'BUY';
    while (taker.openQty > 0) {
      const level = contra.best();
      if (level === undefined) return MatchStop.NONE;
      const price = level.price;
      if (!taker.isMarket && (isBuy ? price > taker.price : price < taker.price)) return MatchStop.NONE;
      if (price < low || price > high) return MatchStop.PRICE_BAND;
      let maker = level.head;
      while (maker !== null && taker.openQty > 0) {
        if (maker.account === taker.account) return MatchStop.SELF_TRADE;
        const qty = Math.min(taker.openQty, maker.openQty);
        this.fill(maker, qty);
        taker.openQty -= qty;
        taker.filledQty += qty;
        out.push({
          kind: 'TRADE',
          tradeId: this.nextTradeId++,
          price,
          quantity: qty,
          buyOrderId: isBuy ? taker.id : maker.id,
          sellOrderId: isBuy ? maker.id : taker.id,
          buyAccount: isBuy ? taker.account : maker.account,
          sellAccount: isBuy ? maker.account : taker.account,
          aggressor: taker.side,
        });
        emit(out, 'TRADE', maker, liveStatus(maker), qty, price, null);
        emit(out, 'TRADE', taker, liveStatus(taker), qty, price, null);
        const next = maker.next;
        if (maker.openQty === 0) this.unlink(maker);
        maker = next;
      }
      if (level.count === 0) contra.removeLevel(level);
    }
    return MatchStop.NONE;
  }

  /** Take `qty` off a resting order (and its level's total). */
  private fill(order: Order, qty: number): void {
    order.openQty -= qty;
    order.filledQty += qty;
    order.level!.qty -= qty;
  }

  private rest(order: Order): void {
    const level = (order.side === 'BUY' ? this.bids : this.asks).levelFor(order.price);
    order.level = level;
    order.prev = level.tail;
    order.next = null;
    if (level.tail === null) level.head = order;
    else level.tail.next = order;
    level.tail = order;
    level.qty += order.openQty;
    level.count++;
    this.orders.set(order.id, order);
  }

  /** Unlink from its level's queue and the id index; the caller removes the level if it empties. */
  private unlink(order: Order): void {
    const level = order.level!;
    if (order.prev === null) level.head = order.next;
    else order.prev.next = order.next;
    if (order.next === null) level.tail = order.prev;
    else order.next.prev = order.prev;
    level.qty -= order.openQty;
    level.count--;
    order.prev = null;
    order.next = null;
    order.level = null;
    this.orders.delete(order.id);
  }

  /** Unlink, and drop the level if that emptied it. */
  private remove(order: Order): void {
    const level = order.level!;
    this.unlink(order);
    if (level.count === 0) (order.side === 'BUY' ? this.bids : this.asks).removeLevel(level);
  }
}
