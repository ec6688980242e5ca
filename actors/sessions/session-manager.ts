// The session manager: the consensus module's table of client sessions, as a pure state machine host.
//
// It hosts one client-session statechart (machines/client-session.ts) per client and turns inputs
// (connections, client requests, time, role changes, committed log entries) into effects (send to a
// connection, append to the log, close a connection). It performs no I/O and reads no clock: the
// runtime and the simulator feed it and carry out what it returns.
//
// Two kinds of state live here:
// - replicated: the committed session table, built only from committed SESSION_OPEN / SESSION_CLOSE
//   entries. The same committed entries give the same table on every member; `toSnapshot()` holds
//   exactly this, so it is identical on every member at the same log position.
// - member-local: connections, sessions still authenticating or waiting for their open entry to
//   commit (leader only), and activity clocks. None of it is snapshotted: a new leader starts every
//   session's timeout clock from its own `now`, and clients reconnect.
//
// Session ids are the log index of the SESSION_OPEN entry, so every member agrees on them.
//
// Each session's statechart runs as an XState actor with no clock (time only arrives in events), and
// its effect actions are implemented here to append to the effects of the input being handled. An
// actor is used rather than the pure `transition()` because it is about six times cheaper per event
// (a whole open handshake costs ~50 µs instead of ~350 µs, which matters when thousands of clients
// reconnect after a failover); the result is the same, as the machine spec checks.

import type { Actor } from 'xstate';
import { createActor } from 'xstate';
import type {
  ClientSessionContext,
  ClientSessionEffectAction,
  ClientSessionEvent,
  CloseReasonName,
  LeaderView,
} from '../../machines/client-session.ts';
import {
  clientSessionMachine,
  isSessionIdle,
  NO_LEADER,
  SESSION_PROTOCOL_VERSION,
} from '../../machines/client-session.ts';
import type { LogEntry } from '../../machines/log-entry.ts';
import { EntryKind } from '../../machines/log-entry.ts';
import { decodeSessionClose, decodeSessionOpen, encodeSessionClose, encodeSessionOpen } from './payloads.ts';
import { hashResumeToken, isResumeTokenValid, RESUME_TOKEN_BYTES } from './resume-tokens.ts';
import type {
  SessionEffect,
  SessionEventToClient,
  SessionInput,
  SessionManagerOptions,
  SessionManagerSnapshot,
  SessionRecord,
  SessionView,
} from './session-types.ts';
import { SESSION_SNAPSHOT_VERSION } from './session-types.ts';

export * from './session-types.ts';

/** One session's running statechart; `value` and `context` read its current snapshot. */
class SessionChart {
  constructor(readonly actor: Actor<typeof clientSessionMachine>) {}

  get value(): string {
    return this.actor.getSnapshot().value;
  }

  get context(): ClientSessionContext {
    return this.actor.getSnapshot().context;
  }
}

interface LiveSession {
  readonly record: SessionRecord;
  chart: SessionChart;
  /**
   * Latest keepalive or message time. Folded into the machine lazily (only when the machine would
   * otherwise time the session out), so the message path costs no statechart transition.
   */
  activityAt: number;
}

interface PendingSession {
  chart: SessionChart;
  readonly credentials: Uint8Array;
  challenge: Uint8Array | null;
  /** Drawn when the open entry is appended; sent in OK once it commits, then forgotten. */
  resumeToken: Uint8Array | null;
}

interface Connection {
  /** The committed session this connection speaks for, once OK was sent. */
  sessionId: number | null;
}

const validateOptions = (options: SessionManagerOptions): void => {
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
};

export class SessionManager {
  private readonly options: Required<SessionManagerOptions>;
  private leader: LeaderView = { kind: 'UNKNOWN' };
  /** Committed sessions by id, in commit order (deterministic on every member). */
  private readonly sessions = new Map<number, LiveSession>();
  /** Leader only: connects not yet committed, by connection id. */
  private readonly pending = new Map<number, PendingSession>();
  /** Leader only: log index of an appended SESSION_OPEN → the connection waiting for it. */
  private readonly appendedOpens = new Map<number, number>();
  private readonly connections = new Map<number, Connection>();
  /** The session statechart with its effect actions bound to this manager. */
  private readonly machine: typeof clientSessionMachine;
  /** Where effect actions write while an input is being handled. */
  private sink: SessionEffect[] = [];

  constructor(options: SessionManagerOptions) {
    validateOptions(options);
    this.options = {
      ...options,
      authenticationTimeoutMs: options.authenticationTimeoutMs ?? options.sessionTimeoutMs,
      maxConnections: options.maxConnections ?? options.maxSessions * 2,
      protocolVersion: options.protocolVersion ?? SESSION_PROTOCOL_VERSION,
    };
    const effect =
      (action: ClientSessionEffectAction) =>
      ({ context, event }: { context: ClientSessionContext; event: ClientSessionEvent }) =>
        this.effectOf(action, context, event, this.sink);
    this.machine = clientSessionMachine.provide({
      actions: {
        notifyRefused: effect('notifyRefused'),
        sendChallenge: effect('sendChallenge'),
        notifyRejected: effect('notifyRejected'),
        requestOpenAppend: effect('requestOpenAppend'),
        notifyOpened: effect('notifyOpened'),
        requestCloseAppend: effect('requestCloseAppend'),
        notifyClosed: effect('notifyClosed'),
      },
    });
  }

  /** Rebuild the committed session table from a snapshot. The member starts with no leader known. */
  static fromSnapshot(snapshot: SessionManagerSnapshot, options: SessionManagerOptions): SessionManager {
    if (snapshot.version !== 1 && snapshot.version !== SESSION_SNAPSHOT_VERSION) {
      throw new Error(
        `session snapshot version ${snapshot.version} is not supported (this build reads ` +
          `${SESSION_SNAPSHOT_VERSION}): restore with the member version that took it, or an older snapshot`,
      );
    }
    const manager = new SessionManager(options);
    for (const record of snapshot.sessions) {
      const hash = record.resumeTokenHash;
      manager.addCommitted({ ...record, resumeTokenHash: hash ? new Uint8Array(hash) : null }, 0, null, []);
    }
    return manager;
  }

  /** The replicated part of the state: identical on every member at the same log position. */
  toSnapshot(): SessionManagerSnapshot {
    const sessions = [...this.sessions.values()]
      .map(({ record }) => ({ ...record, clientVersion: [...record.clientVersion] as [number, number] }))
      .sort((a, b) => a.id - b.id);
    return { version: SESSION_SNAPSHOT_VERSION, sessions };
  }

  /** Committed sessions, sorted by id, with their machine state and connection (if on this member). */
  list(): SessionView[] {
    return [...this.sessions.values()]
      .map(({ record, chart }) => ({
        ...record,
        state: chart.value,
        connectionId: chart.context.connectionId,
      }))
      .sort((a, b) => a.id - b.id);
  }

  /** Sessions open or opening on this member (what counts against maxSessions). */
  get activeSessions(): number {
    return this.sessions.size + this.pending.size;
  }

  get isLeader(): boolean {
    return this.leader.kind === 'SELF';
  }

  /** Feed one input; returns the effects to carry out, in order. */
  /** The connection an open session's replies go to, or null (not connected to this member). */
  connectionOf(sessionId: number): number | null {
    for (const [connectionId, connection] of this.connections) {
      if (connection.sessionId === sessionId) return connectionId;
    }
    return null;
  }

  handle(input: SessionInput): SessionEffect[] {
    const effects: SessionEffect[] = [];
    switch (input.type) {
      case 'CONNECTION_OPENED':
        this.openConnection(input.connectionId, effects);
        break;
      case 'CONNECTION_CLOSED':
        this.connectionClosed(input.connectionId, input.now);
        break;
      case 'CONNECT':
        this.connect(input, effects);
        break;
      case 'CHALLENGE_RESPONSE':
        this.challengeResponse(input, effects);
        break;
      case 'KEEPALIVE': {
        const session = this.attachedSession(input.connectionId, input.sessionId, effects);
        if (!session) break;
        session.activityAt = input.now;
        const event = { code: 'KEEPALIVE', sessionId: input.sessionId } as const;
        effects.push({ type: 'SEND', connectionId: input.connectionId, event });
        break;
      }
      case 'SESSION_MESSAGE': {
        const session = this.attachedSession(input.connectionId, input.sessionId, effects);
        if (!session) break;
        session.activityAt = input.now;
        effects.push({
          type: 'FORWARD',
          sessionId: input.sessionId,
          correlationId: input.correlationId,
          lowestAwaited: input.lowestAwaited,
          body: input.body,
        });
        break;
      }
      case 'CLOSE': {
        const session = this.attachedSession(input.connectionId, input.sessionId, effects);
        if (session) this.requestClose(session, 'CLIENT_ACTION', input.now, effects);
        break;
      }
      case 'CLOSE_SESSION': {
        const session = this.sessions.get(input.sessionId);
        if (session && this.isLeader) this.requestClose(session, 'SERVICE_ACTION', input.now, effects);
        break;
      }
      case 'TICK':
        this.tick(input.now, effects);
        break;
      case 'ROLE_CHANGED':
        this.roleChanged(input.leader, input.now, effects);
        break;
      case 'OPEN_APPENDED':
        this.openAppended(input.connectionId, input.index, input.now);
        break;
      case 'COMMITTED':
        this.committed(input.entry, input.now, effects);
        break;
    }
    return effects;
  }

  // ---- connections and connects (leader side) ----

  private openConnection(connectionId: number, effects: SessionEffect[]): boolean {
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

  private connectionClosed(connectionId: number, now: number): void {
    const connection = this.connections.get(connectionId);
    if (!connection) return;
    this.connections.delete(connectionId);
    const pending = this.pending.get(connectionId);
    if (pending) {
      // An open entry already appended will still commit; the session is then learnt like any
      // other committed session, without a connection, and times out unless its client returns.
      this.forgetPending(connectionId, pending, now);
    }
    if (connection.sessionId !== null) {
      const session = this.sessions.get(connection.sessionId);
      if (session) this.step(session.chart, { type: 'CONNECTION_LOST', now }, []);
    }
  }

  private forgetPending(connectionId: number, pending: PendingSession, now: number): void {
    this.pending.delete(connectionId);
    const sessionId = pending.chart.context.sessionId;
    if (sessionId !== null) this.appendedOpens.delete(sessionId);
    this.step(pending.chart, { type: 'CONNECTION_LOST', now }, []);
  }

  private connect(input: Extract<SessionInput, { type: 'CONNECT' }>, effects: SessionEffect[]): void {
    const { connectionId, now } = input;
    if (!this.openConnection(connectionId, effects)) return;
    const connection = this.connections.get(connectionId) as Connection;
    if (connection.sessionId !== null || this.pending.has(connectionId)) {
      effects.push({
        type: 'SEND',
        connectionId,
        event: {
          code: 'ERROR',
          retryable: false,
          detail: 'CONNECT was already sent on this connection: open a new connection for another session',
        },
      });
      return;
    }
    const chart = this.newChart();
    this.step(
      chart,
      {
        type: 'CONNECT_REQUEST',
        now,
        connectionId,
        clientVersion: input.protocolVersion,
        resumeSessionId: input.resumeSessionId ?? null,
      },
      effects,
    );
    this.step(
      chart,
      {
        type: 'VALIDATE',
        now,
        serverVersion: this.options.protocolVersion,
        leader: this.leader,
        activeSessions: this.activeSessions,
        maxSessions: this.options.maxSessions,
        ...this.resumeCheck(input.resumeSessionId ?? null, input.resumeToken),
      },
      effects,
    );
    if (chart.value !== 'CONNECTED') {
      this.finishRefused(connectionId, chart, now);
      return;
    }
    const pending: PendingSession = {
      chart,
      credentials: input.credentials,
      challenge: null,
      resumeToken: null,
    };
    this.pending.set(connectionId, pending);
    const decision = this.options.authenticator.onConnect(input.credentials);
    if (decision.kind === 'CHALLENGE') pending.challenge = decision.challenge;
    const event: ClientSessionEvent =
      decision.kind === 'ACCEPT'
        ? this.acceptedEvent(pending, decision.principal, now)
        : decision.kind === 'REJECT'
          ? { type: 'AUTH_REJECTED', now, detail: decision.reason }
          : { type: 'CHALLENGE_ISSUED', now, challenge: decision.challenge };
    this.advancePending(connectionId, pending, event, effects);
  }

  private challengeResponse(
    input: Extract<SessionInput, { type: 'CHALLENGE_RESPONSE' }>,
    effects: SessionEffect[],
  ): void {
    const { connectionId, now } = input;
    const pending = this.pending.get(connectionId);
    if (pending?.chart.value !== 'CHALLENGED' || !pending.challenge) {
      effects.push({
        type: 'SEND',
        connectionId,
        event: {
          code: 'ERROR',
          retryable: false,
          detail:
            'no challenge is outstanding on this connection: send CONNECT and answer its CHALLENGE once',
        },
      });
      return;
    }
    const decision = this.options.authenticator.onChallengeResponse(
      pending.credentials,
      pending.challenge,
      input.response,
    );
    // A challenge is answered once: a second answer (or a replay) finds none outstanding.
    pending.challenge = null;
    const event: ClientSessionEvent =
      decision.kind === 'ACCEPT'
        ? this.acceptedEvent(pending, decision.principal, now)
        : { type: 'AUTH_REJECTED', now, detail: decision.reason };
    this.advancePending(connectionId, pending, event, effects);
  }

  /** Whether a session may be resumed here: it is open, and the token proves the client owns it. */
  private resumeCheck(
    sessionId: number | null,
    token: Uint8Array | null | undefined,
  ): { resumable: boolean; resumeProven: boolean } {
    const live = sessionId === null ? undefined : this.sessions.get(sessionId);
    if (live?.chart.value !== 'OPEN') return { resumable: false, resumeProven: false };
    return { resumable: true, resumeProven: isResumeTokenValid(token, live.record.resumeTokenHash) };
  }

  /**
   * The event for an accepted client. A resume must be by the session's own principal, and the
   * session must still be open (it may have closed while the client answered a challenge).
   */
  private acceptedEvent(pending: PendingSession, principal: string, now: number): ClientSessionEvent {
    const resumeId = pending.chart.context.resumeSessionId;
    if (resumeId === null) return { type: 'AUTHENTICATED', now, principal };
    const live = this.sessions.get(resumeId);
    if (live?.chart.value !== 'OPEN') {
      return {
        type: 'AUTH_REJECTED',
        now,
        detail: `session ${resumeId} closed while authenticating: connect without resuming to open a new session`,
      };
    }
    if (live.record.principal !== principal) {
      return {
        type: 'AUTH_REJECTED',
        now,
        detail: `session ${resumeId} belongs to another principal: connect without resuming to open your own`,
      };
    }
    return { type: 'AUTHENTICATED', now, principal };
  }

  /** Step a pending session; a rejected one is dropped with its connection, a resumed one attached. */
  private advancePending(
    connectionId: number,
    pending: PendingSession,
    event: ClientSessionEvent,
    effects: SessionEffect[],
  ): void {
    this.step(pending.chart, event, effects);
    if (pending.chart.value === 'REJECTED') {
      this.pending.delete(connectionId);
      this.finishRefused(connectionId, pending.chart, event.now);
    } else if (pending.chart.value === 'OPEN') {
      this.pending.delete(connectionId);
      this.completeResume(connectionId, pending.chart, event.now, effects);
    }
  }

  /**
   * The handshake took over a committed session (checked open, same principal, this turn): its
   * chart becomes the session's, and a connection still holding the session is told and closed.
   */
  private completeResume(
    connectionId: number,
    chart: SessionChart,
    now: number,
    effects: SessionEffect[],
  ): void {
    const sessionId = chart.context.sessionId as number;
    const live = this.sessions.get(sessionId) as LiveSession;
    const previous = live.chart.context.connectionId;
    if (previous !== null && previous !== connectionId) {
      const detail = `session ${sessionId} was resumed on another connection`;
      effects.push(
        { type: 'SEND', connectionId: previous, event: { code: 'ERROR', detail, retryable: false } },
        { type: 'CLOSE_CONNECTION', connectionId: previous, reason: detail },
      );
      this.connections.delete(previous);
    }
    live.chart.actor.stop();
    live.chart = chart;
    live.activityAt = now;
    (this.connections.get(connectionId) as Connection).sessionId = sessionId;
  }

  /** A refused or rejected connect: its reply and CLOSE_CONNECTION are already in the effects. */
  private finishRefused(connectionId: number, chart: SessionChart, now: number): void {
    this.step(chart, { type: 'CONNECTION_LOST', now }, []);
    this.connections.delete(connectionId);
  }

  private openAppended(connectionId: number, index: number, now: number): void {
    const pending = this.pending.get(connectionId);
    if (pending?.chart.value !== 'AUTHENTICATED') return;
    this.step(pending.chart, { type: 'APPENDED_OPEN', now, sessionId: index }, []);
    this.appendedOpens.set(index, connectionId);
  }

  /** The committed, OK'd session a connection speaks for, or an ERROR effect saying why not. */
  private attachedSession(
    connectionId: number,
    sessionId: number,
    effects: SessionEffect[],
  ): LiveSession | null {
    const connection = this.connections.get(connectionId);
    const session = connection?.sessionId === sessionId ? this.sessions.get(sessionId) : undefined;
    if (session && session.chart.value === 'OPEN') return session;
    const detail = session
      ? `session ${sessionId} is closing: open a new session to send more`
      : `session ${sessionId} is not open on this connection: send CONNECT and wait for OK first`;
    effects.push({ type: 'SEND', connectionId, event: { code: 'ERROR', detail, retryable: false } });
    return null;
  }

  private requestClose(
    session: LiveSession,
    reason: CloseReasonName,
    now: number,
    effects: SessionEffect[],
  ): void {
    if (session.chart.value !== 'OPEN') return;
    this.step(session.chart, { type: 'CLOSE_REQUESTED', now, reason }, effects);
  }

  // ---- time and roles ----

  private tick(now: number, effects: SessionEffect[]): void {
    if (!this.isLeader) return;
    for (const session of this.sessions.values()) {
      const { chart } = session;
      if (chart.value !== 'OPEN' || !isSessionIdle(chart.context, now)) continue;
      if (session.activityAt > chart.context.lastActivityAt) {
        this.step(chart, { type: 'KEEPALIVE', now: session.activityAt }, effects);
      }
      this.step(session.chart, { type: 'TIMEOUT_CHECK', now }, effects);
    }
    for (const [connectionId, pending] of this.pending) {
      const state = pending.chart.value;
      if (state === 'CONNECTED' || state === 'CHALLENGED') {
        this.advancePending(connectionId, pending, { type: 'TIMEOUT_CHECK', now }, effects);
      }
    }
  }

  private roleChanged(leader: LeaderView, now: number, effects: SessionEffect[]): void {
    const wasLeader = this.isLeader;
    this.leader = leader;
    if (leader.kind === 'SELF' && !wasLeader) {
      // Sessions from the log are live again; their clocks restart from this leader's `now`.
      for (const session of this.sessions.values()) {
        session.activityAt = now;
        this.step(session.chart, { type: 'LEADERSHIP_ACQUIRED', now }, effects);
      }
      return;
    }
    if (leader.kind === 'SELF' || !wasLeader) return;
    // Stepped down: clients must go to the new leader. Every connection is answered and closed.
    const event: SessionEventToClient =
      leader.kind === 'OTHER'
        ? { code: 'REDIRECT', leaderId: leader.leaderId, endpoint: leader.endpoint }
        : NO_LEADER;
    for (const [connectionId, pending] of this.pending) this.forgetPending(connectionId, pending, now);
    this.appendedOpens.clear();
    for (const session of this.sessions.values()) {
      if (session.chart.value === 'CLOSING') {
        this.step(session.chart, { type: 'LEADERSHIP_LOST', now }, effects);
      }
      if (session.chart.context.connectionId !== null) {
        this.step(session.chart, { type: 'CONNECTION_LOST', now }, effects);
      }
    }
    for (const connectionId of this.connections.keys()) {
      effects.push(
        { type: 'SEND', connectionId, event },
        { type: 'CLOSE_CONNECTION', connectionId, reason: 'member is no longer the leader' },
      );
    }
    this.connections.clear();
  }

  // ---- committed entries (every member, deterministic) ----

  private committed(entry: LogEntry, now: number, effects: SessionEffect[]): void {
    if (entry.kind === EntryKind.SESSION_OPEN) {
      if (this.sessions.has(entry.index)) return;
      const open = decodeSessionOpen(entry.payload);
      const record: SessionRecord = {
        id: entry.index,
        principal: open.principal,
        clientVersion: [open.clientVersion.major, open.clientVersion.minor],
        openedAt: entry.timestamp,
        openedBy: open.openedBy,
        resumeTokenHash: open.resumeTokenHash,
      };
      const connectionId = this.appendedOpens.get(entry.index);
      this.appendedOpens.delete(entry.index);
      this.addCommitted(record, now, connectionId ?? null, effects);
    } else if (entry.kind === EntryKind.SESSION_CLOSE) {
      const close = decodeSessionClose(entry.payload);
      const session = this.sessions.get(close.sessionId);
      // A second close for the same session (say, TIMEOUT racing CLIENT_ACTION) is ignored everywhere.
      if (!session) return;
      this.sessions.delete(close.sessionId);
      const connectionId = session.chart.context.connectionId;
      this.step(session.chart, { type: 'CLOSE_COMMITTED', now, reason: close.reason }, effects);
      if (connectionId !== null) this.connections.delete(connectionId);
    }
  }

  /**
   * Add a committed session. When this member appended its open entry for a connection still
   * waiting, that connection is attached and the client gets OK; otherwise the session is learnt
   * from the log with no connection here.
   */
  private addCommitted(
    record: SessionRecord,
    now: number,
    connectionId: number | null,
    effects: SessionEffect[],
  ): void {
    const pending = connectionId === null ? undefined : this.pending.get(connectionId);
    const committedOpen: ClientSessionEvent = {
      type: 'OPEN_COMMITTED',
      now,
      sessionId: record.id,
      principal: record.principal,
    };
    let chart: SessionChart;
    if (connectionId !== null && pending && pending.chart.context.sessionId === record.id) {
      (this.connections.get(connectionId) as Connection).sessionId = record.id;
      chart = pending.chart;
      // Still pending while it steps, so the OK can carry the resume token; then forgotten.
      this.step(chart, committedOpen, effects);
      this.pending.delete(connectionId);
    } else {
      chart = this.newChart();
      this.step(chart, committedOpen, effects);
    }
    this.sessions.set(record.id, { record, chart, activityAt: now });
  }

  // ---- the statechart, and its effect actions turned into effects ----

  private newChart(): SessionChart {
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
  private step(chart: SessionChart, event: ClientSessionEvent, effects: SessionEffect[]): void {
    this.sink = effects;
    try {
      chart.actor.send(event);
    } finally {
      this.sink = [];
    }
  }

  private effectOf(
    action: ClientSessionEffectAction,
    context: ClientSessionContext,
    event: ClientSessionEvent,
    effects: SessionEffect[],
  ): void {
    const { connectionId, sessionId } = context;
    switch (action) {
      case 'notifyRefused':
      case 'notifyRejected': {
        const refusal = context.refusal;
        if (connectionId === null || refusal === null) return;
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
        effects.push(
          { type: 'SEND', connectionId, event: reply },
          { type: 'CLOSE_CONNECTION', connectionId, reason },
        );
        return;
      }
      case 'sendChallenge':
        if (connectionId !== null && event.type === 'CHALLENGE_ISSUED') {
          effects.push({
            type: 'SEND',
            connectionId,
            event: { code: 'CHALLENGE', challenge: event.challenge },
          });
        }
        return;
      case 'requestOpenAppend': {
        // The token stays with the pending session (this member only); the log gets its hash.
        const resumeToken = this.options.resumeTokens(RESUME_TOKEN_BYTES);
        const pending = connectionId === null ? undefined : this.pending.get(connectionId);
        if (pending) pending.resumeToken = resumeToken;
        effects.push({
          type: 'APPEND',
          kind: EntryKind.SESSION_OPEN,
          payload: encodeSessionOpen({
            principal: context.principal ?? '',
            clientVersion: context.clientVersion ?? this.options.protocolVersion,
            openedBy: this.options.memberId,
            resumeTokenHash: hashResumeToken(resumeToken),
          }),
          ...(connectionId === null ? {} : { connectionId }),
        });
        return;
      }
      case 'notifyOpened':
        if (connectionId !== null && sessionId !== null) {
          // A new session's OK carries its token; a resumed session's client already holds it.
          const resumeToken =
            event.type === 'OPEN_COMMITTED' ? this.pending.get(connectionId)?.resumeToken : undefined;
          effects.push({
            type: 'SEND',
            connectionId,
            event: {
              code: 'OK',
              sessionId,
              leaderId: this.options.memberId,
              ...(resumeToken ? { resumeToken } : {}),
            },
          });
        }
        return;
      case 'requestCloseAppend':
        if (sessionId !== null && context.closeReason !== null) {
          effects.push({
            type: 'APPEND',
            kind: EntryKind.SESSION_CLOSE,
            payload: encodeSessionClose({ sessionId, reason: context.closeReason }),
          });
        }
        return;
      case 'notifyClosed':
        if (connectionId !== null && sessionId !== null && context.closeReason !== null) {
          effects.push(
            {
              type: 'SEND',
              connectionId,
              event: { code: 'CLOSED', sessionId, reason: context.closeReason },
            },
            { type: 'CLOSE_CONNECTION', connectionId, reason: `session closed: ${context.closeReason}` },
          );
        }
        return;
      default:
        throw new Error(`client-session machine emitted unknown action '${String(action)}'`);
    }
  }
}
