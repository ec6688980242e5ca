// A replicated key-value / register service: get, put and compare-and-set, applied from committed
// SESSION_MESSAGE entries, in log order, on every member. Reads go through the log too, so every
// answer is linearizable. Each client session's correlation ids are de-duplicated: a retried command
// (same session, same correlation id) is applied once and answered with the original reply (C2).
// Pure and deterministic: Maps iterate in insertion order, and eviction follows apply order.

import { pack, unpack } from 'msgpackr';
import { EntryKind, type LogEntry } from '../../machines/log-entry.ts';
import { decodeSessionMessage } from '../consensus/session-message.ts';

export type KvCommand =
  | { op: 'get'; key: string }
  | { op: 'put'; key: string; value: string }
  | { op: 'cas'; key: string; expected: string | null; value: string };

/** get -> { value }; put -> { ok: true }; cas -> { ok } (whether it swapped). */
export type KvResult = { value: string | null } | { ok: boolean };

export interface KvReply {
  readonly sessionId: number;
  readonly correlationId: number;
  readonly result: KvResult;
  /** True when this answers a retry that was already applied. */
  readonly duplicate: boolean;
}

export interface KvOptions {
  /** Replies remembered per session (the most recent correlation ids). */
  readonly repliesPerSession?: number;
  /** Sessions remembered; the least recently active is forgotten first. */
  readonly maxSessions?: number;
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

export class KvService {
  private readonly data = new Map<string, string>();
  /** sessionId -> (correlationId -> result), both in insertion (apply) order. */
  private readonly sessions = new Map<number, Map<number, KvResult>>();
  private readonly repliesPerSession: number;
  private readonly maxSessions: number;
  private lastApplied = 0;

  constructor(options: KvOptions = {}) {
    this.repliesPerSession = options.repliesPerSession ?? 16;
    this.maxSessions = options.maxSessions ?? 10_000;
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
    if (entry.kind !== EntryKind.SESSION_MESSAGE) return null;
    const { sessionId, correlationId, body } = decodeSessionMessage(entry.payload);
    let replies = this.sessions.get(sessionId);
    if (replies) {
      const seen = replies.get(correlationId);
      if (seen !== undefined) return { sessionId, correlationId, result: seen, duplicate: true };
      // Move the session to the most-recent end.
      this.sessions.delete(sessionId);
      this.sessions.set(sessionId, replies);
    } else {
      replies = new Map();
      this.sessions.set(sessionId, replies);
      if (this.sessions.size > this.maxSessions) {
        const oldest = this.sessions.keys().next().value as number;
        this.sessions.delete(oldest);
      }
    }
    const result = this.execute(decodeKvCommand(body));
    replies.set(correlationId, result);
    if (replies.size > this.repliesPerSession) replies.delete(replies.keys().next().value as number);
    return { sessionId, correlationId, result, duplicate: false };
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
    return pack([
      this.lastApplied,
      [...this.data],
      [...this.sessions].map(([id, replies]) => [id, [...replies]]),
    ]);
  }

  /** A service restored from snapshot() bytes. */
  static restore(bytes: Uint8Array, options: KvOptions = {}): KvService {
    const [applied, data, sessions] = unpack(bytes) as [
      number,
      [string, string][],
      [number, [number, KvResult][]][],
    ];
    const service = new KvService(options);
    service.lastApplied = applied;
    for (const [key, value] of data) service.data.set(key, value);
    for (const [id, replies] of sessions) service.sessions.set(id, new Map(replies));
    return service;
  }
}
