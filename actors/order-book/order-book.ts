// The order-book actor for one instrument: the trading-phase statechart bound to the matching core.
//
// It is a deterministic behaviour, independent of the actor runtime: `apply(command, ctx)` takes one
// committed input (a client command, an operator phase command or a cluster-timer expiry) with the
// log entry's cluster timestamp and index, mutates the book and returns the outputs: execution
// reports to sessions, trades, market data, phase changes and timer requests. The runtime hosts it
// by calling `apply` for each committed entry, `toSnapshot` when the cluster snapshots, and
// `OrderBook.fromSnapshot` on recovery; replaying the same inputs gives the same outputs.
//
// Decisions:
// - The phase machine runs through XState's pure `transition()`: its delayed events (`after`) come
//   back as actions, which become SCHEDULE_TIMER / CANCEL_TIMER outputs; the expiry arrives later as
//   a TIMER command through the log. Pending timers are part of this state and of its snapshot.
//   Phase events are rare, so the pure-transition cost stays off the per-order path.
// - Order ids come from a counter in state (a fold over the log), trade ids from the core.
// - Idempotency: every request (new, cancel, amend) carries the account's `clientOrderId`; a resend
//   with the same content gets the original reports again (marked `duplicate`), a different request
//   reusing the id is refused. Answers of finished orders are kept for `dedupWindowMs` of cluster time
//   (and dropped at REOPEN); those of resting orders as long as the order rests.
// - Circuit breaker: a trade may not print more than `bandTicks` away from any trade price in the
//   last `windowMs` of cluster time (the last trade price counts even when older). Matching stops at
//   the first price outside the band, the remainder of the order rests (GTC) or expires (IOC/market),
//   and the book halts; it resumes after `haltMs` through a re-opening auction that uncrosses it.
// - In PRE_OPEN and OPENING_AUCTION only GTC limit orders are accepted (they rest without matching);
//   in HALTED and CLOSED only cancels. Self-trade prevention applies in continuous matching only.

import { initialTransition, type SnapshotFrom, transition } from 'xstate';
import { z } from 'zod';
import {
  PHASE_COMMANDS,
  type TradingPhase,
  type TradingPhaseContext,
  type TradingPhaseEvent,
  tradingPhaseMachine,
} from '../../machines/trading-phase.ts';
import { MatchingBook } from './matching.ts';
import {
  type BookEvent,
  type BookSnapshot,
  type DepthLevel,
  type ExecType,
  MatchStop,
  type OrderStatus,
  type Reason,
  type Side,
} from './types.ts';

// ---------------------------------------------------------------------------------------------
// Configuration

const positiveInt = z.number().int().positive();

export const orderBookConfigSchema = z
  .object({
    /** The instrument this book trades; orders for any other are refused with UNKNOWN_INSTRUMENT. */
    instrument: z.string().min(1),
    /** Prices are integers in the instrument's price unit and must be multiples of this. */
    tickSize: positiveInt.default(1),
    minPrice: positiveInt.default(1),
    maxPrice: positiveInt.default(Number.MAX_SAFE_INTEGER),
    /** Quantities must be multiples of this, between minQuantity and maxQuantity. */
    lotSize: positiveInt.default(1),
    minQuantity: positiveInt.default(1),
    maxQuantity: positiveInt.default(1_000_000),
    /** Auction call period before it uncrosses by itself, in ms of cluster time. */
    auctionMs: positiveInt.default(60_000),
    /** Circuit-breaker halt before the re-opening auction starts, in ms. */
    haltMs: positiveInt.default(300_000),
    circuitBreaker: z.object({ bandTicks: positiveInt, windowMs: positiveInt }).nullable().default(null),
    /** Reference price for the first auction's tie-break, before any trade. */
    referencePrice: positiveInt.nullable().default(null),
    /**
     * How long a finished request's answer is kept for resends, in ms of cluster time. Requests whose
     * order still rests are kept as long as it does. Bounds the idempotency table's memory.
     */
    dedupWindowMs: positiveInt.default(300_000),
    /** Levels per side in DEPTH market data; 0 turns DEPTH off. */
    depthLevels: z.number().int().min(0).max(100).default(5),
  })
  .refine((c) => c.minPrice <= c.maxPrice, {
    message: 'minPrice must not exceed maxPrice',
    path: ['minPrice'],
  })
  .refine((c) => c.minQuantity <= c.maxQuantity, {
    message: 'minQuantity must not exceed maxQuantity',
    path: ['minQuantity'],
  });

export type OrderBookConfig = z.output<typeof orderBookConfigSchema>;
export type OrderBookConfigInput = z.input<typeof orderBookConfigSchema>;

const describeIssues = (error: z.ZodError): string =>
  error.issues.map((i) => `${i.path.length > 0 ? i.path.join('.') : 'value'}: ${i.message}`).join('; ');

// ---------------------------------------------------------------------------------------------
// Commands

const request = {
  instrument: z.string().min(1),
  account: z.string().min(1).max(64),
  /** Unique per account per request; the idempotency key. */
  clientOrderId: z.string().min(1).max(64),
};

export const newOrderSchema = z.object({
  type: z.literal('NEW_ORDER'),
  ...request,
  side: z.enum(['BUY', 'SELL']),
  orderType: z.enum(['LIMIT', 'MARKET']).default('LIMIT'),
  /** Limit price (integer, a multiple of the tick size); leave out for a market order. */
  price: z.number().optional(),
  quantity: z.number(),
  timeInForce: z.enum(['GTC', 'IOC', 'FOK']).default('GTC'),
  postOnly: z.boolean().default(false),
});

const target = {
  /** The order to act on, by the id the book gave it ... */
  orderId: positiveInt.optional(),
  /** ... or by the clientOrderId it was submitted with (same account). */
  origClientOrderId: z.string().min(1).max(64).optional(),
};

export const cancelOrderSchema = z.object({ type: z.literal('CANCEL_ORDER'), ...request, ...target });

export const amendOrderSchema = z.object({
  type: z.literal('AMEND_ORDER'),
  ...request,
  ...target,
  /** New limit price; unchanged if left out. */
  price: z.number().optional(),
  /** New open (remaining) quantity; unchanged if left out. */
  quantity: z.number().optional(),
});

export const phaseCommandSchema = z.object({ type: z.enum(PHASE_COMMANDS), instrument: z.string().min(1) });

/** A cluster timer the book asked for has expired (its expiry is a log entry). */
export const timerCommandSchema = z.object({ type: z.literal('TIMER'), timerId: positiveInt });

export type NewOrderCommand = z.input<typeof newOrderSchema>;
export type CancelOrderCommand = z.input<typeof cancelOrderSchema>;
export type AmendOrderCommand = z.input<typeof amendOrderSchema>;
export type PhaseCommandInput = z.input<typeof phaseCommandSchema>;
export type TimerCommand = z.input<typeof timerCommandSchema>;
export type OrderBookCommand =
  | NewOrderCommand
  | CancelOrderCommand
  | AmendOrderCommand
  | PhaseCommandInput
  | TimerCommand;

/** Where the command sits in the log, and who sent it. */
export interface ApplyContext {
  /** Cluster time of the log entry, in ms. */
  readonly timestamp: number;
  /** The log entry's index. */
  readonly index: number;
  /** The client session that submitted it (0 for timers and internal input). */
  readonly sessionId: number;
}

// ---------------------------------------------------------------------------------------------
// Outputs

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

// ---------------------------------------------------------------------------------------------
// Circuit breaker: sliding-window min and max of trade prices (monotonic deques, O(1) amortised).

type Sample = [timestamp: number, price: number];

class PriceWindow {
  constructor(
    /** Decreasing prices: the front is the window's maximum. */
    public maxQueue: Sample[] = [],
    /** Increasing prices: the front is the window's minimum. */
    public minQueue: Sample[] = [],
    public last: number | null = null,
  ) {}

  record(timestamp: number, price: number): void {
    while (this.maxQueue.length > 0 && this.maxQueue[this.maxQueue.length - 1][1] <= price)
      this.maxQueue.pop();
    this.maxQueue.push([timestamp, price]);
    while (this.minQueue.length > 0 && this.minQueue[this.minQueue.length - 1][1] >= price)
      this.minQueue.pop();
    this.minQueue.push([timestamp, price]);
    this.last = price;
  }

  reset(timestamp: number, price: number): void {
    this.maxQueue = [];
    this.minQueue = [];
    this.record(timestamp, price);
  }

  /** The prices a trade may print at now, or null when there is no reference yet. */
  band(now: number, windowMs: number, bandTicks: number): [low: number, high: number] | null {
    if (this.last === null) return null;
    const oldest = now - windowMs;
    while (this.maxQueue.length > 0 && this.maxQueue[0][0] < oldest) this.maxQueue.shift();
    while (this.minQueue.length > 0 && this.minQueue[0][0] < oldest) this.minQueue.shift();
    const max = Math.max(this.last, this.maxQueue[0]?.[1] ?? this.last);
    const min = Math.min(this.last, this.minQueue[0]?.[1] ?? this.last);
    return [max - bandTicks, min + bandTicks];
  }
}

// ---------------------------------------------------------------------------------------------
// Snapshot

/** A request's fields (all primitives), without the ones left undefined. */
type RequestFields = Record<string, string | number | boolean>;

interface DedupEntry {
  /** The validated request, to tell a resend from a different request reusing the id. */
  readonly request: RequestFields;
  /** The order the request created or acted on (0 if refused before it had one). */
  readonly orderId: number;
  readonly reports: ExecutionReport[];
  /** Cluster time it was recorded (or last found still live), for eviction. */
  readonly timestamp: number;
}

interface PendingTimer {
  readonly timerId: number;
  /** XState's id for the delayed event, used to match its cancellation. */
  readonly sendId: string;
  readonly eventType: string;
  readonly dueAt: number;
}

/** The actor's whole state as plain, msgpack-able data. */
export interface OrderBookSnapshot {
  readonly version: 1;
  readonly config: OrderBookConfig;
  readonly phase: { readonly value: TradingPhase; readonly context: TradingPhaseContext };
  readonly book: BookSnapshot;
  readonly nextOrderId: number;
  readonly nextTimerId: number;
  readonly timers: PendingTimer[];
  /** The idempotency table in its eviction order (oldest first). */
  readonly dedup: [key: string, entry: DedupEntry][];
  readonly window: { readonly maxQueue: Sample[]; readonly minQueue: Sample[]; readonly last: number | null };
  readonly lastTop: [bidPrice: number | null, bidQty: number, askPrice: number | null, askQty: number];
}

// ---------------------------------------------------------------------------------------------
// The actor

type PhaseSnapshot = SnapshotFrom<typeof tradingPhaseMachine>;

const dedupKey = (account: string, clientOrderId: string): string => `${account}\u0000${clientOrderId}`;

const requestFields = (cmd: object): RequestFields => {
  const fields: RequestFields = {};
  for (const [key, value] of Object.entries(cmd)) if (value !== undefined) fields[key] = value;
  return fields;
};

const sameRequest = (a: RequestFields, b: RequestFields): boolean => {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k]);
};

/** One request being applied: who asked, about which order, and the reports it produced for them. */
/** A request aimed at a resting order, by its order id or its client order id (cancel, amend). */
interface TargetedRequest {
  type: string;
  instrument: string;
  account: string;
  clientOrderId: string;
  orderId?: number;
  origClientOrderId?: string;
}

interface RequestScope {
  readonly sessionId: number;
  readonly requestId: string;
  orderId: number;
  readonly reports: ExecutionReport[];
}

export class OrderBook {
  readonly config: OrderBookConfig;
  private book: MatchingBook;
  private phaseSnapshot: PhaseSnapshot;
  private nextOrderId = 1;
  private nextTimerId = 1;
  private readonly timers = new Map<number, PendingTimer>();
  /**
   * Idempotency table: (account, clientOrderId) → the request and its answer, in order of last
   * touch. Entries older than `dedupWindowMs` are dropped unless their order is still live.
   */
  private readonly dedup = new Map<string, DedupEntry>();
  private window = new PriceWindow();
  private lastTop: OrderBookSnapshot['lastTop'] = [null, 0, null, 0];
  /** Scratch array the core pushes events onto, reused across commands. */
  private readonly events: BookEvent[] = [];

  constructor(config: OrderBookConfigInput) {
    const parsed = orderBookConfigSchema.safeParse(config);
    if (!parsed.success) throw new TypeError(`invalid order book config: ${describeIssues(parsed.error)}`);
    this.config = parsed.data;
    this.book = new MatchingBook();
    [this.phaseSnapshot] = initialTransition(tradingPhaseMachine, {
      auctionMs: this.config.auctionMs,
      haltMs: this.config.haltMs,
    });
  }

  get phase(): TradingPhase {
    return this.phaseSnapshot.value as TradingPhase;
  }

  /** The matching core, for queries (best prices, depth, resting orders). */
  get matching(): MatchingBook {
    return this.book;
  }

  /** Apply one committed input. Deterministic: same state + same input → same state + same outputs. */
  apply(command: unknown, ctx: ApplyContext): OrderBookOutput[] {
    const outputs: OrderBookOutput[] = [];
    const type =
      typeof command === 'object' && command !== null ? (command as { type?: unknown }).type : undefined;
    switch (type) {
      case 'NEW_ORDER':
        this.newOrder(command, ctx, outputs);
        break;
      case 'CANCEL_ORDER':
        this.cancelOrder(command, ctx, outputs);
        break;
      case 'AMEND_ORDER':
        this.amendOrder(command, ctx, outputs);
        break;
      case 'TIMER':
        this.timer(command, ctx, outputs);
        break;
      default:
        if (typeof type === 'string' && (PHASE_COMMANDS as readonly string[]).includes(type)) {
          this.phaseCommand(command, ctx, outputs);
        } else {
          outputs.push(
            this.commandRejected(
              ctx,
              String(type),
              'INVALID_ORDER',
              `unknown command type ${JSON.stringify(type)}: expected NEW_ORDER, CANCEL_ORDER, AMEND_ORDER, TIMER or one of ${PHASE_COMMANDS.join(', ')}`,
            ),
          );
        }
    }
    return outputs;
  }

  // --- requests ---------------------------------------------------------------------------------

  private newOrder(command: unknown, ctx: ApplyContext, outputs: OrderBookOutput[]): void {
    const parsed = newOrderSchema.safeParse(command);
    if (!parsed.success) {
      this.malformed(command, parsed.error, ctx, outputs);
      return;
    }
    const cmd = parsed.data;
    const scope = this.beginRequest(cmd, ctx, outputs);
    if (scope === null) return;
    const problem = this.newOrderProblem(cmd);
    if (problem !== null) {
      outputs.push(
        this.report(ctx, scope, {
          orderId: 0,
          account: cmd.account,
          clientOrderId: cmd.clientOrderId,
          execType: 'REJECTED',
          status: 'REJECTED',
          side: cmd.side,
          price: cmd.price ?? null,
          quantity: cmd.quantity,
          reason: problem[0],
          text: problem[1],
        }),
      );
      this.endRequest(cmd, scope, ctx);
      return;
    }
    const auctionCall = this.phase !== 'CONTINUOUS';
    const orderId = this.nextOrderId++;
    scope.orderId = orderId;
    const [low, high] = this.bandNow(ctx);
    const stop = this.book.submit(
      {
        id: orderId,
        account: cmd.account,
        clientOrderId: cmd.clientOrderId,
        sessionId: ctx.sessionId,
        side: cmd.side,
        type: cmd.orderType,
        price: cmd.price ?? 0,
        quantity: cmd.quantity,
        timeInForce: cmd.timeInForce,
        postOnly: cmd.postOnly,
      },
      !auctionCall,
      this.events,
      low,
      high,
    );
    this.flushEvents(ctx, scope, outputs);
    this.endRequest(cmd, scope, ctx);
    this.afterMatching(stop, low, high, ctx, outputs);
  }

  /**
   * The common start of a request aimed at a resting order (cancel, amend): validate it, check for a
   * resend, find the order. Null when the request was answered already (malformed, duplicate, no order).
   */
  private openTargeted<T extends z.ZodType<TargetedRequest>>(
    schema: T,
    command: unknown,
    execType: 'CANCEL_REJECTED' | 'AMEND_REJECTED',
    ctx: ApplyContext,
    outputs: OrderBookOutput[],
  ): { cmd: z.output<T>; scope: RequestScope; orderId: number } | null {
    const parsed = schema.safeParse(command);
    if (!parsed.success) {
      this.malformed(command, parsed.error, ctx, outputs);
      return null;
    }
    const cmd = parsed.data;
    const scope = this.beginRequest(cmd, ctx, outputs);
    if (scope === null) return null;
    const orderId = this.resolveTarget(cmd, ctx, scope, execType, outputs);
    if (orderId === 0) {
      this.endRequest(cmd, scope, ctx);
      return null;
    }
    scope.orderId = orderId;
    return { cmd, scope, orderId };
  }

  private cancelOrder(command: unknown, ctx: ApplyContext, outputs: OrderBookOutput[]): void {
    const target = this.openTargeted(cancelOrderSchema, command, 'CANCEL_REJECTED', ctx, outputs);
    if (target === null) return;
    const { cmd, scope, orderId } = target;
    this.book.cancel(orderId, 'CLIENT_CANCEL', this.events);
    this.flushEvents(ctx, scope, outputs);
    this.endRequest(cmd, scope, ctx);
    this.publishMarketData(ctx, outputs);
  }

  private amendOrder(command: unknown, ctx: ApplyContext, outputs: OrderBookOutput[]): void {
    const target = this.openTargeted(amendOrderSchema, command, 'AMEND_REJECTED', ctx, outputs);
    if (target === null) return;
    const { cmd, scope, orderId } = target;
    const order = this.book.getOrder(orderId)!;
    const refuse = (reason: Reason, text: string): void => {
      outputs.push(
        this.report(ctx, scope, {
          ...order,
          orderId,
          execType: 'AMEND_REJECTED',
          status: order.filledQty > 0 ? 'PARTIALLY_FILLED' : 'NEW',
          reason,
          text,
        }),
      );
      this.endRequest(cmd, scope, ctx);
    };
    if (cmd.price === undefined && cmd.quantity === undefined) {
      refuse('INVALID_ORDER', 'an amend needs a new price, a new quantity or both');
      return;
    }
    const price = cmd.price ?? order.price;
    const quantity = cmd.quantity ?? order.openQty;
    const priceProblem = this.priceProblem(price);
    if (priceProblem !== null) {
      refuse(priceProblem[0], priceProblem[1]);
      return;
    }
    const sizeProblem = this.sizeProblem(quantity);
    if (sizeProblem !== null) {
      refuse('SIZE_LIMIT', sizeProblem);
      return;
    }
    const phase = this.phase;
    if (phase === 'HALTED' || phase === 'CLOSED') {
      refuse('WRONG_PHASE', `the book is ${phase}: amends are not accepted (cancels are)`);
      return;
    }
    const [low, high] = this.bandNow(ctx);
    const stop = this.book.amend(orderId, price, quantity, phase === 'CONTINUOUS', this.events, low, high);
    this.flushEvents(ctx, scope, outputs);
    this.endRequest(cmd, scope, ctx);
    this.afterMatching(stop, low, high, ctx, outputs);
  }

  private phaseCommand(command: unknown, ctx: ApplyContext, outputs: OrderBookOutput[]): void {
    const parsed = phaseCommandSchema.safeParse(command);
    if (!parsed.success) {
      outputs.push(this.commandRejected(ctx, 'PHASE', 'INVALID_ORDER', describeIssues(parsed.error)));
      return;
    }
    const cmd = parsed.data;
    if (cmd.instrument !== this.config.instrument) {
      outputs.push(
        this.commandRejected(
          ctx,
          cmd.type,
          'UNKNOWN_INSTRUMENT',
          `this book trades "${this.config.instrument}", not "${cmd.instrument}"`,
        ),
      );
      return;
    }
    const event = { type: cmd.type } as TradingPhaseEvent;
    if (!this.phaseSnapshot.can(event)) {
      outputs.push(
        this.commandRejected(ctx, cmd.type, 'WRONG_PHASE', `${cmd.type} is not allowed in ${this.phase}`),
      );
      return;
    }
    this.sendPhase(event, ctx, outputs);
  }

  private timer(command: unknown, ctx: ApplyContext, outputs: OrderBookOutput[]): void {
    const parsed = timerCommandSchema.safeParse(command);
    if (!parsed.success) {
      outputs.push(this.commandRejected(ctx, 'TIMER', 'INVALID_ORDER', describeIssues(parsed.error)));
      return;
    }
    const pending = this.timers.get(parsed.data.timerId);
    // A timer cancelled after its expiry was already in the log: nothing to do, on every member alike.
    if (pending === undefined) return;
    this.timers.delete(pending.timerId);
    this.sendPhase({ type: pending.eventType } as TradingPhaseEvent, ctx, outputs);
  }

  // --- phase machine ----------------------------------------------------------------------------

  private sendPhase(event: TradingPhaseEvent, ctx: ApplyContext, outputs: OrderBookOutput[]): void {
    const previous = this.phase;
    const [next, actions] = transition(tradingPhaseMachine, this.phaseSnapshot, event);
    this.phaseSnapshot = next;
    for (const action of actions) {
      const params = action.params as Record<string, unknown> | undefined;
      const kind = action.type as string;
      if (kind === 'xstate.raise' && typeof params?.delay === 'number') {
        const timer: PendingTimer = {
          timerId: this.nextTimerId++,
          sendId: String(params.id),
          eventType: (params.event as { type: string }).type,
          dueAt: ctx.timestamp + params.delay,
        };
        this.timers.set(timer.timerId, timer);
        outputs.push({
          type: 'SCHEDULE_TIMER',
          timerId: timer.timerId,
          dueAt: timer.dueAt,
          delayMs: params.delay,
        });
      } else if (kind === 'xstate.cancel') {
        for (const timer of this.timers.values()) {
          if (timer.sendId === params?.sendId) {
            this.timers.delete(timer.timerId);
            outputs.push({ type: 'CANCEL_TIMER', timerId: timer.timerId });
          }
        }
      } else if (kind === 'uncross') {
        this.uncross(ctx, outputs);
      }
    }
    const phase = this.phase;
    if (phase !== previous) {
      outputs.push({
        type: 'PHASE_CHANGED',
        instrument: this.config.instrument,
        phase,
        previous,
        timestamp: ctx.timestamp,
      });
      if (phase === 'PRE_OPEN') this.forgetFinishedRequests();
      if (phase === 'OPENING_AUCTION') this.publishIndicative(ctx, outputs);
    }
  }

  /** The auction's reference price: the last trade, else the configured one. */
  private referencePrice(): number | null {
    return this.window.last ?? this.config.referencePrice;
  }

  private uncross(ctx: ApplyContext, outputs: OrderBookOutput[]): void {
    const result = this.book.uncross(this.referencePrice(), this.events);
    this.flushEvents(ctx, null, outputs);
    if (result !== null) this.window.reset(ctx.timestamp, result.price);
    outputs.push({
      type: 'AUCTION_UNCROSSED',
      instrument: this.config.instrument,
      price: result?.price ?? null,
      volume: result?.volume ?? 0,
      imbalance: result?.imbalance ?? 0,
      timestamp: ctx.timestamp,
    });
    this.publishMarketData(ctx, outputs);
  }

  // --- helpers ----------------------------------------------------------------------------------

  /** Idempotency check. Returns null when the request was answered from the table. */
  private beginRequest(
    cmd: { type: string; account: string; clientOrderId: string },
    ctx: ApplyContext,
    outputs: OrderBookOutput[],
  ): RequestScope | null {
    this.evictRequests(ctx.timestamp);
    const seen = this.dedup.get(dedupKey(cmd.account, cmd.clientOrderId));
    if (seen === undefined)
      return { sessionId: ctx.sessionId, requestId: cmd.clientOrderId, orderId: 0, reports: [] };
    if (sameRequest(seen.request, requestFields(cmd))) {
      for (const r of seen.reports) outputs.push({ ...r, sessionId: ctx.sessionId, duplicate: true });
    } else {
      outputs.push(
        this.report(ctx, null, {
          orderId: 0,
          account: cmd.account,
          clientOrderId: cmd.clientOrderId,
          execType:
            cmd.type === 'NEW_ORDER'
              ? 'REJECTED'
              : cmd.type === 'CANCEL_ORDER'
                ? 'CANCEL_REJECTED'
                : 'AMEND_REJECTED',
          status: cmd.type === 'NEW_ORDER' ? 'REJECTED' : null,
          reason: 'DUPLICATE_CLIENT_ORDER_ID',
          text: `clientOrderId "${cmd.clientOrderId}" was already used by a different request of account "${cmd.account}"; use a new one`,
          requestId: cmd.clientOrderId,
          sessionId: ctx.sessionId,
        }),
      );
    }
    return null;
  }

  private endRequest(
    cmd: { account: string; clientOrderId: string },
    scope: RequestScope,
    ctx: ApplyContext,
  ): void {
    this.dedup.set(dedupKey(cmd.account, cmd.clientOrderId), {
      request: requestFields(cmd),
      orderId: scope.orderId,
      reports: scope.reports,
      timestamp: ctx.timestamp,
    });
  }

  /**
   * Drop idempotency entries older than the window, oldest first. An entry whose order still rests is
   * kept (moved to the back with a fresh time): resends and origClientOrderId lookups must find it.
   */
  private evictRequests(now: number): void {
    const oldest = now - this.config.dedupWindowMs;
    for (const [key, entry] of this.dedup) {
      if (entry.timestamp >= oldest) break;
      this.dedup.delete(key);
      if (entry.orderId !== 0 && this.book.hasOrder(entry.orderId))
        this.dedup.set(key, { ...entry, timestamp: now });
    }
  }

  /** At the start of a new session, forget the requests whose orders are no longer live. */
  private forgetFinishedRequests(): void {
    for (const [key, entry] of this.dedup) {
      if (entry.orderId === 0 || !this.book.hasOrder(entry.orderId)) this.dedup.delete(key);
    }
  }

  /** Find the live order a cancel or amend names; reports UNKNOWN_ORDER and returns 0 if none. */
  private resolveTarget(
    cmd: Omit<TargetedRequest, 'type'>,
    ctx: ApplyContext,
    scope: RequestScope,
    execType: 'CANCEL_REJECTED' | 'AMEND_REJECTED',
    outputs: OrderBookOutput[],
  ): number {
    if (cmd.instrument !== this.config.instrument) {
      outputs.push(
        this.report(ctx, scope, {
          orderId: cmd.orderId ?? 0,
          account: cmd.account,
          clientOrderId: cmd.origClientOrderId ?? '',
          execType,
          status: null,
          reason: 'UNKNOWN_INSTRUMENT',
          text: `instrument "${cmd.instrument}" is not traded here (this book trades "${this.config.instrument}")`,
        }),
      );
      return 0;
    }
    let orderId = cmd.orderId ?? 0;
    if (orderId === 0 && cmd.origClientOrderId !== undefined) {
      orderId = this.dedup.get(dedupKey(cmd.account, cmd.origClientOrderId))?.orderId ?? 0;
    }
    const order = orderId === 0 ? undefined : this.book.getOrder(orderId);
    if (order !== undefined && order.account === cmd.account) return orderId;
    const text =
      cmd.orderId === undefined && cmd.origClientOrderId === undefined
        ? 'name the order with orderId or origClientOrderId'
        : `account "${cmd.account}" has no live order ${cmd.orderId !== undefined ? `with id ${cmd.orderId}` : `with clientOrderId "${cmd.origClientOrderId}"`}; it may be filled, cancelled or never existed`;
    outputs.push(
      this.report(ctx, scope, {
        orderId: cmd.orderId ?? 0,
        account: cmd.account,
        clientOrderId: cmd.origClientOrderId ?? '',
        execType,
        status: null,
        reason:
          cmd.orderId === undefined && cmd.origClientOrderId === undefined
            ? 'INVALID_ORDER'
            : 'UNKNOWN_ORDER',
        text,
      }),
    );
    return 0;
  }

  /** Why a well-formed NEW_ORDER cannot enter the book now, or null if it can. */
  private newOrderProblem(cmd: z.output<typeof newOrderSchema>): [Reason, string] | null {
    const isMarket = cmd.orderType === 'MARKET';
    if (cmd.instrument !== this.config.instrument) {
      return [
        'UNKNOWN_INSTRUMENT',
        `instrument "${cmd.instrument}" is not traded here (this book trades "${this.config.instrument}")`,
      ];
    }
    if (cmd.postOnly && (isMarket || cmd.timeInForce !== 'GTC')) {
      return ['INVALID_ORDER', 'postOnly needs a GTC limit order: drop postOnly or send a GTC limit order'];
    }
    if (isMarket && cmd.price !== undefined) {
      return ['INVALID_ORDER', 'a MARKET order takes no price: leave price out or send a LIMIT order'];
    }
    if (!isMarket && cmd.price === undefined) {
      return ['INVALID_ORDER', 'a LIMIT order needs a price: add price or send orderType MARKET'];
    }
    const priceProblem = isMarket ? null : this.priceProblem(cmd.price!);
    if (priceProblem !== null) return priceProblem;
    const sizeProblem = this.sizeProblem(cmd.quantity);
    if (sizeProblem !== null) return ['SIZE_LIMIT', sizeProblem];
    const phase = this.phase;
    if (phase === 'HALTED' || phase === 'CLOSED') {
      return ['WRONG_PHASE', `the book is ${phase}: new orders are not accepted (cancels are)`];
    }
    if (phase !== 'CONTINUOUS' && (isMarket || cmd.timeInForce !== 'GTC')) {
      return [
        'WRONG_PHASE',
        `the book is in ${phase}: only GTC limit orders are accepted until continuous trading`,
      ];
    }
    return null;
  }

  private priceProblem(price: number): [Reason, string] | null {
    const { tickSize, minPrice, maxPrice } = this.config;
    if (!Number.isSafeInteger(price) || price <= 0 || price % tickSize !== 0) {
      return [
        'BAD_PRICE_TICK',
        `price ${price} is not a positive integer multiple of the tick size ${tickSize}`,
      ];
    }
    if (price < minPrice || price > maxPrice) {
      return ['PRICE_OUT_OF_RANGE', `price ${price} is outside the allowed range ${minPrice}..${maxPrice}`];
    }
    return null;
  }

  private sizeProblem(quantity: number): string | null {
    const { lotSize, minQuantity, maxQuantity } = this.config;
    if (!Number.isSafeInteger(quantity) || quantity <= 0 || quantity % lotSize !== 0) {
      return `quantity ${quantity} is not a positive integer multiple of the lot size ${lotSize}`;
    }
    if (quantity < minQuantity || quantity > maxQuantity) {
      return `quantity ${quantity} is outside the allowed size range ${minQuantity}..${maxQuantity}`;
    }
    return null;
  }

  /** The circuit-breaker band in continuous trading, or (-∞, ∞) when there is none. */
  private bandNow(ctx: ApplyContext): [number, number] {
    const breaker = this.config.circuitBreaker;
    if (breaker === null || this.phase !== 'CONTINUOUS') return [-Infinity, Infinity];
    return this.window.band(ctx.timestamp, breaker.windowMs, breaker.bandTicks) ?? [-Infinity, Infinity];
  }

  private afterMatching(
    stop: MatchStop,
    low: number,
    high: number,
    ctx: ApplyContext,
    outputs: OrderBookOutput[],
  ) {
    if (stop === MatchStop.PRICE_BAND) {
      outputs.push({
        type: 'CIRCUIT_BREAKER_TRIPPED',
        instrument: this.config.instrument,
        low,
        high,
        timestamp: ctx.timestamp,
      });
      this.sendPhase({ type: 'CIRCUIT_BREAKER_TRIPPED' }, ctx, outputs);
    }
    this.publishMarketData(ctx, outputs);
  }

  /** Turn the core's events into outputs; reports about the request's own order go to the requester. */
  private flushEvents(ctx: ApplyContext, scope: RequestScope | null, outputs: OrderBookOutput[]): void {
    const events = this.events;
    let tradeId = 0;
    for (let i = 0; i < events.length; i++) {
      const e = events[i];
      if (e.kind === 'TRADE') {
        tradeId = e.tradeId;
        if (this.config.circuitBreaker !== null) this.window.record(ctx.timestamp, e.price);
        outputs.push({
          type: 'TRADE',
          instrument: this.config.instrument,
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
        this.report(ctx, own ? scope : null, {
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
  }

  /** Build a report; when it answers the request in `scope`, route it to the requester and keep it for resends. */
  private report(
    ctx: ApplyContext,
    scope: RequestScope | null,
    fields: Partial<ExecutionReport> &
      Pick<
        ExecutionReport,
        'orderId' | 'account' | 'clientOrderId' | 'execType' | 'status' | 'reason' | 'text'
      >,
  ): ExecutionReport {
    const report: ExecutionReport = {
      type: 'EXECUTION_REPORT',
      sessionId: scope?.sessionId ?? fields.sessionId ?? 0,
      instrument: this.config.instrument,
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
  }

  /** A request that failed validation: answer with a REJECTED report if we know who sent it. */
  private malformed(
    command: unknown,
    error: z.ZodError,
    ctx: ApplyContext,
    outputs: OrderBookOutput[],
  ): void {
    const c = command as { type: string; account?: unknown; clientOrderId?: unknown };
    const text = `invalid ${c.type}: ${describeIssues(error)}`;
    if (typeof c.account === 'string' && typeof c.clientOrderId === 'string') {
      outputs.push(
        this.report(ctx, null, {
          orderId: 0,
          account: c.account,
          clientOrderId: c.clientOrderId,
          requestId: c.clientOrderId,
          sessionId: ctx.sessionId,
          execType:
            c.type === 'NEW_ORDER'
              ? 'REJECTED'
              : c.type === 'CANCEL_ORDER'
                ? 'CANCEL_REJECTED'
                : 'AMEND_REJECTED',
          status: c.type === 'NEW_ORDER' ? 'REJECTED' : null,
          reason: 'INVALID_ORDER',
          text,
        }),
      );
    } else {
      outputs.push(this.commandRejected(ctx, c.type, 'INVALID_ORDER', text));
    }
  }

  private commandRejected(ctx: ApplyContext, command: string, reason: Reason, text: string): OrderBookOutput {
    return {
      type: 'COMMAND_REJECTED',
      sessionId: ctx.sessionId,
      command,
      reason,
      text,
      timestamp: ctx.timestamp,
    };
  }

  /** TOP_OF_BOOK when the touch changed; DEPTH whenever it or anything below it may have. */
  private publishMarketData(ctx: ApplyContext, outputs: OrderBookOutput[]): void {
    const [bidQty, askQty] = this.book.bestQuantities();
    const top: OrderBookSnapshot['lastTop'] = [this.book.bestBid(), bidQty, this.book.bestAsk(), askQty];
    const last = this.lastTop;
    if (top[0] !== last[0] || top[1] !== last[1] || top[2] !== last[2] || top[3] !== last[3]) {
      this.lastTop = top;
      outputs.push({
        type: 'TOP_OF_BOOK',
        instrument: this.config.instrument,
        bidPrice: top[0],
        bidQty: top[1],
        askPrice: top[2],
        askQty: top[3],
        timestamp: ctx.timestamp,
      });
    }
    if (this.config.depthLevels > 0) {
      const depth = this.book.depth(this.config.depthLevels);
      outputs.push({ type: 'DEPTH', instrument: this.config.instrument, ...depth, timestamp: ctx.timestamp });
    }
    if (this.phase === 'OPENING_AUCTION') this.publishIndicative(ctx, outputs);
  }

  private publishIndicative(ctx: ApplyContext, outputs: OrderBookOutput[]): void {
    const result = this.book.indicativeUncross(this.referencePrice());
    outputs.push({
      type: 'INDICATIVE_UNCROSS',
      instrument: this.config.instrument,
      price: result?.price ?? null,
      volume: result?.volume ?? 0,
      imbalance: result?.imbalance ?? 0,
      timestamp: ctx.timestamp,
    });
  }

  // --- snapshots --------------------------------------------------------------------------------

  toSnapshot(): OrderBookSnapshot {
    return {
      version: 1,
      config: this.config,
      phase: { value: this.phase, context: this.phaseSnapshot.context },
      book: this.book.toSnapshot(),
      nextOrderId: this.nextOrderId,
      nextTimerId: this.nextTimerId,
      timers: [...this.timers.values()],
      dedup: [...this.dedup],
      window: {
        maxQueue: this.window.maxQueue.map(([t, p]) => [t, p]),
        minQueue: this.window.minQueue.map(([t, p]) => [t, p]),
        last: this.window.last,
      },
      lastTop: this.lastTop,
    };
  }

  static fromSnapshot(snapshot: OrderBookSnapshot): OrderBook {
    if (snapshot.version !== 1) {
      throw new RangeError(`order book snapshot version ${snapshot.version} is not supported (expected 1)`);
    }
    const book = new OrderBook(snapshot.config);
    book.book = MatchingBook.fromSnapshot(snapshot.book);
    book.phaseSnapshot = tradingPhaseMachine.resolveState({
      value: snapshot.phase.value,
      context: snapshot.phase.context,
    });
    book.nextOrderId = snapshot.nextOrderId;
    book.nextTimerId = snapshot.nextTimerId;
    for (const timer of snapshot.timers) book.timers.set(timer.timerId, timer);
    for (const [key, entry] of snapshot.dedup) book.dedup.set(key, entry);
    book.window = new PriceWindow(
      snapshot.window.maxQueue.map(([t, p]) => [t, p]),
      snapshot.window.minQueue.map(([t, p]) => [t, p]),
      snapshot.window.last,
    );
    book.lastTop = [...snapshot.lastTop];
    return book;
  }
}
