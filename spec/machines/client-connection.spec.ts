import { expect } from 'chai';
import fc from 'fast-check';
import type { SnapshotFrom } from 'xstate';
import { createActor, initialTransition, transition } from 'xstate';
import type {
  ClientConnectionEvent,
  ClientConnectionInput,
  ClientConnectionState,
} from '../../machines/client-connection.ts';
import {
  CLIENT_CONNECTION_STATES,
  clientConnectionMachine,
  initialConnectionContext,
  seededOrder,
} from '../../machines/client-connection.ts';
import { backoffDelay, seedRandom } from '../../machines/random.ts';
import { exploreCoverage, shortestPaths } from '../support/model-coverage.ts';
import { checkProperty } from '../support/property.ts';

type Snapshot = SnapshotFrom<typeof clientConnectionMachine>;

const input: ClientConnectionInput = {
  endpoints: ['m0:9010', 'm1:9010', 'm2:9010'],
  // Seed 42 happens to keep the given order (m0, m1, m2), which keeps the expectations readable.
  seed: 42,
  now: 0,
  maxRedirects: 1,
  maxAttempts: 2,
  replyTimeoutMs: 750,
};

/** A client that holds no secret to answer a challenge with. */
const noSecret: ClientConnectionInput = { ...input, canAnswerChallenge: false };

/** The reply timeout of `input`: silence that long, while a command awaits its reply, leaves the leader. */
const REPLY_TIMEOUT_MS = 750;

/** Events for a state, with TICKs placed at the times its guards care about. */
const eventsFor = (snapshot: Snapshot): ClientConnectionEvent[] => {
  const { context } = snapshot;
  const base = Math.max(context.retryAt, context.connectStartedAt, context.lastSentAt);
  return [
    { type: 'OK', now: base, sessionId: 7, leaderId: 1 },
    { type: 'REDIRECT', now: base, leaderId: 1, endpoint: 'm1:9010' },
    // A REDIRECT back to the member just left (stale while the connect timeout has not passed).
    { type: 'REDIRECT', now: base, leaderId: 0, endpoint: context.avoid ?? 'm0:9010' },
    { type: 'NO_LEADER', now: base, detail: 'no leader known' },
    { type: 'RESUME_REFUSED', now: base, sessionId: 7, detail: 'session 7 is not open' },
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
    // Silent while a command awaits its reply: for half the reply timeout (probe), for all of it (leave).
    { type: 'TICK', now: base + REPLY_TIMEOUT_MS / 2, heardAt: base, awaitingSince: base },
    { type: 'TICK', now: base + REPLY_TIMEOUT_MS, heardAt: base, awaitingSince: base },
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
    // Whether a member was just left (a REDIRECT back to it would be stale).
    context.avoid !== null &&
      Math.max(context.retryAt, context.connectStartedAt, context.lastSentAt) < context.avoidUntil,
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

// ---------------------------------------------------------------------------------------------------
// The specification, written independently of the machine: for each state (qualified by what its
// guards can see) and each event, the next state and where the next dial goes. Pairs not listed must
// leave the state unchanged and be refused by `can()`.
//   SAME   the same member again (it answered, but not now)
//   NAMED  the member the event names (the leader)
//   NEXT   another member than the one just tried
//   LEAVE  another member, and the one just tried is skipped by the rotation (it failed as the leader)
//   STAY   no new dial: the exchange goes on over the connection being opened
// Every transition into CONNECTING except STAY dials exactly once, to where the table says; no other
// transition dials.
// ---------------------------------------------------------------------------------------------------

type Where = 'SAME' | 'NAMED' | 'NEXT' | 'LEAVE' | 'STAY';
type Next = readonly [ClientConnectionState, Where?];

const CONNECTING: Record<string, Next> = {
  OK: ['CONNECTED'],
  'REDIRECT(redirects left)': ['CONNECTING', 'NAMED'],
  'REDIRECT(no redirects left)': ['AWAITING_NEW_LEADER', 'NEXT'],
  NO_LEADER: ['AWAITING_NEW_LEADER', 'NEXT'],
  RESUME_REFUSED: ['CONNECTING', 'SAME'],
  'ERROR(retryable)': ['BACKING_OFF', 'SAME'],
  'ERROR(fatal)': ['CLOSED'],
  AUTHENTICATION_REJECTED: ['CLOSED'],
  CHALLENGE: ['CONNECTING', 'STAY'],
  CONNECTION_LOST: ['AWAITING_NEW_LEADER', 'LEAVE'],
  'TICK(late)': ['AWAITING_NEW_LEADER', 'LEAVE'],
  CLOSE: ['CLOSED'],
};

// CONNECTED, whether or not it probed the member lately.
const CONNECTED: Record<string, Next> = {
  'TICK(late)': ['CONNECTED'],
  'TICK(leader silent)': ['AWAITING_NEW_LEADER', 'LEAVE'],
  MESSAGE_SENT: ['CONNECTED'],
  REDIRECT: ['CONNECTING', 'NAMED'],
  NEW_LEADER: ['CONNECTING', 'NAMED'],
  CONNECTION_LOST: ['AWAITING_NEW_LEADER', 'LEAVE'],
  NO_LEADER: ['AWAITING_NEW_LEADER', 'LEAVE'],
  'ERROR(retryable)': ['AWAITING_NEW_LEADER', 'LEAVE'],
  'ERROR(fatal)': ['CLOSED'],
  CLOSED: ['CLOSED'],
  CLOSE: ['CLOSING'],
};

const waiting = (givingUp: boolean): Record<string, Next> => ({
  'TICK(due)': givingUp ? ['CLOSED'] : ['CONNECTING', 'SAME'],
  'TICK(late)': givingUp ? ['CLOSED'] : ['CONNECTING', 'SAME'],
  NEW_LEADER: ['CONNECTING', 'NAMED'],
  CLOSE: ['CLOSED'],
});

const SPEC: Record<string, Record<string, Next>> = {
  'CONNECTING/redirects left': {
    ...CONNECTING,
    REDIRECT: CONNECTING['REDIRECT(redirects left)'],
  },
  'CONNECTING/no redirects left': {
    ...CONNECTING,
    REDIRECT: CONNECTING['REDIRECT(no redirects left)'],
  },
  // The REDIRECT names the member the client left within the last connect timeout: a stale answer.
  'CONNECTING/redirected back to the member just left': {
    ...CONNECTING,
    REDIRECT: ['AWAITING_NEW_LEADER', 'NEXT'],
  },
  CONNECTED: {
    ...CONNECTED,
    // A command awaits its reply and nothing came back: probe at half the reply timeout, leave at all of it.
    'TICK(half silent)': ['CONNECTED'],
  },
  // Probed less than half a reply timeout ago: no second probe yet.
  'CONNECTED/probed lately': CONNECTED,
  AWAITING_NEW_LEADER: waiting(false),
  'AWAITING_NEW_LEADER/giving up': waiting(true),
  BACKING_OFF: waiting(false),
  'BACKING_OFF/giving up': waiting(true),
  CLOSING: { CLOSED: ['CLOSED'], CONNECTION_LOST: ['CLOSED'], 'TICK(late)': ['CLOSED'] },
  CLOSED: {},
};

// A client with no secret cannot answer a challenge: it gives up on the connection, as if rejected.
for (const key of Object.keys(SPEC).filter((name) => name.startsWith('CONNECTING/'))) {
  SPEC[`${key}, no secret`] = { ...SPEC[key], CHALLENGE: ['CLOSED'] };
}

const specKey = (snapshot: Snapshot): string => {
  const { value, context } = snapshot;
  if (value === 'CONNECTING') {
    const secret = context.canAnswerChallenge ? '' : ', no secret';
    if (context.avoid === REDIRECT_TARGET && specNow(snapshot) < context.avoidUntil) {
      return `CONNECTING/redirected back to the member just left${secret}`;
    }
    return `CONNECTING/${context.redirects < context.maxRedirects ? 'redirects left' : 'no redirects left'}${secret}`;
  }
  if (value === 'CONNECTED' && specNow(snapshot) + 1 - context.probedAt < REPLY_TIMEOUT_MS / 2) {
    return 'CONNECTED/probed lately';
  }
  if (value === 'AWAITING_NEW_LEADER' || value === 'BACKING_OFF') {
    return context.maxAttempts > 0 && context.attempt >= context.maxAttempts ? `${value}/giving up` : value;
  }
  return value;
};

/** The member every REDIRECT and NEW_LEADER of the specification names. */
const REDIRECT_TARGET = 'm2:9010';

/** The latest time the context knows of; a pending retry is still 1 ms away. */
const specNow = ({ context }: Snapshot): number =>
  Math.max(context.connectStartedAt, context.lastSentAt, context.retryAt - 1);

/**
 * Events at times chosen by hand: "early" is before any deadline of the state, "due" when a pending retry
 * falls due (and nothing else), "late" after every deadline.
 */
const specEvents = (snapshot: Snapshot): [string, ClientConnectionEvent][] => {
  const now = specNow(snapshot);
  return [
    ['OK', { type: 'OK', now, sessionId: 7, leaderId: 1, resumeToken: new Uint8Array(32) }],
    ['REDIRECT', { type: 'REDIRECT', now, leaderId: 2, endpoint: REDIRECT_TARGET }],
    ['NO_LEADER', { type: 'NO_LEADER', now, detail: 'no leader known' }],
    ['RESUME_REFUSED', { type: 'RESUME_REFUSED', now, sessionId: 7, detail: 'session 7 is not open' }],
    ['ERROR(retryable)', { type: 'ERROR', now, detail: 'session limit', retryable: true }],
    ['ERROR(fatal)', { type: 'ERROR', now, detail: 'incompatible version', retryable: false }],
    ['AUTHENTICATION_REJECTED', { type: 'AUTHENTICATION_REJECTED', now, detail: 'bad token' }],
    ['CHALLENGE', { type: 'CHALLENGE', now, challenge: new Uint8Array([9]) }],
    ['CLOSED', { type: 'CLOSED', now, reason: 'TIMEOUT' }],
    ['NEW_LEADER', { type: 'NEW_LEADER', now, leaderId: 2, endpoint: REDIRECT_TARGET }],
    ['CONNECTION_LOST', { type: 'CONNECTION_LOST', now }],
    ['MESSAGE_SENT', { type: 'MESSAGE_SENT', now }],
    ['TICK(early)', { type: 'TICK', now }],
    ['TICK(due)', { type: 'TICK', now: now + 1 }],
    ['TICK(late)', { type: 'TICK', now: now + 100_000 }],
    ['CLOSE', { type: 'CLOSE', now }],
    // A command sent on the connection awaits its reply; the connection has brought nothing since.
    ...(snapshot.value === 'CONNECTED'
      ? ([
          [
            'TICK(half silent)',
            {
              type: 'TICK',
              now: now + 1,
              heardAt: now + 1 - REPLY_TIMEOUT_MS / 2,
              awaitingSince: now + 1 - REPLY_TIMEOUT_MS / 2,
            },
          ],
          [
            'TICK(leader silent)',
            { type: 'TICK', now: now + REPLY_TIMEOUT_MS, heardAt: now, awaitingSince: now },
          ],
        ] as [string, ClientConnectionEvent][])
      : []),
  ];
};

/** Where the transition sends the client, judged from the contexts before and after (all that fit). */
const whereTo = (before: Snapshot, after: Snapshot, event: ClientConnectionEvent): Where[] => {
  const { target, avoid } = after.context;
  const fits: Where[] = [];
  if (event.type === 'CHALLENGE' && target === before.context.target) fits.push('STAY');
  if ((event.type === 'REDIRECT' || event.type === 'NEW_LEADER') && target === event.endpoint)
    fits.push('NAMED');
  if (target === before.context.target) fits.push('SAME');
  else {
    // Moving on never lands on a member the rotation skips.
    if (target !== avoid && avoid === before.context.avoid) fits.push('NEXT');
    if (target !== avoid && avoid === before.context.target) fits.push('LEAVE');
  }
  return fits;
};

describe('client-connection machine against its specification table', () => {
  const explore = {
    input,
    events: (snapshot: Snapshot) => specEvents(snapshot).map(([, event]) => event),
    serializeState: (snapshot: Snapshot) =>
      JSON.stringify([specKey(snapshot), snapshot.context.target, snapshot.context.avoid]),
  };
  const vertices = [input, noSecret].flatMap((start) =>
    shortestPaths(clientConnectionMachine, { ...explore, input: start }).map((path) => path.state),
  );

  it('reaches every state, qualified by what its guards see', () => {
    expect([...new Set(vertices.map(specKey))].sort()).to.deep.equal(Object.keys(SPEC).sort());
  });

  it('takes exactly the specified transition, to the specified member, for every (state, event) pair', () => {
    let checked = 0;
    for (const vertex of vertices) {
      for (const [label, event] of specEvents(vertex)) {
        checkStep(vertex, label, event);
        checked++;
      }
    }
    expect(checked).to.be.greaterThan(Object.keys(SPEC).length * 10);
  });

  it('follows the table at every step of generated event sequences', () => {
    checkProperty(
      fc.property(
        fc.array(fc.nat(), { minLength: 1, maxLength: 40 }),
        fc.boolean(),
        fc.boolean(),
        (choices, patient, secret) => {
          let [snapshot] = initialTransition(clientConnectionMachine, {
            ...input,
            maxAttempts: patient ? 0 : 2,
            canAnswerChallenge: secret,
          });
          for (const choice of choices) {
            const events = specEvents(snapshot);
            const [label, event] = events[choice % events.length];
            snapshot = checkStep(snapshot, label, event);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

/** Check one transition against the table: next state, `can()`, where the next dial goes, and that it dials. */
const checkStep = (vertex: Snapshot, label: string, event: ClientConnectionEvent): Snapshot => {
  const expected = SPEC[specKey(vertex)];
  const specified = expected[label] ?? expected[label.replace(/\(.*\)$/, '')];
  const [next, actions] = transition(clientConnectionMachine, vertex, event);
  const where = `${specKey(vertex)} --${label}-->`;
  expect(next.value, where).to.equal(specified?.[0] ?? vertex.value);
  expect(vertex.can(event), `can(${label}) in ${specKey(vertex)}`).to.equal(specified !== undefined);
  if (specified?.[1]) expect(whereTo(vertex, next, event), `${where} goes to`).to.include(specified[1]);
  const redials = specified?.[0] === 'CONNECTING' && specified[1] !== 'STAY';
  const dialled = actions
    .filter((action) => action.type === 'dial')
    .map((action) => (action.params as { endpoint: string }).endpoint);
  expect(dialled, `${where} dials`).to.deep.equal(redials ? [next.context.target] : []);
  const effects = actions.map((action) => action.type).filter((type) => type !== 'dial' && EFFECTS.has(type));
  expect(effects.sort(), `${where} effects`).to.deep.equal(
    specified ? expectedEffects(String(vertex.value), label, specified).sort() : [],
  );
  return next;
};

/** The library's effects besides dialling (checked above). */
const EFFECTS = new Set([
  'dial',
  'closeSocket',
  'answerChallenge',
  'sendKeepalive',
  'resendUnacknowledged',
  'abandonSession',
  'sendClose',
  'notifyClosed',
]);

/**
 * What a transition must do besides dialling, from what it means: a socket is closed when the client
 * leaves it (not when it was lost, and not while the close handshake still needs it); a session that
 * opens gets everything unanswered sent again; a refused resume gives up the old session; closing sends
 * CLOSE; the end is announced; a challenge is answered and a quiet or silent connection is kept alive or
 * probed with a keepalive.
 */
const expectedEffects = (from: string, label: string, [to, where]: Next): string[] => {
  const effects: string[] = [];
  const hasSocket = from === 'CONNECTING' || from === 'CONNECTED' || from === 'CLOSING';
  const keepsSocket = where === 'STAY' || to === 'CONNECTED' || to === 'CLOSING';
  if (hasSocket && label !== 'CONNECTION_LOST' && !keepsSocket) effects.push('closeSocket');
  if (label === 'RESUME_REFUSED') effects.push('abandonSession');
  if (label === 'CHALLENGE' && to === 'CONNECTING') effects.push('answerChallenge');
  if (from === 'CONNECTED' && to === 'CONNECTED' && label.startsWith('TICK')) effects.push('sendKeepalive');
  if (to === 'CONNECTED' && from !== 'CONNECTED') effects.push('resendUnacknowledged');
  if (to === 'CLOSING' && from !== 'CLOSING') effects.push('sendClose');
  if (to === 'CLOSED') effects.push('notifyClosed');
  return effects;
};

describe('client-connection machine', () => {
  it('generated paths reach every state and every transition (model-based)', () => {
    const coverage = exploreCoverage(clientConnectionMachine, explore);
    const taken = new Set([
      ...coverage.taken,
      ...exploreCoverage(clientConnectionMachine, { ...explore, input: noSecret }).taken,
    ]);
    expect([...coverage.states].sort()).to.deep.equal([...CLIENT_CONNECTION_STATES].sort());
    const missed = [...coverage.defined].filter((key) => !taken.has(key));
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
      { type: 'dial', params: { endpoint: 'm0:9010', resumeSessionId: null, resumeToken: null } },
      { type: 'closeSocket', params: undefined },
      { type: 'dial', params: { endpoint: 'm2:9010', resumeSessionId: null, resumeToken: null } },
    ]);
  });

  it('C1: a lost leader sends the client through AWAITING_NEW_LEADER to the next member, resuming, then resends', () => {
    const token = new Uint8Array(32).fill(3);
    const connected = run([{ type: 'OK', now: 10, sessionId: 7, leaderId: 0, resumeToken: token }]);
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
    // The resume presents the token the session was opened with (a resume OK carries none: it is kept).
    expect(retry.actions).to.deep.equal([
      { type: 'dial', params: { endpoint: 'm1:9010', resumeSessionId: 7, resumeToken: token } },
      { type: 'resendUnacknowledged', params: { sessionId: 7 } },
    ]);
    expect(retry.snapshot.context).to.include({ attempt: 0, resumeToken: token, avoid: null });
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

  it('tries the members in an order drawn from its seed: the same seed, the same order; seeds spread clients', () => {
    const endpoints = ['a:1', 'b:1', 'c:1'];
    const orders = new Set<string>();
    for (let seed = 1; seed <= 40; seed++) {
      const context = initialConnectionContext({ ...input, endpoints, seed });
      expect(context.endpoints).to.deep.equal(seededOrder(endpoints, seedRandom(seed))[0]);
      expect([...context.endpoints].sort()).to.deep.equal(endpoints);
      expect(context.target).to.equal(context.endpoints[0]);
      orders.add(context.endpoints.join(' '));
    }
    expect(orders.size, 'every order of three members is drawn by some seed').to.equal(6);
    // Members that know of no leader send the client round all of them, in its order.
    let { snapshot } = run(
      [],
      initialTransition(clientConnectionMachine, { ...input, seed: 3, maxAttempts: 0 })[0],
    );
    const dialled: string[] = [snapshot.context.target];
    for (let i = 0; i < 6; i++) {
      snapshot = run(
        [{ type: 'NO_LEADER', now: snapshot.context.retryAt, detail: 'none' }],
        snapshot,
      ).snapshot;
      const next = run([{ type: 'TICK', now: snapshot.context.retryAt }], snapshot);
      snapshot = next.snapshot;
      dialled.push((next.actions[0].params as { endpoint: string }).endpoint);
    }
    const order = [...snapshot.context.endpoints];
    expect(dialled).to.deep.equal([...order, ...order, order[0]]);
  });

  it('issue 10: a leader that steps down with no successor known is left, and skipped while the others elect', () => {
    // Redirected to m2, the leader; then m2 is cut off from its peers and steps down (NO_LEADER).
    let { snapshot } = run(
      [
        { type: 'REDIRECT', now: 0, leaderId: 2, endpoint: 'm2:9010' },
        { type: 'OK', now: 5, sessionId: 7, leaderId: 2 },
        { type: 'NO_LEADER', now: 500, detail: 'this member knows of no leader' },
      ],
      initialTransition(clientConnectionMachine, { ...input, maxAttempts: 0 })[0],
    );
    expect(snapshot.value).to.equal('AWAITING_NEW_LEADER');
    expect(snapshot.context.avoid).to.equal('m2:9010');
    // The others are still electing: each answers NO_LEADER; the client goes round them, never to m2.
    const dialled: string[] = [];
    for (let i = 0; i < 8; i++) {
      const next = run([{ type: 'TICK', now: snapshot.context.retryAt }], snapshot);
      dialled.push((next.actions[0].params as { endpoint: string }).endpoint);
      snapshot = run(
        [{ type: 'NO_LEADER', now: next.snapshot.context.retryAt, detail: 'electing' }],
        next.snapshot,
      ).snapshot;
    }
    expect(dialled).to.deep.equal([
      'm0:9010',
      'm1:9010',
      'm0:9010',
      'm1:9010',
      'm0:9010',
      'm1:9010',
      'm0:9010',
      'm1:9010',
    ]);
    // Every try counted, so the backoff between them grows as usual.
    expect(snapshot.context.attempt).to.equal(9);
    // m1 has won: it says so, and the session is resumed there.
    const found = run(
      [
        { type: 'TICK', now: snapshot.context.retryAt },
        { type: 'OK', now: snapshot.context.retryAt + 1, sessionId: 7, leaderId: 1 },
      ],
      snapshot,
    );
    expect(found.snapshot.value).to.equal('CONNECTED');
    expect(found.snapshot.context.avoid, 'forgotten once a leader answers').to.equal(null);
    // A REDIRECT naming the member left before is followed once the connect timeout since leaving it has
    // passed: it may lead again after the partition heals.
    const healed = Math.max(snapshot.context.retryAt, snapshot.context.avoidUntil);
    const back = run(
      [
        { type: 'TICK', now: healed },
        { type: 'REDIRECT', now: healed + 1, leaderId: 2, endpoint: 'm2:9010' },
      ],
      snapshot,
    );
    expect(back.actions.at(-1)).to.deep.include({
      type: 'dial',
      params: { endpoint: 'm2:9010', resumeSessionId: 7, resumeToken: null },
    });
  });

  it('issue 11: a refused resume abandons the session (its sent commands have an unknown outcome) and opens a new one', () => {
    const token = new Uint8Array(32).fill(1);
    const connected = run([{ type: 'OK', now: 0, sessionId: 7, leaderId: 0, resumeToken: token }]).snapshot;
    const lost = run([{ type: 'CONNECTION_LOST', now: 10 }], connected).snapshot;
    const resuming = run([{ type: 'TICK', now: lost.context.retryAt }], lost).snapshot;
    const refused = run(
      [{ type: 'RESUME_REFUSED', now: 100, sessionId: 7, detail: 'session 7 is not open (timed out)' }],
      resuming,
    );
    expect(refused.snapshot.value).to.equal('CONNECTING');
    expect(refused.actions).to.deep.equal([
      { type: 'closeSocket', params: undefined },
      { type: 'abandonSession', params: { sessionId: 7, detail: 'session 7 is not open (timed out)' } },
      {
        type: 'dial',
        params: { endpoint: resuming.context.target, resumeSessionId: null, resumeToken: null },
      },
    ]);
    const reopened = run(
      [{ type: 'OK', now: 120, sessionId: 9, leaderId: 1, resumeToken: new Uint8Array(32) }],
      refused.snapshot,
    );
    expect(reopened.snapshot.context).to.include({ sessionId: 9 });
    expect(reopened.types).to.deep.equal(['resendUnacknowledged']);
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
