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
// Close on disconnect (G2): a client may ask, with each CONNECT, that its session be closed (DISCONNECTED)
// once its connection has been gone for closeOnDisconnectMs. Only the leader that saw that connection close
// decides it, on its own clock, through the log; the grace is member-local (never snapshotted), and a member
// stepping down or taking over forgets it, so a new leader lets such a session time out as any other unless
// the client resumes it. A resume in time cancels it. (A connection lost while its SESSION_OPEN was still
// committing leaves a session with no grace: it times out.)
//
// Files: session-tables.ts (the tables, the charts and their effect actions), session-handshake.ts (the
// connect handshake on the leader), session-types.ts (inputs, effects, options, snapshot); this file
// routes inputs and owns the committed table's life (commits, time, roles, snapshots).

import type { ClientSessionEvent, CloseReasonName, LeaderView } from '../../machines/client-session.ts';
import { isSessionIdle, NO_LEADER } from '../../machines/client-session.ts';
import type { LogEntry } from '../log/log-entry.ts';
import { EntryKind } from '../log/log-entry.ts';
import { decodeSessionClose, decodeSessionOpen } from './payloads.ts';
import { advancePending, challengeResponse, connect, openAppended } from './session-handshake.ts';
import {
  type Connection,
  type LiveSession,
  resolveOptions,
  type SessionChart,
  SessionTables,
} from './session-tables.ts';
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

export class SessionManager {
  private readonly tables: SessionTables;

  constructor(options: SessionManagerOptions) {
    this.tables = new SessionTables(resolveOptions(options));
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
    const sessions = [...this.tables.sessions.values()]
      .map(({ record }) => ({ ...record, clientVersion: [...record.clientVersion] as [number, number] }))
      .sort((a, b) => a.id - b.id);
    return { version: SESSION_SNAPSHOT_VERSION, sessions };
  }

  /** Committed sessions, sorted by id, with their machine state and connection (if on this member). */
  list(): SessionView[] {
    return [...this.tables.sessions.values()]
      .map(({ record, chart }) => ({
        ...record,
        state: chart.value,
        connectionId: chart.context.connectionId,
      }))
      .sort((a, b) => a.id - b.id);
  }

  /**
   * When a committed session last showed activity on this member (a message or keepalive; the module's
   * monotonic time), or null for no such session. Member-local: not part of the replicated state.
   */
  lastActivityAt(sessionId: number): number | null {
    const session = this.tables.sessions.get(sessionId);
    return session ? Math.max(session.activityAt, session.chart.context.lastActivityAt) : null;
  }

  /** Sessions open or opening on this member (what counts against maxSessions). */
  get activeSessions(): number {
    return this.tables.activeSessions;
  }

  get isLeader(): boolean {
    return this.tables.isLeader;
  }

  /** The connection an open session's replies go to, or null (not connected to this member). */
  connectionOf(sessionId: number): number | null {
    for (const [connectionId, connection] of this.tables.connections) {
      if (connection.sessionId === sessionId) return connectionId;
    }
    return null;
  }

  /** Feed one input; returns the effects to carry out, in order. */
  handle(input: SessionInput): SessionEffect[] {
    const effects: SessionEffect[] = [];
    const { tables } = this;
    switch (input.type) {
      case 'CONNECTION_OPENED':
        tables.openConnection(input.connectionId, effects);
        break;
      case 'CONNECTION_CLOSED':
        this.connectionClosed(input.connectionId, input.now);
        break;
      case 'CONNECT':
        connect(tables, input, effects);
        break;
      case 'CHALLENGE_RESPONSE':
        challengeResponse(tables, input, effects);
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
        const session = tables.sessions.get(input.sessionId);
        if (session && tables.isLeader) this.requestClose(session, 'SERVICE_ACTION', input.now, effects);
        break;
      }
      case 'TICK':
        this.tick(input.now, effects);
        break;
      case 'ROLE_CHANGED':
        this.roleChanged(input.leader, input.now, effects);
        break;
      case 'OPEN_APPENDED':
        openAppended(tables, input.connectionId, input.index, input.now);
        break;
      case 'CLOSE_REFUSED': {
        const session = tables.sessions.get(input.sessionId);
        if (session) tables.step(session.chart, { type: 'CLOSE_REFUSED', now: input.now }, effects);
        break;
      }
      case 'COMMITTED':
        this.committed(input.entry, input.now, effects);
        break;
    }
    return effects;
  }

  private connectionClosed(connectionId: number, now: number): void {
    const connection = this.tables.connections.get(connectionId);
    if (!connection) return;
    this.tables.connections.delete(connectionId);
    const pending = this.tables.pending.get(connectionId);
    if (pending) {
      // An open entry already appended will still commit; the session is then learnt like any
      // other committed session, without a connection, and times out unless its client returns.
      this.tables.forgetPending(connectionId, pending, now);
    }
    if (connection.sessionId !== null) {
      const session = this.tables.sessions.get(connection.sessionId);
      if (!session) return;
      this.tables.step(session.chart, { type: 'CONNECTION_LOST', now }, []);
      if (this.tables.isLeader && session.closeOnDisconnectMs !== null) session.disconnectedAt = now;
    }
  }

  /** The committed, OK'd session a connection speaks for, or an ERROR effect saying why not. */
  private attachedSession(
    connectionId: number,
    sessionId: number,
    effects: SessionEffect[],
  ): LiveSession | null {
    const connection = this.tables.connections.get(connectionId);
    const session = connection?.sessionId === sessionId ? this.tables.sessions.get(sessionId) : undefined;
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
    this.tables.step(session.chart, { type: 'CLOSE_REQUESTED', now, reason }, effects);
  }

  // ---- time and roles ----

  private tick(now: number, effects: SessionEffect[]): void {
    if (!this.tables.isLeader) return;
    for (const session of this.tables.sessions.values()) {
      const { chart, disconnectedAt, closeOnDisconnectMs } = session;
      if (chart.value !== 'OPEN') continue;
      if (
        disconnectedAt !== null &&
        closeOnDisconnectMs !== null &&
        now - disconnectedAt >= closeOnDisconnectMs
      ) {
        this.requestClose(session, 'DISCONNECTED', now, effects);
        continue;
      }
      if (!isSessionIdle(chart.context, now)) continue;
      if (session.activityAt > chart.context.lastActivityAt) {
        this.tables.step(chart, { type: 'KEEPALIVE', now: session.activityAt }, effects);
      }
      this.tables.step(session.chart, { type: 'TIMEOUT_CHECK', now }, effects);
    }
    for (const [connectionId, pending] of this.tables.pending) {
      const state = pending.chart.value;
      if (state === 'CONNECTED' || state === 'CHALLENGED') {
        advancePending(this.tables, connectionId, pending, { type: 'TIMEOUT_CHECK', now }, effects);
      }
    }
  }

  private roleChanged(leader: LeaderView, now: number, effects: SessionEffect[]): void {
    const wasLeader = this.tables.isLeader;
    this.tables.leader = leader;
    if (leader.kind === 'SELF' && wasLeader) return;
    // A close on disconnect is decided only by the leader that saw the connection close: forget any.
    for (const session of this.tables.sessions.values()) {
      session.closeOnDisconnectMs = null;
      session.disconnectedAt = null;
    }
    if (leader.kind === 'SELF' && !wasLeader) {
      // Sessions from the log are live again; their clocks restart from this leader's `now`.
      for (const session of this.tables.sessions.values()) {
        session.activityAt = now;
        this.tables.step(session.chart, { type: 'LEADERSHIP_ACQUIRED', now }, effects);
      }
      return;
    }
    if (leader.kind === 'SELF' || !wasLeader) return;
    // Stepped down: clients must go to the new leader. Every connection is answered and closed.
    const event: SessionEventToClient =
      leader.kind === 'OTHER'
        ? { code: 'REDIRECT', leaderId: leader.leaderId, endpoint: leader.endpoint }
        : NO_LEADER;
    for (const [connectionId, pending] of this.tables.pending)
      this.tables.forgetPending(connectionId, pending, now);
    this.tables.appendedOpens.clear();
    for (const session of this.tables.sessions.values()) {
      if (session.chart.value === 'CLOSING') {
        this.tables.step(session.chart, { type: 'LEADERSHIP_LOST', now }, effects);
      }
      if (session.chart.context.connectionId !== null) {
        this.tables.step(session.chart, { type: 'CONNECTION_LOST', now }, effects);
      }
    }
    for (const connectionId of this.tables.connections.keys()) {
      effects.push(
        { type: 'SEND', connectionId, event },
        { type: 'CLOSE_CONNECTION', connectionId, reason: 'member is no longer the leader' },
      );
    }
    this.tables.connections.clear();
  }

  // ---- committed entries (every member, deterministic) ----

  private committed(entry: LogEntry, now: number, effects: SessionEffect[]): void {
    if (entry.kind === EntryKind.SESSION_OPEN) {
      if (this.tables.sessions.has(entry.index)) return;
      const open = decodeSessionOpen(entry.payload);
      const record: SessionRecord = {
        id: entry.index,
        principal: open.principal,
        clientVersion: [open.clientVersion.major, open.clientVersion.minor],
        openedAt: entry.timestamp,
        openedBy: open.openedBy,
        resumeTokenHash: open.resumeTokenHash,
      };
      const connectionId = this.tables.appendedOpens.get(entry.index);
      this.tables.appendedOpens.delete(entry.index);
      this.addCommitted(record, now, connectionId ?? null, effects);
    } else if (entry.kind === EntryKind.SESSION_CLOSE) {
      const close = decodeSessionClose(entry.payload);
      const session = this.tables.sessions.get(close.sessionId);
      // A second close for the same session (say, TIMEOUT racing CLIENT_ACTION) is ignored everywhere.
      if (!session) return;
      this.tables.sessions.delete(close.sessionId);
      const connectionId = session.chart.context.connectionId;
      this.tables.step(session.chart, { type: 'CLOSE_COMMITTED', now, reason: close.reason }, effects);
      if (connectionId !== null) this.tables.connections.delete(connectionId);
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
    const pending = connectionId === null ? undefined : this.tables.pending.get(connectionId);
    const committedOpen: ClientSessionEvent = {
      type: 'OPEN_COMMITTED',
      now,
      sessionId: record.id,
      principal: record.principal,
    };
    let chart: SessionChart;
    let closeOnDisconnectMs: number | null = null;
    if (connectionId !== null && pending && pending.chart.context.sessionId === record.id) {
      closeOnDisconnectMs = pending.closeOnDisconnectMs;
      (this.tables.connections.get(connectionId) as Connection).sessionId = record.id;
      chart = pending.chart;
      // Still pending while it steps, so the OK can carry the resume token; then forgotten.
      this.tables.step(chart, committedOpen, effects);
      this.tables.pending.delete(connectionId);
    } else {
      chart = this.tables.newChart();
      this.tables.step(chart, committedOpen, effects);
    }
    this.tables.sessions.set(record.id, {
      record,
      chart,
      activityAt: now,
      closeOnDisconnectMs,
      disconnectedAt: null,
    });
  }
}
