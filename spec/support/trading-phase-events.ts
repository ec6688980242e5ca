// Every event the trading-phase machine can receive, including its two delayed (cluster-timer) events,
// for the model-based specs of the machine and of the order book that drives it.

import type { TradingPhaseEvent } from '../../machines/trading-phase.ts';

export const AFTER_AUCTION = 'xstate.after.AUCTION_DURATION.tradingPhase.OPENING_AUCTION';
export const AFTER_HALT = 'xstate.after.HALT_DURATION.tradingPhase.HALTED';

export const ALL_PHASE_EVENTS = [
  'OPEN_AUCTION',
  'UNCROSS',
  'CIRCUIT_BREAKER_TRIPPED',
  'HALT',
  'RESUME',
  'CLOSE',
  'REOPEN',
  AFTER_AUCTION,
  AFTER_HALT,
].map((type) => ({ type })) as TradingPhaseEvent[];
