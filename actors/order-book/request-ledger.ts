// The order book's idempotency table: every request (new, cancel, amend) carries the account's
// `clientOrderId`; a resend with the same content gets the original reports again (marked `duplicate`),
// a different request reusing the id is refused. Answers of finished orders are kept for `dedupWindowMs`
// of cluster time (and dropped at REOPEN); those of resting orders as long as the order rests. It also
// finds the live order a cancel or amend names, by order id or by the clientOrderId it was sent with.

import type { z } from 'zod';
import type { ApplyContext } from './commands.ts';
import type { MatchingBook } from './matching.ts';
import {
  type ExecutionReport,
  executionReport,
  malformedRequest,
  type OrderBookOutput,
  type RequestScope,
  rejectedExecType,
} from './outputs.ts';
import type { Reason } from './types.ts';

/** A request's fields (all primitives), without the ones left undefined. */
type RequestFields = Record<string, string | number | boolean>;

export interface DedupEntry {
  /** The validated request, to tell a resend from a different request reusing the id. */
  readonly request: RequestFields;
  /** The order the request created or acted on (0 if refused before it had one). */
  readonly orderId: number;
  readonly reports: ExecutionReport[];
  /** Cluster time it was recorded (or last found still live), for eviction. */
  readonly timestamp: number;
}

/** A request aimed at a resting order, by its order id or its client order id (cancel, amend). */
export interface TargetedRequest {
  type: string;
  instrument: string;
  account: string;
  clientOrderId: string;
  orderId?: number;
  origClientOrderId?: string;
}

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

export class RequestLedger {
  /**
   * (account, clientOrderId) → the request and its answer, in order of last touch. Entries older than
   * the window are dropped unless their order is still live.
   */
  private readonly entries = new Map<string, DedupEntry>();

  constructor(
    private readonly instrument: string,
    private readonly dedupWindowMs: number,
  ) {}

  /** Idempotency check. Returns null when the request was answered from the table. */
  begin(
    cmd: { type: string; account: string; clientOrderId: string },
    book: MatchingBook,
    ctx: ApplyContext,
    outputs: OrderBookOutput[],
  ): RequestScope | null {
    this.evict(ctx.timestamp, book);
    const seen = this.entries.get(dedupKey(cmd.account, cmd.clientOrderId));
    if (seen === undefined)
      return { sessionId: ctx.sessionId, requestId: cmd.clientOrderId, orderId: 0, reports: [] };
    if (sameRequest(seen.request, requestFields(cmd))) {
      for (const r of seen.reports) outputs.push({ ...r, sessionId: ctx.sessionId, duplicate: true });
    } else {
      outputs.push(
        executionReport(this.instrument, ctx, null, {
          orderId: 0,
          account: cmd.account,
          clientOrderId: cmd.clientOrderId,
          execType: rejectedExecType(cmd.type),
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

  /** Keep the request's answer for its resends. */
  end(cmd: { account: string; clientOrderId: string }, scope: RequestScope, ctx: ApplyContext): void {
    this.entries.set(dedupKey(cmd.account, cmd.clientOrderId), {
      request: requestFields(cmd),
      orderId: scope.orderId,
      reports: scope.reports,
      timestamp: ctx.timestamp,
    });
  }

  /**
   * Drop entries older than the window, oldest first. An entry whose order still rests is kept (moved to
   * the back with a fresh time): resends and origClientOrderId lookups must find it.
   */
  private evict(now: number, book: MatchingBook): void {
    const oldest = now - this.dedupWindowMs;
    for (const [key, entry] of this.entries) {
      if (entry.timestamp >= oldest) break;
      this.entries.delete(key);
      if (entry.orderId !== 0 && book.hasOrder(entry.orderId))
        this.entries.set(key, { ...entry, timestamp: now });
    }
  }

  /** At the start of a new session, forget the requests whose orders are no longer live. */
  forgetFinished(book: MatchingBook): void {
    for (const [key, entry] of this.entries) {
      if (entry.orderId === 0 || !book.hasOrder(entry.orderId)) this.entries.delete(key);
    }
  }

  /**
   * The common start of a request aimed at a resting order (cancel, amend): validate it, check for a
   * resend, find the order. Null when the request was answered already (malformed, duplicate, no order).
   */
  openTargeted<T extends z.ZodType<TargetedRequest>>(
    schema: T,
    command: unknown,
    execType: 'CANCEL_REJECTED' | 'AMEND_REJECTED',
    book: MatchingBook,
    ctx: ApplyContext,
    outputs: OrderBookOutput[],
  ): { cmd: z.output<T>; scope: RequestScope; orderId: number } | null {
    const parsed = schema.safeParse(command);
    if (!parsed.success) {
      outputs.push(malformedRequest(this.instrument, command, parsed.error, ctx));
      return null;
    }
    const cmd = parsed.data;
    const scope = this.begin(cmd, book, ctx, outputs);
    if (scope === null) return null;
    const orderId = this.resolveTarget(cmd, book, ctx, scope, execType, outputs);
    if (orderId === 0) {
      this.end(cmd, scope, ctx);
      return null;
    }
    scope.orderId = orderId;
    return { cmd, scope, orderId };
  }

  /** Find the live order a cancel or amend names; reports UNKNOWN_ORDER and returns 0 if none. */
  private resolveTarget(
    cmd: Omit<TargetedRequest, 'type'>,
    book: MatchingBook,
    ctx: ApplyContext,
    scope: RequestScope,
    execType: 'CANCEL_REJECTED' | 'AMEND_REJECTED',
    outputs: OrderBookOutput[],
  ): number {
    const refuse = (reason: Reason, text: string): number => {
      outputs.push(
        executionReport(this.instrument, ctx, scope, {
          orderId: cmd.orderId ?? 0,
          account: cmd.account,
          clientOrderId: cmd.origClientOrderId ?? '',
          execType,
          status: null,
          reason,
          text,
        }),
      );
      return 0;
    };
    if (cmd.instrument !== this.instrument) {
      return refuse(
        'UNKNOWN_INSTRUMENT',
        `instrument "${cmd.instrument}" is not traded here (this book trades "${this.instrument}")`,
      );
    }
    let orderId = cmd.orderId ?? 0;
    if (orderId === 0 && cmd.origClientOrderId !== undefined) {
      orderId = this.entries.get(dedupKey(cmd.account, cmd.origClientOrderId))?.orderId ?? 0;
    }
    const order = orderId === 0 ? undefined : book.getOrder(orderId);
    if (order !== undefined && order.account === cmd.account) return orderId;
    if (cmd.orderId === undefined && cmd.origClientOrderId === undefined) {
      return refuse('INVALID_ORDER', 'name the order with orderId or origClientOrderId');
    }
    return refuse(
      'UNKNOWN_ORDER',
      `account "${cmd.account}" has no live order ${cmd.orderId !== undefined ? `with id ${cmd.orderId}` : `with clientOrderId "${cmd.origClientOrderId}"`}; it may be filled, cancelled or never existed`,
    );
  }

  /** The table in its eviction order (oldest first), for the book's snapshot. */
  rows(): [key: string, entry: DedupEntry][] {
    return [...this.entries];
  }

  /** Fill an empty ledger from a snapshot's rows. */
  restore(rows: readonly (readonly [string, DedupEntry])[]): void {
    for (const [key, entry] of rows) this.entries.set(key, entry);
  }
}
