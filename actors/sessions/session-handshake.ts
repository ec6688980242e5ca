// The connect handshake on the leader: a client's CONNECT is validated (protocol version, leadership,
// session limit, a resume's ownership), authenticated (at once or through a challenge), and then either
// appended as a SESSION_OPEN entry (a new session) or attached to the committed session it resumes (C1).
// Pure: it steps the session charts of session-tables.ts and returns effects.

import type { ClientSessionEvent } from '../../machines/client-session.ts';
import { isResumeTokenValid } from './resume-tokens.ts';
import type { Connection, LiveSession, PendingSession, SessionTables } from './session-tables.ts';
import type { SessionEffect, SessionInput } from './session-types.ts';

/** Answer a handshake step that cannot be taken with a non-retryable ERROR, naming what to do instead. */
const refuseStep = (effects: SessionEffect[], connectionId: number, detail: string): void => {
  effects.push({ type: 'SEND', connectionId, event: { code: 'ERROR', detail, retryable: false } });
};

export const connect = (
  tables: SessionTables,
  input: Extract<SessionInput, { type: 'CONNECT' }>,
  effects: SessionEffect[],
): void => {
  const { connectionId, now } = input;
  if (!tables.openConnection(connectionId, effects)) return;
  const connection = tables.connections.get(connectionId) as Connection;
  if (connection.sessionId !== null || tables.pending.has(connectionId)) {
    refuseStep(
      effects,
      connectionId,
      'CONNECT was already sent on this connection: open a new connection for another session',
    );
    return;
  }
  const chart = tables.newChart();
  tables.step(
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
  tables.step(
    chart,
    {
      type: 'VALIDATE',
      now,
      serverVersion: tables.options.protocolVersion,
      leader: tables.leader,
      activeSessions: tables.activeSessions,
      maxSessions: tables.options.maxSessions,
      ...resumeCheck(tables, input.resumeSessionId ?? null, input.resumeToken),
    },
    effects,
  );
  if (chart.value !== 'CONNECTED') {
    tables.finishRefused(connectionId, chart, now);
    return;
  }
  const pending: PendingSession = {
    chart,
    credentials: input.credentials,
    challenge: null,
    resumeToken: null,
    closeOnDisconnectMs: input.closeOnDisconnectMs ?? null,
  };
  tables.pending.set(connectionId, pending);
  const decision = tables.options.authenticator.onConnect(input.credentials);
  if (decision.kind === 'CHALLENGE') pending.challenge = decision.challenge;
  const event: ClientSessionEvent =
    decision.kind === 'ACCEPT'
      ? acceptedEvent(tables, pending, decision.principal, now)
      : decision.kind === 'REJECT'
        ? { type: 'AUTH_REJECTED', now, detail: decision.reason }
        : { type: 'CHALLENGE_ISSUED', now, challenge: decision.challenge };
  advancePending(tables, connectionId, pending, event, effects);
};

export const challengeResponse = (
  tables: SessionTables,
  input: Extract<SessionInput, { type: 'CHALLENGE_RESPONSE' }>,
  effects: SessionEffect[],
): void => {
  const { connectionId, now } = input;
  const pending = tables.pending.get(connectionId);
  if (pending?.chart.value !== 'CHALLENGED' || !pending.challenge) {
    refuseStep(
      effects,
      connectionId,
      'no challenge is outstanding on this connection: send CONNECT and answer its CHALLENGE once',
    );
    return;
  }
  const decision = tables.options.authenticator.onChallengeResponse(
    pending.credentials,
    pending.challenge,
    input.response,
  );
  // A challenge is answered once: a second answer (or a replay) finds none outstanding.
  pending.challenge = null;
  const event: ClientSessionEvent =
    decision.kind === 'ACCEPT'
      ? acceptedEvent(tables, pending, decision.principal, now)
      : { type: 'AUTH_REJECTED', now, detail: decision.reason };
  advancePending(tables, connectionId, pending, event, effects);
};

/** The host appended the SESSION_OPEN of a pending connect at `index` (the session's id). */
export const openAppended = (
  tables: SessionTables,
  connectionId: number,
  index: number,
  now: number,
): void => {
  const pending = tables.pending.get(connectionId);
  if (pending?.chart.value !== 'AUTHENTICATED') return;
  tables.step(pending.chart, { type: 'APPENDED_OPEN', now, sessionId: index }, []);
  tables.appendedOpens.set(index, connectionId);
};

/** Step a pending session; a rejected one is dropped with its connection, a resumed one attached. */
export const advancePending = (
  tables: SessionTables,
  connectionId: number,
  pending: PendingSession,
  event: ClientSessionEvent,
  effects: SessionEffect[],
): void => {
  tables.step(pending.chart, event, effects);
  if (pending.chart.value === 'REJECTED') {
    tables.pending.delete(connectionId);
    tables.finishRefused(connectionId, pending.chart, event.now);
  } else if (pending.chart.value === 'OPEN') {
    tables.pending.delete(connectionId);
    completeResume(tables, connectionId, pending, event.now, effects);
  }
};

/** Whether a session may be resumed here: it is open, and the token proves the client owns it. */
const resumeCheck = (
  tables: SessionTables,
  sessionId: number | null,
  token: Uint8Array | null | undefined,
): { resumable: boolean; resumeProven: boolean } => {
  const live = sessionId === null ? undefined : tables.sessions.get(sessionId);
  if (live?.chart.value !== 'OPEN') return { resumable: false, resumeProven: false };
  return { resumable: true, resumeProven: isResumeTokenValid(token, live.record.resumeTokenHash) };
};

/** The event for an accepted client, with what this member knows now of the session a resume asks for. */
const acceptedEvent = (
  tables: SessionTables,
  pending: PendingSession,
  principal: string,
  now: number,
): ClientSessionEvent => {
  const resumeId = pending.chart.context.resumeSessionId;
  if (resumeId === null) return { type: 'AUTHENTICATED', now, principal };
  const live = tables.sessions.get(resumeId);
  // The chart decides (guard isResumeRefused): still open, and the same principal's.
  const resumed = { open: live?.chart.value === 'OPEN', principal: live?.record.principal ?? '' };
  return { type: 'AUTHENTICATED', now, principal, resumed };
};

/**
 * The handshake took over a committed session (checked open, same principal, this turn): its chart
 * becomes the session's, and a connection still holding the session is told and closed.
 */
const completeResume = (
  tables: SessionTables,
  connectionId: number,
  { chart, closeOnDisconnectMs }: PendingSession,
  now: number,
  effects: SessionEffect[],
): void => {
  const sessionId = chart.context.sessionId as number;
  const live = tables.sessions.get(sessionId) as LiveSession;
  const previous = live.chart.context.connectionId;
  if (previous !== null && previous !== connectionId) {
    const detail = `session ${sessionId} was resumed on another connection`;
    effects.push(
      { type: 'SEND', connectionId: previous, event: { code: 'ERROR', detail, retryable: false } },
      { type: 'CLOSE_CONNECTION', connectionId: previous, reason: detail },
    );
    tables.connections.delete(previous);
  }
  live.chart.actor.stop();
  live.chart = chart;
  live.activityAt = now;
  // Resumed in time: a close on disconnect no longer runs; the new connection's CONNECT says what applies.
  live.closeOnDisconnectMs = closeOnDisconnectMs;
  live.disconnectedAt = null;
  (tables.connections.get(connectionId) as Connection).sessionId = sessionId;
};
