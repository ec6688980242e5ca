// The order-book actor for one instrument: the trading-phase statechart bound to the matching core.
//
// It is a deterministic behaviour, independent of the actor runtime: `apply(command, ctx)` takes one
// committed input (a client command, an operator phase command or a cluster-timer expiry) with the
// log entry's cluster timestamp and index, mutates the book and returns the outputs: execution
// reports to sessions, trades, market data, phase changes and timer requests. The runtime hosts it
// by calling `apply` for each committed entry, `toSnapshot` when the cluster snapshots, and
// `OrderBook.fromSnapshot` on recovery; replaying the same inputs gives the same outputs.
//
// Its parts: what it accepts (commands.ts), what it says (outputs.ts), its idempotency table
// (request-ledger.ts), the circuit breaker's price window (price-window.ts) and the matching core
// (matching.ts); its snapshot's shape is in snapshot.ts. This file binds them to the trading-phase statechart.
//
// Decisions:
// - The phase machine runs through XState's pure `transition()`: its delayed events (`after`) come
//   back as actions, which become SCHEDULE_TIMER / CANCEL_TIMER outputs; the expiry arrives later as
//   a TIMER command through the log. Pending timers are part of this state and of its snapshot.
//   Phase events are rare, so the pure-transition cost stays off the per-order path.
// - Order ids come from a counter in state (a fold over the log), trade ids from the core.
// - Idempotency by the account's `clientOrderId` (see request-ledger.ts).
// - Circuit breaker: a trade may not print more than `bandTicks` away from any trade price in the
//   last `windowMs` of cluster time (the last trade price counts even when older). Matching stops at
//   the first price outside the band, the remainder of the order rests (GTC) or expires (IOC/market),
//   and the book halts; it resumes after `haltMs` through a re-opening auction that uncrosses it.
// - In PRE_OPEN and OPENING_AUCTION only GTC limit orders are accepted (they rest without matching);
//   in HALTED and CLOSED only cancels. Self-trade prevention applies in continuous matching only.

import { initialTransition, type SnapshotFrom, transition } from 'xstate';
import {
  PHASE_COMMANDS,
  type TradingPhase,
  type TradingPhaseEvent,
  tradingPhaseMachine,
} from '../../machines/trading-phase.ts';
import {
  type ApplyContext,
  amendOrderSchema,
  cancelOrderSchema,
  describeIssues,
  newOrderProblem,
  newOrderSchema,
  type OrderBookConfig,
  type OrderBookConfigInput,
  orderBookConfigSchema,
  phaseCommandSchema,
  priceProblem,
  sizeProblem,
  timerCommandSchema,
} from './commands.ts';
import { MatchingBook } from './matching.ts';
import {
  commandRejected,
  eventOutputs,
  executionReport,
  malformedRequest,
  marketData,
  type OrderBookOutput,
  type RequestScope,
} from './outputs.ts';
import { PriceWindow } from './price-window.ts';
import { RequestLedger } from './request-ledger.ts';
import type { OrderBookSnapshot, PendingTimer } from './snapshot.ts';
import { type BookEvent, MatchStop, type Reason } from './types.ts';

export type { OrderBookSnapshot } from './snapshot.ts';

type PhaseSnapshot = SnapshotFrom<typeof tradingPhaseMachine>;

export class OrderBook {
  readonly config: OrderBookConfig;
  private book: MatchingBook;
  private phaseSnapshot: PhaseSnapshot;
  private nextOrderId = 1;
  private nextTimerId = 1;
  private readonly timers = new Map<number, PendingTimer>();
  /** Idempotency table (see request-ledger.ts). */
  private readonly requests: RequestLedger;
  private window = new PriceWindow();
  private lastTop: OrderBookSnapshot['lastTop'] = [null, 0, null, 0];
  /** Scratch array the core pushes events onto, reused across commands. */
  private readonly events: BookEvent[] = [];
  /** Trades feed the circuit breaker's window when the book has one. */
  private readonly recordTrade: ((timestamp: number, price: number) => void) | null;

  constructor(config: OrderBookConfigInput) {
    const parsed = orderBookConfigSchema.safeParse(config);
    if (!parsed.success) throw new TypeError(`invalid order book config: ${describeIssues(parsed.error)}`);
    this.config = parsed.data;
    this.book = new MatchingBook();
    this.requests = new RequestLedger(this.config.instrument, this.config.dedupWindowMs);
    this.recordTrade =
      this.config.circuitBreaker === null ? null : (timestamp, price) => this.window.record(timestamp, price);
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
            commandRejected(
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
      outputs.push(malformedRequest(this.config.instrument, command, parsed.error, ctx));
      return;
    }
    const cmd = parsed.data;
    const scope = this.requests.begin(cmd, this.book, ctx, outputs);
    if (scope === null) return;
    const problem = newOrderProblem(this.config, this.phase, cmd);
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
      this.requests.end(cmd, scope, ctx);
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
    this.requests.end(cmd, scope, ctx);
    this.afterMatching(stop, low, high, ctx, outputs);
  }

  private cancelOrder(command: unknown, ctx: ApplyContext, outputs: OrderBookOutput[]): void {
    const target = this.requests.openTargeted(
      cancelOrderSchema,
      command,
      'CANCEL_REJECTED',
      this.book,
      ctx,
      outputs,
    );
    if (target === null) return;
    const { cmd, scope, orderId } = target;
    this.book.cancel(orderId, 'CLIENT_CANCEL', this.events);
    this.flushEvents(ctx, scope, outputs);
    this.requests.end(cmd, scope, ctx);
    this.publishMarketData(ctx, outputs);
  }

  private amendOrder(command: unknown, ctx: ApplyContext, outputs: OrderBookOutput[]): void {
    const target = this.requests.openTargeted(
      amendOrderSchema,
      command,
      'AMEND_REJECTED',
      this.book,
      ctx,
      outputs,
    );
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
      this.requests.end(cmd, scope, ctx);
    };
    if (cmd.price === undefined && cmd.quantity === undefined) {
      refuse('INVALID_ORDER', 'an amend needs a new price, a new quantity or both');
      return;
    }
    const price = cmd.price ?? order.price;
    const quantity = cmd.quantity ?? order.openQty;
    const badPrice = priceProblem(this.config, price);
    if (badPrice !== null) {
      refuse(badPrice[0], badPrice[1]);
      return;
    }
    const badSize = sizeProblem(this.config, quantity);
    if (badSize !== null) {
      refuse('SIZE_LIMIT', badSize);
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
    this.requests.end(cmd, scope, ctx);
    this.afterMatching(stop, low, high, ctx, outputs);
  }

  private phaseCommand(command: unknown, ctx: ApplyContext, outputs: OrderBookOutput[]): void {
    const parsed = phaseCommandSchema.safeParse(command);
    if (!parsed.success) {
      outputs.push(commandRejected(ctx, 'PHASE', 'INVALID_ORDER', describeIssues(parsed.error)));
      return;
    }
    const cmd = parsed.data;
    if (cmd.instrument !== this.config.instrument) {
      outputs.push(
        commandRejected(
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
        commandRejected(ctx, cmd.type, 'WRONG_PHASE', `${cmd.type} is not allowed in ${this.phase}`),
      );
      return;
    }
    this.sendPhase(event, ctx, outputs);
  }

  private timer(command: unknown, ctx: ApplyContext, outputs: OrderBookOutput[]): void {
    const parsed = timerCommandSchema.safeParse(command);
    if (!parsed.success) {
      outputs.push(commandRejected(ctx, 'TIMER', 'INVALID_ORDER', describeIssues(parsed.error)));
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
      if (phase === 'PRE_OPEN') this.requests.forgetFinished(this.book);
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
    eventOutputs(this.events, this.config.instrument, ctx, scope, this.recordTrade, outputs);
  }

  private report(
    ctx: ApplyContext,
    scope: RequestScope | null,
    fields: Parameters<typeof executionReport>[3],
  ): OrderBookOutput {
    return executionReport(this.config.instrument, ctx, scope, fields);
  }

  /** TOP_OF_BOOK when the touch changed; DEPTH whenever it or anything below it may have. */
  private publishMarketData(ctx: ApplyContext, outputs: OrderBookOutput[]): void {
    this.lastTop = marketData(this.book, this.config, this.lastTop, ctx, outputs);
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
      dedup: this.requests.rows(),
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
    book.requests.restore(snapshot.dedup);
    book.window = new PriceWindow(
      snapshot.window.maxQueue.map(([t, p]) => [t, p]),
      snapshot.window.minQueue.map(([t, p]) => [t, p]),
      snapshot.window.last,
    );
    book.lastTop = [...snapshot.lastTop];
    return book;
  }
}
