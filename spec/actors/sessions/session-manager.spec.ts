import { expect } from 'chai';
import fc from 'fast-check';
import { pack, unpack } from 'msgpackr';
import { EntryKind } from '../../../actors/log/log-entry.ts';
import {
  allowAllAuthenticator,
  challengeResponse,
  challengeResponseAuthenticator,
  seededNonceSource,
  textBytes,
} from '../../../actors/sessions/authenticators.ts';
import { decodeSessionClose, decodeSessionOpen } from '../../../actors/sessions/payloads.ts';
import { hashResumeToken } from '../../../actors/sessions/resume-tokens.ts';
import type { SessionEffect, SessionInput } from '../../../actors/sessions/session-manager.ts';
import { SessionManager } from '../../../actors/sessions/session-manager.ts';
import { SESSION_PROTOCOL_VERSION } from '../../../machines/client-session.ts';
import { checkProperty } from '../../support/property.ts';
import { LEADER, LEADER_ID, options, TOKEN, TwoMembers } from './two-members.ts';

const message = (connectionId: number, sessionId: number, now: number, correlationId = 1): SessionInput => ({
  type: 'SESSION_MESSAGE',
  lowestAwaited: 0,
  now,
  connectionId,
  sessionId,
  correlationId,
  body: new Uint8Array([correlationId]),
});

describe('session manager', () => {
  it('opens a session through the log: id = index of SESSION_OPEN, OK after commit, followers learn it', () => {
    const members = new TwoMembers();
    members.feed({ type: 'CONNECTION_OPENED', now: 0, connectionId: 10 });
    const effects = members.feed({
      type: 'CONNECT',
      now: 0,
      connectionId: 10,
      credentials: textBytes(TOKEN),
      protocolVersion: SESSION_PROTOCOL_VERSION,
    });
    expect(effects.map((effect) => effect.type)).to.deep.equal(['APPEND']);
    expect(members.sent.get(10), 'no OK before commit').to.equal(undefined);
    members.commit(5);
    expect(members.last(10)).to.deep.include({ code: 'OK', sessionId: 1, leaderId: LEADER_ID });
    // The OK carries the session's resume token; the log (and so every member) holds only its hash.
    const token = members.tokenOf(10);
    expect(token).to.have.length(32);
    const open = decodeSessionOpen(members.log[0].payload);
    expect(open.resumeTokenHash).to.deep.equal(hashResumeToken(token));
    expect(Buffer.from(members.log[0].payload).includes(Buffer.from(token))).to.equal(false);
    expect(
      members.follower.list().map(({ id, principal, state }) => ({ id, principal, state })),
    ).to.deep.equal([{ id: 1, principal: 'token-client', state: 'OPEN' }]);
    const [forward] = members.feed(message(10, 1, 6, 42));
    expect(forward).to.deep.include({ type: 'FORWARD', sessionId: 1, correlationId: 42 });
    expect([...(forward as Extract<SessionEffect, { type: 'FORWARD' }>).body]).to.deep.equal([42]);
    expect(members.leader.connectionOf(1)).to.equal(10);
    expect(members.follower.connectionOf(1)).to.equal(null);
  });

  it('C5: idle session closed with TIMEOUT through the log, client told, close entry appended', () => {
    const members = new TwoMembers();
    members.connect(10);
    const sessionId = members.sessionIdOf(10);
    members.feed({ type: 'KEEPALIVE', now: 800, connectionId: 10, sessionId });
    expect(members.feed({ type: 'TICK', now: 1500 }), 'keepalive postponed the timeout').to.deep.equal([]);
    const effects = members.feed({ type: 'TICK', now: 1800 });
    expect(effects).to.have.length(1);
    const append = effects[0] as Extract<SessionEffect, { type: 'APPEND' }>;
    expect(append.kind).to.equal(EntryKind.SESSION_CLOSE);
    expect(decodeSessionClose(append.payload)).to.deep.equal({ sessionId, reason: 'TIMEOUT' });
    expect(members.feed({ type: 'TICK', now: 1900 }), 'one close entry only').to.deep.equal([]);
    members.commit(1850);
    expect(members.last(10)).to.deep.equal({ code: 'CLOSED', sessionId, reason: 'TIMEOUT' });
    expect(members.closedConnections.get(10)).to.contain('TIMEOUT');
    expect(members.leader.list()).to.deep.equal([]);
    expect(members.follower.list(), 'the followers see the close').to.deep.equal([]);
  });

  it('C5: session messages count as activity, without a statechart step per message', () => {
    const members = new TwoMembers();
    members.connect(10);
    const sessionId = members.sessionIdOf(10);
    for (let now = 100; now <= 2000; now += 300) members.feed(message(10, sessionId, now));
    expect(members.feed({ type: 'TICK', now: 2500 })).to.deep.equal([]);
    expect(members.feed({ type: 'TICK', now: 2900 })[0]).to.include({ kind: EntryKind.SESSION_CLOSE });
  });

  it('C6: follower answers REDIRECT naming the leader, or NO_LEADER when none is known', () => {
    const follower = new SessionManager(options({ memberId: 2 }));
    const connect: SessionInput = {
      type: 'CONNECT',
      now: 0,
      connectionId: 5,
      credentials: textBytes(TOKEN),
      protocolVersion: SESSION_PROTOCOL_VERSION,
    };
    const noLeader = follower.handle(connect);
    expect(noLeader[0]).to.deep.include({ type: 'SEND', connectionId: 5 });
    expect((noLeader[0] as Extract<SessionEffect, { type: 'SEND' }>).event.code).to.equal('NO_LEADER');
    expect(JSON.stringify(noLeader)).to.contain('knows of no leader').and.contain('try another member');
    follower.handle({ type: 'ROLE_CHANGED', now: 0, leader: LEADER });
    expect(follower.handle({ ...connect, connectionId: 6 })).to.deep.equal([
      {
        type: 'SEND',
        connectionId: 6,
        event: { code: 'REDIRECT', leaderId: LEADER_ID, endpoint: 'm1:9010' },
      },
      { type: 'CLOSE_CONNECTION', connectionId: 6, reason: 'redirected to leader 1 at m1:9010' },
    ]);
    expect(follower.activeSessions).to.equal(0);
  });

  it('R2: over the session limit refused with reason, existing sessions keep working', () => {
    const members = new TwoMembers();
    members.connect(10);
    members.connect(11);
    const refused = members.connect(12);
    expect(refused).to.deep.include({ code: 'ERROR', retryable: true });
    expect(JSON.stringify(refused)).to.contain('maxSessions=2');
    expect(members.closedConnections.has(12)).to.equal(true);
    expect(members.log.filter((entry) => entry.kind === EntryKind.SESSION_OPEN)).to.have.length(2);
    for (const connectionId of [10, 11]) {
      const [effect] = members.feed(message(connectionId, members.sessionIdOf(connectionId), 50));
      expect(effect).to.include({ type: 'FORWARD', sessionId: members.sessionIdOf(connectionId) });
    }
    // A slot frees when a session closes.
    members.feed({ type: 'CLOSE', now: 60, connectionId: 10, sessionId: members.sessionIdOf(10) });
    members.commit(60);
    expect(members.last(10)).to.deep.include({ code: 'CLOSED', reason: 'CLIENT_ACTION' });
    expect(members.connect(13, 70)).to.deep.include({ code: 'OK' });
  });

  it('R2: over the connection limit refused with reason before any session work', () => {
    const manager = new SessionManager(options({ maxConnections: 1 }));
    expect(manager.handle({ type: 'CONNECTION_OPENED', now: 0, connectionId: 1 })).to.deep.equal([]);
    const refused = manager.handle({ type: 'CONNECTION_OPENED', now: 0, connectionId: 2 });
    expect(refused.map((effect) => effect.type)).to.deep.equal(['SEND', 'CLOSE_CONNECTION']);
    expect(JSON.stringify(refused)).to.contain('maxConnections=1');
  });

  it('O4: incompatible client version refused with a clear, non-retryable ERROR', () => {
    const members = new TwoMembers();
    members.feed({
      type: 'CONNECT',
      now: 0,
      connectionId: 10,
      credentials: textBytes(TOKEN),
      protocolVersion: { major: SESSION_PROTOCOL_VERSION.major + 1, minor: 0 },
    });
    const reply = members.last(10);
    expect(reply).to.deep.include({ code: 'ERROR', retryable: false });
    expect(JSON.stringify(reply)).to.match(/2\.0 is incompatible with the cluster's 1\.0: upgrade/);
    expect(members.closedConnections.has(10)).to.equal(true);
    expect(members.log).to.deep.equal([]);
  });

  it('a bad token is answered AUTHENTICATION_REJECTED and the connection closed', () => {
    const members = new TwoMembers();
    expect(members.connect(10, 0, 'not-the-token')).to.deep.include({ code: 'AUTHENTICATION_REJECTED' });
    expect(members.closedConnections.get(10)).to.contain('shared token does not match');
    expect(members.leader.activeSessions).to.equal(0);
  });

  it('challenge–response through the manager: good answer opens, a second answer finds no challenge', () => {
    const secret = 'alice-secret';
    const members = new TwoMembers({
      authenticator: challengeResponseAuthenticator({
        secrets: { alice: secret },
        nonces: seededNonceSource(1),
      }),
    });
    const challenge = members.connect(10, 0, 'alice');
    if (challenge?.code !== 'CHALLENGE')
      throw new Error(`expected CHALLENGE, got ${JSON.stringify(challenge)}`);
    const response = challengeResponse(secret, challenge.challenge);
    members.feed({ type: 'CHALLENGE_RESPONSE', now: 5, connectionId: 10, response });
    members.commit(6);
    expect(members.last(10)).to.deep.include({ code: 'OK' });
    expect(members.follower.list()[0].principal).to.equal('alice');
    members.feed({ type: 'CHALLENGE_RESPONSE', now: 7, connectionId: 10, response });
    expect(JSON.stringify(members.last(10))).to.contain('no challenge is outstanding');
    // A wrong answer on another connection is rejected.
    members.connect(11, 10, 'alice');
    members.feed({ type: 'CHALLENGE_RESPONSE', now: 11, connectionId: 11, response });
    expect(members.last(11)).to.deep.include({ code: 'AUTHENTICATION_REJECTED' });
  });

  it('an unanswered challenge is rejected after the authentication timeout', () => {
    const members = new TwoMembers({
      authenticationTimeoutMs: 200,
      authenticator: challengeResponseAuthenticator({
        secrets: { alice: 's' },
        nonces: seededNonceSource(1),
      }),
    });
    members.connect(10, 0, 'alice');
    members.feed({ type: 'TICK', now: 199 });
    expect(members.last(10)?.code).to.equal('CHALLENGE');
    members.feed({ type: 'TICK', now: 200 });
    expect(members.last(10)).to.deep.include({ code: 'AUTHENTICATION_REJECTED' });
    expect(members.leader.activeSessions).to.equal(0);
  });

  it('messages on a connection without that session get an ERROR, never reach the log', () => {
    const members = new TwoMembers();
    members.connect(10);
    members.feed({ type: 'CONNECTION_OPENED', now: 0, connectionId: 11 });
    const effects = members.feed(message(11, members.sessionIdOf(10), 1));
    expect(effects.map((effect) => effect.type)).to.deep.equal(['SEND']);
    expect(JSON.stringify(effects)).to.contain('not open on this connection');
    const again = members.feed({
      type: 'CONNECT',
      now: 1,
      connectionId: 10,
      credentials: textBytes(TOKEN),
      protocolVersion: SESSION_PROTOCOL_VERSION,
    });
    expect(JSON.stringify(again)).to.contain('CONNECT was already sent');
  });

  it('SERVICE_ACTION close goes through the log and tells the client', () => {
    const members = new TwoMembers();
    members.connect(10);
    const sessionId = members.sessionIdOf(10);
    expect(
      members.follower.handle({ type: 'CLOSE_SESSION', now: 1, sessionId }),
      'followers never append',
    ).to.deep.equal([]);
    members.feed({ type: 'CLOSE_SESSION', now: 1, sessionId });
    members.commit(2);
    expect(members.last(10)).to.deep.equal({ code: 'CLOSED', sessionId, reason: 'SERVICE_ACTION' });
  });

  it('a leader that steps down redirects its clients; the new leader restarts session clocks from its now', () => {
    const members = new TwoMembers();
    members.connect(10);
    const sessionId = members.sessionIdOf(10);
    members.feed({ type: 'CLOSE', now: 50, connectionId: 10, sessionId });
    const steppedDown = members.feed({
      type: 'ROLE_CHANGED',
      now: 60,
      leader: { kind: 'OTHER', leaderId: 2, endpoint: 'm2:9010' },
    });
    expect(steppedDown).to.deep.equal([
      { type: 'SEND', connectionId: 10, event: { code: 'REDIRECT', leaderId: 2, endpoint: 'm2:9010' } },
      { type: 'CLOSE_CONNECTION', connectionId: 10, reason: 'member is no longer the leader' },
    ]);
    expect(members.leader.list()[0].state, 'the uncommitted close is abandoned').to.equal('OPEN');
    // The follower is promoted long after the session was opened; its clock restarts from its now.
    const promoted = members.follower;
    promoted.handle({ type: 'ROLE_CHANGED', now: 5000, leader: { kind: 'SELF' } });
    expect(promoted.handle({ type: 'TICK', now: 5999 })).to.deep.equal([]);
    const [close] = promoted.handle({ type: 'TICK', now: 6000 });
    expect(decodeSessionClose((close as Extract<SessionEffect, { type: 'APPEND' }>).payload)).to.deep.equal({
      sessionId,
      reason: 'TIMEOUT',
    });
  });

  it('C1: after a failover the client resumes its session on the new leader: same id, no new open entry', () => {
    const members = new TwoMembers();
    members.connect(10);
    const sessionId = members.sessionIdOf(10);
    const opens = members.log.length;
    members.feed({ type: 'ROLE_CHANGED', now: 100, leader: { kind: 'UNKNOWN' } });
    const promoted = members.follower;
    promoted.handle({ type: 'ROLE_CHANGED', now: 200, leader: { kind: 'SELF' } });
    const resumeToken = members.tokenOf(10);
    const resume = (connectionId: number, credentials: string, resumeSessionId: number, now: number) =>
      promoted.handle({
        type: 'CONNECT',
        now,
        connectionId,
        credentials: textBytes(credentials),
        protocolVersion: SESSION_PROTOCOL_VERSION,
        resumeSessionId,
        resumeToken,
      });
    expect(resume(20, TOKEN, sessionId, 250)).to.deep.equal([
      { type: 'SEND', connectionId: 20, event: { code: 'OK', sessionId, leaderId: 2 } },
    ]);
    expect(members.log).to.have.length(opens);
    expect(promoted.handle(message(20, sessionId, 260))[0]).to.include({ type: 'FORWARD', sessionId });
    // The same session resumed again (the client's old socket half-open): the older connection goes.
    const again = resume(21, TOKEN, sessionId, 270);
    expect(
      again.map((effect) => [effect.type, 'connectionId' in effect ? effect.connectionId : null]),
    ).to.deep.equal([
      ['SEND', 21],
      ['SEND', 20],
      ['CLOSE_CONNECTION', 20],
    ]);
    expect(JSON.stringify(promoted.handle(message(20, sessionId, 280)))).to.contain(
      'not open on this connection',
    );
    // An unknown or closed session cannot be resumed; the client is told to open a new one.
    const unknown = resume(22, TOKEN, 99, 290);
    expect(unknown[0]).to.deep.include({ type: 'SEND', connectionId: 22 });
    expect((unknown[0] as Extract<SessionEffect, { type: 'SEND' }>).event).to.deep.include({
      code: 'RESUME_REFUSED',
      sessionId: 99,
    });
    expect(JSON.stringify(unknown)).to.contain('session 99 is not open');
    expect(promoted.list()).to.have.length(1);
  });

  it('a session belongs to its owner: a resume without its token is refused, and the owner keeps its connection', () => {
    const members = new TwoMembers({ authenticator: allowAllAuthenticator() });
    members.connect(10, 0, 'alice');
    const sessionId = members.sessionIdOf(10);
    const token = members.tokenOf(10);
    const hijack = (connectionId: number, resumeToken: Uint8Array | null, credentials = 'alice') =>
      members.feed({
        type: 'CONNECT',
        now: 5,
        connectionId,
        credentials: textBytes(credentials),
        protocolVersion: SESSION_PROTOCOL_VERSION,
        resumeSessionId: sessionId,
        resumeToken,
      });
    const forged = new Uint8Array(token);
    forged[31] ^= 1;
    for (const [connectionId, attempt] of [
      [11, null],
      [12, forged],
      [13, token.subarray(0, 16)],
      [14, hashResumeToken(token)],
    ] as const) {
      // Even with the owner's principal: only the token proves ownership.
      const effects = hijack(connectionId, attempt);
      expect(
        effects.map((effect) => [effect.type, (effect as { connectionId?: number }).connectionId]),
      ).to.deep.equal([
        ['SEND', connectionId],
        ['CLOSE_CONNECTION', connectionId],
      ]);
      const refusal = (effects[0] as Extract<SessionEffect, { type: 'SEND' }>).event;
      expect(refusal).to.deep.include({ code: 'RESUME_REFUSED', sessionId });
      expect(JSON.stringify(refusal)).to.contain('resume token does not match');
    }
    expect(members.leader.connectionOf(sessionId), 'the owner is still attached').to.equal(10);
    expect(members.feed(message(10, sessionId, 6))[0], 'and still sends').to.include({ type: 'FORWARD' });
    expect(members.closedConnections.has(10)).to.equal(false);
    // With the token the owner (back on a new connection) resumes.
    expect(hijack(15, token)[0]).to.deep.equal({
      type: 'SEND',
      connectionId: 15,
      event: { code: 'OK', sessionId, leaderId: LEADER_ID },
    });
  });

  it('a new leader after failover, or a member restored from a snapshot, verifies the token from the replicated hash', () => {
    const members = new TwoMembers();
    members.connect(10);
    const sessionId = members.sessionIdOf(10);
    const token = members.tokenOf(10);
    const connect = (manager: SessionManager, connectionId: number, resumeToken: Uint8Array) =>
      manager.handle({
        type: 'CONNECT',
        now: 300,
        connectionId,
        credentials: textBytes(TOKEN),
        protocolVersion: SESSION_PROTOCOL_VERSION,
        resumeSessionId: sessionId,
        resumeToken,
      })[0];
    const restored = SessionManager.fromSnapshot(
      unpack(pack(members.follower.toSnapshot())),
      options({ memberId: 2 }),
    );
    for (const promoted of [members.follower, restored]) {
      promoted.handle({ type: 'ROLE_CHANGED', now: 200, leader: { kind: 'SELF' } });
      expect(connect(promoted, 20, new Uint8Array(32))).to.deep.include({ type: 'SEND', connectionId: 20 });
      expect(JSON.stringify(connect(promoted, 21, new Uint8Array(32)))).to.contain('RESUME_REFUSED');
      expect(connect(promoted, 22, token)).to.deep.equal({
        type: 'SEND',
        connectionId: 22,
        event: { code: 'OK', sessionId, leaderId: 2 },
      });
    }
    // A snapshot written before resume tokens (version 1) still loads; its sessions cannot be resumed.
    const { resumeTokenHash: _, ...v1Record } = members.follower.toSnapshot().sessions[0];
    const old = SessionManager.fromSnapshot(
      { version: 1, sessions: [v1Record] } as never,
      options({ memberId: 2 }),
    );
    old.handle({ type: 'ROLE_CHANGED', now: 200, leader: { kind: 'SELF' } });
    expect(old.list()).to.have.length(1);
    expect(JSON.stringify(connect(old, 23, token))).to.contain('RESUME_REFUSED');
  });

  it('a KEEPALIVE is answered, so a client awaiting replies can tell a live member from a frozen one', () => {
    const members = new TwoMembers();
    members.connect(10);
    const sessionId = members.sessionIdOf(10);
    expect(members.feed({ type: 'KEEPALIVE', now: 5, connectionId: 10, sessionId })).to.deep.equal([
      { type: 'SEND', connectionId: 10, event: { code: 'KEEPALIVE', sessionId } },
    ]);
  });

  it('a session can only be resumed by its own principal, even with its resume token', () => {
    const members = new TwoMembers({ authenticator: allowAllAuthenticator() });
    members.connect(10, 0, 'alice');
    const sessionId = members.sessionIdOf(10);
    const effects = members.feed({
      type: 'CONNECT',
      now: 5,
      connectionId: 11,
      credentials: textBytes('mallory'),
      protocolVersion: SESSION_PROTOCOL_VERSION,
      resumeSessionId: sessionId,
      // Even a stolen token does not let another principal in.
      resumeToken: members.tokenOf(10),
    });
    expect(effects[0]).to.deep.include({ type: 'SEND', connectionId: 11 });
    expect(JSON.stringify(effects[0])).to.contain('AUTHENTICATION_REJECTED').and.contain('another principal');
    expect(members.feed(message(10, sessionId, 6))[0], 'alice keeps her session').to.include({
      type: 'FORWARD',
    });
  });

  it('a connection lost before its open entry commits leaves a session that times out', () => {
    const members = new TwoMembers();
    members.feed({ type: 'CONNECTION_OPENED', now: 0, connectionId: 10 });
    members.feed({
      type: 'CONNECT',
      now: 0,
      connectionId: 10,
      credentials: textBytes(TOKEN),
      protocolVersion: SESSION_PROTOCOL_VERSION,
    });
    members.feed({ type: 'CONNECTION_CLOSED', now: 1, connectionId: 10 });
    members.commit(2);
    expect(members.sent.get(10)).to.equal(undefined);
    expect(members.leader.list()).to.deep.include({ ...members.follower.list()[0], connectionId: null });
    expect(members.feed({ type: 'TICK', now: 1002 })[0]).to.include({ kind: EntryKind.SESSION_CLOSE });
  });

  it('determinism: leader and follower fed the same committed entries end with identical snapshots', () => {
    const members = new TwoMembers({ maxSessions: 5 });
    for (const connectionId of [10, 11, 12]) members.connect(connectionId, connectionId);
    members.feed({ type: 'CLOSE', now: 20, connectionId: 11, sessionId: members.sessionIdOf(11) });
    members.feed({ type: 'TICK', now: 5000 });
    members.commit(5000);
    const snapshot = members.leader.toSnapshot();
    expect(snapshot.sessions).to.have.length(0);
    members.connect(13, 6000);
    expect(members.leader.toSnapshot()).to.deep.equal(members.follower.toSnapshot());
    expect(members.leader.toSnapshot().sessions.map((session) => session.id)).to.deep.equal([7]);
  });

  it('determinism (property): any client history gives the same snapshot on every member and after a reload', () => {
    const step = fc.oneof(
      {
        weight: 3,
        arbitrary: fc.record({
          op: fc.constant('connect' as const),
          connection: fc.integer({ min: 1, max: 6 }),
        }),
      },
      fc.record({ op: fc.constant('close' as const), connection: fc.integer({ min: 1, max: 6 }) }),
      fc.record({ op: fc.constant('drop' as const), connection: fc.integer({ min: 1, max: 6 }) }),
      fc.record({ op: fc.constant('tick' as const), advance: fc.integer({ min: 0, max: 700 }) }),
      fc.record({ op: fc.constant('commit' as const) }),
    );
    let largest = 0;
    checkProperty(
      fc.property(fc.array(step, { maxLength: 40 }), (steps) => {
        const members = new TwoMembers({ maxSessions: 3 });
        let now = 0;
        for (const s of steps) {
          if (s.op === 'connect') members.connect(s.connection, now);
          else if (s.op === 'close') {
            const last = members.last(s.connection);
            if (last?.code === 'OK') {
              members.feed({ type: 'CLOSE', now, connectionId: s.connection, sessionId: last.sessionId });
            }
          } else if (s.op === 'drop')
            members.feed({ type: 'CONNECTION_CLOSED', now, connectionId: s.connection });
          else if (s.op === 'tick') {
            now += s.advance;
            members.feed({ type: 'TICK', now });
          } else members.commit(now);
          largest = Math.max(largest, members.follower.list().length);
        }
        members.commit(now);
        const snapshot = members.leader.toSnapshot();
        expect(snapshot).to.deep.equal(members.follower.toSnapshot());
        expect(snapshot.sessions.length).to.be.at.most(3);
        const reloaded = SessionManager.fromSnapshot(unpack(pack(snapshot)), options());
        expect(reloaded.toSnapshot()).to.deep.equal(snapshot);
      }),
      { numRuns: 60 },
    );
    expect(largest, 'some history reached the session limit').to.equal(3);
  });

  it('refuses a snapshot from another version and bad options, naming the fix', () => {
    expect(() => SessionManager.fromSnapshot({ version: 99, sessions: [] }, options())).to.throw(
      /session snapshot version 99 is not supported/,
    );
    expect(() => new SessionManager(options({ maxSessions: 0 }))).to.throw(/maxSessions is 0/);
    expect(() => new SessionManager(options({ memberId: -1 }))).to.throw(/memberId is -1/);
  });
});
