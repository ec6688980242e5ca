// The actor runtime's contract with the consensus module: what a committed log entry carries for an
// actor, how an entry is routed to a shard, and what a shard gives back. Pure data and pure functions.
//
// Every actor-addressed payload carries a msgpack array whose FIRST element is the actor's address
// string (`service/actorType/actorId`). Routing hashes the raw UTF-8 bytes of that string straight out of
// the payload, so the main thread never decodes a whole entry to pick its shard.
//
//   SESSION_MESSAGE  the consensus module's header (actors/log/session-message.ts: sessionId,
//                    correlationId, lowestAwaited) + body [address, event]   a client command, routed by
//                                                                     the leader (actors/actor-runtime/service-edge.ts)
//   SERVICE_MESSAGE  [address, from, seq, event]                      actor-to-actor message; from = sender
//                                                                     address, seq = sender's outbox number
//                    [address, EFFECT_DONE_FROM, effectSeq, result]   the leader finished an external effect
//   TIMER_EVENT      [address, timerSeq]                              an actor's cluster timer expired
//   CLUSTER_ACTION   [action]                                         'SNAPSHOT' (every shard), others ignored
//   SESSION_CLOSE    [sessionId, reason]                              drops the session's dedup entry and
//                                                                     delivers each service's sessionClosed events

import { Packr } from 'msgpackr';
import { EntryKind, type LogEntry } from '../log/log-entry.ts';
import { encodeSessionMessage, SESSION_MESSAGE_HEADER_BYTES } from '../log/session-message.ts';

/** Plain msgpack (no record extension, no shared structures): bytes depend only on the value. */
export const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true });
export const pack = (value: unknown): Uint8Array => packr.pack(value);
export const unpack = (bytes: Uint8Array): unknown => packr.unpack(bytes);

/** `from` of a SERVICE_MESSAGE that completes an external effect (not an actor address). */
export const EFFECT_DONE_FROM = '!effect';

export interface ActorAddress {
  readonly service: string;
  readonly actorType: string;
  readonly actorId: string;
}

const ADDRESS_PART = /^[^/]+$/;

/** `service/actorType/actorId`. Service and actor type names may not contain '/'; an actor id may. */
export const formatAddress = (service: string, actorType: string, actorId: string): string => {
  if (!ADDRESS_PART.test(service) || !ADDRESS_PART.test(actorType)) {
    throw new TypeError(
      `actor address: service '${service}' and actor type '${actorType}' must be non-empty and contain no '/'`,
    );
  }
  if (actorId.length === 0) throw new TypeError('actor address: actorId must be a non-empty string');
  return `${service}/${actorType}/${actorId}`;
};

export const parseAddress = (address: string): ActorAddress => {
  const first = address.indexOf('/');
  const second = address.indexOf('/', first + 1);
  if (first <= 0 || second <= first + 1 || second === address.length - 1) {
    throw new TypeError(`actor address '${address}' is not of the form service/actorType/actorId`);
  }
  return {
    service: address.slice(0, first),
    actorType: address.slice(first + 1, second),
    actorId: address.slice(second + 1),
  };
};

// FNV-1a, 32 bit: stable across processes, platforms and versions (never use a seeded or builtin hash).
const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

export const fnv1aBytes = (bytes: Uint8Array, start = 0, end = bytes.length): number => {
  let hash = FNV_OFFSET;
  for (let i = start; i < end; i++) hash = Math.imul(hash ^ bytes[i], FNV_PRIME);
  return hash >>> 0;
};

const utf8 = new TextEncoder();
export const fnv1a = (text: string): number => fnv1aBytes(utf8.encode(text));

/** The shard an actor lives on, for the life of a log: `fnv1a(utf8(address)) % shardCount`. */
export const shardOfAddress = (address: string, shardCount: number): number => fnv1a(address) % shardCount;

/** Where the address string sits inside an actor payload (msgpack from `from`): [start, end) of its
 *  UTF-8 bytes, or null if the bytes there are not an array starting with a string. */
const addressSpan = (payload: Uint8Array, from: number): [number, number] | null => {
  const head = payload[from];
  // fixarray (0x90..0x9f), array16 (0xdc), array32 (0xdd)
  let at: number;
  if (head >= 0x90 && head <= 0x9f) at = from + 1;
  else if (head === 0xdc) at = from + 3;
  else if (head === 0xdd) at = from + 5;
  else return null;
  const tag = payload[at];
  if (tag >= 0xa0 && tag <= 0xbf) return [at + 1, at + 1 + (tag & 0x1f)];
  if (tag === 0xd9) return [at + 2, at + 2 + payload[at + 1]];
  if (tag === 0xda) return [at + 3, at + 3 + ((payload[at + 1] << 8) | payload[at + 2])];
  if (tag === 0xdb) {
    const length =
      ((payload[at + 1] << 24) | (payload[at + 2] << 16) | (payload[at + 3] << 8) | payload[at + 4]) >>> 0;
    return [at + 5, at + 5 + length];
  }
  return null;
};

/** Entry kinds that address exactly one actor (the first payload element is its address). */
export const isActorEntry = (kind: number): boolean =>
  kind === EntryKind.SESSION_MESSAGE || kind === EntryKind.SERVICE_MESSAGE || kind === EntryKind.TIMER_EVENT;

/** Entry kinds every shard must see (snapshot requests, session closes). */
export const isBroadcastEntry = (kind: number): boolean =>
  kind === EntryKind.CLUSTER_ACTION || kind === EntryKind.SESSION_CLOSE;

/**
 * The shard that applies an entry: a shard number, -1 for every shard, or null for entries the actor
 * runtime does not apply (NEW_LEADERSHIP_TERM, SESSION_OPEN, MEMBERSHIP_CHANGE). Reads only the address
 * bytes; never decodes the payload. A payload without a readable address goes to shard 0, which answers
 * it with BAD_EVENT (the same on every member).
 */
export const shardOfEntry = (entry: LogEntry, shardCount: number): number | null => {
  if (isActorEntry(entry.kind)) {
    const span = addressSpan(
      entry.payload,
      entry.kind === EntryKind.SESSION_MESSAGE ? SESSION_MESSAGE_HEADER_BYTES : 0,
    );
    if (!span || span[1] > entry.payload.length) return 0;
    return fnv1aBytes(entry.payload, span[0], span[1]) % shardCount;
  }
  return isBroadcastEntry(entry.kind) ? -1 : null;
};

// ----- payload builders (used by the service edge, the timer service, the leader's outbox) -----

/** The service body of a client command for an actor: what a client sends, routed and encoded. */
export const commandBody = (address: string, event: unknown): Uint8Array => pack([address, event]);

/** A whole SESSION_MESSAGE payload (the consensus module's header + the command body). */
export const sessionMessagePayload = (
  address: string,
  sessionId: number,
  correlationId: number,
  event: unknown,
  /** Default: the command's own id — a client that sends one command at a time and awaits nothing older. */
  lowestAwaited = correlationId,
): Uint8Array => encodeSessionMessage(sessionId, correlationId, lowestAwaited, commandBody(address, event));

export const serviceMessagePayload = (
  address: string,
  from: string,
  seq: number,
  event: unknown,
): Uint8Array => pack([address, from, seq, event]);

export const effectDonePayload = (address: string, effectSeq: number, result: unknown): Uint8Array =>
  pack([address, EFFECT_DONE_FROM, effectSeq, result]);

export const timerEventPayload = (address: string, timerSeq: number): Uint8Array => pack([address, timerSeq]);

export const ClusterAction = {
  SNAPSHOT: 'SNAPSHOT',
  SUSPEND: 'SUSPEND',
  RESUME: 'RESUME',
  SHUTDOWN: 'SHUTDOWN',
} as const;
export type ClusterAction = (typeof ClusterAction)[keyof typeof ClusterAction];
export const clusterActionPayload = (action: ClusterAction): Uint8Array => pack([action]);

/** A timer's id, unique in the cluster and identical on every member: `address#seq`. */
export const timerId = (address: string, seq: number): string => `${address}#${seq}`;

// ----- what a shard gives back -----

export interface ReplyError {
  /** ACTOR_FAILED: the actor threw (its state is unchanged or restarted, by policy); UNKNOWN_ACTOR_TYPE;
   *  BAD_EVENT: the payload could not be read; WINDOW_FULL: the session has too many unanswered commands
   *  (not applied); OUTCOME_UNKNOWN: a stale copy of a command below the session's floor (nothing applied
   *  now; whether the original was applied cannot be told — see actors/sessions/command-dedup.ts);
   *  BAD_COMMAND: the leader's service edge refused the command (actors/actor-runtime/service-edge.ts), not applied. */
  readonly code:
    | 'ACTOR_FAILED'
    | 'UNKNOWN_ACTOR_TYPE'
    | 'BAD_EVENT'
    | 'WINDOW_FULL'
    | 'OUTCOME_UNKNOWN'
    | 'BAD_COMMAND';
  readonly message: string;
}

/** Output of applying committed entries, tagged with the index of the entry that caused it. */
export type ShardOutput =
  /** Answer to a session; only the leader sends it. `duplicate` marks a retried correlation id (C2). */
  | {
      readonly type: 'REPLY';
      readonly index: number;
      readonly sessionId: number;
      readonly correlationId: number;
      readonly ok: boolean;
      /** The answer when ok. */
      readonly value: unknown;
      /** Why not, when not ok. */
      readonly error: ReplyError | undefined;
      /** A retried correlation id (C2): the first answer again, or OUTCOME_UNKNOWN. */
      readonly duplicate: boolean;
    }
  /** Schedule cluster timer `timerId` at cluster time `deadline`; on expiry append `payload` as TIMER_EVENT. */
  | {
      readonly type: 'TIMER_SCHEDULE';
      readonly index: number;
      readonly timerId: string;
      readonly deadline: number;
      readonly payload: Uint8Array;
    }
  | { readonly type: 'TIMER_CANCEL'; readonly index: number; readonly timerId: string }
  /** Append `payload` as a SERVICE_MESSAGE (leader only); `messageId` = `from>seq`. */
  | {
      readonly type: 'SEND';
      readonly index: number;
      readonly messageId: string;
      readonly payload: Uint8Array;
    }
  /** Perform `intent` outside the cluster (leader only, never in replay), then append
   *  `effectDonePayload(address, seq, result)` as a SERVICE_MESSAGE: the actor gets EFFECT_DONE_EVENT. */
  | {
      readonly type: 'EFFECT';
      readonly index: number;
      readonly effectId: string;
      readonly address: string;
      readonly seq: number;
      readonly intent: unknown;
    }
  /** Push `message` to client session `sessionId` (leader only, once the entry at `index` is applied). */
  | { readonly type: 'NOTIFY'; readonly index: number; readonly sessionId: number; readonly message: unknown }
  /** A shard's snapshot taken at `index` (a CLUSTER_ACTION SNAPSHOT entry, or on demand). */
  | { readonly type: 'SNAPSHOT'; readonly index: number; readonly shard: number; readonly bytes: Uint8Array };

export type ReplyOutput = Extract<ShardOutput, { type: 'REPLY' }>;

/** Every REPLY has this one shape (absent fields undefined), so replies built anywhere compare equal. */
export const replyOutput = (
  index: number,
  sessionId: number,
  correlationId: number,
  ok: boolean,
  value: unknown,
  error: ReplyError | undefined,
  duplicate: boolean,
): ReplyOutput => ({ type: 'REPLY', index, sessionId, correlationId, ok, value, error, duplicate });

export const messageId = (from: string, seq: number): string => `${from}>${seq}`;
export const effectId = (address: string, seq: number): string => `${address}!${seq}`;
