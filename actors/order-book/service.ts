// The `orders` service: one order book per instrument, hosted as a behaviour actor in the actor runtime
// (actors/actor-runtime). A command is validated at the client edge (zod), routed by instrument to the actor
// `orders/book/<instrument>`, committed to the log, and applied by the book on the shard that owns it.
//
// Why a behaviour and not an XState machine: the book is a mutable price-time structure folded over its
// inputs; wrapping it in XState logic would copy or re-serialise it per order. `npx chorus bench
// orderbook` measures the event-sourced path (`eventSourcedOrdersPerSec`) next to the bare `apply`.
//
// How the book's outputs map to the runtime:
// - SCHEDULE_TIMER / CANCEL_TIMER (auction call period, circuit-breaker halt) become cluster timers keyed
//   by the book's timer id: the expiry is a TIMER_EVENT entry that delivers `{ type: 'TIMER', timerId }`
//   exactly once, across passivation, snapshots and restarts. The book also keeps its pending timers in
//   its own state and ignores an expiry it no longer waits for.
// - The rest is the reply to the session whose command it was, in order. With `replyWith: 'all-outputs'`
//   (the default) that is everything the input produced: execution reports for every session involved,
//   trades, market data, phase changes — right for a gateway that fronts all traffic on one session and
//   fans out. With 'own-reports' it is only what concerns the requester: reports and rejections
//   addressed to its session, plus phase changes and auction results; about 3× cheaper across the
//   worker boundary (see the benchmark). The actor runtime has no egress to other sessions yet, so
//   under 'own-reports' other sessions' fills and market data are only in the book's state.
//   Inputs without a session (a timer expiry) produce no reply; their effect is in the book's state.

import { z } from 'zod';
import { PHASE_COMMANDS, type PhaseCommand } from '../../machines/trading-phase.ts';
import {
  type ActorBehaviour,
  type BehaviourContext,
  CommandError,
  defineService,
} from '../actor-runtime/service.ts';
import {
  amendOrderSchema,
  cancelOrderSchema,
  newOrderSchema,
  type OrderBookConfigInput,
  orderBookConfigSchema,
  phaseCommandSchema,
} from './commands.ts';
import { OrderBook, type OrderBookSnapshot } from './order-book.ts';
import type { OrderBookOutput } from './outputs.ts';

/** The actor type of a book in the orders service: addresses are `orders/book/<instrument>`. */
export const BOOK_ACTOR_TYPE = 'book';

/** The cluster-timer key of the book's timer `timerId`. */
const timerKey = (timerId: number): string => `phase-timer-${timerId}`;

/** What a book's reply carries (see the file comment). */
export type ReplyWith = 'all-outputs' | 'own-reports';

/** True for the outputs an 'own-reports' reply keeps. */
const concerns = (output: OrderBookOutput, sessionId: number): boolean =>
  output.type === 'EXECUTION_REPORT' || output.type === 'COMMAND_REJECTED'
    ? output.sessionId === sessionId
    : output.type === 'PHASE_CHANGED' || output.type === 'AUCTION_UNCROSSED';

/** An order book as a behaviour actor: `OrderBook.apply` with its timer requests sent to cluster timers. */
export class OrderBookActor implements ActorBehaviour {
  constructor(
    readonly book: OrderBook,
    readonly replyWith: ReplyWith = 'all-outputs',
  ) {}

  apply(event: { type: string }, ctx: BehaviourContext): void {
    const outputs = this.book.apply(event, ctx);
    const sessionId = ctx.sessionId;
    const all = this.replyWith === 'all-outputs';
    const published: OrderBookOutput[] = [];
    for (const output of outputs) {
      if (output.type === 'SCHEDULE_TIMER') {
        ctx.schedule(timerKey(output.timerId), output.delayMs, { type: 'TIMER', timerId: output.timerId });
      } else if (output.type === 'CANCEL_TIMER') {
        ctx.cancel(timerKey(output.timerId));
      } else if (all || concerns(output, sessionId)) {
        published.push(output);
      }
    }
    if (sessionId !== 0) ctx.reply(published);
  }

  snapshot(): OrderBookSnapshot {
    return this.book.toSnapshot();
  }
}

/** A book's settings, without the instrument (the key it is listed under). */
export type InstrumentConfig = Omit<OrderBookConfigInput, 'instrument'>;

export interface OrdersServiceOptions {
  /** The service name (part of every address). Default 'orders'. */
  readonly name?: string;
  /** The instruments traded, each with its book's settings (tick, lot, auction and halt durations...). */
  readonly instruments: Readonly<Record<string, InstrumentConfig>>;
  /** What a command's reply carries: 'all-outputs' (default) or 'own-reports' (see the file comment). */
  readonly replyWith?: ReplyWith;
}

const describeIssues = (error: z.ZodError): string =>
  error.issues.map((i) => `${i.path.length > 0 ? i.path.join('.') : 'value'}: ${i.message}`).join('; ');

/**
 * The orders service. Commands: NEW_ORDER, CANCEL_ORDER, AMEND_ORDER and the phase commands
 * (OPEN_AUCTION, UNCROSS, HALT, RESUME, CLOSE, REOPEN), each naming its `instrument`; an instrument not
 * listed in `instruments` is refused at the edge. Throws TypeError naming a bad instrument setting.
 */
export const defineOrdersService = (options: OrdersServiceOptions) => {
  const names = Object.keys(options.instruments);
  const replyWith = options.replyWith ?? 'all-outputs';
  if (replyWith !== 'all-outputs' && replyWith !== 'own-reports') {
    throw new TypeError(
      `orders service: replyWith must be 'all-outputs' or 'own-reports', got ${JSON.stringify(replyWith)}`,
    );
  }
  if (names.length === 0) {
    throw new TypeError('orders service: list at least one instrument in `instruments`');
  }
  const configs = new Map<string, OrderBookConfigInput>();
  for (const instrument of names) {
    const config = { ...options.instruments[instrument], instrument };
    const parsed = orderBookConfigSchema.safeParse(config);
    if (!parsed.success) {
      throw new TypeError(
        `orders service: instrument '${instrument}' has invalid settings — ${describeIssues(parsed.error)}`,
      );
    }
    configs.set(instrument, config);
  }
  const instrument = z.enum(names as [string, ...string[]]);
  const phaseCommands = Object.fromEntries(
    PHASE_COMMANDS.map((type) => [type, phaseCommandSchema.extend({ type: z.literal(type), instrument })]),
  ) as Record<PhaseCommand, z.ZodObject<{ type: z.ZodLiteral<PhaseCommand>; instrument: typeof instrument }>>;

  return defineService({
    name: options.name ?? 'orders',
    actors: {
      [BOOK_ACTOR_TYPE]: {
        behaviour: {
          create(actorId: string): OrderBookActor {
            const config = configs.get(actorId);
            // Only reachable through a hand-made log entry: the edge refuses unknown instruments.
            if (!config) throw new CommandError(`orders service: no instrument '${actorId}' is configured`);
            return new OrderBookActor(new OrderBook(config), replyWith);
          },
          restore(data: unknown): OrderBookActor {
            return new OrderBookActor(OrderBook.fromSnapshot(data as OrderBookSnapshot), replyWith);
          },
        },
      },
    },
    commands: {
      NEW_ORDER: newOrderSchema.extend({ instrument }),
      CANCEL_ORDER: cancelOrderSchema.extend({ instrument }),
      AMEND_ORDER: amendOrderSchema.extend({ instrument }),
      ...phaseCommands,
    },
    route: (command) => ({ actorType: BOOK_ACTOR_TYPE, actorId: command.instrument, event: command }),
  });
};

export type OrdersService = ReturnType<typeof defineOrdersService>;
