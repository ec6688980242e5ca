// The orders service used by the order-book runtime specs (pool workers load it through `services`), and
// a seeded generator of realistic order flow: new orders of every kind, cancels, amends, phase commands,
// client resends (same clientOrderId) and transport retries (same correlation id), and idle periods.

import { defineOrdersService } from '../../../actors/order-book/service.ts';
import { Random } from '../../../machines/random.ts';
import { PHASE_COMMANDS } from '../../../machines/trading-phase.ts';

export const INSTRUMENTS = {
  /** A circuit breaker that trips inside the generated price range: halts, halt timers, re-opening auctions. */
  ACME: {
    auctionMs: 4_000,
    haltMs: 15_000,
    maxQuantity: 50,
    referencePrice: 1_000,
    circuitBreaker: { bandTicks: 5, windowMs: 10_000 },
    dedupWindowMs: 60_000,
  },
  /** No breaker, a coarser tick. */
  GLOBX: { auctionMs: 6_000, tickSize: 5, maxQuantity: 50, referencePrice: 2_000, depthLevels: 3 },
} as const;

export const MIDS: Record<keyof typeof INSTRUMENTS, number> = { ACME: 1_000, GLOBX: 2_000 };

export const ordersService = defineOrdersService({ instruments: INSTRUMENTS });
export const services = [ordersService];

export const bookAddress = (instrument: string): string => `orders/book/${instrument}`;

export type FlowStep =
  | {
      readonly kind: 'command';
      readonly command: Record<string, unknown>;
      readonly sessionId: number;
      readonly correlationId: number;
      readonly advanceMs: number;
    }
  | { readonly kind: 'idle'; readonly ms: number };

const ACCOUNTS = ['acct-a', 'acct-b', 'acct-c', 'acct-d'];
const SESSIONS = [11, 12, 13];

/** A seeded stream of order-flow steps; the same seed gives the same steps. */
export class OrderFlow {
  private readonly rng: Random;
  private readonly correlation = new Map<number, number>();
  /** Every command sent, for cancels, amends and resends. */
  private readonly sent: { command: Record<string, unknown>; sessionId: number; correlationId: number }[] =
    [];
  private orders = 0;
  private opened = false;

  constructor(seed: number) {
    this.rng = new Random(seed);
  }

  next(): FlowStep {
    const rng = this.rng;
    if (!this.opened) {
      // Both books start their opening auction straight away.
      this.opened = this.sent.length === 1;
      const instrument = this.sent.length === 0 ? 'ACME' : 'GLOBX';
      return this.command({ type: 'OPEN_AUCTION', instrument }, rng.pick(SESSIONS));
    }
    const roll = rng.float();
    if (roll < 0.08) return { kind: 'idle', ms: rng.int(500, 20_000) };
    if (roll < 0.1) {
      // A transport retry: the session's last command again under the same correlation id (C2).
      const last = this.sent[this.sent.length - 1];
      const step: FlowStep = { kind: 'command', ...last, advanceMs: rng.int(1, 50) };
      return step;
    }
    if (roll < 0.13) {
      // A client resend: an earlier request again, with a new correlation id (book-level idempotency).
      const earlier = rng.pick(this.sent);
      return this.command(earlier.command, earlier.sessionId);
    }
    const instrument = rng.chance(0.6) ? 'ACME' : 'GLOBX';
    if (roll < 0.17) {
      const type = rng.chance(0.5)
        ? rng.pick(['OPEN_AUCTION', 'UNCROSS', 'REOPEN'])
        : rng.pick(PHASE_COMMANDS);
      return this.command({ type, instrument }, rng.pick(SESSIONS));
    }
    const account = rng.pick(ACCOUNTS);
    const clientOrderId = `${account}-${++this.orders}`;
    const previous = this.sent.filter(
      (s) => s.command.type === 'NEW_ORDER' && s.command.instrument === instrument,
    );
    if (roll < 0.32 && previous.length > 0) {
      const target = rng.pick(previous.slice(-30)).command;
      return this.command(
        {
          type: 'CANCEL_ORDER',
          instrument,
          account: target.account,
          clientOrderId,
          origClientOrderId: target.clientOrderId,
        },
        rng.pick(SESSIONS),
      );
    }
    const tick = instrument === 'GLOBX' ? 5 : 1;
    const mid = MIDS[instrument];
    if (roll < 0.42 && previous.length > 0) {
      const target = rng.pick(previous.slice(-30)).command;
      const amend: Record<string, unknown> = {
        type: 'AMEND_ORDER',
        instrument,
        account: target.account,
        clientOrderId,
        origClientOrderId: target.clientOrderId,
      };
      if (rng.chance(0.6)) amend.price = mid + rng.int(-6, 6) * tick;
      if (rng.chance(0.6)) amend.quantity = rng.int(1, 30);
      return this.command(amend, rng.pick(SESSIONS));
    }
    const market = rng.chance(0.05);
    const order: Record<string, unknown> = {
      type: 'NEW_ORDER',
      instrument,
      account,
      clientOrderId,
      side: rng.chance(0.5) ? 'BUY' : 'SELL',
      orderType: market ? 'MARKET' : 'LIMIT',
      quantity: rng.chance(0.02) ? 60 : rng.int(1, 20), // 60 is over the size limit: SIZE_LIMIT
      timeInForce: market ? 'IOC' : rng.pick(['GTC', 'GTC', 'GTC', 'GTC', 'IOC', 'FOK']),
    };
    if (!market) order.price = mid + rng.int(-7, 7) * tick;
    if (!market && order.timeInForce === 'GTC' && rng.chance(0.05)) order.postOnly = true;
    return this.command(order, rng.pick(SESSIONS));
  }

  private command(command: Record<string, unknown>, sessionId: number): FlowStep {
    const correlationId = (this.correlation.get(sessionId) ?? 0) + 1;
    this.correlation.set(sessionId, correlationId);
    this.sent.push({ command, sessionId, correlationId });
    return { kind: 'command', command, sessionId, correlationId, advanceMs: this.rng.int(1, 300) };
  }
}
