// The client library's public options, errors and defaults (client.ts is the client itself).

import { MAX_CLOSE_ON_DISCONNECT_MS, MIN_CLOSE_ON_DISCONNECT_MS } from '../../actors/sessions/requests.ts';
import type { ClientTransport } from './client-transport.ts';

export { MAX_CLOSE_ON_DISCONNECT_MS, MIN_CLOSE_ON_DISCONNECT_MS };

export interface ClientOptions {
  /** Client endpoints of the members (`host:port`), any order; the client finds the leader. */
  readonly endpoints: readonly string[];
  /** Sent with CONNECT: a shared token, or the principal for challenge–response. */
  readonly credentials?: Uint8Array | string;
  /** The secret for challenge–response authentication. */
  readonly secret?: Uint8Array | string;
  /** Default time a command may take, resends included, before its promise rejects (ms). */
  readonly commandTimeoutMs?: number;
  /** Commands sent and not yet answered, at most (default 16, at most MAX_UNANSWERED_PER_SESSION). More wait in order. */
  readonly maxInFlight?: number;
  /** Seed of the order the members are tried in and of the reconnect jitter; give every client its own (default: random). */
  readonly seed?: number;
  readonly maxFrameBytes?: number;
  /** Give up connecting after this many failed attempts in a row (0: never). */
  readonly maxAttempts?: number;
  /**
   * A connection with commands outstanding that brings nothing back for this long (no reply, no event)
   * is taken as dead — a frozen leader never closes it — and the client looks for the leader on the
   * other members and resends (C3). Halfway through, the client sends a KEEPALIVE, which a live member
   * answers at once, so only a member that cannot answer at all (stopped, or its event loop stalled
   * longer than the cluster's own leader heartbeat timeout) reaches the limit. Default 750 ms.
   */
  readonly replyTimeoutMs?: number;
  /**
   * An idle session sends a KEEPALIVE this often (ms, default 1000) so the cluster does not time it out;
   * keep it well under the cluster's sessionTimeoutMs.
   */
  readonly keepaliveIntervalMs?: number;
  /**
   * Ask the leader to close the session (reason DISCONNECTED) once its connection has been gone this long
   * with no resume (ms, from MIN_ to MAX_CLOSE_ON_DISCONNECT_MS in actors/sessions/requests.ts); sent with
   * every CONNECT. Only the leader that saw the connection close acts on it. Default: absent (the session
   * outlives its connection until the session timeout).
   */
  readonly closeOnDisconnectMs?: number;
  /** Reconnect backoff: first step and ceiling, ms (exponential with jitter in between). */
  readonly backoffBaseMs?: number;
  readonly backoffMaxMs?: number;
  /** Called on every connection state change, for logs and demos. */
  readonly onStateChange?: (
    state: string,
    detail: { leaderId: number | null; sessionId: number | null },
  ) => void;
  /** How the client reaches members and tells time (default: TCP sockets and the process's timers). */
  readonly transport?: ClientTransport;
}

/** A session opened on a leader (ChorusClient.onSession). */
export interface SessionChange {
  readonly sessionId: number;
  readonly leaderId: number;
  /** The session the client had before (a reconnect or a leader change), not a new one. */
  readonly resumed: boolean;
}

/**
 * The command's outcome is unknown: it may or may not have been applied. Never a success, never a
 * refusal: read the state back before deciding to send it again.
 */
export class OutcomeUnknownError extends Error {
  override readonly name: string = 'OutcomeUnknownError';
}

/** No reply within the command's timeout: the outcome is unknown. */
export class CommandTimeoutError extends OutcomeUnknownError {
  override readonly name = 'CommandTimeoutError';
}

/** The client's session ended for good (closed by the cluster, rejected, or the client gave up). */
export class SessionClosedError extends Error {
  override readonly name = 'SessionClosedError';
}

/** How a command ends: its reply, or the error its promise rejects with. */
export type CommandOutcome = { readonly reply: Uint8Array } | { readonly error: Error };

/**
 * Default `replyTimeoutMs`: a little over the cluster's default leader heartbeat timeout (500 ms), after
 * which the followers, too, take a silent leader for gone.
 */
export const DEFAULT_REPLY_TIMEOUT_MS = 750;

/**
 * Default reconnect backoff. A new leader is ready ~0.75 s after a leader dies (default timeouts): retrying
 * at most every 200 ms finds it soon after (measured by `npx chorus bench failover`).
 */
export const DEFAULT_BACKOFF_BASE_MS = 20;
export const DEFAULT_BACKOFF_MAX_MS = 200;

/** Refuse a closeOnDisconnectMs the members would refuse (RangeError naming the bounds). */
export const checkCloseOnDisconnectMs = (value: number | undefined): void => {
  if (value === undefined) return;
  if (Number.isInteger(value) && value >= MIN_CLOSE_ON_DISCONNECT_MS && value <= MAX_CLOSE_ON_DISCONNECT_MS)
    return;
  throw new RangeError(
    `client option closeOnDisconnectMs is ${value}: it must be an integer from ` +
      `${MIN_CLOSE_ON_DISCONNECT_MS} to ${MAX_CLOSE_ON_DISCONNECT_MS}`,
  );
};
