// The reference matcher: the same rules as matching.ts (see MatchingEngine in types.ts), written to be
// obviously correct rather than fast. Each side is one array re-sorted by priority (price, then
// arrival sequence) after every change; every search is a linear scan. Property tests run random order
// streams through both and require the same events and the same book.

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
} from '../../../actors/order-book/types.ts';

interface RefOrder {
  id: number;
  account: string;
  clientOrderId: string;
  sessionId: number;
  side: 'BUY' | 'SELL';
  isMarket: boolean;
  price: number;
  quantity: number;
  openQty: number;
  filledQty: number;
  postOnly: boolean;
  /** Arrival sequence: lower is older, so earlier in the queue at its price. */
  seq: number;
}

const status = (o: RefOrder): OrderStatus =>
  o.openQty === 0 ? 'FILLED' : o.filledQty > 0 ? 'PARTIALLY_FILLED' : 'NEW';

export class ReferenceBook implements MatchingEngine {
  private readonly bids: RefOrder[] = [];
  private readonly asks: RefOrder[] = [];
  private nextSeq = 1;
  private nextTradeId = 1;

  get orderCount(): number {
    return this.bids.length + this.asks.length;
  }

  submit(input: OrderInput, match: boolean, out: BookEvent[], low = -Infinity, high = Infinity): MatchStop {
    const order: RefOrder = {
      id: input.id,
      account: input.account,
      clientOrderId: input.clientOrderId,
      sessionId: input.sessionId,
      side: input.side,
      isMarket: input.type === 'MARKET',
      price: input.type === 'MARKET' ? 0 : input.price,
      quantity: input.quantity,
      openQty: input.quantity,
      filledQty: 0,
      postOnly: input.postOnly,
      seq: 0,
    };
    if (!match) {
      this.emit(out, 'NEW', order, 'NEW', 0, 0, null);
      this.rest(order);
      return MatchStop.NONE;
    }
    const first = this.contra(order)[0];
    const crosses = first !== undefined && this.acceptable(order, first.price);
    if (crosses && order.postOnly) return this.refuse(out, order, 'REJECTED', 'POST_ONLY_WOULD_CROSS');
    if (crosses && first.price >= low && first.price <= high && first.account === order.account) {
      return this.refuse(out, order, 'REJECTED', 'SELF_TRADE_PREVENTED');
    }
    if (input.timeInForce === 'FOK') {
      // Sum what it could take, in priority order, until something would stop the sweep.
      let available = 0;
      for (const m of this.contra(order)) {
        if (
          !this.acceptable(order, m.price) ||
          m.price < low ||
          m.price > high ||
          m.account === order.account
        )
          break;
        available += m.openQty;
      }
      if (available < order.quantity) return this.refuse(out, order, 'EXPIRED', 'FOK_NOT_FILLABLE');
    }
    this.emit(out, 'NEW', order, 'NEW', 0, 0, null);
    const stop = this.sweep(order, out, low, high);
    if (order.openQty > 0) {
      if (stop === MatchStop.SELF_TRADE) {
        order.openQty = 0;
        this.emit(out, 'CANCELLED', order, 'CANCELLED', 0, 0, 'SELF_TRADE_PREVENTED');
      } else if (order.isMarket || input.timeInForce !== 'GTC') {
        order.openQty = 0;
        this.emit(out, 'EXPIRED', order, 'EXPIRED', 0, 0, 'IOC_REMAINDER');
      } else {
        this.rest(order);
      }
    }
    return stop;
  }

  cancel(orderId: number, reason: Reason, out: BookEvent[]): boolean {
    const order = this.find(orderId);
    if (order === undefined) return false;
    this.take(order);
    order.openQty = 0;
    this.emit(out, 'CANCELLED', order, 'CANCELLED', 0, 0, reason);
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
    const order = this.find(orderId);
    if (order === undefined) throw new RangeError(`amend: order ${orderId} is not resting in this book`);
    if (price === order.price && openQty <= order.openQty) {
      order.quantity -= order.openQty - openQty;
      order.openQty = openQty;
      this.emit(out, 'AMENDED', order, status(order), 0, 0, null);
      return MatchStop.NONE;
    }
    const probe = { ...order, price };
    const first = this.contra(order)[0];
    const crosses = match && first !== undefined && this.acceptable(probe, first.price);
    if (crosses && order.postOnly) {
      this.emit(out, 'AMEND_REJECTED', order, status(order), 0, 0, 'POST_ONLY_WOULD_CROSS');
      return MatchStop.NONE;
    }
    if (crosses && first.price >= low && first.price <= high && first.account === order.account) {
      this.emit(out, 'AMEND_REJECTED', order, status(order), 0, 0, 'SELF_TRADE_PREVENTED');
      return MatchStop.NONE;
    }
    this.take(order);
    order.price = price;
    order.openQty = openQty;
    order.quantity = order.filledQty + openQty;
    this.emit(out, 'AMENDED', order, status(order), 0, 0, null);
    const stop = match ? this.sweep(order, out, low, high) : MatchStop.NONE;
    if (order.openQty > 0) {
      if (stop === MatchStop.SELF_TRADE) {
        order.openQty = 0;
        this.emit(out, 'CANCELLED', order, 'CANCELLED', 0, 0, 'SELF_TRADE_PREVENTED');
      } else {
        this.rest(order);
      }
    }
    return stop;
  }

  indicativeUncross(referencePrice: number | null): AuctionResult | null {
    // Try every limit price in the book; keep the best by the shared rule.
    const prices = [...new Set([...this.bids, ...this.asks].map((o) => o.price))].sort((a, b) => a - b);
    let best: AuctionResult | null = null;
    for (const price of prices) {
      const buy = this.bids.filter((o) => o.price >= price).reduce((s, o) => s + o.openQty, 0);
      const sell = this.asks.filter((o) => o.price <= price).reduce((s, o) => s + o.openQty, 0);
      const volume = Math.min(buy, sell);
      if (volume === 0) continue;
      const candidate = { price, volume, imbalance: buy - sell };
      if (betterAuctionPrice(candidate, best, referencePrice)) best = candidate;
    }
    return best;
  }

  uncross(referencePrice: number | null, out: BookEvent[]): AuctionResult | null {
    const result = this.indicativeUncross(referencePrice);
    if (result === null) return null;
    const price = result.price;
    let remaining = result.volume;
    while (remaining > 0) {
      const buy = this.bids[0];
      const sell = this.asks[0];
      const qty = Math.min(buy.openQty, sell.openQty);
      remaining -= qty;
      for (const o of [buy, sell]) {
        o.openQty -= qty;
        o.filledQty += qty;
      }
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
      this.emit(out, 'TRADE', buy, status(buy), qty, price, null);
      this.emit(out, 'TRADE', sell, status(sell), qty, price, null);
      if (buy.openQty === 0) this.take(buy);
      if (sell.openQty === 0) this.take(sell);
    }
    return result;
  }

  getOrder(orderId: number): RestingOrder | undefined {
    const order = this.find(orderId);
    return order === undefined ? undefined : this.view(order);
  }

  bestBid(): number | null {
    return this.bids[0]?.price ?? null;
  }

  bestAsk(): number | null {
    return this.asks[0]?.price ?? null;
  }

  depth(levels: number): Depth {
    const side = (orders: RefOrder[]): DepthLevel[] => {
      const result: DepthLevel[] = [];
      for (const o of orders) {
        const last = result[result.length - 1];
        if (last !== undefined && last.price === o.price) {
          result[result.length - 1] = {
            price: o.price,
            quantity: last.quantity + o.openQty,
            orders: last.orders + 1,
          };
        } else {
          result.push({ price: o.price, quantity: o.openQty, orders: 1 });
        }
      }
      return result.slice(0, levels);
    };
    return { bids: side(this.bids), asks: side(this.asks) };
  }

  toSnapshot(): BookSnapshot {
    return {
      version: 1,
      nextTradeId: this.nextTradeId,
      bids: this.bids.map((o) => this.view(o)),
      asks: this.asks.map((o) => this.view(o)),
    };
  }

  private view(o: RefOrder): RestingOrder {
    const { id, account, clientOrderId, sessionId, side, price, quantity, openQty, filledQty, postOnly } = o;
    return { id, account, clientOrderId, sessionId, side, price, quantity, openQty, filledQty, postOnly };
  }

  /** The contra side of `order`, in priority order. */
  private contra(order: RefOrder): RefOrder[] {
    return order.side === 'BUY' ? this.asks : this.bids;
  }

  /** Would `order` accept a trade at `price`? */
  private acceptable(order: RefOrder, price: number): boolean {
    if (order.isMarket) return true;
    return order.side === 'BUY' ? price <= order.price : price >= order.price;
  }

  private sweep(taker: RefOrder, out: BookEvent[], low: number, high: number): MatchStop {
    const contra = this.contra(taker);
    while (taker.openQty > 0 && contra.length > 0) {
      const maker = contra[0];
      if (!this.acceptable(taker, maker.price)) return MatchStop.NONE;
      if (maker.price < low || maker.price > high) return MatchStop.PRICE_BAND;
      if (maker.account === taker.account) return MatchStop.SELF_TRADE;
      const qty = Math.min(taker.openQty, maker.openQty);
      for (const o of [taker, maker]) {
        o.openQty -= qty;
        o.filledQty += qty;
      }
      const buy = taker.side === 'BUY' ? taker : maker;
      const sell = taker.side === 'BUY' ? maker : taker;
      out.push({
        kind: 'TRADE',
        tradeId: this.nextTradeId++,
        price: maker.price,
        quantity: qty,
        buyOrderId: buy.id,
        sellOrderId: sell.id,
        buyAccount: buy.account,
        sellAccount: sell.account,
        aggressor: taker.side,
      });
      this.emit(out, 'TRADE', maker, status(maker), qty, maker.price, null);
      this.emit(out, 'TRADE', taker, status(taker), qty, maker.price, null);
      if (maker.openQty === 0) this.take(maker);
    }
    return MatchStop.NONE;
  }

  private refuse(out: BookEvent[], order: RefOrder, st: 'REJECTED' | 'EXPIRED', reason: Reason): MatchStop {
    order.openQty = 0;
    this.emit(out, st, order, st, 0, 0, reason);
    return MatchStop.NONE;
  }

  private find(orderId: number): RefOrder | undefined {
    return this.bids.find((o) => o.id === orderId) ?? this.asks.find((o) => o.id === orderId);
  }

  /** Put an order at the back of the queue at its price. */
  private rest(order: RefOrder): void {
    order.seq = this.nextSeq++;
    if (order.side === 'BUY') {
      this.bids.push(order);
      this.bids.sort((a, b) => b.price - a.price || a.seq - b.seq);
    } else {
      this.asks.push(order);
      this.asks.sort((a, b) => a.price - b.price || a.seq - b.seq);
    }
  }

  private take(order: RefOrder): void {
    const side = order.side === 'BUY' ? this.bids : this.asks;
    side.splice(side.indexOf(order), 1);
  }

  private emit(
    out: BookEvent[],
    exec: ExecType,
    o: RefOrder,
    st: OrderStatus,
    lastQty: number,
    lastPrice: number,
    reason: Reason | null,
  ): void {
    out.push({
      kind: 'ORDER',
      exec,
      orderId: o.id,
      account: o.account,
      clientOrderId: o.clientOrderId,
      sessionId: o.sessionId,
      side: o.side,
      price: o.isMarket ? null : o.price,
      quantity: o.quantity,
      openQty: o.openQty,
      filledQty: o.filledQty,
      lastQty,
      lastPrice,
      status: st,
      reason,
    });
  }
}
