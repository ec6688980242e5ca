// A replicated key-value / register service: get, put and compare-and-set, applied from committed
// SESSION_MESSAGE entries, in log order, on every member. Reads go through the log too, so every
// answer is linearizable. Each client session's commands are de-duplicated exactly (CommandDedup): a
// retried command (same session, same correlation id) is applied once and answered with the original
// reply, however late and out of order it arrives (C2). Pure and deterministic.

import { pack, unpack } from 'msgpackr';
import { EntryKind, type LogEntry } from '../log/log-entry.ts';
import { decodeSessionMessage } from '../log/session-message.ts';
import { CommandDedup, type DedupSnapshotRow } from '../sessions/command-dedup.ts';
import { decodeSessionClose } from '../sessions/payloads.ts';

export type KvCommand =
  | { op: 'get'; key: string }
  | { op: 'put'; key: string; value: string }
  | { op: 'cas'; key: string; expected: string | null; value: string };

/** get -> { value }; put -> { ok: true }; cas -> { ok } (whether it swapped). */
export type KvResult = { value: string | null } | { ok: boolean };

/** What a session message gets: a result, or why it was not applied (see CommandDedup). */
export type KvOutcome =
  | { readonly applied: true; readonly result: KvResult }
  /** Too old to tell whether it was applied: nothing was applied now. */
  | { readonly applied: false; readonly unknown: true }
  /** Refused (the session has too many unanswered commands): not applied. */
  | { readonly applied: false; readonly unknown: false; readonly reason: string };

export interface KvReply {
  readonly sessionId: number;
  readonly correlationId: number;
  readonly outcome: KvOutcome;
  /** True when this answers a retry that was already applied (the original reply again). */
  readonly duplicate: boolean;
}

export interface KvOptions {
  /** Unanswered commands one session may have at once (default MAX_UNANSWERED_PER_SESSION). */
  readonly window?: number;
}

export const encodeKvCommand = (command: KvCommand): Uint8Array => pack(command);

export const decodeKvCommand = (body: Uint8Array): KvCommand => {
  const value = unpack(body) as Partial<KvCommand> | null;
  if (value === null || typeof value !== 'object' || typeof value.key !== 'string') {
    throw new TypeError('kv command must be an object with a string "key": encode it with encodeKvCommand');
  }
  if (value.op === 'get') return { op: 'get', key: value.key };
  if (value.op === 'put' && typeof value.value === 'string')
    return { op: 'put', key: value.key, value: value.value };
  if (
    value.op === 'cas' &&
    typeof value.value === 'string' &&
    (value.expected === null || typeof value.expected === 'string')
  ) {
    return { op: 'cas', key: value.key, expected: value.expected, value: value.value };
  }
  throw new TypeError(
    `kv command has op ${JSON.stringify(value.op)} or fields of the wrong type: expected get, put or cas`,
  );
};

/** The session a SESSION_CLOSE entry closes (null if its payload cannot be read: nothing to forget). */
const sessionClosed = (payload: Uint8Array): number | null => {
  try {
    return decodeSessionClose(payload).sessionId;
  } catch {
    return null;
  }
};

export class KvService {
  private readonly data = new Map<string, string>();
  private readonly dedup: CommandDedup<KvResult>;
  private lastApplied = 0;

  constructor(options: KvOptions = {}) {
    this.dedup = new CommandDedup(options.window);
  }

  get appliedIndex(): number {
    return this.lastApplied;
  }

  get(key: string): string | null {
    return this.data.get(key) ?? null;
  }

  /** Apply one committed entry; returns the reply for a session message, null for other kinds. */
  apply(entry: LogEntry): KvReply | null {
    if (entry.index <= this.lastApplied) {
      throw new RangeError(
        `kv: entry ${entry.index} applied after ${this.lastApplied}: entries must be applied once, in log order`,
      );
    }
    this.lastApplied = entry.index;
    if (entry.kind === EntryKind.SESSION_CLOSE) {
      const sessionId = sessionClosed(entry.payload);
      if (sessionId !== null) this.dedup.close(sessionId);
      return null;
    }
    if (entry.kind !== EntryKind.SESSION_MESSAGE) return null;
    const { sessionId, correlationId, lowestAwaited, body } = decodeSessionMessage(entry.payload);
    const verdict = this.dedup.check(sessionId, correlationId, lowestAwaited);
    switch (verdict.kind) {
      case 'APPLIED':
        return {
          sessionId,
          correlationId,
          outcome: { applied: true, result: verdict.reply },
          duplicate: true,
        };
      case 'OUTCOME_UNKNOWN':
        return { sessionId, correlationId, outcome: { applied: false, unknown: true }, duplicate: true };
      case 'WINDOW_FULL':
        return {
          sessionId,
          correlationId,
          outcome: { applied: false, unknown: false, reason: 'too many unanswered commands in this session' },
          duplicate: false,
        };
      case 'NEW': {
        let command: KvCommand;
        try {
          command = decodeKvCommand(body);
        } catch (error) {
          // The leader's edge refuses these; one in the log (an older member's, or a bug) changes nothing,
          // identically everywhere.
          const reason = (error as Error).message;
          return {
            sessionId,
            correlationId,
            outcome: { applied: false, unknown: false, reason },
            duplicate: false,
          };
        }
        const result = this.execute(command);
        this.dedup.record(sessionId, correlationId, result);
        return { sessionId, correlationId, outcome: { applied: true, result }, duplicate: false };
      }
    }
  }

  private execute(command: KvCommand): KvResult {
    const current = this.data.get(command.key) ?? null;
    switch (command.op) {
      case 'get':
        return { value: current };
      case 'put':
        this.data.set(command.key, command.value);
        return { ok: true };
      case 'cas':
        if (current !== command.expected) return { ok: false };
        this.data.set(command.key, command.value);
        return { ok: true };
    }
  }

  /** The whole state (data, dedup tables, applied index) as bytes, for a snapshot. */
  snapshot(): Uint8Array {
    return pack([this.lastApplied, [...this.data], this.dedup.snapshot()]);
  }

  /** A service restored from snapshot() bytes. */
  static restore(bytes: Uint8Array, options: KvOptions = {}): KvService {
    const [applied, data, sessions] = unpack(bytes) as [
      number,
      [string, string][],
      DedupSnapshotRow<KvResult>[],
    ];
    const service = new KvService(options);
    service.lastApplied = applied;
    for (const [key, value] of data) service.data.set(key, value);
    service.dedup.restore(sessions);
    return service;
  }
}
