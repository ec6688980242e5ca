// What the order book tells the world: execution reports (to the requester, and kept for its resends),
// trades, market data, phase changes and timer requests; and how reports are built from the matching
// core's events and from refusals.

import type { z } from 'zod';
import type { TradingPhase } from '../../machines/trading-phase.ts';
import { type ApplyContext, describeIssues, type OrderBookConfig } from './commands.ts';
import type { MatchingBook } from './matching.ts';
import type { BookEvent, DepthLevel, ExecType, OrderStatus, Reason, Side } from './types.ts';

export interface ExecutionReport {
  readonly type: 'EXECUTION_REPORT';
  readonly sessionId: number;
  readonly instrument: string;
  readonly account: string;
  /** The book's id for the order; 0 when the request was refused before it got one. */
  readonly orderId: number;
  readonly clientOrderId: string;
  /** The clientOrderId of the request that caused this report; null for unsolicited ones (fills of a resting order). */
  readonly requestId: string | null;
  readonly execType: ExecType;
  /** The order's status after this report; null when the order is unknown. */
  readonly status: OrderStatus | null;
  readonly side: Side | null;
  readonly price: number | null;
  readonly quantity: number;
  readonly openQty: number;
  readonly filledQty: number;
  readonly lastQty: number;
  readonly lastPrice: number;
  readonly tradeId: number;
  readonly reason: Reason | null;
  readonly text: string | null;
  readonly timestamp: number;
  /** True when this is the stored answer to a resent request. */
  readonly duplicate: boolean;
}

export type OrderBookOutput =
  | ExecutionReport
  | {
      readonly type: 'TRADE';
      readonly instrument: string;
      readonly tradeId: number;
      readonly price: number;
      readonly quantity: number;
      readonly buyOrderId: number;
      readonly sellOrderId: number;
      readonly aggressor: Side | null;
      readonly timestamp: number;
    }
  | {
      readonly type: 'TOP_OF_BOOK';
      readonly instrument: string;
      readonly bidPrice: number | null;
      readonly bidQty: number;
      readonly askPrice: number | null;
      readonly askQty: number;
      readonly timestamp: number;
    }
  | {
      readonly type: 'DEPTH';
      readonly instrument: string;
      readonly bids: DepthLevel[];
      readonly asks: DepthLevel[];
      readonly timestamp: number;
    }
  | {
      readonly type: 'PHASE_CHANGED';
      readonly instrument: string;
      readonly phase: TradingPhase;
      readonly previous: TradingPhase;
      readonly timestamp: number;
    }
  | {
      readonly type: 'AUCTION_UNCROSSED';
      readonly instrument: string;
      /** null when the book did not cross: nothing traded. */
      readonly price: number | null;
      readonly volume: number;
      readonly imbalance: number;
      readonly timestamp: number;
    }
  | {
      /** During the auction call period: where the book would uncross now (null price: it does not cross). */
      readonly type: 'INDICATIVE_UNCROSS';
      readonly instrument: string;
      readonly price: number | null;
      readonly volume: number;
      readonly imbalance: number;
      readonly timestamp: number;
    }
  | {
      readonly type: 'CIRCUIT_BREAKER_TRIPPED';
      readonly instrument: string;
      readonly low: number;
      readonly high: number;
      readonly timestamp: number;
    }
  | {
      readonly type: 'SCHEDULE_TIMER';
      readonly timerId: number;
      readonly dueAt: number;
      readonly delayMs: number;
    }
  | { readonly type: 'CANCEL_TIMER'; readonly timerId: number }
  | {
      readonly type: 'COMMAND_REJECTED';
      readonly sessionId: number;
      readonly command: string;
      readonly reason: Reason;
      readonly text: string;
      readonly timestamp: number;
    };

/** What each reason means for the sender, and what to do about it. */
export const REASON_TEXT: Record<Reason, string> = {
  UNKNOWN_INSTRUMENT:
    'this book does not trade that instrument; send the order to the book for its instrument',
  BAD_PRICE_TICK: 'the price is not a positive integer multiple of the tick size; round it to a valid tick',
  PRICE_OUT_OF_RANGE: 'the price is outside the instrument’s allowed range; send a price within it',
  SIZE_LIMIT: 'the quantity is not a multiple of the lot size or is outside the allowed size range',
  WRONG_PHASE: 'the current trading phase does not accept this request; wait for a phase that does',
  SELF_TRADE_PREVENTED: 'the order would have traded against another order of the same account',
  POST_ONLY_WOULD_CROSS:
    'a post-only order may not take liquidity; lower a buy or raise a sell below the touch',
  UNKNOWN_ORDER: 'no live order of this account has that id; it may be filled, cancelled or never existed',
  INVALID_ORDER: 'the request is malformed; fix the named fields',
  DUPLICATE_CLIENT_ORDER_ID: 'this clientOrderId was already used by a different request; use a new one',
  CLIENT_CANCEL: 'cancelled at the owner’s request',
  IOC_REMAINDER: 'the part that could not fill at once expired (immediate-or-cancel or market order)',
  FOK_NOT_FILLABLE: 'fill-or-kill: the whole quantity could not fill at once, so nothing traded',
};

/** One request being applied: who asked, about which order, and the reports it produced for them. */
export interface RequestScope {
  readonly sessionId: number;
  readonly requestId: string;
  orderId: number;
  readonly reports: ExecutionReport[];
}

/** The exec type of a refused request of this command type. */
export const rejectedExecType = (type: string): ExecType =>
  type === 'NEW_ORDER' ? 'REJECTED' : type === 'CANCEL_ORDER' ? 'CANCEL_REJECTED' : 'AMEND_REJECTED';

/** Build a report; when it answers the request in `scope`, route it to the requester and keep it for resends. */
export const executionReport = (
  instrument: string,
  ctx: ApplyContext,
  scope: RequestScope | null,
  fields: Partial<ExecutionReport> &
    Pick<
      ExecutionReport,
      'orderId' | 'account' | 'clientOrderId' | 'execType' | 'status' | 'reason' | 'text'
    >,
): ExecutionReport => {
  const report: ExecutionReport = {
    type: 'EXECUTION_REPORT',
    sessionId: scope?.sessionId ?? fields.sessionId ?? 0,
    instrument,
    account: fields.account,
    orderId: fields.orderId,
    clientOrderId: fields.clientOrderId,
    requestId: scope?.requestId ?? fields.requestId ?? null,
    execType: fields.execType,
    status: fields.status,
    side: fields.side ?? null,
    price: fields.price ?? null,
    quantity: fields.quantity ?? 0,
    openQty: fields.openQty ?? 0,
    filledQty: fields.filledQty ?? 0,
    lastQty: fields.lastQty ?? 0,
    lastPrice: fields.lastPrice ?? 0,
    tradeId: fields.tradeId ?? 0,
    reason: fields.reason,
    text: fields.text,
    timestamp: ctx.timestamp,
    duplicate: false,
  };
  scope?.reports.push(report);
  return report;
};

export const commandRejected = (
  ctx: ApplyContext,
  command: string,
  reason: Reason,
  text: string,
): OrderBookOutput => ({
  type: 'COMMAND_REJECTED',
  sessionId: ctx.sessionId,
  command,
  reason,
  text,
  timestamp: ctx.timestamp,
});

/** A request that failed validation: a REJECTED report if we know who sent it, else COMMAND_REJECTED. */
export const malformedRequest = (
  instrument: string,
  command: unknown,
  error: z.ZodError,
  ctx: ApplyContext,
): OrderBookOutput => {
  const c = command as { type: string; account?: unknown; clientOrderId?: unknown };
  const text = `invalid ${c.type}: ${describeIssues(error)}`;
  if (typeof c.account === 'string' && typeof c.clientOrderId === 'string') {
    return executionReport(instrument, ctx, null, {
      orderId: 0,
      account: c.account,
      clientOrderId: c.clientOrderId,
      requestId: c.clientOrderId,
      sessionId: ctx.sessionId,
      execType: rejectedExecType(c.type),
      status: c.type === 'NEW_ORDER' ? 'REJECTED' : null,
      reason: 'INVALID_ORDER',
      text,
    });
  }
  return commandRejected(ctx, c.type, 'INVALID_ORDER', text);
};

/**
 * Turn the core's events into outputs (and empty `events`); reports about the request's own order go to
 * the requester. `onTrade` sees every trade price (the circuit breaker's window), or is null.
 */
export const eventOutputs = (
  events: BookEvent[],
  instrument: string,
  ctx: ApplyContext,
  scope: RequestScope | null,
  onTrade: ((timestamp: number, price: number) => void) | null,
  outputs: OrderBookOutput[],
): void => {
  let tradeId = 0;
  for (let i = 0; i < events.length; i++) {
    const e = events[i];
    if (e.kind === 'TRADE') {
      tradeId = e.tradeId;
      if (onTrade !== null) onTrade(ctx.timestamp, e.price);
      outputs.push({
        type: 'TRADE',
        instrument,
        tradeId: e.tradeId,
        price: e.price,
        quantity: e.quantity,
        buyOrderId: e.buyOrderId,
        sellOrderId: e.sellOrderId,
        aggressor: e.aggressor,
        timestamp: ctx.timestamp,
      });
      continue;
    }
    const own = scope !== null && e.orderId === scope.orderId;
    outputs.push(
      executionReport(instrument, ctx, own ? scope : null, {
        orderId: e.orderId,
        account: e.account,
        clientOrderId: e.clientOrderId,
        sessionId: e.sessionId,
        execType: e.exec,
        status: e.status,
        side: e.side,
        price: e.price,
        quantity: e.quantity,
        openQty: e.openQty,
        filledQty: e.filledQty,
        lastQty: e.lastQty,
        lastPrice: e.lastPrice,
        tradeId: e.exec === 'TRADE' ? tradeId : 0,
        reason: e.reason,
        text: e.reason === null ? null : REASON_TEXT[e.reason],
      }),
    );
  }
  events.length = 0;
};

/** Best bid price and quantity, best ask price and quantity: the touch last published. */
export type TopOfBook = [bidPrice: number | null, bidQty: number, askPrice: number | null, askQty: number];

/** TOP_OF_BOOK when the touch changed since `lastTop`; DEPTH whenever it or anything below it may have. Returns the touch. */
export const marketData = (
  book: MatchingBook,
  config: OrderBookConfig,
  lastTop: TopOfBook,
  ctx: ApplyContext,
  outputs: OrderBookOutput[],
): TopOfBook => {
  const [bidQty, askQty] = book.bestQuantities();
  const top: TopOfBook = [book.bestBid(), bidQty, book.bestAsk(), askQty];
  const changed =
    top[0] !== lastTop[0] || top[1] !== lastTop[1] || top[2] !== lastTop[2] || top[3] !== lastTop[3];
  if (changed) {
    outputs.push({
      type: 'TOP_OF_BOOK',
      instrument: config.instrument,
      bidPrice: top[0],
      bidQty: top[1],
      askPrice: top[2],
      askQty: top[3],
      timestamp: ctx.timestamp,
    });
  }
  if (config.depthLevels > 0) {
    const depth = book.depth(config.depthLevels);
    outputs.push({ type: 'DEPTH', instrument: config.instrument, ...depth, timestamp: ctx.timestamp });
  }
  return changed ? top : lastTop;
};
