// The trading phases of one instrument's order book, as a statechart.
//
//   PRE_OPEN ──OPEN_AUCTION──▶ OPENING_AUCTION ──UNCROSS / after AUCTION_DURATION──▶ CONTINUOUS
//      ▲                             ▲                                                   │
//      │                             └──RESUME / after HALT_DURATION (breaker only)── HALTED ◀─┘
//   REOPEN                                                   CIRCUIT_BREAKER_TRIPPED / HALT
//      │
//   CLOSED ◀──CLOSE── (every other phase)
//
// - PRE_OPEN: orders are accepted and rest; nothing matches.
// - OPENING_AUCTION: the call period of an auction (the opening one, or the re-opening after a halt).
//   Orders rest without matching; leaving it runs the `uncross` action (one price, most volume).
// - CONTINUOUS: price-time priority matching.
// - HALTED: a circuit breaker tripped (or an operator halted trading). Only cancels are accepted.
//   A breaker halt resumes by itself after HALT_DURATION; a manual halt waits for RESUME.
// - CLOSED: nothing trades; REOPEN starts the next session in PRE_OPEN.
//
// The machine is pure: `uncross` is a named action that the order-book actor performs (tests and the
// actor swap implementations with `provide`), and the two delays are cluster timers, so a replay on
// any member takes exactly the same path.

import { assign, setup } from 'xstate';

export const TRADING_PHASES = ['PRE_OPEN', 'OPENING_AUCTION', 'CONTINUOUS', 'HALTED', 'CLOSED'] as const;
export type TradingPhase = (typeof TRADING_PHASES)[number];

export type HaltReason = 'CIRCUIT_BREAKER' | 'MANUAL';

export interface TradingPhaseContext {
  /** How long an auction call period lasts before it uncrosses by itself, in ms of cluster time. */
  readonly auctionMs: number;
  /** How long a circuit-breaker halt lasts before the re-opening auction starts, in ms. */
  readonly haltMs: number;
  /** Why the book is (or was last) halted. */
  readonly haltReason: HaltReason | null;
}

export type TradingPhaseInput = Partial<Pick<TradingPhaseContext, 'auctionMs' | 'haltMs'>>;

export type TradingPhaseEvent =
  | { type: 'OPEN_AUCTION' }
  | { type: 'UNCROSS' }
  | { type: 'CIRCUIT_BREAKER_TRIPPED' }
  | { type: 'HALT' }
  | { type: 'RESUME' }
  | { type: 'CLOSE' }
  | { type: 'REOPEN' };

/** The events a client or operator may send (the breaker trips from inside the book). */
export const PHASE_COMMANDS = ['OPEN_AUCTION', 'UNCROSS', 'HALT', 'RESUME', 'CLOSE', 'REOPEN'] as const;
export type PhaseCommand = (typeof PHASE_COMMANDS)[number];

export const DEFAULT_AUCTION_MS = 60_000;
export const DEFAULT_HALT_MS = 300_000;

export const tradingPhaseMachine = setup({
  types: {
    context: {} as TradingPhaseContext,
    events: {} as TradingPhaseEvent,
    input: {} as TradingPhaseInput,
  },
  delays: {
    AUCTION_DURATION: ({ context }) => context.auctionMs,
    HALT_DURATION: ({ context }) => context.haltMs,
  },
  guards: {
    haltedByCircuitBreaker: ({ context }) => context.haltReason === 'CIRCUIT_BREAKER',
  },
  actions: {
    /** Execute the auction at its single price. The order-book actor performs it. */
    uncross: () => {},
    recordBreakerHalt: assign({ haltReason: 'CIRCUIT_BREAKER' as const }),
    recordManualHalt: assign({ haltReason: 'MANUAL' as const }),
  },
}).createMachine({
  id: 'tradingPhase',
  initial: 'PRE_OPEN',
  context: ({ input }) => ({
    auctionMs: input?.auctionMs ?? DEFAULT_AUCTION_MS,
    haltMs: input?.haltMs ?? DEFAULT_HALT_MS,
    haltReason: null,
  }),
  states: {
    PRE_OPEN: {
      on: { OPEN_AUCTION: { target: 'OPENING_AUCTION' }, CLOSE: { target: 'CLOSED' } },
    },
    OPENING_AUCTION: {
      after: { AUCTION_DURATION: { target: 'CONTINUOUS', actions: 'uncross' } },
      on: { UNCROSS: { target: 'CONTINUOUS', actions: 'uncross' }, CLOSE: { target: 'CLOSED' } },
    },
    CONTINUOUS: {
      on: {
        CIRCUIT_BREAKER_TRIPPED: { target: 'HALTED', actions: 'recordBreakerHalt' },
        HALT: { target: 'HALTED', actions: 'recordManualHalt' },
        CLOSE: { target: 'CLOSED' },
      },
    },
    HALTED: {
      after: { HALT_DURATION: { guard: 'haltedByCircuitBreaker', target: 'OPENING_AUCTION' } },
      on: { RESUME: { target: 'OPENING_AUCTION' }, CLOSE: { target: 'CLOSED' } },
    },
    CLOSED: {
      on: { REOPEN: { target: 'PRE_OPEN' } },
    },
  },
});

export type TradingPhaseMachine = typeof tradingPhaseMachine;
