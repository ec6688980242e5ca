// The client library's connection to a cluster, as a statechart.
//
//   CONNECTING ─OK→ CONNECTED ─CLOSE→ CLOSING ─CLOSED→ CLOSED
//     │  ├─REDIRECT→ CONNECTING (to the leader it names, C6)
//     │  ├─RESUME_REFUSED→ CONNECTING (the same member, for a new session)
//     │  ├─ERROR (retryable: session or connection limit)→ BACKING_OFF ─TICK→ CONNECTING (same member)
//     │  └─NO_LEADER / CONNECTION_LOST / connect timeout→ AWAITING_NEW_LEADER ─TICK→ CONNECTING (next member)
//   CONNECTED ─CONNECTION_LOST / NO_LEADER / retryable ERROR / TICK (leader silent)→ AWAITING_NEW_LEADER;
//             ─REDIRECT / NEW_LEADER→ CONNECTING
//
// A leader that is alive answers a KEEPALIVE at once, committing or not; one that is frozen or cut off
// answers nothing. So while a command sent on the connection awaits its reply and the connection has
// brought nothing for half the reply timeout, the client probes with a KEEPALIVE; after the whole reply
// timeout of such silence it leaves the member as a failed leader. The library reports the raw facts in
// every TICK (when the connection last brought a frame, since when the oldest sent command awaits its
// reply); the guards decide.
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
import type {
  ClientConnectionContext,
  ClientConnectionEvent,
  ClientConnectionInput,
} from './client-connection-context.ts';
import {
  initialConnectionContext,
  scheduleRetry,
  silenceWhileAwaiting,
} from './client-connection-context.ts';

export type {
  ClientConnectionContext,
  ClientConnectionEffectAction,
  ClientConnectionEvent,
  ClientConnectionInput,
} from './client-connection-context.ts';
export {
  initialConnectionContext,
  nextEndpointIndex,
  seededOrder,
  silenceWhileAwaiting,
} from './client-connection-context.ts';

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
    canAnswerChallenge: ({ context }) => context.canAnswerChallenge,
    isConnectOverdue: ({ context, event }) =>
      event.now - context.connectStartedAt >= context.connectTimeoutMs,
    isKeepaliveDue: ({ context, event }) => event.now - context.lastSentAt >= context.keepaliveIntervalMs,
    /** The leader froze, died without a word, or is cut off: nothing came back for the whole reply timeout. */
    isLeaderSilent: ({ context, event }) => silenceWhileAwaiting(event) >= context.replyTimeoutMs,
    /** Silent for half the reply timeout, and not probed for as long: ask for a sign of life. */
    isProbeDue: ({ context, event }) =>
      silenceWhileAwaiting(event) >= context.replyTimeoutMs / 2 &&
      event.now - context.probedAt >= context.replyTimeoutMs / 2,
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
    recordNoSecret: assign(() => {
      const detail = 'the cluster asked for challenge–response, but no secret was configured';
      return { lastError: detail, closeReason: `AUTHENTICATION_REJECTED: ${detail}` };
    }),
    recordProbe: assign({ probedAt: ({ event }) => event.now, lastSentAt: ({ event }) => event.now }),
    recordSilence: assign({
      lastError: ({ context }) =>
        `no reply nor any frame from ${context.target} within ${context.replyTimeoutMs} ms: leaving it`,
    }),
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
        CHALLENGE: [
          {
            guard: 'canAnswerChallenge',
            actions: { type: 'answerChallenge', params: ({ event }) => ({ challenge: event.challenge }) },
          },
          { target: 'CLOSED', actions: ['recordNoSecret', 'closeSocket'] },
        ],
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
        TICK: [
          // Drop it as if it had been lost: try the other members first; on OK everything unanswered is
          // sent again (the service answers a command it already applied with its original reply, C2).
          {
            guard: 'isLeaderSilent',
            target: 'AWAITING_NEW_LEADER',
            actions: ['recordSilence', 'closeSocket', 'avoidTarget', 'retryOtherMember'],
          },
          {
            guard: 'isProbeDue',
            actions: [
              'recordProbe',
              { type: 'sendKeepalive', params: ({ context }) => ({ sessionId: context.sessionId }) },
            ],
          },
          {
            guard: 'isKeepaliveDue',
            actions: [
              'recordSent',
              { type: 'sendKeepalive', params: ({ context }) => ({ sessionId: context.sessionId }) },
            ],
          },
        ],
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
