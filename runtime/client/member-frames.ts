// What a member sends the client, checked before the connection machine or a command sees it. A member
// is outside the client's process: a frame whose body is not what its kind promises (a REDIRECT without
// an endpoint, an event code the client does not know, a BUSY asking for an endless wait) is refused with
// a reason, and the client drops that connection as lost and tries another member. Nothing a member sends
// can throw inside the client or stop its statechart.

import { unpack } from 'msgpackr';
import type { ClientConnectionEvent } from '../../machines/client-connection.ts';
import { isEndpoint } from '../../machines/client-connection-context.ts';
import type { BusyBody, ReplyBody } from '../wire/client-frames.ts';
import { ClientKind } from '../wire/client-frames.ts';

/** A checked frame from a member. */
export type MemberFrame =
  /** A session event, as the connection machine's event. */
  | { readonly kind: 'EVENT'; readonly event: ClientConnectionEvent }
  /** The answer to a KEEPALIVE: the member is alive, nothing else. */
  | { readonly kind: 'ALIVE' }
  | { readonly kind: 'REPLY'; readonly reply: ReplyBody }
  | { readonly kind: 'BUSY'; readonly busy: BusyBody }
  /** A message a service pushed to the session, decoded (what it means is the receiver's to check). */
  | { readonly kind: 'NOTIFY'; readonly message: unknown };

/** Why a frame was refused. */
export interface RefusedFrame {
  readonly problem: string;
}

/** The longest BUSY delay a member may ask for; a command's own timeout bounds the wait anyway. */
export const MAX_RETRY_AFTER_MS = 60_000;
/** Challenges and resume tokens are nonces and proofs of some tens of bytes. */
const MAX_PROOF_BYTES = 1024;

type Fields = Readonly<Record<string, unknown>>;

const isRecord = (value: unknown): value is Fields =>
  typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);

const shown = (value: unknown): string => {
  if (value === undefined) return 'missing';
  let text: string;
  try {
    text = String(value);
  } catch {
    // A decoded object whose toString is not a function ({ toString: [] }) cannot be converted: name its type.
    text = Object.prototype.toString.call(value);
  }
  return `${typeof value} ${text.slice(0, 40)}`;
};

/** Field checks: each returns a problem or undefined. */
const id = (body: Fields, field: string): string | undefined =>
  Number.isSafeInteger(body[field]) && (body[field] as number) >= 0
    ? undefined
    : `${field} must be a non-negative integer (${shown(body[field])})`;

const text = (body: Fields, field: string): string | undefined =>
  typeof body[field] === 'string' ? undefined : `${field} must be a string (${shown(body[field])})`;

const bytes = (body: Fields, field: string, optional = false): string | undefined => {
  const value = body[field];
  if (value === undefined && optional) return undefined;
  return value instanceof Uint8Array && value.length >= 1 && value.length <= MAX_PROOF_BYTES
    ? undefined
    : `${field} must be 1 to ${MAX_PROOF_BYTES} bytes (${shown(value)})`;
};

const flag = (body: Fields, field: string, optional = false): string | undefined =>
  (optional && body[field] === undefined) || typeof body[field] === 'boolean'
    ? undefined
    : `${field} must be true or false (${shown(body[field])})`;

const endpoint = (body: Fields): string | undefined =>
  typeof body.endpoint === 'string' && isEndpoint(body.endpoint)
    ? undefined
    : `endpoint must be host:port (${shown(body.endpoint)})`;

/** The fields each session event code must carry. */
const SESSION_EVENT_FIELDS: Readonly<Record<string, readonly ((body: Fields) => string | undefined)[]>> = {
  OK: [(b) => id(b, 'sessionId'), (b) => id(b, 'leaderId'), (b) => bytes(b, 'resumeToken', true)],
  ERROR: [(b) => text(b, 'detail'), (b) => flag(b, 'retryable')],
  REDIRECT: [(b) => id(b, 'leaderId'), endpoint],
  NO_LEADER: [(b) => text(b, 'detail')],
  RESUME_REFUSED: [(b) => id(b, 'sessionId'), (b) => text(b, 'detail')],
  KEEPALIVE: [],
  AUTHENTICATION_REJECTED: [(b) => text(b, 'detail')],
  CHALLENGE: [(b) => bytes(b, 'challenge')],
  CLOSED: [(b) => text(b, 'reason')],
};

const firstProblem = (body: Fields, checks: readonly ((body: Fields) => string | undefined)[]) => {
  for (const check of checks) {
    const problem = check(body);
    if (problem !== undefined) return problem;
  }
  return undefined;
};

/** The machine event of a checked session event: only the fields it declares, nothing else passes. */
const sessionEvent = (b: Fields, now: number): ClientConnectionEvent | null => {
  switch (b.code) {
    case 'OK':
      return {
        type: 'OK',
        now,
        sessionId: b.sessionId as number,
        leaderId: b.leaderId as number,
        ...(b.resumeToken === undefined ? {} : { resumeToken: b.resumeToken as Uint8Array }),
      };
    case 'ERROR':
      return { type: 'ERROR', now, detail: b.detail as string, retryable: b.retryable as boolean };
    case 'REDIRECT':
      return { type: 'REDIRECT', now, leaderId: b.leaderId as number, endpoint: b.endpoint as string };
    case 'NO_LEADER':
      return { type: 'NO_LEADER', now, detail: b.detail as string };
    case 'RESUME_REFUSED':
      return { type: 'RESUME_REFUSED', now, sessionId: b.sessionId as number, detail: b.detail as string };
    case 'AUTHENTICATION_REJECTED':
      return { type: 'AUTHENTICATION_REJECTED', now, detail: b.detail as string };
    case 'CHALLENGE':
      return { type: 'CHALLENGE', now, challenge: b.challenge as Uint8Array };
    case 'CLOSED':
      return { type: 'CLOSED', now, reason: b.reason as string };
    default:
      return null; // KEEPALIVE
  }
};

/** Check a frame a member sent; `now` stamps the machine event it becomes. Never throws. */
export const parseMemberFrame = (kind: number, body: unknown, now: number): MemberFrame | RefusedFrame => {
  if (!isRecord(body)) return { problem: `frame kind ${kind}: the body is not a map` };
  switch (kind) {
    case ClientKind.SESSION_EVENT: {
      const code = body.code;
      if (typeof code !== 'string' || !Object.hasOwn(SESSION_EVENT_FIELDS, code)) {
        return { problem: `unknown session event code ${shown(code)}` };
      }
      const problem = firstProblem(body, SESSION_EVENT_FIELDS[code]);
      if (problem !== undefined) return { problem: `session event ${code}: ${problem}` };
      const event = sessionEvent(body, now);
      return event === null ? { kind: 'ALIVE' } : { kind: 'EVENT', event };
    }
    case ClientKind.REPLY: {
      const problem = firstProblem(body, [
        (b) => id(b, 'correlationId'),
        (b) => (b.payload instanceof Uint8Array ? undefined : `payload must be bytes (${shown(b.payload)})`),
        (b) => flag(b, 'outcomeUnknown', true),
      ]);
      if (problem !== undefined) return { problem: `reply: ${problem}` };
      return {
        kind: 'REPLY',
        reply: {
          correlationId: body.correlationId as number,
          payload: body.payload as Uint8Array,
          ...(body.outcomeUnknown === true ? { outcomeUnknown: true } : {}),
        },
      };
    }
    case ClientKind.BUSY: {
      const retryAfterMs = body.retryAfterMs;
      const problem = firstProblem(body, [
        (b) => id(b, 'correlationId'),
        () =>
          typeof retryAfterMs === 'number' && retryAfterMs >= 0 && retryAfterMs <= MAX_RETRY_AFTER_MS
            ? undefined
            : `retryAfterMs must be 0 to ${MAX_RETRY_AFTER_MS} ms (${shown(retryAfterMs)})`,
        (b) => text(b, 'detail'),
      ]);
      if (problem !== undefined) return { problem: `busy: ${problem}` };
      return {
        kind: 'BUSY',
        busy: {
          correlationId: body.correlationId as number,
          retryAfterMs: retryAfterMs as number,
          detail: body.detail as string,
        },
      };
    }
    case ClientKind.NOTIFY: {
      const payload = body.payload;
      if (!(payload instanceof Uint8Array) || payload.length === 0) {
        return { problem: `notify: payload must be msgpack bytes (${shown(payload)})` };
      }
      try {
        return { kind: 'NOTIFY', message: unpack(payload) };
      } catch (error) {
        return { problem: `notify: payload is not msgpack (${(error as Error).message})` };
      }
    }
    default:
      return { problem: `unexpected frame kind ${kind} from the member` };
  }
};
