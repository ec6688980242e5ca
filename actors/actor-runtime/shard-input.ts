// What a committed entry means to a shard: its payload decoded and checked for the shape its kind needs
// (see protocol.ts), the origin stamped on the event an actor gets, and the replies a session's command
// gets when it is not applied. A malformed entry is refused identically on every member.

import type { EventObject } from 'xstate';
import { EntryKind, type LogEntry } from '../log/log-entry.ts';
import { decodeSessionMessage, SESSION_MESSAGE_HEADER_BYTES } from '../log/session-message.ts';
import { type DedupVerdict, MAX_UNANSWERED_PER_SESSION } from '../sessions/command-dedup.ts';
import { type ReplyError, replyOutput, type ShardOutput, unpack } from './protocol.ts';
import type { EventOrigin } from './service.ts';

/** A decoded SESSION_MESSAGE. */
export type SessionCommand = [
  address: string,
  sessionId: number,
  correlationId: number,
  event: EventObject,
  lowestAwaited: number,
];

/** What a session's command got, remembered to answer its resends (C2). */
export type SessionReply = [ok: boolean, value: unknown, error: ReplyError | null];

const isInt = (value: unknown): value is number => Number.isSafeInteger(value);

/** An entry's decoded payload; SESSION_MESSAGE becomes a SessionCommand; undefined if it does not decode. */
export const decodeEntry = (entry: LogEntry): unknown => {
  try {
    if (entry.kind !== EntryKind.SESSION_MESSAGE) return unpack(entry.payload);
    const { sessionId, correlationId, lowestAwaited, body } = decodeSessionMessage(entry.payload);
    const command = unpack(body) as unknown[];
    return Array.isArray(command)
      ? [command[0], sessionId, correlationId, command[1], lowestAwaited]
      : undefined;
  } catch {
    return undefined;
  }
};

/** The decoded payload has the shape its kind needs (see protocol.ts). */
export const wellFormed = (kind: number, body: unknown): boolean => {
  switch (kind) {
    case EntryKind.SESSION_MESSAGE:
      return (
        Array.isArray(body) &&
        typeof body[0] === 'string' &&
        isInt(body[1]) &&
        isInt(body[2]) &&
        isInt(body[4])
      );
    case EntryKind.SERVICE_MESSAGE:
      return (
        Array.isArray(body) && typeof body[0] === 'string' && typeof body[1] === 'string' && isInt(body[2])
      );
    case EntryKind.TIMER_EVENT:
      return Array.isArray(body) && typeof body[0] === 'string' && isInt(body[1]);
    case EntryKind.CLUSTER_ACTION:
      return Array.isArray(body);
    default:
      return body !== undefined;
  }
};

/**
 * The reply to a session's command whose body is not `[address, event]`, or undefined when the entry is
 * not a session command at all: the client is told, identically on every member.
 */
export const malformedCommandReply = (entry: LogEntry): ShardOutput | undefined => {
  if (entry.kind !== EntryKind.SESSION_MESSAGE || entry.payload.length < SESSION_MESSAGE_HEADER_BYTES) {
    return undefined;
  }
  const { sessionId, correlationId } = decodeSessionMessage(entry.payload);
  const error: ReplyError = {
    code: 'BAD_EVENT',
    message: 'command body is not a msgpack [address, event] array',
  };
  return replyOutput(entry.index, sessionId, correlationId, false, undefined, error, false);
};

/**
 * The event as the actor gets it: with `origin` set by the runtime from the log entry (a client session or
 * the sending actor's address), so a machine can tell a client's command from another actor's message.
 * Whatever `origin` the event carried is overwritten: it cannot be forged.
 */
export const withOrigin = (event: EventObject, origin: EventOrigin): EventObject => {
  // The event was just decoded from the entry: no one else holds it, so it is stamped in place (a copy
  // per event cost about 10% of `npx chorus bench actors`).
  if (typeof event === 'object' && event !== null) (event as { origin?: EventOrigin }).origin = origin;
  return event;
};

/** Why a command was not applied, as the reply's error (see CommandDedup). */
const notApplied = (kind: 'OUTCOME_UNKNOWN' | 'WINDOW_FULL'): ReplyError =>
  kind === 'OUTCOME_UNKNOWN'
    ? {
        code: 'OUTCOME_UNKNOWN',
        message: 'a stale copy of a command this session no longer awaits: nothing was applied now',
      }
    : {
        code: 'WINDOW_FULL',
        message: `the session has ${MAX_UNANSWERED_PER_SESSION} unanswered commands; this one was not applied`,
      };

/** C2: the answer to a command the dedup table has seen (its original reply) or will not apply. */
export const answerWithoutApplying = (
  index: number,
  sessionId: number,
  correlationId: number,
  verdict: Exclude<DedupVerdict<SessionReply>, { kind: 'NEW' }>,
): ShardOutput =>
  verdict.kind === 'APPLIED'
    ? replyOutput(
        index,
        sessionId,
        correlationId,
        verdict.reply[0],
        verdict.reply[1],
        verdict.reply[2] ?? undefined,
        true,
      )
    : replyOutput(index, sessionId, correlationId, false, undefined, notApplied(verdict.kind), false);
