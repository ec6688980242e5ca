// The client library's connection to a cluster, as a statechart.
//
//   CONNECTING ─OK→ CONNECTED ─CLOSE→ CLOSING ─CLOSED→ CLOSED
//     │  ├─REDIRECT→ CONNECTING (to the leader it names, C6)
//     │  ├─RESUME_REFUSED→ CONNECTING (the same member, for a new session)
//     │  ├─ERROR (retryable: session or connection limit)→ BACKING_OFF ─TICK→ CONNECTING (same member)
//     │  └─NO_LEADER / CONNECTION_LOST / connect timeout→ AWAITING_NEW_LEADER ─TICK→ CONNECTING (next member)
//   CONNECTED ─CONNECTION_LOST / NO_LEADER / retryable ERROR→ AWAITING_NEW_LEADER;
//             ─REDIRECT / NEW_LEADER→ CONNECTING
//
// Which member is next: the client tries the endpoints in an order drawn from its seed (so clients
// spread over the members), and a member it has just left because it failed as the leader (the
// connection was lost or went silent, or the member stepped down) is skipped while another remains —
// so a client never waits out a partition on an isolated or frozen former leader — and for one connect
// timeout a REDIRECT back to it is taken as stale (the member that sent it has not noticed yet). A
// member that knows of no leader says so (NO_LEADER) and the client moves on to the next one.
//
// Waits are exponential backoff with jitter drawn from a seeded generator kept in the context, so a
// seed reproduces a client's whole retry schedule (and clients with different seeds spread out
// instead of reconnecting in a burst, R5). The machine is pure: time arrives as `now` (monotonic ms)
// in every event, and what the library must do (dial, send, close) is expressed as named actions
// with no implementation; the library runs it with XState's `transition()` or an actor whose
// action implementations it provides.

import { assign, setup } from 'xstate';
import type { RandomState } from './random.ts';
import { nextUint32, seedRandom } from './random.ts';

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
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  readonly leaderSearchMaxMs: number;
  readonly connectTimeoutMs: number;
  readonly keepaliveIntervalMs: number;
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
  | { type: 'TICK'; now: number }
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

/**
 * Exponential backoff with "equal jitter": half of min(max, base·2^attempt) is fixed, the other half
 * is uniform, so retries never bunch at zero yet still spread out. Pure: returns the next generator.
 */
export const backoffDelay = (
  attempt: number,
  baseMs: number,
  maxMs: number,
  random: RandomState,
): [number, RandomState] => {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
  const [value, next] = nextUint32(random);
  const half = ceiling / 2;
  return [Math.round(half + (value / 0x100000000) * half), next];
};

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

/** Build the machine's starting context; bad options throw a RangeError naming the option. */
export const initialConnectionContext = (input: ClientConnectionInput): ClientConnectionContext => {
  if (input.endpoints.length === 0) {
    throw new RangeError('client connection needs at least one cluster endpoint (host:port) in `endpoints`');
  }
  for (const endpoint of input.endpoints) {
    if (!/^[^\s:]+:\d{1,5}$/.test(endpoint) && !/^\[[^\]]+\]:\d{1,5}$/.test(endpoint)) {
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
    backoffBaseMs,
    backoffMaxMs,
    leaderSearchMaxMs: positiveSetting('leaderSearchMaxMs', input.leaderSearchMaxMs ?? 150),
    connectTimeoutMs: positiveSetting('connectTimeoutMs', input.connectTimeoutMs ?? 2000),
    keepaliveIntervalMs: positiveSetting('keepaliveIntervalMs', input.keepaliveIntervalMs ?? 1000),
    maxRedirects: positiveSetting('maxRedirects', input.maxRedirects ?? 5, true),
    maxAttempts: positiveSetting('maxAttempts', input.maxAttempts ?? 0, true),
    lastError: null,
    closeReason: null,
  };
};

/** Schedule the next attempt after a failure: backoff, and (if `rotate`) the next member to try. */
const scheduleRetry = (
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

export const clientConnectionMachine = setup({
  types: {
    context: {} as ClientConnectionContext,
    events: {} as ClientConnectionEvent,
    input: {} as ClientConnectionInput,
  },
  guards: {
    canFollowRedirect: ({ context }) => context.redirects < context.maxRedirects,
    /**
     * A member that has not yet noticed the leader is gone (its heartbeat timeout runs a little behind the
     * client's) names it still; dialling a frozen member would cost a whole connect timeout.
     */
    isStaleRedirect: ({ context, event }) =>
      event.type === 'REDIRECT' && event.endpoint === context.avoid && event.now < context.avoidUntil,
    isRetryable: ({ event }) => event.type === 'ERROR' && event.retryable,
    isConnectOverdue: ({ context, event }) =>
      event.now - context.connectStartedAt >= context.connectTimeoutMs,
    isKeepaliveDue: ({ context, event }) => event.now - context.lastSentAt >= context.keepaliveIntervalMs,
    isRetryDue: ({ context, event }) => event.now >= context.retryAt,
    isGivingUp: ({ context, event }) =>
      event.now >= context.retryAt && context.maxAttempts > 0 && context.attempt >= context.maxAttempts,
  },
  actions: {
    // Effects, carried out by the client library.
    /** Open a connection to `endpoint` and send CONNECT, resuming `resumeSessionId` (with its token) if not null. */
    dial: (
      _,
      _params: { endpoint: string; resumeSessionId: number | null; resumeToken: Uint8Array | null },
    ) => {},
    closeSocket: () => {},
    answerChallenge: (_, _params: { challenge: Uint8Array }) => {},
    sendKeepalive: (_, _params: { sessionId: number | null }) => {},
    resendUnacknowledged: (_, _params: { sessionId: number | null }) => {},
    /** The session cannot be resumed: what was sent on it has an unknown outcome; the rest may go on. */
    abandonSession: (_, _params: { sessionId: number; detail: string }) => {},
    sendClose: (_, _params: { sessionId: number | null }) => {},
    notifyClosed: (_, _params: { reason: string | null }) => {},
    // Context updates.
    recordOpen: assign(({ context, event }) =>
      event.type === 'OK'
        ? {
            sessionId: event.sessionId,
            resumeToken: event.resumeToken ?? context.resumeToken,
            leaderId: event.leaderId,
            attempt: 0,
            redirects: 0,
            avoid: null,
            lastError: null,
          }
        : {},
    ),
    forgetSession: assign({ sessionId: null, resumeToken: null }),
    /** The member just tried failed as the leader: the rotation skips it while another remains. */
    avoidTarget: assign({
      avoid: ({ context }) => context.target,
      avoidUntil: ({ context, event }) => event.now + context.connectTimeoutMs,
    }),
    recordStaleRedirect: assign({
      lastError: ({ context, event }) =>
        event.type === 'REDIRECT'
          ? `${context.target} named ${event.endpoint} as the leader, which this client has just left: trying another member`
          : context.lastError,
    }),
    followLeader: assign(({ context, event }) =>
      event.type === 'REDIRECT' || event.type === 'NEW_LEADER'
        ? {
            target: event.endpoint,
            // Rotate on from the leader's place, so leaving it goes to the member after it.
            endpointIndex: context.endpoints.includes(event.endpoint)
              ? context.endpoints.indexOf(event.endpoint)
              : context.endpointIndex,
            leaderId: event.leaderId,
            redirects: context.redirects + (event.type === 'REDIRECT' ? 1 : 0),
            connectStartedAt: event.now,
          }
        : {},
    ),
    retryOtherMember: assign(({ context, event }) => scheduleRetry(context, event.now, true)),
    // A live member knows of no leader: an election is running, so ask the next one soon (issue 10).
    searchOtherMember: assign(({ context, event }) =>
      scheduleRetry(context, event.now, true, context.leaderSearchMaxMs),
    ),
    retrySameMember: assign(({ context, event }) => scheduleRetry(context, event.now, false)),
    startAttempt: assign({ connectStartedAt: ({ event }) => event.now }),
    recordError: assign({ lastError: ({ event }) => ('detail' in event ? event.detail : null) }),
    recordConnectTimeout: assign({
      lastError: ({ context }) => `no answer from ${context.target} within ${context.connectTimeoutMs} ms`,
    }),
    recordSent: assign({ lastSentAt: ({ event }) => event.now }),
    recordClose: assign({
      closeReason: ({ context, event }) => {
        switch (event.type) {
          case 'CLOSED':
            return event.reason;
          case 'CLOSE':
            return 'CLIENT_ACTION';
          case 'AUTHENTICATION_REJECTED':
            return `AUTHENTICATION_REJECTED: ${event.detail}`;
          case 'ERROR':
            return `ERROR: ${event.detail}`;
          case 'TICK':
            return (
              context.closeReason ??
              `gave up after ${context.attempt} attempts: ${context.lastError ?? 'no leader reachable'}`
            );
          default:
            return context.closeReason ?? event.type;
        }
      },
    }),
  },
}).createMachine({
  id: 'clientConnection',
  initial: 'CONNECTING',
  context: ({ input }) => initialConnectionContext(input),
  states: {
    CONNECTING: {
      // Dial the target and send CONNECT; wait for OK.
      entry: {
        type: 'dial',
        params: ({ context }) => ({
          endpoint: context.target,
          resumeSessionId: context.sessionId,
          resumeToken: context.resumeToken,
        }),
      },
      on: {
        OK: { target: 'CONNECTED', actions: 'recordOpen' },
        CHALLENGE: {
          actions: { type: 'answerChallenge', params: ({ event }) => ({ challenge: event.challenge }) },
        },
        REDIRECT: [
          {
            guard: 'isStaleRedirect',
            target: 'AWAITING_NEW_LEADER',
            actions: ['recordStaleRedirect', 'closeSocket', 'searchOtherMember'],
          },
          {
            guard: 'canFollowRedirect',
            target: 'CONNECTING',
            reenter: true,
            actions: ['closeSocket', 'followLeader'],
          },
          { target: 'AWAITING_NEW_LEADER', actions: ['closeSocket', 'retryOtherMember'] },
        ],
        // This member knows of no leader: another may (issue 10: never wait on an isolated member).
        NO_LEADER: {
          target: 'AWAITING_NEW_LEADER',
          actions: ['recordError', 'closeSocket', 'searchOtherMember'],
        },
        // The session is gone or not ours: give up on it, and open a new one on the same member.
        RESUME_REFUSED: {
          target: 'CONNECTING',
          reenter: true,
          actions: [
            'recordError',
            'closeSocket',
            {
              type: 'abandonSession',
              params: ({ event }) => ({ sessionId: event.sessionId, detail: event.detail }),
            },
            'forgetSession',
            'startAttempt',
          ],
        },
        ERROR: [
          {
            guard: 'isRetryable',
            target: 'BACKING_OFF',
            actions: ['recordError', 'closeSocket', 'retrySameMember'],
          },
          { target: 'CLOSED', actions: ['recordError', 'recordClose', 'closeSocket'] },
        ],
        AUTHENTICATION_REJECTED: { target: 'CLOSED', actions: ['recordError', 'recordClose', 'closeSocket'] },
        CONNECTION_LOST: { target: 'AWAITING_NEW_LEADER', actions: ['avoidTarget', 'retryOtherMember'] },
        TICK: {
          guard: 'isConnectOverdue',
          target: 'AWAITING_NEW_LEADER',
          actions: ['recordConnectTimeout', 'closeSocket', 'avoidTarget', 'retryOtherMember'],
        },
        CLOSE: { target: 'CLOSED', actions: ['recordClose', 'closeSocket'] },
      },
    },
    CONNECTED: {
      // A session is open: resend whatever was not acknowledged before (C1, C3).
      entry: [
        'recordSent',
        { type: 'resendUnacknowledged', params: ({ context }) => ({ sessionId: context.sessionId }) },
      ],
      on: {
        TICK: {
          guard: 'isKeepaliveDue',
          actions: [
            'recordSent',
            { type: 'sendKeepalive', params: ({ context }) => ({ sessionId: context.sessionId }) },
          ],
        },
        MESSAGE_SENT: { actions: 'recordSent' },
        // The member stepped down and names the leader, or a new leader was announced.
        REDIRECT: { target: 'CONNECTING', actions: ['closeSocket', 'followLeader'] },
        NEW_LEADER: { target: 'CONNECTING', actions: ['closeSocket', 'followLeader'] },
        // The leader died, froze (the library finds the connection silent) or stepped down with no
        // successor known: leave it, and try the other members first.
        CONNECTION_LOST: { target: 'AWAITING_NEW_LEADER', actions: ['avoidTarget', 'retryOtherMember'] },
        NO_LEADER: {
          target: 'AWAITING_NEW_LEADER',
          actions: ['recordError', 'closeSocket', 'avoidTarget', 'searchOtherMember'],
        },
        ERROR: [
          {
            guard: 'isRetryable',
            target: 'AWAITING_NEW_LEADER',
            actions: ['recordError', 'closeSocket', 'avoidTarget', 'retryOtherMember'],
          },
          { target: 'CLOSED', actions: ['recordError', 'recordClose', 'closeSocket'] },
        ],
        // The cluster closed the session (TIMEOUT, SERVICE_ACTION).
        CLOSED: { target: 'CLOSED', actions: ['recordClose', 'closeSocket'] },
        CLOSE: { target: 'CLOSING', actions: 'recordClose' },
      },
    },
    AWAITING_NEW_LEADER: {
      // The leader is gone or unknown: wait out the backoff, then try the next member.
      on: {
        TICK: [
          { guard: 'isGivingUp', target: 'CLOSED', actions: 'recordClose' },
          { guard: 'isRetryDue', target: 'CONNECTING', actions: 'startAttempt' },
        ],
        NEW_LEADER: { target: 'CONNECTING', actions: 'followLeader' },
        CLOSE: { target: 'CLOSED', actions: 'recordClose' },
      },
    },
    BACKING_OFF: {
      // The member answered but refused for now (session or connection limit): retry it.
      on: {
        TICK: [
          { guard: 'isGivingUp', target: 'CLOSED', actions: 'recordClose' },
          { guard: 'isRetryDue', target: 'CONNECTING', actions: 'startAttempt' },
        ],
        NEW_LEADER: { target: 'CONNECTING', actions: 'followLeader' },
        CLOSE: { target: 'CLOSED', actions: 'recordClose' },
      },
    },
    CLOSING: {
      // CLOSE was sent; wait for the cluster's CLOSED (or give up after the connect timeout).
      entry: [
        'startAttempt',
        { type: 'sendClose', params: ({ context }) => ({ sessionId: context.sessionId }) },
      ],
      on: {
        CLOSED: { target: 'CLOSED', actions: 'closeSocket' },
        CONNECTION_LOST: { target: 'CLOSED' },
        TICK: { guard: 'isConnectOverdue', target: 'CLOSED', actions: 'closeSocket' },
      },
    },
    CLOSED: {
      type: 'final',
      entry: { type: 'notifyClosed', params: ({ context }) => ({ reason: context.closeReason }) },
    },
  },
});

export type ClientConnectionMachine = typeof clientConnectionMachine;

export const CLIENT_CONNECTION_STATES = [
  'CONNECTING',
  'CONNECTED',
  'AWAITING_NEW_LEADER',
  'BACKING_OFF',
  'CLOSING',
  'CLOSED',
] as const;

export type ClientConnectionState = (typeof CLIENT_CONNECTION_STATES)[number];
