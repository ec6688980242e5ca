// Close on disconnect (G2's fast path): a session that asked for it with CONNECT's closeOnDisconnectMs is
// closed by the leader that saw its connection close, through the log (DISCONNECTED), once no resume came
// within that time. Pure: the leader and a follower share a log; time is the `now` of each input.

import { expect } from 'chai';
import { EntryKind } from '../../../actors/log/log-entry.ts';
import { decodeSessionClose } from '../../../actors/sessions/payloads.ts';
import { parseClientRequest } from '../../../actors/sessions/requests.ts';
import { SessionManager } from '../../../actors/sessions/session-manager.ts';
import { SESSION_PROTOCOL_VERSION } from '../../../machines/client-session.ts';
import { LEADER, options, TIMEOUT, TOKEN, TwoMembers } from './two-members.ts';

const GRACE = 200;

/** A leader and a follower with one session opened at time 0 on connection 10, asking for `grace`. */
const withSession = (grace: number | null = GRACE) => {
  const members = new TwoMembers();
  members.connect(10, 0, TOKEN, grace === null ? {} : { closeOnDisconnectMs: grace });
  return { members, sessionId: members.sessionIdOf(10) };
};

/** The SESSION_CLOSE entries appended so far, decoded. */
const closes = (members: TwoMembers) =>
  members.log.filter((e) => e.kind === EntryKind.SESSION_CLOSE).map((e) => decodeSessionClose(e.payload));

describe('session manager: close on disconnect', () => {
  it('closes the session with DISCONNECTED through the log once its connection has been gone for the grace, not before', () => {
    const { members, sessionId } = withSession();
    members.feed({ type: 'CONNECTION_CLOSED', now: 100, connectionId: 10 });
    members.feed({ type: 'TICK', now: 100 + GRACE - 1 });
    expect(closes(members), 'nothing before the grace').to.deep.equal([]);
    members.feed({ type: 'TICK', now: 100 + GRACE });
    expect(closes(members)).to.deep.equal([{ sessionId, reason: 'DISCONNECTED' }]);
    members.feed({ type: 'TICK', now: 100 + GRACE + 50 });
    expect(closes(members), 'appended once').to.have.length(1);
    members.commit(100 + GRACE + 60);
    expect(members.leader.list()).to.deep.equal([]);
    expect(members.follower.list(), 'every member applies the close').to.deep.equal([]);
    expect(GRACE + 100, 'well inside the session timeout').to.be.below(TIMEOUT);
  });

  it('a resume within the grace cancels it; the resumed connection closing starts a new grace', () => {
    const { members, sessionId } = withSession();
    const resumeToken = members.tokenOf(10);
    members.feed({ type: 'CONNECTION_CLOSED', now: 100, connectionId: 10 });
    members.connect(11, 100 + GRACE - 10, TOKEN, {
      resumeSessionId: sessionId,
      resumeToken,
      closeOnDisconnectMs: GRACE,
    });
    expect(members.last(11)).to.deep.include({ code: 'OK', sessionId });
    members.feed({ type: 'TICK', now: 100 + 3 * GRACE });
    expect(closes(members), 'resumed in time: kept').to.deep.equal([]);
    members.feed({ type: 'CONNECTION_CLOSED', now: 1000, connectionId: 11 });
    members.feed({ type: 'TICK', now: 1000 + GRACE - 1 });
    expect(closes(members)).to.deep.equal([]);
    members.feed({ type: 'TICK', now: 1000 + GRACE });
    expect(closes(members)).to.deep.equal([{ sessionId, reason: 'DISCONNECTED' }]);
  });

  it('a resume that does not ask again leaves the session to its timeout', () => {
    const { members, sessionId } = withSession();
    const resumeToken = members.tokenOf(10);
    members.feed({ type: 'CONNECTION_CLOSED', now: 100, connectionId: 10 });
    members.connect(11, 150, TOKEN, { resumeSessionId: sessionId, resumeToken });
    members.feed({ type: 'CONNECTION_CLOSED', now: 200, connectionId: 11 });
    members.feed({ type: 'TICK', now: 200 + GRACE });
    expect(closes(members)).to.deep.equal([]);
  });

  it('a session that did not ask is unaffected: it closes only by its timeout', () => {
    const { members, sessionId } = withSession(null);
    members.feed({ type: 'CONNECTION_CLOSED', now: 100, connectionId: 10 });
    members.feed({ type: 'TICK', now: 100 + GRACE });
    members.feed({ type: 'TICK', now: TIMEOUT - 1 });
    expect(closes(members)).to.deep.equal([]);
    members.feed({ type: 'TICK', now: TIMEOUT + 1 });
    expect(closes(members)).to.deep.equal([{ sessionId, reason: 'TIMEOUT' }]);
  });

  it('a follower never closes, nor does a new leader or a leader that stepped down and back: they did not see the connection close', () => {
    const { members, sessionId } = withSession();
    // The follower learnt the session from the log; a connection id it never attached changes nothing.
    expect(members.follower.handle({ type: 'CONNECTION_CLOSED', now: 100, connectionId: 10 })).to.deep.equal(
      [],
    );
    expect(members.follower.handle({ type: 'TICK', now: 100 + GRACE })).to.deep.equal([]);
    members.feed({ type: 'CONNECTION_CLOSED', now: 100, connectionId: 10 });
    // The follower takes over: it starts the session's clock afresh and lets it time out.
    const promoted = members.follower;
    promoted.handle({ type: 'ROLE_CHANGED', now: 150, leader: { kind: 'SELF' } });
    expect(promoted.handle({ type: 'TICK', now: 150 + 2 * GRACE })).to.deep.equal([]);
    const timedOut = promoted.handle({ type: 'TICK', now: 150 + TIMEOUT + 1 });
    expect(timedOut.map((e) => e.type === 'APPEND' && decodeSessionClose(e.payload))).to.deep.equal([
      { sessionId, reason: 'TIMEOUT' },
    ]);
    // The old leader steps down before its grace ran out, then leads again: the grace is forgotten.
    members.feed({ type: 'ROLE_CHANGED', now: 120, leader: LEADER });
    members.feed({ type: 'ROLE_CHANGED', now: 130, leader: { kind: 'SELF' } });
    members.feed({ type: 'TICK', now: 130 + 2 * GRACE });
    expect(closes(members)).to.deep.equal([]);
  });

  it('the snapshot holds no grace: a member restored from it lets the session time out', () => {
    const { members, sessionId } = withSession();
    members.feed({ type: 'CONNECTION_CLOSED', now: 100, connectionId: 10 });
    const snapshot = members.leader.toSnapshot();
    expect(snapshot).to.deep.equal(members.follower.toSnapshot());
    const restored = SessionManager.fromSnapshot(snapshot, options());
    restored.handle({ type: 'ROLE_CHANGED', now: 100, leader: { kind: 'SELF' } });
    expect(restored.handle({ type: 'TICK', now: 100 + 2 * GRACE })).to.deep.equal([]);
    expect(restored.list().map((s) => s.id)).to.deep.equal([sessionId]);
  });

  it('CONNECT refuses a closeOnDisconnectMs that is not a bounded positive integer, naming the field', () => {
    const connect = (closeOnDisconnectMs: unknown) =>
      parseClientRequest(1, 0, {
        type: 'CONNECT',
        credentials: new Uint8Array(0),
        protocolVersion: SESSION_PROTOCOL_VERSION,
        closeOnDisconnectMs,
      });
    expect(connect(500)).to.deep.include({ ok: true });
    expect((connect(500) as { input: { closeOnDisconnectMs?: number } }).input.closeOnDisconnectMs).to.equal(
      500,
    );
    for (const bad of [0, -1, 1.5, 10, 1e9, '500', null]) {
      const parsed = connect(bad);
      expect(parsed.ok, String(bad)).to.equal(false);
      expect((parsed as { error: string }).error).to.contain('closeOnDisconnectMs');
    }
  });
});
