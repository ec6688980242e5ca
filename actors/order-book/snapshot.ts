// The order-book actor's snapshot: its whole state as plain, msgpack-able data (order-book.ts writes and
// reads it).

import type { TradingPhase, TradingPhaseContext } from '../../machines/trading-phase.ts';
import type { OrderBookConfig } from './commands.ts';
import type { TopOfBook } from './outputs.ts';
import type { Sample } from './price-window.ts';
import type { DedupEntry } from './request-ledger.ts';
import type { BookSnapshot } from './types.ts';

export interface PendingTimer {
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
  readonly lastTop: TopOfBook;
}
