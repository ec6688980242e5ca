// The client protocol on the wire: which frame kinds a client and a member exchange. What a client sends
// is one kind, CLIENT_REQUEST, whose body is validated with zod at the member's edge
// (actors/sessions/requests.ts): a body that does not fit closes that connection with a reason naming the
// field, and never reaches the log.

export const ClientKind = {
  /** client → member: CONNECT, CHALLENGE_RESPONSE, KEEPALIVE, SESSION_MESSAGE or CLOSE (a `type` field). */
  CLIENT_REQUEST: 10,
  /**
   * member → client (a `code` field): OK (with the session's resume token when it is new), ERROR, REDIRECT,
   * NO_LEADER, RESUME_REFUSED, AUTHENTICATION_REJECTED, CHALLENGE, CLOSED, or KEEPALIVE (the answer to one).
   */
  SESSION_EVENT: 11,
  /** member → client: the service's answer to a command, once committed and applied. */
  REPLY: 12,
  /** member → client: overloaded; send this command again after `retryAfterMs` (R5). */
  BUSY: 13,
  /** member → client: a message a service pushed to the session (`{ payload }`, msgpack), once committed. */
  NOTIFY: 14,
} as const;

/** Bytes a SESSION_MESSAGE request adds around a command in a client frame (header, ids, msgpack keys). */
export const CLIENT_ENVELOPE_BYTES = 1024;

/**
 * The largest command (service bytes) a client may send: what fits in one client frame with its
 * envelope. The client edge refuses larger commands; anything smaller replicates in one APPEND.
 */
export const maxCommandBytes = (config: { readonly maxFrameBytes: number }): number =>
  config.maxFrameBytes - CLIENT_ENVELOPE_BYTES;

export interface ReplyBody {
  readonly correlationId: number;
  readonly payload: Uint8Array;
  /** The command's outcome cannot be told (a stale copy below the session's floor): neither success nor refusal. */
  readonly outcomeUnknown?: boolean;
}

export interface BusyBody {
  readonly correlationId: number;
  readonly retryAfterMs: number;
  readonly detail: string;
}
