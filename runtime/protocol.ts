// The client protocol: frame kinds and the shapes of their bodies. Everything a client sends is checked
// with zod at the member's edge; a message that does not fit closes that connection with a reason naming
// the field, and never reaches the log.

import { z } from 'zod';

/** The client protocol's own version, checked at CONNECT (the frame header carries the wire version). */
export const CLIENT_PROTOCOL_VERSION = 1;

export const ClientKind = {
  /** client → member: open a session. */
  CONNECT: 10,
  /** member → client: answer this challenge to authenticate. */
  CHALLENGE: 11,
  /** client → member: the answer to a CHALLENGE. */
  CHALLENGE_RESPONSE: 12,
  /** member → client: OK (session open), ERROR, REDIRECT (go to the leader), AUTHENTICATION_REJECTED, CLOSED. */
  SESSION_EVENT: 13,
  /** client → member: a command for the service, correlated by id. */
  COMMAND: 14,
  /** member → client: the service's answer to a command, once committed and applied. */
  REPLY: 15,
  /** member → client: overloaded; retry the command after a delay (R5). */
  BUSY: 16,
  /** client → member: the session is alive. */
  KEEPALIVE: 17,
  /** client → member: close the session. */
  CLOSE_SESSION: 18,
  /** member → client: leadership moved; the client should reconnect to the new leader. */
  NEW_LEADER: 19,
} as const;

export type SessionEventCode = 'OK' | 'ERROR' | 'REDIRECT' | 'AUTHENTICATION_REJECTED' | 'CLOSED';

const bytes = z.instanceof(Uint8Array, { message: 'must be binary (msgpack bin)' });
const id = z.number().int().nonnegative();

export const connectSchema = z.object({
  clientVersion: z.number().int().positive(),
  credentials: z.union([z.string(), bytes]).optional(),
});
export const challengeResponseSchema = z.object({ response: z.union([z.string(), bytes]) });
export const commandSchema = z.object({ sessionId: id, correlationId: id, payload: bytes });
export const keepaliveSchema = z.object({ sessionId: id });
export const closeSessionSchema = z.object({ sessionId: id });

export type Connect = z.infer<typeof connectSchema>;
export type Command = z.infer<typeof commandSchema>;

/** The schemas of every message a client may send, by frame kind. */
export const inboundClientSchemas: Readonly<Record<number, z.ZodType>> = {
  [ClientKind.CONNECT]: connectSchema,
  [ClientKind.CHALLENGE_RESPONSE]: challengeResponseSchema,
  [ClientKind.COMMAND]: commandSchema,
  [ClientKind.KEEPALIVE]: keepaliveSchema,
  [ClientKind.CLOSE_SESSION]: closeSessionSchema,
};

const kindName = (kind: number): string =>
  Object.entries(ClientKind).find(([, k]) => k === kind)?.[0] ?? `kind ${kind}`;

/** Validate a message from a client: the parsed body, or a reason naming what was wrong. */
export const parseClientMessage = (
  kind: number,
  body: unknown,
): { ok: true; kind: number; body: unknown } | { ok: false; reason: string } => {
  const schema = inboundClientSchemas[kind];
  if (!schema) return { ok: false, reason: `unexpected message ${kindName(kind)} from a client` };
  const parsed = schema.safeParse(body);
  if (parsed.success) return { ok: true, kind, body: parsed.data };
  const issue = parsed.error.issues[0];
  const field = issue.path.length > 0 ? issue.path.join('.') : '(body)';
  return { ok: false, reason: `bad ${kindName(kind)}: ${field}: ${issue.message}` };
};

/** Bodies the member sends. */
export interface SessionEvent {
  readonly code: SessionEventCode;
  readonly sessionId?: number;
  readonly leaderId?: number;
  /** `host:port` of the leader's client listener, for REDIRECT and NEW_LEADER. */
  readonly leaderEndpoint?: string;
  readonly leadershipTerm?: number;
  readonly detail?: string;
}

export interface Reply {
  readonly correlationId: number;
  readonly payload: Uint8Array;
}

export interface Busy {
  readonly correlationId: number;
  readonly retryAfterMs: number;
}

export interface NewLeader {
  readonly leaderId: number;
  readonly leaderEndpoint: string;
  readonly leadershipTerm: number;
}
