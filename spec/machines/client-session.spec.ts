import { expect } from 'chai';
import type { SnapshotFrom } from 'xstate';
import { createActor, initialTransition, transition } from 'xstate';
import type { ClientSessionEvent } from '../../machines/client-session.ts';
import {
  CLIENT_SESSION_STATES,
  CloseReason,
  clientSessionMachine,
  closeReasonName,
  isProtocolCompatible,
  isSessionIdle,
  refusalFor,
  SESSION_PROTOCOL_VERSION,
} from '../../machines/client-session.ts';
import { exploreCoverage, shortestPaths } from '../support/model-coverage.ts';

type Snapshot = SnapshotFrom<typeof clientSessionMachine>;

const TIMEOUT = 1000;
const input = { sessionTimeoutMs: TIMEOUT, authenticationTimeoutMs: 300 };
const v1 = SESSION_PROTOCOL_VERSION;

const validate = (
  leader: Extract<ClientSessionEvent, { type: 'VALIDATE' }>['leader'],
  activeSessions = 0,
  resumable = false,
  resumeProven = resumable,
): ClientSessionEvent => ({
  type: 'VALIDATE',
  now: 0,
  serverVersion: v1,
  leader,
  activeSessions,
  maxSessions: 2,
  resumable,
  resumeProven,
});

/** A small event alphabet that reaches every state and guard branch. */
const EVENTS: ClientSessionEvent[] = [
  { type: 'CONNECT_REQUEST', now: 0, connectionId: 1, clientVersion: v1 },
  { type: 'CONNECT_REQUEST', now: 0, connectionId: 1, clientVersion: { major: v1.major + 1, minor: 0 } },
  { type: 'CONNECT_REQUEST', now: 0, connectionId: 1, clientVersion: v1, resumeSessionId: 3 },
  validate({ kind: 'SELF' }),
  validate({ kind: 'SELF' }, 2, true),
  validate({ kind: 'SELF' }, 2, true, false),
  validate({ kind: 'SELF' }, 2),
  validate({ kind: 'OTHER', leaderId: 2, endpoint: 'm2:9010' }),
  validate({ kind: 'UNKNOWN' }),
  { type: 'AUTHENTICATED', now: 0, principal: 'alice' },
  // A resume whose session closed meanwhile, or is another principal's: refused by the chart.
  { type: 'AUTHENTICATED', now: 0, principal: 'alice', resumed: { open: false, principal: 'alice' } },
  { type: 'AUTHENTICATED', now: 0, principal: 'alice', resumed: { open: true, principal: 'bob' } },
  { type: 'CHALLENGE_ISSUED', now: 0, challenge: new Uint8Array([1, 2, 3]) },
  { type: 'AUTH_REJECTED', now: 0, detail: 'bad token' },
  { type: 'APPENDED_OPEN', now: 0, sessionId: 7 },
  { type: 'OPEN_COMMITTED', now: 0, sessionId: 7, principal: 'alice' },
  { type: 'KEEPALIVE', now: 10 },
  { type: 'TIMEOUT_CHECK', now: 100 },
  { type: 'TIMEOUT_CHECK', now: 5000 },
  { type: 'CLOSE_REQUESTED', now: 0, reason: 'CLIENT_ACTION' },
  { type: 'CLOSE_COMMITTED', now: 0, reason: 'CLIENT_ACTION' },
  { type: 'CONNECTION_LOST', now: 0 },
  { type: 'CONNECTION_ATTACHED', now: 20, connectionId: 2 },
  { type: 'LEADERSHIP_ACQUIRED', now: 30 },
  { type: 'LEADERSHIP_LOST', now: 0 },
  { type: 'CLOSE_REFUSED', now: 0 },
];

/** What must hold in each state, whatever path reached it. */
const checkInvariants = (snapshot: Snapshot): void => {
  const { context } = snapshot;
  switch (snapshot.value) {
    case 'OPEN':
    case 'CLOSING':
      expect(context.sessionId, 'an open session has an id').to.be.a('number');
      break;
    case 'INVALID':
    case 'REJECTED':
      expect(context.refusal, `${snapshot.value} records why`).to.not.equal(null);
      break;
    case 'AUTHENTICATED':
      expect(context.principal).to.equal('alice');
      break;
  }
  if (snapshot.value === 'CLOSING') expect(context.closeReason).to.not.equal(null);
};

const start = () => initialTransition(clientSessionMachine, input)[0];

/** Run events through the pure transition, collecting effect action names. */
const run = (events: ClientSessionEvent[], from: Snapshot = start()) => {
  let snapshot = from;
  const actions: string[] = [];
  for (const event of events) {
    const [next, emitted] = transition(clientSessionMachine, snapshot, event);
    snapshot = next;
    actions.push(...emitted.map((action) => action.type));
  }
  return { snapshot, actions };
};

const openSession = (): Snapshot =>
  run([
    { type: 'CONNECT_REQUEST', now: 0, connectionId: 1, clientVersion: v1 },
    validate({ kind: 'SELF' }),
    { type: 'AUTHENTICATED', now: 0, principal: 'alice' },
    { type: 'APPENDED_OPEN', now: 0, sessionId: 7 },
    { type: 'OPEN_COMMITTED', now: 0, sessionId: 7, principal: 'alice' },
  ]).snapshot;

describe('client-session machine', () => {
  it('generated paths reach every state and every transition (model-based)', () => {
    const coverage = exploreCoverage(clientSessionMachine, { input, events: EVENTS });
    expect([...coverage.states].sort()).to.deep.equal([...CLIENT_SESSION_STATES].sort());
    const missed = [...coverage.defined].filter((key) => !coverage.taken.has(key));
    expect(missed, 'transitions never taken').to.deep.equal([]);
  });

  it('every shortest path replays identically on a live actor, with state invariants at each step', () => {
    const paths = shortestPaths(clientSessionMachine, { input, events: EVENTS });
    expect(paths.length).to.be.greaterThan(CLIENT_SESSION_STATES.length);
    for (const path of paths) {
      const actor = createActor(clientSessionMachine, { input }).start();
      for (const step of path.steps) {
        actor.send(step.event);
        const live = actor.getSnapshot();
        expect(live.value).to.equal(step.state.value);
        expect(live.context).to.deep.equal(step.state.context);
        checkInvariants(live);
      }
      actor.stop();
    }
  });

  it('the happy path asks for the open entry, then says OK once it commits', () => {
    const { snapshot, actions } = run([
      { type: 'CONNECT_REQUEST', now: 0, connectionId: 1, clientVersion: v1 },
      validate({ kind: 'SELF' }),
      { type: 'AUTHENTICATED', now: 0, principal: 'alice' },
      { type: 'APPENDED_OPEN', now: 0, sessionId: 7 },
      { type: 'OPEN_COMMITTED', now: 0, sessionId: 7, principal: 'alice' },
      { type: 'OPEN_COMMITTED', now: 0, sessionId: 7, principal: 'alice' },
    ]);
    expect(snapshot.value).to.equal('OPEN');
    expect(actions).to.deep.equal(['requestOpenAppend', 'notifyOpened']);
  });

  it('C6: a follower refuses a connect with a REDIRECT naming the leader', () => {
    const { snapshot, actions } = run([
      { type: 'CONNECT_REQUEST', now: 0, connectionId: 1, clientVersion: v1 },
      validate({ kind: 'OTHER', leaderId: 2, endpoint: 'm2:9010' }),
    ]);
    expect(snapshot.value).to.equal('INVALID');
    expect(snapshot.context.refusal).to.deep.equal({ code: 'REDIRECT', leaderId: 2, endpoint: 'm2:9010' });
    expect(actions).to.deep.equal(['notifyRefused']);
  });

  it('O4: an incompatible client protocol version is refused before leadership or limits', () => {
    const refusal = refusalFor(
      { clientVersion: { major: 9, minor: 0 }, resumeSessionId: null },
      {
        type: 'VALIDATE',
        now: 0,
        serverVersion: v1,
        leader: { kind: 'UNKNOWN' },
        activeSessions: 0,
        maxSessions: 1,
        resumable: false,
        resumeProven: false,
      },
    );
    expect(refusal?.code).to.equal('ERROR');
    expect(refusal).to.include({ retryable: false });
    expect(refusal?.code === 'ERROR' && refusal.detail).to.match(/9\.0 is incompatible.*1\.0.*upgrade/);
    expect(isProtocolCompatible({ major: 1, minor: 7 }, v1)).to.equal(true);
  });

  it('R2: at the session limit the connect is refused with a retryable ERROR naming the limit', () => {
    const { snapshot } = run([
      { type: 'CONNECT_REQUEST', now: 0, connectionId: 1, clientVersion: v1 },
      validate({ kind: 'SELF' }, 2),
    ]);
    expect(snapshot.value).to.equal('INVALID');
    expect(snapshot.context.refusal).to.deep.include({ code: 'ERROR', retryable: true });
    expect(JSON.stringify(snapshot.context.refusal)).to.contain('maxSessions=2');
  });

  it('C5: an idle open session moves to CLOSING with TIMEOUT; activity postpones it', () => {
    const open = openSession();
    expect(isSessionIdle(open.context, TIMEOUT - 1)).to.equal(false);
    const kept = run(
      [
        { type: 'KEEPALIVE', now: 900 },
        { type: 'TIMEOUT_CHECK', now: 1500 },
      ],
      open,
    );
    expect(kept.snapshot.value).to.equal('OPEN');
    const idle = run([{ type: 'TIMEOUT_CHECK', now: 1900 }], kept.snapshot);
    expect(idle.snapshot.value).to.equal('CLOSING');
    expect(idle.snapshot.context.closeReason).to.equal('TIMEOUT');
    expect(idle.actions).to.deep.equal(['requestCloseAppend']);
    const closed = run([{ type: 'CLOSE_COMMITTED', now: 1950, reason: 'TIMEOUT' }], idle.snapshot);
    expect(closed.snapshot.value).to.equal('CLOSED');
    expect(closed.actions).to.deep.equal(['notifyClosed']);
  });

  it('authentication that takes too long is rejected', () => {
    const { snapshot, actions } = run([
      { type: 'CONNECT_REQUEST', now: 0, connectionId: 1, clientVersion: v1 },
      validate({ kind: 'SELF' }),
      { type: 'CHALLENGE_ISSUED', now: 0, challenge: new Uint8Array(16) },
      { type: 'TIMEOUT_CHECK', now: 299 },
      { type: 'TIMEOUT_CHECK', now: 300 },
    ]);
    expect(snapshot.value).to.equal('REJECTED');
    expect(actions).to.deep.equal(['sendChallenge', 'notifyRejected']);
    expect(JSON.stringify(snapshot.context.refusal)).to.contain('300 ms');
  });

  it('C1: a reconnecting client resumes its open session without a new open entry, past the limit', () => {
    const resume: ClientSessionEvent = {
      type: 'CONNECT_REQUEST',
      now: 0,
      connectionId: 4,
      clientVersion: v1,
      resumeSessionId: 3,
    };
    const resumed = run([
      resume,
      validate({ kind: 'SELF' }, 2, true),
      { type: 'AUTHENTICATED', now: 40, principal: 'alice' },
    ]);
    expect(resumed.snapshot.value).to.equal('OPEN');
    expect(resumed.snapshot.context).to.include({
      sessionId: 3,
      connectionId: 4,
      openCommitted: true,
      lastActivityAt: 40,
    });
    expect(resumed.actions).to.deep.equal(['notifyOpened']);
    const gone = run([resume, validate({ kind: 'SELF' }, 0, false)]);
    expect(gone.snapshot.value).to.equal('INVALID');
    expect(gone.snapshot.context.refusal).to.deep.include({ code: 'RESUME_REFUSED', sessionId: 3 });
    expect(JSON.stringify(gone.snapshot.context.refusal)).to.contain('session 3 is not open');
    expect(gone.actions).to.deep.equal(['notifyRefused']);
  });

  it('a resume without the proof of ownership is refused before authentication, naming why', () => {
    const { snapshot, actions } = run([
      { type: 'CONNECT_REQUEST', now: 0, connectionId: 4, clientVersion: v1, resumeSessionId: 3 },
      validate({ kind: 'SELF' }, 0, true, false),
    ]);
    expect(snapshot.value).to.equal('INVALID');
    expect(snapshot.context.refusal).to.deep.include({ code: 'RESUME_REFUSED', sessionId: 3 });
    expect(JSON.stringify(snapshot.context.refusal)).to.contain('resume token does not match');
    expect(actions).to.deep.equal(['notifyRefused']);
  });

  it('a member that knows of no leader says so (NO_LEADER), so the client tries another member', () => {
    const { snapshot } = run([
      { type: 'CONNECT_REQUEST', now: 0, connectionId: 1, clientVersion: v1 },
      validate({ kind: 'UNKNOWN' }),
    ]);
    expect(snapshot.value).to.equal('INVALID');
    expect(snapshot.context.refusal?.code).to.equal('NO_LEADER');
  });

  it('a close lost with the leadership returns the session to OPEN', () => {
    const closing = run(
      [{ type: 'CLOSE_REQUESTED', now: 0, reason: 'SERVICE_ACTION' }],
      openSession(),
    ).snapshot;
    expect(closing.value).to.equal('CLOSING');
    const reopened = run([{ type: 'LEADERSHIP_LOST', now: 1 }], closing).snapshot;
    expect(reopened.value).to.equal('OPEN');
    expect(reopened.context.closeReason).to.equal(null);
  });

  it('close reason codes round-trip and are stable', () => {
    expect(CloseReason).to.deep.equal({ CLIENT_ACTION: 1, SERVICE_ACTION: 2, TIMEOUT: 3, DISCONNECTED: 4 });
    expect(closeReasonName(3)).to.equal('TIMEOUT');
    expect(closeReasonName(4)).to.equal('DISCONNECTED');
    expect(closeReasonName(5)).to.equal(undefined);
  });
});
