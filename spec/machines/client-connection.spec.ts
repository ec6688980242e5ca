import { expect } from 'chai';
import type { SnapshotFrom } from 'xstate';
import { createActor, initialTransition, transition } from 'xstate';
import type { ClientConnectionEvent, ClientConnectionInput } from '../../machines/client-connection.ts';
import {
  backoffDelay,
  CLIENT_CONNECTION_STATES,
  clientConnectionMachine,
  initialConnectionContext,
} from '../../machines/client-connection.ts';
import { seedRandom } from '../../machines/random.ts';
import { exploreCoverage, shortestPaths } from '../support/model-coverage.ts';

type Snapshot = SnapshotFrom<typeof clientConnectionMachine>;

const input: ClientConnectionInput = {
  endpoints: ['m0:9010', 'm1:9010', 'm2:9010'],
  seed: 42,
  now: 0,
  maxRedirects: 1,
  maxAttempts: 2,
};

/** Events for a state, with TICKs placed at the times its guards care about. */
const eventsFor = (snapshot: Snapshot): ClientConnectionEvent[] => {
  const { context } = snapshot;
  const base = Math.max(context.retryAt, context.connectStartedAt, context.lastSentAt);
  return [
    { type: 'OK', now: base, sessionId: 7, leaderId: 1 },
    { type: 'REDIRECT', now: base, leaderId: 1, endpoint: 'm1:9010' },
    { type: 'ERROR', now: base, detail: 'session limit reached', retryable: true },
    { type: 'ERROR', now: base, detail: 'incompatible version', retryable: false },
    { type: 'AUTHENTICATION_REJECTED', now: base, detail: 'bad token' },
    { type: 'CHALLENGE', now: base, challenge: new Uint8Array([9]) },
    { type: 'CLOSED', now: base, reason: 'TIMEOUT' },
    { type: 'NEW_LEADER', now: base, leaderId: 2, endpoint: 'm2:9010' },
    { type: 'CONNECTION_LOST', now: base },
    { type: 'MESSAGE_SENT', now: base },
    { type: 'TICK', now: base },
    { type: 'TICK', now: base + 10_000 },
    { type: 'CLOSE', now: base },
  ];
};

/** Vertices by what the guards can see, so retry counters and generator state do not explode. */
const serializeState = (snapshot: Snapshot): string => {
  const { context } = snapshot;
  return JSON.stringify([
    snapshot.value,
    context.redirects < context.maxRedirects,
    Math.min(context.attempt, context.maxAttempts),
  ]);
};

const explore = { input, events: eventsFor, serializeState };

const run = (events: ClientConnectionEvent[], from?: Snapshot) => {
  let [snapshot, emitted] = from ? [from, []] : initialTransition(clientConnectionMachine, input);
  const actions = emitted.map((action) => ({ type: action.type, params: action.params }));
  for (const event of events) {
    [snapshot, emitted] = transition(clientConnectionMachine, snapshot, event);
    actions.push(...emitted.map((action) => ({ type: action.type, params: action.params })));
  }
  return { snapshot, actions, types: actions.map((action) => action.type) };
};

describe('client-connection machine', () => {
  it('generated paths reach every state and every transition (model-based)', () => {
    const coverage = exploreCoverage(clientConnectionMachine, explore);
    expect([...coverage.states].sort()).to.deep.equal([...CLIENT_CONNECTION_STATES].sort());
    const missed = [...coverage.defined].filter((key) => !coverage.taken.has(key));
    expect(missed, 'transitions never taken').to.deep.equal([]);
  });

  it('every shortest path replays on a live actor to the same vertex at each step', () => {
    const paths = shortestPaths(clientConnectionMachine, explore);
    expect(paths.length).to.be.greaterThan(CLIENT_CONNECTION_STATES.length);
    for (const path of paths) {
      const actor = createActor(clientConnectionMachine, { input }).start();
      for (const step of path.steps) {
        actor.send(step.event);
        // Vertices are merged by `serializeState`, so compare what the guards see, not the counters.
        expect(serializeState(actor.getSnapshot())).to.equal(serializeState(step.state));
      }
      actor.stop();
    }
  });

  it('C6: a REDIRECT makes the client dial the leader it names', () => {
    const { snapshot, actions } = run([{ type: 'REDIRECT', now: 5, leaderId: 2, endpoint: 'm2:9010' }]);
    expect(snapshot.value).to.equal('CONNECTING');
    expect(snapshot.context.target).to.equal('m2:9010');
    expect(actions).to.deep.equal([
      { type: 'dial', params: { endpoint: 'm0:9010', resumeSessionId: null } },
      { type: 'closeSocket', params: undefined },
      { type: 'dial', params: { endpoint: 'm2:9010', resumeSessionId: null } },
    ]);
  });

  it('C1: a lost leader sends the client through AWAITING_NEW_LEADER to the next member, resuming, then resends', () => {
    const connected = run([{ type: 'OK', now: 10, sessionId: 7, leaderId: 0 }]);
    expect(connected.types).to.deep.equal(['dial', 'resendUnacknowledged']);
    const lost = run([{ type: 'CONNECTION_LOST', now: 100 }], connected.snapshot);
    expect(lost.snapshot.value).to.equal('AWAITING_NEW_LEADER');
    const { retryAt } = lost.snapshot.context;
    expect(retryAt).to.be.within(100 + 25, 100 + 50);
    const early = run([{ type: 'TICK', now: retryAt - 1 }], lost.snapshot);
    expect(early.snapshot.value).to.equal('AWAITING_NEW_LEADER');
    const retry = run(
      [
        { type: 'TICK', now: retryAt },
        { type: 'OK', now: retryAt + 5, sessionId: 7, leaderId: 1 },
      ],
      lost.snapshot,
    );
    expect(retry.actions).to.deep.equal([
      { type: 'dial', params: { endpoint: 'm1:9010', resumeSessionId: 7 } },
      { type: 'resendUnacknowledged', params: { sessionId: 7 } },
    ]);
    expect(retry.snapshot.context.attempt).to.equal(0);
  });

  it('R2/R5: a retryable refusal backs off with growing, seeded, jittered delays on the same member', () => {
    let snapshot = initialTransition(clientConnectionMachine, { ...input, maxAttempts: 0 })[0];
    const delays: number[] = [];
    let now = 0;
    for (let i = 0; i < 6; i++) {
      snapshot = transition(clientConnectionMachine, snapshot, {
        type: 'ERROR',
        now,
        detail: 'session limit reached (maxSessions=2)',
        retryable: true,
      })[0];
      expect(snapshot.value).to.equal('BACKING_OFF');
      expect(snapshot.context.target).to.equal('m0:9010');
      delays.push(snapshot.context.retryAt - now);
      now = snapshot.context.retryAt;
      snapshot = transition(clientConnectionMachine, snapshot, { type: 'TICK', now })[0];
      expect(snapshot.value).to.equal('CONNECTING');
    }
    delays.forEach((delay, attempt) => {
      const ceiling = Math.min(5000, 50 * 2 ** attempt);
      expect(delay).to.be.within(ceiling / 2, ceiling);
    });
    expect(snapshot.context.lastError).to.contain('maxSessions=2');
    // Another seed spreads the same schedule differently; the same seed repeats it exactly.
    const other = backoffDelay(5, 50, 5000, seedRandom(7))[0];
    const same = backoffDelay(5, 50, 5000, seedRandom(7))[0];
    expect(other).to.equal(same);
    const spread = new Set(
      [1, 2, 3, 4, 5, 6, 7, 8].map((seed) => backoffDelay(5, 50, 5000, seedRandom(seed))[0]),
    );
    expect(spread.size).to.be.greaterThan(4);
  });

  it('gives up after maxAttempts consecutive failures, saying why', () => {
    let { snapshot } = run([{ type: 'CONNECTION_LOST', now: 0 }]);
    snapshot = run([{ type: 'TICK', now: snapshot.context.retryAt }], snapshot).snapshot;
    snapshot = run([{ type: 'CONNECTION_LOST', now: 200 }], snapshot).snapshot;
    const closed = run([{ type: 'TICK', now: snapshot.context.retryAt }], snapshot);
    expect(closed.snapshot.value).to.equal('CLOSED');
    expect(closed.snapshot.context.closeReason).to.match(/gave up after 2 attempts/);
    expect(closed.types).to.deep.equal(['notifyClosed']);
  });

  it('keeps the session alive with keepalives only when nothing else was sent', () => {
    const connected = run([{ type: 'OK', now: 0, sessionId: 7, leaderId: 0 }]).snapshot;
    const busy = run(
      [
        { type: 'MESSAGE_SENT', now: 600 },
        { type: 'TICK', now: 1200 },
      ],
      connected,
    );
    expect(busy.types).to.not.include('sendKeepalive');
    const idle = run([{ type: 'TICK', now: 1600 }], busy.snapshot);
    expect(idle.actions).to.deep.equal([{ type: 'sendKeepalive', params: { sessionId: 7 } }]);
  });

  it('a cluster CLOSED (C5 TIMEOUT) ends the connection with that reason', () => {
    const connected = run([{ type: 'OK', now: 0, sessionId: 7, leaderId: 0 }]).snapshot;
    const closed = run([{ type: 'CLOSED', now: 5, reason: 'TIMEOUT' }], connected);
    expect(closed.snapshot.value).to.equal('CLOSED');
    expect(closed.actions.at(-1)).to.deep.equal({ type: 'notifyClosed', params: { reason: 'TIMEOUT' } });
  });

  it('refuses bad options with a message naming the option', () => {
    expect(() => initialConnectionContext({ ...input, endpoints: [] })).to.throw(
      /at least one cluster endpoint/,
    );
    expect(() => initialConnectionContext({ ...input, endpoints: ['nohost'] })).to.throw(
      /'nohost' is not host:port/,
    );
    expect(() => initialConnectionContext({ ...input, backoffBaseMs: 0 })).to.throw(/backoffBaseMs/);
    expect(() => initialConnectionContext({ ...input, backoffMaxMs: 10 })).to.throw(/backoffMaxMs \(10\)/);
  });
});
