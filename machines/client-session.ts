// One client session as the cluster member sees it, after Aeron Cluster's ClusterSession states.
//
//   INIT ─CONNECT_REQUEST→ CONNECTING ─VALIDATE→ CONNECTED ─AUTHENTICATED→ AUTHENTICATED
//                              │                   │  └─CHALLENGE_ISSUED→ CHALLENGED ─AUTHENTICATED→ …
//                              └→ INVALID           └─AUTH_REJECTED→ REJECTED
//   AUTHENTICATED ─APPENDED_OPEN→ OPEN ─OPEN_COMMITTED→ (OK sent) ─CLOSE_REQUESTED/TIMEOUT_CHECK→ CLOSING
//   CLOSING ─CLOSE_COMMITTED→ CLOSED;  CLOSING ─LEADERSHIP_LOST / CLOSE_REFUSED→ OPEN (asked again later)
//   INIT ─OPEN_COMMITTED→ OPEN   (a session learnt from the log: followers, replay, snapshots)
//   CONNECTED/CHALLENGED ─AUTHENTICATED [resume]→ OPEN   (a client back after a failover, C1: the
//                           handshake takes over the committed session; nothing is appended)
//   CONNECTED/CHALLENGED ─AUTHENTICATED [resume refused: closed meanwhile, another principal's]→ REJECTED
//
// Session open and close are log entries, so every member's services see the same sessions; the
// leader drives a session through the authentication states and appends, every member applies.
//
// The machine is pure: time arrives in events (`now`, a monotonic clock in ms), and what must happen
// outside (tell the client, append to the log, close the connection) is expressed as named actions
// with no implementation. The session manager (actors/sessions) runs one clock-less actor per session
// and implements those actions as effects; `transition()` gives the same result, for tests and tools.

import { assign, setup } from 'xstate';

/** The version of the client ↔ cluster session protocol. Different majors cannot talk. */
export interface ProtocolVersion {
  readonly major: number;
  readonly minor: number;
}

/** The protocol version this build speaks. */
export const SESSION_PROTOCOL_VERSION: ProtocolVersion = { major: 1, minor: 0 };

export const formatProtocolVersion = (version: ProtocolVersion): string =>
  `${version.major}.${version.minor}`;

/** Two sides can talk when they share a major version (minors only add optional fields). */
export const isProtocolCompatible = (client: ProtocolVersion, server: ProtocolVersion): boolean =>
  client.major === server.major;

/** Why a session closed. The numeric codes are written into SESSION_CLOSE entries: never renumber. */
export const CloseReason = {
  /** The client asked to close. */
  CLIENT_ACTION: 1,
  /** A service (or an operator through one) closed the session. */
  SERVICE_ACTION: 2,
  /** No keepalive or message arrived within the session timeout (C5). */
  TIMEOUT: 3,
  /**
   * The session asked to be closed once its connection is gone (CONNECT's closeOnDisconnectMs), and the
   * leader that saw its connection close saw no resume within that time (a SIGKILLed gateway, G2).
   */
  DISCONNECTED: 4,
} as const;

export type CloseReasonName = keyof typeof CloseReason;

export const closeReasonName = (code: number): CloseReasonName | undefined =>
  (Object.keys(CloseReason) as CloseReasonName[]).find((name) => CloseReason[name] === code);

/** Where the leader is, as far as this member knows. */
export type LeaderView =
  | { readonly kind: 'SELF' }
  | { readonly kind: 'OTHER'; readonly leaderId: number; readonly endpoint: string }
  | { readonly kind: 'UNKNOWN' };

/**
 * How a refused connect is answered: ERROR (retryable or not), REDIRECT to the leader, NO_LEADER (this
 * member knows of none: the client tries another member), or RESUME_REFUSED (the session asked for
 * cannot be taken over: the client opens a new one).
 */
export type Refusal =
  | { readonly code: 'ERROR'; readonly detail: string; readonly retryable: boolean }
  | { readonly code: 'REDIRECT'; readonly leaderId: number; readonly endpoint: string }
  | { readonly code: 'NO_LEADER'; readonly detail: string }
  | { readonly code: 'RESUME_REFUSED'; readonly sessionId: number; readonly detail: string };

export interface ClientSessionContext {
  /** The cluster-wide id: the log index of the SESSION_OPEN entry; null until appended. */
  sessionId: number | null;
  /** The member-local connection the session talks through; null when detached. */
  connectionId: number | null;
  /** The committed session a reconnecting client asks to take over (C1); null for a new one. */
  resumeSessionId: number | null;
  clientVersion: ProtocolVersion | null;
  principal: string | null;
  /** Monotonic time of the last keepalive, message or (re)start of the clock. */
  lastActivityAt: number;
  /** Idle time after which the leader closes the session with TIMEOUT (C5). */
  sessionTimeoutMs: number;
  /** Time a connect may spend authenticating before it is rejected. */
  authenticationTimeoutMs: number;
  /** Set once the SESSION_OPEN entry is committed (the client has been, or needs no, OK). */
  openCommitted: boolean;
  closeReason: CloseReasonName | null;
  /** Why the connect was refused (INVALID) or rejected (REJECTED). */
  refusal: Refusal | null;
}

export interface ClientSessionInput {
  sessionTimeoutMs: number;
  authenticationTimeoutMs?: number;
}

export type ClientSessionEvent =
  | {
      type: 'CONNECT_REQUEST';
      now: number;
      connectionId: number;
      clientVersion: ProtocolVersion;
      resumeSessionId?: number | null;
    }
  | {
      type: 'VALIDATE';
      now: number;
      serverVersion: ProtocolVersion;
      leader: LeaderView;
      /** Sessions open or opening on this member, not counting this one. */
      activeSessions: number;
      maxSessions: number;
      /** For a resume: whether the session asked for is OPEN on this member. */
      resumable: boolean;
      /** For a resume: whether the client proved it owns the session (the token issued at open). */
      resumeProven: boolean;
    }
  | {
      type: 'AUTHENTICATED';
      now: number;
      principal: string;
      /**
       * For a resume, what this member knows of the session asked for, as of now (it may have closed, or
       * be another principal's, while the client authenticated). Absent: nothing against the resume.
       */
      resumed?: { readonly open: boolean; readonly principal: string };
    }
  | { type: 'CHALLENGE_ISSUED'; now: number; challenge: Uint8Array }
  | { type: 'AUTH_REJECTED'; now: number; detail: string }
  | { type: 'APPENDED_OPEN'; now: number; sessionId: number }
  | { type: 'OPEN_COMMITTED'; now: number; sessionId: number; principal: string }
  | { type: 'KEEPALIVE'; now: number }
  | { type: 'TIMEOUT_CHECK'; now: number }
  | { type: 'CLOSE_REQUESTED'; now: number; reason: CloseReasonName }
  | { type: 'CLOSE_COMMITTED'; now: number; reason: CloseReasonName }
  | { type: 'CONNECTION_LOST'; now: number }
  | { type: 'CONNECTION_ATTACHED'; now: number; connectionId: number }
  | { type: 'LEADERSHIP_ACQUIRED'; now: number }
  | { type: 'LEADERSHIP_LOST'; now: number }
  /** The leader could not append the close (a leadership transfer under way, the cluster suspended). */
  | { type: 'CLOSE_REFUSED'; now: number };

/** Names of the effect actions the host must carry out (they have no implementation here). */
export type ClientSessionEffectAction =
  | 'notifyRefused'
  | 'sendChallenge'
  | 'notifyRejected'
  | 'requestOpenAppend'
  | 'notifyOpened'
  | 'requestCloseAppend'
  | 'notifyClosed';

/** True when a session has seen nothing for its whole timeout (the C5 rule). */
export const isSessionIdle = (
  context: Pick<ClientSessionContext, 'lastActivityAt' | 'sessionTimeoutMs'>,
  now: number,
): boolean => now - context.lastActivityAt >= context.sessionTimeoutMs;

const versionRefusal = (client: ProtocolVersion | null, server: ProtocolVersion): Refusal => ({
  code: 'ERROR',
  retryable: false,
  detail:
    `client protocol version ${client ? formatProtocolVersion(client) : 'missing'} is incompatible ` +
    `with the cluster's ${formatProtocolVersion(server)}: upgrade the client library to a ` +
    `${server.major}.x release`,
});

/** What a member that knows of no leader answers: the client tries another member at once. */
export const NO_LEADER: Refusal = {
  code: 'NO_LEADER',
  detail:
    'this member knows of no leader (an election is running, or it is cut off from the others): try another member',
};

/** Decide whether a connect may proceed on this member; null means it may. Pure. */
export const refusalFor = (
  context: Pick<ClientSessionContext, 'clientVersion' | 'resumeSessionId'>,
  event: Extract<ClientSessionEvent, { type: 'VALIDATE' }>,
): Refusal | null => {
  if (!context.clientVersion || !isProtocolCompatible(context.clientVersion, event.serverVersion)) {
    return versionRefusal(context.clientVersion, event.serverVersion);
  }
  if (event.leader.kind === 'UNKNOWN') return NO_LEADER;
  if (event.leader.kind === 'OTHER') {
    return { code: 'REDIRECT', leaderId: event.leader.leaderId, endpoint: event.leader.endpoint };
  }
  const sessionId = context.resumeSessionId;
  if (sessionId !== null) {
    // A resumed session already holds its slot, so the limit does not apply. Checked before any
    // authentication, so a refused resume never touches the owner's live connection.
    if (!event.resumable) {
      return {
        code: 'RESUME_REFUSED',
        sessionId,
        detail:
          `session ${sessionId} is not open (closed, timed out or unknown): ` +
          'connect without resuming to open a new session',
      };
    }
    if (!event.resumeProven) {
      return {
        code: 'RESUME_REFUSED',
        sessionId,
        detail:
          `session ${sessionId} cannot be resumed: the resume token does not match the one issued ` +
          'when it opened (only its owner may resume it); connect without resuming to open your own',
      };
    }
    return null;
  }
  if (event.activeSessions >= event.maxSessions) {
    return {
      code: 'ERROR',
      retryable: true,
      detail:
        `session limit reached (maxSessions=${event.maxSessions}): retry later with backoff, ` +
        'or raise maxSessions in the cluster configuration',
    };
  }
  return null;
};

/** Why an authenticated client may not take over the session it asked for; null when it may. Pure. */
export const resumeRefusal = (
  context: Pick<ClientSessionContext, 'resumeSessionId'>,
  event: ClientSessionEvent,
): string | null => {
  const sessionId = context.resumeSessionId;
  if (sessionId === null || event.type !== 'AUTHENTICATED' || event.resumed === undefined) return null;
  if (!event.resumed.open)
    return `session ${sessionId} closed while authenticating: connect without resuming to open a new session`;
  if (event.resumed.principal !== event.principal)
    return `session ${sessionId} belongs to another principal: connect without resuming to open your own`;
  return null;
};

export const clientSessionMachine = setup({
  types: {
    context: {} as ClientSessionContext,
    events: {} as ClientSessionEvent,
    input: {} as ClientSessionInput,
  },
  guards: {
    isRequestAcceptable: ({ context, event }) =>
      event.type === 'VALIDATE' && refusalFor(context, event) === null,
    isIdle: ({ context, event }) => isSessionIdle(context, event.now),
    isAuthenticationOverdue: ({ context, event }) =>
      event.now - context.lastActivityAt >= context.authenticationTimeoutMs,
    isOpenPending: ({ context }) => !context.openCommitted,
    isResume: ({ context }) => context.resumeSessionId !== null,
    isResumeRefused: ({ context, event }) => resumeRefusal(context, event) !== null,
  },
  actions: {
    // Effects, carried out by the host. Each is listed after the context updates it reads.
    notifyRefused: () => {},
    sendChallenge: () => {},
    notifyRejected: () => {},
    requestOpenAppend: () => {},
    notifyOpened: () => {},
    requestCloseAppend: () => {},
    notifyClosed: () => {},
    // Context updates.
    recordConnect: assign(({ event }) =>
      event.type === 'CONNECT_REQUEST'
        ? {
            connectionId: event.connectionId,
            clientVersion: event.clientVersion,
            resumeSessionId: event.resumeSessionId ?? null,
            lastActivityAt: event.now,
          }
        : {},
    ),
    recordRefusal: assign(({ context, event }) =>
      event.type === 'VALIDATE' ? { refusal: refusalFor(context, event) } : {},
    ),
    recordAuthenticated: assign(({ event }) =>
      event.type === 'AUTHENTICATED' ? { principal: event.principal } : {},
    ),
    recordRejection: assign(({ context, event }) => ({
      refusal: {
        code: 'ERROR',
        retryable: false,
        detail:
          event.type === 'AUTH_REJECTED'
            ? event.detail
            : event.type === 'AUTHENTICATED'
              ? (resumeRefusal(context, event) ?? 'resume refused')
              : `authentication not completed within ${context.authenticationTimeoutMs} ms: ` +
                'answer the challenge sooner or raise authenticationTimeoutMs',
      } satisfies Refusal,
    })),
    recordAppended: assign(({ event }) =>
      event.type === 'APPENDED_OPEN' ? { sessionId: event.sessionId, openCommitted: false } : {},
    ),
    recordCommittedOpen: assign(({ event }) =>
      event.type === 'OPEN_COMMITTED'
        ? {
            sessionId: event.sessionId,
            principal: event.principal,
            openCommitted: true,
            lastActivityAt: event.now,
          }
        : {},
    ),
    markCommitted: assign({ openCommitted: true }),
    recordResumed: assign(({ context, event }) => ({
      sessionId: context.resumeSessionId,
      openCommitted: true,
      lastActivityAt: event.now,
    })),
    touch: assign({ lastActivityAt: ({ event }) => event.now }),
    recordCloseRequest: assign(({ event }) =>
      event.type === 'CLOSE_REQUESTED'
        ? { closeReason: event.reason }
        : event.type === 'TIMEOUT_CHECK'
          ? { closeReason: 'TIMEOUT' as const }
          : {},
    ),
    recordClose: assign(({ event }) =>
      event.type === 'CLOSE_COMMITTED' ? { closeReason: event.reason } : {},
    ),
    clearCloseRequest: assign({ closeReason: null }),
    detach: assign({ connectionId: null }),
    attach: assign(({ event }) =>
      event.type === 'CONNECTION_ATTACHED'
        ? { connectionId: event.connectionId, lastActivityAt: event.now }
        : {},
    ),
  },
}).createMachine({
  id: 'clientSession',
  initial: 'INIT',
  context: ({ input }) => ({
    sessionId: null,
    connectionId: null,
    resumeSessionId: null,
    clientVersion: null,
    principal: null,
    lastActivityAt: 0,
    sessionTimeoutMs: input.sessionTimeoutMs,
    authenticationTimeoutMs: input.authenticationTimeoutMs ?? input.sessionTimeoutMs,
    openCommitted: false,
    closeReason: null,
    refusal: null,
  }),
  states: {
    INIT: {
      on: {
        CONNECT_REQUEST: { target: 'CONNECTING', actions: 'recordConnect' },
        // A session learnt from a committed entry (followers, replay, snapshot load).
        OPEN_COMMITTED: { target: 'OPEN', actions: 'recordCommittedOpen' },
      },
    },
    CONNECTING: {
      // The request is checked: protocol version, leadership, session limit.
      on: {
        VALIDATE: [
          { guard: 'isRequestAcceptable', target: 'CONNECTED' },
          { target: 'INVALID', actions: ['recordRefusal', 'notifyRefused'] },
        ],
        CONNECTION_LOST: { target: 'CLOSED', actions: 'detach' },
      },
    },
    CONNECTED: {
      // The authenticator is consulted.
      on: {
        AUTHENTICATED: [
          { guard: 'isResumeRefused', target: 'REJECTED', actions: ['recordRejection', 'notifyRejected'] },
          {
            guard: 'isResume',
            target: 'OPEN',
            actions: ['recordAuthenticated', 'recordResumed', 'notifyOpened'],
          },
          { target: 'AUTHENTICATED', actions: 'recordAuthenticated' },
        ],
        CHALLENGE_ISSUED: { target: 'CHALLENGED', actions: 'sendChallenge' },
        AUTH_REJECTED: { target: 'REJECTED', actions: ['recordRejection', 'notifyRejected'] },
        TIMEOUT_CHECK: {
          guard: 'isAuthenticationOverdue',
          target: 'REJECTED',
          actions: ['recordRejection', 'notifyRejected'],
        },
        CONNECTION_LOST: { target: 'CLOSED', actions: 'detach' },
      },
    },
    CHALLENGED: {
      // The client must answer the challenge; the authenticator judges the answer.
      on: {
        AUTHENTICATED: [
          { guard: 'isResumeRefused', target: 'REJECTED', actions: ['recordRejection', 'notifyRejected'] },
          {
            guard: 'isResume',
            target: 'OPEN',
            actions: ['recordAuthenticated', 'recordResumed', 'notifyOpened'],
          },
          { target: 'AUTHENTICATED', actions: 'recordAuthenticated' },
        ],
        AUTH_REJECTED: { target: 'REJECTED', actions: ['recordRejection', 'notifyRejected'] },
        TIMEOUT_CHECK: {
          guard: 'isAuthenticationOverdue',
          target: 'REJECTED',
          actions: ['recordRejection', 'notifyRejected'],
        },
        CONNECTION_LOST: { target: 'CLOSED', actions: 'detach' },
      },
    },
    AUTHENTICATED: {
      // The leader appends a SESSION_OPEN entry; its log index becomes the session id.
      entry: 'requestOpenAppend',
      on: {
        APPENDED_OPEN: { target: 'OPEN', actions: ['recordAppended', 'touch'] },
        CONNECTION_LOST: { target: 'CLOSED', actions: 'detach' },
      },
    },
    REJECTED: {
      on: { CONNECTION_LOST: { target: 'CLOSED', actions: 'detach' } },
    },
    INVALID: {
      on: { CONNECTION_LOST: { target: 'CLOSED', actions: 'detach' } },
    },
    OPEN: {
      on: {
        OPEN_COMMITTED: {
          guard: 'isOpenPending',
          actions: ['markCommitted', 'notifyOpened'],
        },
        KEEPALIVE: { actions: 'touch' },
        TIMEOUT_CHECK: {
          guard: 'isIdle',
          target: 'CLOSING',
          actions: 'recordCloseRequest',
        },
        CLOSE_REQUESTED: { target: 'CLOSING', actions: 'recordCloseRequest' },
        CLOSE_COMMITTED: { target: 'CLOSED', actions: ['recordClose', 'notifyClosed'] },
        // The session outlives its connection: the client may reconnect and resume it, or it
        // times out.
        CONNECTION_LOST: { actions: 'detach' },
        CONNECTION_ATTACHED: { actions: 'attach' },
        // A new leader restarts every session's clock from its own `now`.
        LEADERSHIP_ACQUIRED: { actions: 'touch' },
      },
    },
    CLOSING: {
      // The leader has appended SESSION_CLOSE and waits for it to commit.
      entry: 'requestCloseAppend',
      on: {
        CLOSE_COMMITTED: { target: 'CLOSED', actions: ['recordClose', 'notifyClosed'] },
        CONNECTION_LOST: { actions: 'detach' },
        // The close entry may be lost with the leadership: the session is open again until a
        // leader closes it through the log.
        LEADERSHIP_LOST: { target: 'OPEN', actions: 'clearCloseRequest' },
        // Not appended at all: open again, so the next check (its timeout, its disconnect) closes it anew.
        CLOSE_REFUSED: { target: 'OPEN', actions: 'clearCloseRequest' },
      },
    },
    CLOSED: { type: 'final' },
  },
});

export type ClientSessionMachine = typeof clientSessionMachine;

/** Every state of the session machine, in the order Aeron lists them. */
export const CLIENT_SESSION_STATES = [
  'INIT',
  'CONNECTING',
  'CONNECTED',
  'CHALLENGED',
  'AUTHENTICATED',
  'REJECTED',
  'OPEN',
  'CLOSING',
  'INVALID',
  'CLOSED',
] as const;

export type ClientSessionState = (typeof CLIENT_SESSION_STATES)[number];
