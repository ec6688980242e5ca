// What the order book accepts: its configuration and its commands (zod schemas, checked at the client
// edge and again when applied), where a command sits in the log, and why a well-formed order may still
// not enter the book (price, size, instrument, phase).

import { z } from 'zod';
import { PHASE_COMMANDS, type TradingPhase } from '../../machines/trading-phase.ts';
import type { Reason } from './types.ts';

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

export const describeIssues = (error: z.ZodError): string =>
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

/** Why a price cannot be used in this book, or null if it can. */
export const priceProblem = (config: OrderBookConfig, price: number): [Reason, string] | null => {
  const { tickSize, minPrice, maxPrice } = config;
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
};

/** Why a quantity cannot be used in this book, or null if it can. */
export const sizeProblem = (config: OrderBookConfig, quantity: number): string | null => {
  const { lotSize, minQuantity, maxQuantity } = config;
  if (!Number.isSafeInteger(quantity) || quantity <= 0 || quantity % lotSize !== 0) {
    return `quantity ${quantity} is not a positive integer multiple of the lot size ${lotSize}`;
  }
  if (quantity < minQuantity || quantity > maxQuantity) {
    return `quantity ${quantity} is outside the allowed size range ${minQuantity}..${maxQuantity}`;
  }
  return null;
};

/** Why a well-formed NEW_ORDER cannot enter the book in `phase`, or null if it can. */
export const newOrderProblem = (
  config: OrderBookConfig,
  phase: TradingPhase,
  cmd: z.output<typeof newOrderSchema>,
): [Reason, string] | null => {
  const isMarket = cmd.orderType === 'MARKET';
  if (cmd.instrument !== config.instrument) {
    return [
      'UNKNOWN_INSTRUMENT',
      `instrument "${cmd.instrument}" is not traded here (this book trades "${config.instrument}")`,
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
  const badPrice = isMarket ? null : priceProblem(config, cmd.price!);
  if (badPrice !== null) return badPrice;
  const badSize = sizeProblem(config, cmd.quantity);
  if (badSize !== null) return ['SIZE_LIMIT', badSize];
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
};
