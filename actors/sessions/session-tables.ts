// The session manager's state and its statecharts: the tables (committed sessions, pending connects,
// connections), one client-session chart per session, and the chart's effect actions — implemented here
// through `provide()`, each returning the effects it stands for (tell the client, append to the log,
// close the connection). The manager (session-manager.ts) and the handshake (session-handshake.ts) read and
// change these tables; nothing here performs I/O or reads a clock.
//
// Each session's statechart runs as an XState actor with no clock (time only arrives in events). An actor
// is used rather than the pure `transition()` because it is about six times cheaper per event (a whole
// open handshake costs ~50 µs instead of ~350 µs, which matters when thousands of clients reconnect after
// a failover); the result is the same, as the machine spec checks.

import type { Actor } from 'xstate';
import { createActor } from 'xstate';
import type {
  ClientSessionContext,
  ClientSessionEffectAction,
  ClientSessionEvent,
  LeaderView,
} from '../../machines/client-session.ts';
import { clientSessionMachine, SESSION_PROTOCOL_VERSION } from '../../machines/client-session.ts';
import { EntryKind } from '../log/log-entry.ts';
import { encodeSessionClose, encodeSessionOpen } from './payloads.ts';
import { hashResumeToken, RESUME_TOKEN_BYTES } from './resume-tokens.ts';
import type {
  SessionEffect,
  SessionEventToClient,
  SessionManagerOptions,
  SessionRecord,
} from './session-types.ts';

/** One session's running statechart; `value` and `context` read its current snapshot. */
export class SessionChart {
  constructor(readonly actor: Actor<typeof clientSessionMachine>) {}

  get value(): string {
    return this.actor.getSnapshot().value;
  }

  get context(): ClientSessionContext {
    return this.actor.getSnapshot().context;
  }
}

export interface LiveSession {
  readonly record: SessionRecord;
  chart: SessionChart;
  /**
   * Latest keepalive or message time. Folded into the machine lazily (only when the machine would
   * otherwise time the session out), so the message path costs no statechart transition.
   */
  activityAt: number;
  /**
   * Leader only, member-local (never snapshotted): the grace its client asked for with the CONNECT that
   * opened or last resumed it on this member (closeOnDisconnectMs), or null.
   */
  closeOnDisconnectMs: number | null;
  /** Leader only, member-local: when this member saw that connection close, while no resume came since. */
  disconnectedAt: number | null;
}

export interface PendingSession {
  chart: SessionChart;
  readonly credentials: Uint8Array;
  challenge: Uint8Array | null;
  /** Drawn when the open entry is appended; sent in OK once it commits, then forgotten. */
  resumeToken: Uint8Array | null;
  /** What the CONNECT asked for (closeOnDisconnectMs), handed to the session once open or resumed. */
  readonly closeOnDisconnectMs: number | null;
}

export interface Connection {
  /** The committed session this connection speaks for, once OK was sent. */
  sessionId: number | null;
}

export type ResolvedOptions = Required<SessionManagerOptions>;

type ActionArgs = { context: ClientSessionContext; event: ClientSessionEvent };

export class SessionTables {
  leader: LeaderView = { kind: 'UNKNOWN' };
  /** Committed sessions by id, in commit order (deterministic on every member). */
  readonly sessions = new Map<number, LiveSession>();
  /** Leader only: connects not yet committed, by connection id. */
  readonly pending = new Map<number, PendingSession>();
  /** Leader only: log index of an appended SESSION_OPEN → the connection waiting for it. */
  readonly appendedOpens = new Map<number, number>();
  readonly connections = new Map<number, Connection>();
  /** The session statechart with its effect actions provided. */
  private readonly machine: typeof clientSessionMachine;
  /** Where effect actions write while an event is being stepped. */
  private sink: SessionEffect[] = [];

  constructor(readonly options: ResolvedOptions) {
    const emit =
      (action: (args: ActionArgs) => readonly SessionEffect[]) =>
      (args: ActionArgs): void => {
        for (const effect of action(args)) this.sink.push(effect);
      };
    this.machine = clientSessionMachine.provide({
      actions: {
        notifyRefused: emit(({ context }) => this.refusal(context, 'notifyRefused')),
        notifyRejected: emit(({ context }) => this.refusal(context, 'notifyRejected')),
        sendChallenge: emit(({ context, event }) => sendChallenge(context, event)),
        requestOpenAppend: emit(({ context }) => this.requestOpenAppend(context)),
        notifyOpened: emit(({ context, event }) => this.notifyOpened(context, event)),
        requestCloseAppend: emit(({ context }) => requestCloseAppend(context)),
        notifyClosed: emit(({ context }) => notifyClosed(context)),
      } satisfies Record<ClientSessionEffectAction, (args: ActionArgs) => void>,
    });
  }

  /** Sessions open or opening on this member (what counts against maxSessions). */
  get activeSessions(): number {
    return this.sessions.size + this.pending.size;
  }

  get isLeader(): boolean {
    return this.leader.kind === 'SELF';
  }

  newChart(): SessionChart {
    return new SessionChart(
      createActor(this.machine, {
        input: {
          sessionTimeoutMs: this.options.sessionTimeoutMs,
          authenticationTimeoutMs: this.options.authenticationTimeoutMs,
        },
      }).start(),
    );
  }

  /** Send one event to a session's chart; its effect actions land in `effects`. */
  step(chart: SessionChart, event: ClientSessionEvent, effects: SessionEffect[]): void {
    this.sink = effects;
    try {
      chart.actor.send(event);
    } finally {
      this.sink = [];
    }
  }

  /** Register a connection; past maxConnections it is refused (ERROR, then closed) and false returned. */
  openConnection(connectionId: number, effects: SessionEffect[]): boolean {
    if (this.connections.has(connectionId)) return true;
    if (this.connections.size >= this.options.maxConnections) {
      const detail =
        `too many client connections (maxConnections=${this.options.maxConnections}): ` +
        'retry later with backoff, or raise maxConnections';
      effects.push(
        { type: 'SEND', connectionId, event: { code: 'ERROR', detail, retryable: true } },
        { type: 'CLOSE_CONNECTION', connectionId, reason: detail },
      );
      return false;
    }
    this.connections.set(connectionId, { sessionId: null });
    return true;
  }

  /** Drop a pending connect (its connection is gone or the member stepped down). */
  forgetPending(connectionId: number, pending: PendingSession, now: number): void {
    this.pending.delete(connectionId);
    const sessionId = pending.chart.context.sessionId;
    if (sessionId !== null) this.appendedOpens.delete(sessionId);
    this.step(pending.chart, { type: 'CONNECTION_LOST', now }, []);
  }

  /** A refused or rejected connect: its reply and CLOSE_CONNECTION are already in the effects. */
  finishRefused(connectionId: number, chart: SessionChart, now: number): void {
    this.step(chart, { type: 'CONNECTION_LOST', now }, []);
    this.connections.delete(connectionId);
  }

  // ---- the effect actions ----

  private refusal(
    context: ClientSessionContext,
    action: 'notifyRefused' | 'notifyRejected',
  ): readonly SessionEffect[] {
    const { connectionId, refusal } = context;
    if (connectionId === null || refusal === null) return [];
    const reply: SessionEventToClient =
      refusal.code === 'REDIRECT'
        ? refusal
        : action === 'notifyRejected'
          ? { code: 'AUTHENTICATION_REJECTED', detail: refusal.detail }
          : refusal;
    const reason =
      reply.code === 'REDIRECT'
        ? `redirected to leader ${reply.leaderId} at ${reply.endpoint}`
        : reply.detail;
    return [
      { type: 'SEND', connectionId, event: reply },
      { type: 'CLOSE_CONNECTION', connectionId, reason },
    ];
  }

  private requestOpenAppend(context: ClientSessionContext): readonly SessionEffect[] {
    const { connectionId } = context;
    // The token stays with the pending session (this member only); the log gets its hash.
    const resumeToken = this.options.resumeTokens(RESUME_TOKEN_BYTES);
    const pending = connectionId === null ? undefined : this.pending.get(connectionId);
    if (pending) pending.resumeToken = resumeToken;
    return [
      {
        type: 'APPEND',
        kind: EntryKind.SESSION_OPEN,
        payload: encodeSessionOpen({
          principal: context.principal ?? '',
          clientVersion: context.clientVersion ?? this.options.protocolVersion,
          openedBy: this.options.memberId,
          resumeTokenHash: hashResumeToken(resumeToken),
        }),
        ...(connectionId === null ? {} : { connectionId }),
      },
    ];
  }

  private notifyOpened(context: ClientSessionContext, event: ClientSessionEvent): readonly SessionEffect[] {
    const { connectionId, sessionId } = context;
    if (connectionId === null || sessionId === null) return [];
    // A new session's OK carries its token; a resumed session's client already holds it.
    const resumeToken =
      event.type === 'OPEN_COMMITTED' ? this.pending.get(connectionId)?.resumeToken : undefined;
    return [
      {
        type: 'SEND',
        connectionId,
        event: {
          code: 'OK',
          sessionId,
          leaderId: this.options.memberId,
          ...(resumeToken ? { resumeToken } : {}),
        },
      },
    ];
  }
}

const sendChallenge = (context: ClientSessionContext, event: ClientSessionEvent): readonly SessionEffect[] =>
  context.connectionId !== null && event.type === 'CHALLENGE_ISSUED'
    ? [
        {
          type: 'SEND',
          connectionId: context.connectionId,
          event: { code: 'CHALLENGE', challenge: event.challenge },
        },
      ]
    : [];

const requestCloseAppend = ({ sessionId, closeReason }: ClientSessionContext): readonly SessionEffect[] =>
  sessionId !== null && closeReason !== null
    ? [
        {
          type: 'APPEND',
          kind: EntryKind.SESSION_CLOSE,
          payload: encodeSessionClose({ sessionId, reason: closeReason }),
          sessionId,
        },
      ]
    : [];

const notifyClosed = ({
  connectionId,
  sessionId,
  closeReason,
}: ClientSessionContext): readonly SessionEffect[] =>
  connectionId !== null && sessionId !== null && closeReason !== null
    ? [
        { type: 'SEND', connectionId, event: { code: 'CLOSED', sessionId, reason: closeReason } },
        { type: 'CLOSE_CONNECTION', connectionId, reason: `session closed: ${closeReason}` },
      ]
    : [];

/** Check the options and fill in the defaults. */
export const resolveOptions = (options: SessionManagerOptions): ResolvedOptions => {
  const positive = (name: string, value: number | undefined): void => {
    if (value !== undefined && !(Number.isSafeInteger(value) && value > 0)) {
      throw new RangeError(`session manager option ${name} is ${value}: it must be a positive integer`);
    }
  };
  positive('maxSessions', options.maxSessions);
  positive('sessionTimeoutMs', options.sessionTimeoutMs);
  positive('authenticationTimeoutMs', options.authenticationTimeoutMs);
  positive('maxConnections', options.maxConnections);
  if (!Number.isSafeInteger(options.memberId) || options.memberId < 0) {
    throw new RangeError(
      `session manager option memberId is ${options.memberId}: it must be an integer >= 0`,
    );
  }
  return {
    ...options,
    authenticationTimeoutMs: options.authenticationTimeoutMs ?? options.sessionTimeoutMs,
    maxConnections: options.maxConnections ?? options.maxSessions * 2,
    protocolVersion: options.protocolVersion ?? SESSION_PROTOCOL_VERSION,
  };
};
