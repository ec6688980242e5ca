// Exactly-once commands per client session (C2, C3): the one de-duplication table every service on the
// cluster uses (the KV service and the actor runtime's shards alike).
//
// A client numbers its commands (correlation ids) and sends with each one the lowest correlation id it is
// still waiting for (`lowestAwaited`) — the session protocol of Raft's §6.3. The table keeps the reply of
// every applied command at or above that floor, so:
// - a resend of an applied command is answered with its original reply, however late it comes and in
//   whatever order the session's commands reached the log (BUSY and failover resends reorder them);
// - a command is never dropped because a newer command of its session overtook it;
// - memory per session is bounded by the client's window of unanswered commands, not by a high-water mark:
//   everything below the floor is forgotten, because the client has its answer (or gave up on it).
// A command below the floor arrives only as a stale copy of one the client no longer awaits: it is never
// applied (the client was told the outcome is unknown, or already has the answer), and answers
// OUTCOME_UNKNOWN. A session that keeps more than `window` unanswered commands is refused (WINDOW_FULL),
// never applied: the client library never sends that many.
//
// Pure and deterministic: applied in log order on every member, snapshotted in a canonical order.

/** Unanswered commands one session may have at once (the client library's `maxInFlight` must be lower). */
export const MAX_UNANSWERED_PER_SESSION = 1024;

export type DedupVerdict<R> =
  /** Not seen: apply it, then `record` its reply. */
  | { readonly kind: 'NEW' }
  /** Applied before: answer with this reply, apply nothing. */
  | { readonly kind: 'APPLIED'; readonly reply: R }
  /** Below the session's floor: too old to tell; never applied now. */
  | { readonly kind: 'OUTCOME_UNKNOWN' }
  /** The session already has `window` commands remembered: refused, not applied. */
  | { readonly kind: 'WINDOW_FULL' };

const NEW = Object.freeze({ kind: 'NEW' as const });
const OUTCOME_UNKNOWN = Object.freeze({ kind: 'OUTCOME_UNKNOWN' as const });
const WINDOW_FULL = Object.freeze({ kind: 'WINDOW_FULL' as const });

interface SessionTable<R> {
  /** Every correlation id below this is forgotten. */
  floor: number;
  /** Replies of applied commands at or above the floor, by correlation id. */
  readonly replies: Map<number, R>;
}

/** One session's table as a snapshot holds it: [sessionId, floor, [correlationId, reply][] by id]. */
export type DedupSnapshotRow<R> = [number, number, [number, R][]];

export class CommandDedup<R> {
  private readonly sessions = new Map<number, SessionTable<R>>();

  constructor(private readonly window: number = MAX_UNANSWERED_PER_SESSION) {}

  /** Sessions with a table. */
  get size(): number {
    return this.sessions.size;
  }

  /** Replies remembered for one session (for tests and metrics). */
  remembered(sessionId: number): number {
    return this.sessions.get(sessionId)?.replies.size ?? 0;
  }

  /**
   * The verdict on a committed command, in log order. Moves the session's floor up to `lowestAwaited`
   * (never past the command's own id: a client awaits the command it is sending) and forgets below it.
   */
  check(sessionId: number, correlationId: number, lowestAwaited: number): DedupVerdict<R> {
    let table = this.sessions.get(sessionId);
    if (!table) {
      table = { floor: 0, replies: new Map() };
      this.sessions.set(sessionId, table);
    }
    const floor = Math.min(lowestAwaited, correlationId);
    if (floor > table.floor) {
      table.floor = floor;
      for (const id of table.replies.keys()) if (id < floor) table.replies.delete(id);
    }
    if (correlationId < table.floor) return OUTCOME_UNKNOWN;
    const reply = table.replies.get(correlationId);
    if (reply !== undefined) return { kind: 'APPLIED', reply };
    if (table.replies.size >= this.window) return WINDOW_FULL;
    return NEW;
  }

  /** Remember the reply of a command `check` called NEW, now applied. */
  record(sessionId: number, correlationId: number, reply: R): void {
    this.sessions.get(sessionId)?.replies.set(correlationId, reply);
  }

  /** The session closed: nothing of it can arrive any more. */
  close(sessionId: number): void {
    this.sessions.delete(sessionId);
  }

  /** Every table in a canonical order (sessions and correlation ids ascending), for a snapshot. */
  snapshot(): DedupSnapshotRow<R>[] {
    return [...this.sessions]
      .sort((a, b) => a[0] - b[0])
      .map(([id, table]) => [id, table.floor, [...table.replies].sort((a, b) => a[0] - b[0])]);
  }

  /** Add snapshot rows; rows of one session from several parts (shards) merge: the higher floor wins. */
  restore(rows: readonly DedupSnapshotRow<R>[]): void {
    for (const [id, floor, replies] of rows) {
      let table = this.sessions.get(id);
      if (!table) {
        table = { floor, replies: new Map() };
        this.sessions.set(id, table);
      }
      table.floor = Math.max(table.floor, floor);
      for (const [correlationId, reply] of replies) {
        if (correlationId >= table.floor) table.replies.set(correlationId, reply);
      }
      for (const correlationId of table.replies.keys()) {
        if (correlationId < table.floor) table.replies.delete(correlationId);
      }
    }
  }
}
