// The client connection's context and the pure rules it is built from: its options and their checks,
// the seeded order of the members, the retry schedule (the backoff is random.ts's backoffDelay), the rotation that skips a failed leader, and
// the silence that marks one. The statechart is machines/client-connection.ts.

import type { RandomState } from './random.ts';
import { backoffDelay, nextUint32, seedRandom } from './random.ts';

export interface ClientConnectionInput {
  /** Client endpoints (`host:port`) of the cluster members, any order (the seed orders them). */
  readonly endpoints: readonly string[];
  /** Seed for the order of the endpoints and the jitter. Give every client its own. */
  readonly seed: number;
  /** Monotonic time at start. */
  readonly now: number;
  /** First backoff step. Default 50 ms. */
  readonly backoffBaseMs?: number;
  /** Largest backoff. Default 5000 ms. */
  readonly backoffMaxMs?: number;
  /**
   * Largest wait before the next member while live members answer NO_LEADER (an election is running):
   * a new leader is usually ready within a second, and the full backoff would sleep past it. Default 150 ms.
   */
  readonly leaderSearchMaxMs?: number;
  /** Time allowed from dialling to OK. Default 2000 ms. */
  readonly connectTimeoutMs?: number;
  /** Send a keepalive when nothing was sent for this long. Default 1000 ms. */
  readonly keepaliveIntervalMs?: number;
  /**
   * A connection silent this long while a command sent on it awaits its reply is taken for a failed
   * leader; at half of it the client probes with a KEEPALIVE. Default 750 ms.
   */
  readonly replyTimeoutMs?: number;
  /**
   * Whether the library holds a secret to answer a challenge with; without one a challenge ends the
   * connection (AUTHENTICATION_REJECTED). Default true.
   */
  readonly canAnswerChallenge?: boolean;
  /** Redirects followed in a row before backing off. Default 5. */
  readonly maxRedirects?: number;
  /** Consecutive failed attempts before giving up (0 = never give up). Default 0. */
  readonly maxAttempts?: number;
}

export interface ClientConnectionContext {
  /** The endpoints in the order this client tries them: a permutation drawn from its seed. */
  readonly endpoints: readonly string[];
  /** Where the next or current dial goes. */
  target: string;
  /** Index into `endpoints` of the last member tried (rotates on every failure). */
  endpointIndex: number;
  /** A member that just failed as the leader: skipped by the rotation while another remains. */
  avoid: string | null;
  /** Until then (one connect timeout after leaving it) a REDIRECT back to `avoid` is taken as stale. */
  avoidUntil: number;
  leaderId: number | null;
  /** The session from the last OK; a reconnect asks to resume it (C1). */
  sessionId: number | null;
  /** The proof of ownership the cluster issued with the session; a resume must present it. */
  resumeToken: Uint8Array | null;
  /** Consecutive failed attempts since the last OK. */
  attempt: number;
  redirects: number;
  random: RandomState;
  retryAt: number;
  connectStartedAt: number;
  lastSentAt: number;
  /** When a silent member was last probed with a KEEPALIVE. */
  probedAt: number;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  readonly leaderSearchMaxMs: number;
  readonly connectTimeoutMs: number;
  readonly keepaliveIntervalMs: number;
  readonly replyTimeoutMs: number;
  readonly canAnswerChallenge: boolean;
  readonly maxRedirects: number;
  readonly maxAttempts: number;
  /** The last error the cluster reported, or why the connection gave up. */
  lastError: string | null;
  closeReason: string | null;
}

export type ClientConnectionEvent =
  | { type: 'OK'; now: number; sessionId: number; leaderId: number; resumeToken?: Uint8Array }
  | { type: 'REDIRECT'; now: number; leaderId: number; endpoint: string }
  /** The member knows of no leader (an election is running, or it is cut off): try another. */
  | { type: 'NO_LEADER'; now: number; detail: string }
  /** The session cannot be resumed (closed, timed out, unknown, or the proof did not match). */
  | { type: 'RESUME_REFUSED'; now: number; sessionId: number; detail: string }
  | { type: 'ERROR'; now: number; detail: string; retryable: boolean }
  | { type: 'AUTHENTICATION_REJECTED'; now: number; detail: string }
  | { type: 'CHALLENGE'; now: number; challenge: Uint8Array }
  | { type: 'CLOSED'; now: number; reason: string }
  | { type: 'NEW_LEADER'; now: number; leaderId: number; endpoint: string }
  | { type: 'CONNECTION_LOST'; now: number }
  | { type: 'MESSAGE_SENT'; now: number }
  /**
   * Time passed. `heardAt`: when the current connection last brought a frame; `awaitingSince`: when the
   * oldest command sent on it that still awaits its reply was sent (null or absent: none awaits).
   */
  | { type: 'TICK'; now: number; heardAt?: number; awaitingSince?: number | null }
  | { type: 'CLOSE'; now: number };

/** Names of the effect actions the library must carry out. */
export type ClientConnectionEffectAction =
  | 'dial'
  | 'closeSocket'
  | 'answerChallenge'
  | 'sendKeepalive'
  | 'resendUnacknowledged'
  | 'abandonSession'
  | 'sendClose'
  | 'notifyClosed';

const positiveSetting = (name: string, value: number, allowZero = false): number => {
  if (!Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) {
    throw new RangeError(
      `client connection option ${name} is ${value}: it must be a ${allowZero ? 'non-negative' : 'positive'} number`,
    );
  }
  return value;
};

/** The endpoints shuffled (Fisher–Yates) with the seeded generator: the same seed, the same order. */
export const seededOrder = (endpoints: readonly string[], random: RandomState): [string[], RandomState] => {
  const order = [...endpoints];
  let state = random;
  for (let i = order.length - 1; i > 0; i--) {
    const [value, next] = nextUint32(state);
    state = next;
    const j = value % (i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  return [order, state];
};

/** The next member in the rotation after the last one tried, skipping `avoid` while another remains. */
export const nextEndpointIndex = (
  context: Pick<ClientConnectionContext, 'endpoints' | 'endpointIndex' | 'avoid'>,
): number => {
  const count = context.endpoints.length;
  for (let step = 1; step < count; step++) {
    const index = (context.endpointIndex + step) % count;
    if (context.endpoints[index] !== context.avoid) return index;
  }
  return (context.endpointIndex + 1) % count;
};

/** `host:port` or `[ipv6]:port`: the form of a member's client endpoint. */
export const isEndpoint = (endpoint: string): boolean =>
  /^[^\s:]+:\d{1,5}$/.test(endpoint) || /^\[[^\]]+\]:\d{1,5}$/.test(endpoint);

/** Build the machine's starting context; bad options throw a RangeError naming the option. */
export const initialConnectionContext = (input: ClientConnectionInput): ClientConnectionContext => {
  if (input.endpoints.length === 0) {
    throw new RangeError('client connection needs at least one cluster endpoint (host:port) in `endpoints`');
  }
  for (const endpoint of input.endpoints) {
    if (!isEndpoint(endpoint)) {
      throw new RangeError(`client connection endpoint '${endpoint}' is not host:port (e.g. 10.0.0.5:9010)`);
    }
  }
  const backoffBaseMs = positiveSetting('backoffBaseMs', input.backoffBaseMs ?? 50);
  const backoffMaxMs = positiveSetting('backoffMaxMs', input.backoffMaxMs ?? 5000);
  if (backoffMaxMs < backoffBaseMs) {
    throw new RangeError(
      `client connection option backoffMaxMs (${backoffMaxMs}) is below backoffBaseMs (${backoffBaseMs})`,
    );
  }
  const [endpoints, random] = seededOrder(input.endpoints, seedRandom(input.seed));
  return {
    endpoints,
    target: endpoints[0],
    endpointIndex: 0,
    avoid: null,
    avoidUntil: input.now,
    leaderId: null,
    sessionId: null,
    resumeToken: null,
    attempt: 0,
    redirects: 0,
    random,
    retryAt: input.now,
    connectStartedAt: input.now,
    lastSentAt: input.now,
    probedAt: Number.NEGATIVE_INFINITY,
    backoffBaseMs,
    backoffMaxMs,
    leaderSearchMaxMs: positiveSetting('leaderSearchMaxMs', input.leaderSearchMaxMs ?? 150),
    connectTimeoutMs: positiveSetting('connectTimeoutMs', input.connectTimeoutMs ?? 2000),
    keepaliveIntervalMs: positiveSetting('keepaliveIntervalMs', input.keepaliveIntervalMs ?? 1000),
    replyTimeoutMs: positiveSetting('replyTimeoutMs', input.replyTimeoutMs ?? 750),
    canAnswerChallenge: input.canAnswerChallenge ?? true,
    maxRedirects: positiveSetting('maxRedirects', input.maxRedirects ?? 5, true),
    maxAttempts: positiveSetting('maxAttempts', input.maxAttempts ?? 0, true),
    lastError: null,
    closeReason: null,
  };
};

/** Schedule the next attempt after a failure: backoff, and (if `rotate`) the next member to try. */
export const scheduleRetry = (
  context: ClientConnectionContext,
  now: number,
  rotate: boolean,
  maxMs = context.backoffMaxMs,
) => {
  const [delay, random] = backoffDelay(
    context.attempt,
    context.backoffBaseMs,
    Math.max(context.backoffBaseMs, Math.min(maxMs, context.backoffMaxMs)),
    context.random,
  );
  const endpointIndex = rotate ? nextEndpointIndex(context) : context.endpointIndex;
  return {
    attempt: context.attempt + 1,
    random,
    retryAt: now + delay,
    endpointIndex,
    target: rotate ? context.endpoints[endpointIndex] : context.target,
    leaderId: rotate ? null : context.leaderId,
    redirects: 0,
  };
};

/** How long the connection has brought nothing while a command sent on it awaits its reply (0: none awaits). */
export const silenceWhileAwaiting = (event: ClientConnectionEvent): number =>
  event.type === 'TICK' && event.awaitingSince != null
    ? event.now - Math.max(event.heardAt ?? Number.NEGATIVE_INFINITY, event.awaitingSince)
    : 0;
