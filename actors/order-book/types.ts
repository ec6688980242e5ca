// Shapes shared by the matching core (matching.ts), the reference matcher (reference.ts) and the
// order-book actor (order-book.ts). Everything is plain data: integer prices in ticks, integer
// quantities, no floating point anywhere in matching.

export type Side = 'BUY' | 'SELL';
export type OrderType = 'LIMIT' | 'MARKET';
export type TimeInForce = 'GTC' | 'IOC' | 'FOK';

/** An order's lifecycle. NEW and PARTIALLY_FILLED are live; the other four are terminal. */
export type OrderStatus = 'NEW' | 'PARTIALLY_FILLED' | 'FILLED' | 'CANCELLED' | 'REJECTED' | 'EXPIRED';

/** What happened to an order in one execution report. */
export type ExecType =
  | 'NEW'
  | 'TRADE'
  | 'CANCELLED'
  | 'REJECTED'
  | 'EXPIRED'
  | 'AMENDED'
  | 'AMEND_REJECTED'
  | 'CANCEL_REJECTED';

/** Why an order or a request was refused, cancelled or expired. Each code has a text in order-book.ts. */
export type Reason =
  | 'UNKNOWN_INSTRUMENT'
  | 'BAD_PRICE_TICK'
  | 'PRICE_OUT_OF_RANGE'
  | 'SIZE_LIMIT'
  | 'WRONG_PHASE'
  | 'SELF_TRADE_PREVENTED'
  | 'POST_ONLY_WOULD_CROSS'
  | 'UNKNOWN_ORDER'
  | 'INVALID_ORDER'
  | 'DUPLICATE_CLIENT_ORDER_ID'
  | 'CLIENT_CANCEL'
  | 'IOC_REMAINDER'
  | 'FOK_NOT_FILLABLE';

/** An order as it enters the matching core. The actor has validated it already. */
export interface OrderInput {
  /** Deterministic id assigned by the book actor from its state (a counter folded over the log). */
  readonly id: number;
  readonly account: string;
  readonly clientOrderId: string;
  /** The session that submitted it: execution reports for this order go there. */
  readonly sessionId: number;
  readonly side: Side;
  readonly type: OrderType;
  /** Limit price in ticks; ignored (use 0) for market orders. */
  readonly price: number;
  readonly quantity: number;
  readonly timeInForce: TimeInForce;
  readonly postOnly: boolean;
}

/** A change to one order: the raw material of an execution report. */
export interface OrderEvent {
  readonly kind: 'ORDER';
  readonly exec: ExecType;
  readonly orderId: number;
  readonly account: string;
  readonly clientOrderId: string;
  readonly sessionId: number;
  readonly side: Side;
  /** Limit price in ticks, or null for a market order. */
  readonly price: number | null;
  /** Original size plus any amendment: filledQty + openQty while live. */
  readonly quantity: number;
  readonly openQty: number;
  readonly filledQty: number;
  /** Size and price of the fill this event reports (0 when exec is not TRADE). */
  readonly lastQty: number;
  readonly lastPrice: number;
  readonly status: OrderStatus;
  readonly reason: Reason | null;
}

/** One execution between a buy and a sell. */
export interface TradeEvent {
  readonly kind: 'TRADE';
  readonly tradeId: number;
  readonly price: number;
  readonly quantity: number;
  readonly buyOrderId: number;
  readonly sellOrderId: number;
  readonly buyAccount: string;
  readonly sellAccount: string;
  /** The side of the incoming order in continuous matching; null for an auction uncross. */
  readonly aggressor: Side | null;
}

export type BookEvent = OrderEvent | TradeEvent;

/** A resting order, as snapshots and queries show it. */
export interface RestingOrder {
  readonly id: number;
  readonly account: string;
  readonly clientOrderId: string;
  readonly sessionId: number;
  readonly side: Side;
  readonly price: number;
  readonly quantity: number;
  readonly openQty: number;
  readonly filledQty: number;
  readonly postOnly: boolean;
}

/**
 * A matching book's whole state as plain, msgpack-able data. Orders are listed in priority order
 * (best price first, then arrival), so restoring them in sequence rebuilds the same FIFO queues.
 */
export interface BookSnapshot {
  readonly version: 1;
  readonly nextTradeId: number;
  readonly bids: RestingOrder[];
  readonly asks: RestingOrder[];
}

export interface DepthLevel {
  readonly price: number;
  readonly quantity: number;
  readonly orders: number;
}

export interface Depth {
  readonly bids: DepthLevel[];
  readonly asks: DepthLevel[];
}

/** The single price an auction uncrosses at, and what it executes there. */
export interface AuctionResult {
  readonly price: number;
  readonly volume: number;
  /** Buy volume at the price minus sell volume at the price (positive: buy surplus). */
  readonly imbalance: number;
}

/** Why matching stopped short of the incoming order's limit. */
export const MatchStop = {
  /** Nothing stopped it: it filled, or ran out of contra liquidity at acceptable prices. */
  NONE: 0,
  /** The next contra order belonged to the same account: self-trade prevention. */
  SELF_TRADE: 1,
  /** The next trade would have been outside the circuit-breaker band. */
  PRICE_BAND: 2,
} as const;
export type MatchStop = (typeof MatchStop)[keyof typeof MatchStop];

/**
 * The contract both matchers fulfil, so property tests can drive them side by side. Rules:
 * - `submit` with `match` true runs continuous price-time matching; with `match` false (auction call
 *   phases) it only rests the order (GTC limit orders only; the caller enforces that).
 * - Prechecks, in order, before an order is acknowledged: post-only that would cross → REJECTED
 *   POST_ONLY_WOULD_CROSS; the first contra order it would meet belongs to the same account →
 *   REJECTED SELF_TRADE_PREVENTED; FOK that cannot fill entirely within its limit, the band and
 *   before meeting its own account → EXPIRED FOK_NOT_FILLABLE.
 * - Otherwise: NEW, then per fill TRADE + maker ORDER + taker ORDER, then for a remainder: meeting an
 *   own order mid-sweep → CANCELLED SELF_TRADE_PREVENTED (cancel-newest policy); IOC or market →
 *   EXPIRED IOC_REMAINDER; GTC limit → rests.
 * - `low`/`high` bound the prices trades may happen at (the circuit-breaker band). Matching stops at
 *   the first level outside them and the call returns MatchStop.PRICE_BAND.
 * - `amend`: same price and same-or-smaller size keeps priority; anything else loses it and
 *   re-enters as a GTC limit order (prechecks failing → AMEND_REJECTED, order left unchanged).
 * - `uncross` executes the auction at one price: most volume, then least imbalance, then closest to
 *   the reference price, then the lower price. Self-trade prevention does not apply in auctions.
 */
export interface MatchingEngine {
  submit(order: OrderInput, match: boolean, out: BookEvent[], low?: number, high?: number): MatchStop;
  cancel(orderId: number, reason: Reason, out: BookEvent[]): boolean;
  amend(
    orderId: number,
    price: number,
    openQty: number,
    match: boolean,
    out: BookEvent[],
    low?: number,
    high?: number,
  ): MatchStop;
  /** The auction price and volume if the book is crossed, else null; changes nothing. */
  indicativeUncross(referencePrice: number | null): AuctionResult | null;
  uncross(referencePrice: number | null, out: BookEvent[]): AuctionResult | null;
  getOrder(orderId: number): RestingOrder | undefined;
  bestBid(): number | null;
  bestAsk(): number | null;
  depth(levels: number): Depth;
  readonly orderCount: number;
  toSnapshot(): BookSnapshot;
}

/** Pick the auction price among candidates by the documented rule. Shared by both matchers. */
export const betterAuctionPrice = (
  candidate: AuctionResult,
  best: AuctionResult | null,
  referencePrice: number | null,
): boolean => {
  if (best === null) return true;
  if (candidate.volume !== best.volume) return candidate.volume > best.volume;
  const ci = Math.abs(candidate.imbalance);
  const bi = Math.abs(best.imbalance);
  if (ci !== bi) return ci < bi;
  if (referencePrice !== null) {
    const cd = Math.abs(candidate.price - referencePrice);
    const bd = Math.abs(best.price - referencePrice);
    if (cd !== bd) return cd < bd;
  }
  return candidate.price < best.price;
};
