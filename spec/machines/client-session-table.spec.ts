// The client-session machine against an expected-transition table written from the protocol's meaning
// (Aeron Cluster's ClusterSession lifecycle and docs/architecture.md), not read off the machine.
//
// The table names observable states and events only. What decides a guarded transition (a resumed or a
// new session, a compatible client, how long since the connect or the last activity, whether the open
// entry has committed) is tracked by a small reference model from the events themselves, never from
// the machine's context, so the table survives a change of the machine's internals. Paths are
// generated two ways, and the machine is checked against the table at every step of each:
// - breadth-first over the reference model: one path to every qualified state, then every event;
// - fast-check random walks (fresh seed per run, printed on failure).

import { expect } from 'chai';
import fc from 'fast-check';
import type { SnapshotFrom } from 'xstate';
import { initialTransition, transition } from 'xstate';
import type { ClientSessionEvent, ClientSessionState } from '../../machines/client-session.ts';
import {
  CLIENT_SESSION_STATES,
  clientSessionMachine,
  SESSION_PROTOCOL_VERSION,
} from '../../machines/client-session.ts';
import { checkProperty } from '../support/property.ts';

type Snapshot = SnapshotFrom<typeof clientSessionMachine>;

const SESSION_TIMEOUT_MS = 1000;
const AUTHENTICATION_TIMEOUT_MS = 500;
const input = { sessionTimeoutMs: SESSION_TIMEOUT_MS, authenticationTimeoutMs: AUTHENTICATION_TIMEOUT_MS };
/** Ordinary steps advance time by 1 ms; a late check jumps past every timeout. */
const LATE_MS = 100 * SESSION_TIMEOUT_MS;
const MAX_SESSIONS = 2;

/** What the reference model knows, from the events alone. */
interface Model {
  state: ClientSessionState;
  /** The connect asked to resume a committed session (C1). */
  resume: boolean;
  /** The client speaks a protocol major the member speaks. */
  compatible: boolean;
  /** When the connect arrived: authentication must finish within its timeout from then. */
  connectAt: number;
  /** The last time the session showed life (opened, keepalive, reattached, a new leader's clock). */
  activeAt: number;
  /** The SESSION_OPEN entry has committed (the client has had, or needs no, OK). */
  openCommitted: boolean;
}

const LABELS = [
  'CONNECT_REQUEST(new)',
  'CONNECT_REQUEST(resume)',
  'CONNECT_REQUEST(other major)',
  'VALIDATE(leader here, room)',
  'VALIDATE(leader here, full)',
  'VALIDATE(leader elsewhere)',
  'VALIDATE(no leader)',
  'VALIDATE(session not open)',
  'VALIDATE(resume unproven)',
  'AUTHENTICATED',
  'AUTHENTICATED(asked-for session still open)',
  'AUTHENTICATED(asked-for session closed meanwhile)',
  "AUTHENTICATED(asked-for session another principal's)",
  'CHALLENGE_ISSUED',
  'AUTH_REJECTED',
  'APPENDED_OPEN',
  'OPEN_COMMITTED',
  'KEEPALIVE',
  'TIMEOUT_CHECK(now)',
  'TIMEOUT_CHECK(late)',
  'CLOSE_REQUESTED',
  'CLOSE_COMMITTED',
  'CONNECTION_LOST',
  'CONNECTION_ATTACHED',
  'LEADERSHIP_ACQUIRED',
  'LEADERSHIP_LOST',
  'CLOSE_REFUSED',
] as const;
type Label = (typeof LABELS)[number];

/** The next state, or null: the event is not handled here (the state stays, `can()` is false). */
type Outcome = ClientSessionState | null;
type Rule = Outcome | ((model: Model, now: number) => Outcome);

const authOverdue = (m: Model, now: number) => now - m.connectAt >= AUTHENTICATION_TIMEOUT_MS;
const idle = (m: Model, now: number) => now - m.activeAt >= SESSION_TIMEOUT_MS;

/**
 * A connect is checked in this order: a client that cannot speak the protocol is refused whatever else
 * holds (O4); a member that is not the leader redirects (C6) or says it knows of none; a resume is
 * taken only for a session open here whose owner proves it, and needs no free slot (it holds one); a
 * new session needs a free slot (R2).
 */
const validated =
  (accepted: (m: Model) => boolean): Rule =>
  (m) =>
    m.compatible && accepted(m) ? 'CONNECTED' : 'INVALID';

/** Authentication: the authenticator accepts, challenges, rejects, or the time for it runs out. */
const authenticating = (challenge: boolean): Partial<Record<Label, Rule>> => ({
  // A resumed session is already committed: nothing is appended, it is OPEN again at once (C1).
  AUTHENTICATED: (m) => (m.resume ? 'OPEN' : 'AUTHENTICATED'),
  'AUTHENTICATED(asked-for session still open)': (m) => (m.resume ? 'OPEN' : 'AUTHENTICATED'),
  // A resume is taken only of a session still open, and only by its own principal; the facts about the
  // session asked for mean nothing to a new session.
  'AUTHENTICATED(asked-for session closed meanwhile)': (m) => (m.resume ? 'REJECTED' : 'AUTHENTICATED'),
  "AUTHENTICATED(asked-for session another principal's)": (m) => (m.resume ? 'REJECTED' : 'AUTHENTICATED'),
  ...(challenge ? { CHALLENGE_ISSUED: 'CHALLENGED' as const } : {}),
  AUTH_REJECTED: 'REJECTED',
  'TIMEOUT_CHECK(now)': (m, now) => (authOverdue(m, now) ? 'REJECTED' : null),
  'TIMEOUT_CHECK(late)': 'REJECTED',
  CONNECTION_LOST: 'CLOSED',
});

const SPEC: Record<ClientSessionState, Partial<Record<Label, Rule>>> = {
  INIT: {
    'CONNECT_REQUEST(new)': 'CONNECTING',
    'CONNECT_REQUEST(resume)': 'CONNECTING',
    'CONNECT_REQUEST(other major)': 'CONNECTING',
    // A session learnt from the log (a follower, a replay, a snapshot load) is simply open.
    OPEN_COMMITTED: 'OPEN',
  },
  CONNECTING: {
    'VALIDATE(leader here, room)': validated(() => true),
    'VALIDATE(leader here, full)': validated((m) => m.resume),
    'VALIDATE(leader elsewhere)': 'INVALID',
    'VALIDATE(no leader)': 'INVALID',
    'VALIDATE(session not open)': validated((m) => !m.resume),
    'VALIDATE(resume unproven)': validated((m) => !m.resume),
    CONNECTION_LOST: 'CLOSED',
  },
  CONNECTED: authenticating(true),
  CHALLENGED: authenticating(false),
  // The leader appends SESSION_OPEN; the session is open (not yet acknowledged) once it is appended.
  AUTHENTICATED: { APPENDED_OPEN: 'OPEN', CONNECTION_LOST: 'CLOSED' },
  // A refused or rejected connect has been answered; it ends when its connection does.
  REJECTED: { CONNECTION_LOST: 'CLOSED' },
  INVALID: { CONNECTION_LOST: 'CLOSED' },
  OPEN: {
    OPEN_COMMITTED: (m) => (m.openCommitted ? null : 'OPEN'),
    KEEPALIVE: 'OPEN',
    'TIMEOUT_CHECK(now)': (m, now) => (idle(m, now) ? 'CLOSING' : null),
    'TIMEOUT_CHECK(late)': 'CLOSING',
    CLOSE_REQUESTED: 'CLOSING',
    // A close decided elsewhere (another leader, the log) is applied directly.
    CLOSE_COMMITTED: 'CLOSED',
    // The session outlives its connection: the client may come back, or it times out.
    CONNECTION_LOST: 'OPEN',
    CONNECTION_ATTACHED: 'OPEN',
    LEADERSHIP_ACQUIRED: 'OPEN',
  },
  CLOSING: {
    CLOSE_COMMITTED: 'CLOSED',
    CONNECTION_LOST: 'CLOSING',
    // The close entry may be lost with the leadership: open again until a leader closes it.
    LEADERSHIP_LOST: 'OPEN',
    // The close entry was never appended (refused): open again, so a later check closes it anew.
    CLOSE_REFUSED: 'OPEN',
  },
  CLOSED: {},
};

/**
 * What the member must do outside when a transition is taken, from what each step means: a refused
 * connect is answered (INVALID), a rejected one too (REJECTED); a challenge goes to the client; an
 * authenticated new session asks for its SESSION_OPEN entry, and the client hears OK once it commits (at
 * once for a resumed session, which is committed already); an idle or closing session asks for its
 * SESSION_CLOSE entry, and a committed close is announced. A session learnt from the log, a lost
 * connection and a returning leadership tell nobody anything.
 */
const SESSION_EFFECTS = new Set([
  'notifyRefused',
  'notifyRejected',
  'sendChallenge',
  'requestOpenAppend',
  'notifyOpened',
  'requestCloseAppend',
  'notifyClosed',
]);

const expectedEffects = (from: Model, label: Label, next: ClientSessionState): string[] => {
  if (next === from.state) {
    return from.state === 'OPEN' && label === 'OPEN_COMMITTED' ? ['notifyOpened'] : [];
  }
  switch (next) {
    case 'INVALID':
      return ['notifyRefused'];
    case 'REJECTED':
      return ['notifyRejected'];
    case 'CHALLENGED':
      return ['sendChallenge'];
    case 'AUTHENTICATED':
      return ['requestOpenAppend'];
    case 'OPEN':
      return label.startsWith('AUTHENTICATED') ? ['notifyOpened'] : [];
    case 'CLOSING':
      return ['requestCloseAppend'];
    case 'CLOSED':
      return label === 'CLOSE_COMMITTED' ? ['notifyClosed'] : [];
    default:
      return [];
  }
};

const expected = (model: Model, label: Label, now: number): Outcome => {
  const rule = SPEC[model.state][label];
  if (rule === undefined) return null;
  return typeof rule === 'function' ? rule(model, now) : rule;
};

/** The model after an event the table says is handled. */
const advance = (model: Model, label: Label, now: number, next: ClientSessionState): Model => {
  const after = { ...model, state: next };
  if (label.startsWith('CONNECT_REQUEST')) {
    after.resume = label === 'CONNECT_REQUEST(resume)';
    after.compatible = label !== 'CONNECT_REQUEST(other major)';
    after.connectAt = now;
  }
  if (next === 'OPEN' && model.state !== 'OPEN' && model.state !== 'CLOSING') {
    // Opened: appended (not committed yet), resumed or learnt from the log (committed).
    after.openCommitted = label !== 'APPENDED_OPEN';
    after.activeAt = now;
  }
  if (model.state === 'OPEN' && label === 'OPEN_COMMITTED') after.openCommitted = true;
  if (
    model.state === 'OPEN' &&
    (label === 'KEEPALIVE' || label === 'CONNECTION_ATTACHED' || label === 'LEADERSHIP_ACQUIRED')
  ) {
    after.activeAt = now;
  }
  return after;
};

const v1 = SESSION_PROTOCOL_VERSION;
const validate = (
  leader: Extract<ClientSessionEvent, { type: 'VALIDATE' }>['leader'],
  activeSessions: number,
  resumable: boolean,
  resumeProven: boolean,
  now: number,
): ClientSessionEvent => ({
  type: 'VALIDATE',
  now,
  serverVersion: v1,
  leader,
  activeSessions,
  maxSessions: MAX_SESSIONS,
  resumable,
  resumeProven,
});

const eventFor = (label: Label, now: number): ClientSessionEvent => {
  switch (label) {
    case 'CONNECT_REQUEST(new)':
      return { type: 'CONNECT_REQUEST', now, connectionId: 1, clientVersion: v1 };
    case 'CONNECT_REQUEST(resume)':
      return { type: 'CONNECT_REQUEST', now, connectionId: 1, clientVersion: v1, resumeSessionId: 3 };
    case 'CONNECT_REQUEST(other major)':
      return {
        type: 'CONNECT_REQUEST',
        now,
        connectionId: 1,
        clientVersion: { major: v1.major + 1, minor: 0 },
      };
    case 'VALIDATE(leader here, room)':
      return validate({ kind: 'SELF' }, 0, true, true, now);
    case 'VALIDATE(leader here, full)':
      return validate({ kind: 'SELF' }, MAX_SESSIONS, true, true, now);
    case 'VALIDATE(leader elsewhere)':
      return validate({ kind: 'OTHER', leaderId: 2, endpoint: 'm2:9010' }, 0, true, true, now);
    case 'VALIDATE(no leader)':
      return validate({ kind: 'UNKNOWN' }, 0, true, true, now);
    case 'VALIDATE(session not open)':
      return validate({ kind: 'SELF' }, 0, false, false, now);
    case 'VALIDATE(resume unproven)':
      return validate({ kind: 'SELF' }, 0, true, false, now);
    case 'AUTHENTICATED':
      return { type: 'AUTHENTICATED', now, principal: 'alice' };
    case 'AUTHENTICATED(asked-for session still open)':
      return { type: 'AUTHENTICATED', now, principal: 'alice', resumed: { open: true, principal: 'alice' } };
    case 'AUTHENTICATED(asked-for session closed meanwhile)':
      return { type: 'AUTHENTICATED', now, principal: 'alice', resumed: { open: false, principal: 'alice' } };
    case "AUTHENTICATED(asked-for session another principal's)":
      return {
        type: 'AUTHENTICATED',
        now,
        principal: 'alice',
        resumed: { open: true, principal: 'mallory' },
      };
    case 'CHALLENGE_ISSUED':
      return { type: 'CHALLENGE_ISSUED', now, challenge: new Uint8Array([1, 2, 3]) };
    case 'AUTH_REJECTED':
      return { type: 'AUTH_REJECTED', now, detail: 'bad token' };
    case 'APPENDED_OPEN':
      return { type: 'APPENDED_OPEN', now, sessionId: 3 };
    case 'OPEN_COMMITTED':
      return { type: 'OPEN_COMMITTED', now, sessionId: 3, principal: 'alice' };
    case 'KEEPALIVE':
      return { type: 'KEEPALIVE', now };
    case 'TIMEOUT_CHECK(now)':
    case 'TIMEOUT_CHECK(late)':
      return { type: 'TIMEOUT_CHECK', now };
    case 'CLOSE_REQUESTED':
      return { type: 'CLOSE_REQUESTED', now, reason: 'CLIENT_ACTION' };
    case 'CLOSE_COMMITTED':
      return { type: 'CLOSE_COMMITTED', now, reason: 'CLIENT_ACTION' };
    case 'CONNECTION_LOST':
      return { type: 'CONNECTION_LOST', now };
    case 'CONNECTION_ATTACHED':
      return { type: 'CONNECTION_ATTACHED', now, connectionId: 2 };
    case 'LEADERSHIP_ACQUIRED':
      return { type: 'LEADERSHIP_ACQUIRED', now };
    case 'LEADERSHIP_LOST':
      return { type: 'LEADERSHIP_LOST', now };
    case 'CLOSE_REFUSED':
      return { type: 'CLOSE_REFUSED', now };
  }
};

const INITIAL_MODEL: Model = {
  state: 'INIT',
  resume: false,
  compatible: true,
  connectAt: 0,
  activeAt: 0,
  openCommitted: false,
};

/** Time moves 1 ms per event, or past every timeout for a late check. */
const timeAfter = (now: number, label: Label) => now + (label === 'TIMEOUT_CHECK(late)' ? LATE_MS : 1);

/**
 * Drive the machine and the model through `labels` together, checking the table at every step: the
 * next state, and whether the machine says it can take the event. Returns the model at the end.
 */
const walk = (labels: readonly Label[]): { model: Model; path: string[] } => {
  let [snapshot]: [Snapshot, unknown] = initialTransition(clientSessionMachine, input);
  let model = INITIAL_MODEL;
  let now = 0;
  const path: string[] = [];
  for (const label of labels) {
    now = timeAfter(now, label);
    const event = eventFor(label, now);
    const outcome = expected(model, label, now);
    const where = `${[...path, `${model.state} --${label}-->`].join(' ')}`;
    expect(snapshot.can(event), `can() after ${where}`).to.equal(outcome !== null);
    let actions: { type: string }[];
    [snapshot, actions] = transition(clientSessionMachine, snapshot, event);
    expect(snapshot.value, where).to.equal(outcome ?? model.state);
    const effects = actions.map((action) => action.type).filter((type) => SESSION_EFFECTS.has(type));
    expect(effects, `effects of ${where}`).to.deep.equal(
      outcome === null ? [] : expectedEffects(model, label, outcome),
    );
    if (outcome !== null) model = advance(model, label, now, outcome);
    path.push(`${label}`);
  }
  return { model, path };
};

/** What the table's guards can see in a model state (times as "overdue/idle if checked now"). */
const modelKey = (m: Model, now: number): string =>
  JSON.stringify([
    m.state,
    m.resume,
    m.compatible,
    m.openCommitted,
    authOverdue(m, now + 1),
    idle(m, now + 1),
  ]);

/** Breadth-first over the reference model: the shortest label path to every distinct model state. */
const modelPaths = (): Map<string, Label[]> => {
  const paths = new Map<string, Label[]>([[modelKey(INITIAL_MODEL, 0), []]]);
  let frontier: Array<{ model: Model; now: number; labels: Label[] }> = [
    { model: INITIAL_MODEL, now: 0, labels: [] },
  ];
  while (frontier.length > 0) {
    const next: typeof frontier = [];
    for (const { model, now, labels } of frontier) {
      for (const label of LABELS) {
        const at = timeAfter(now, label);
        const outcome = expected(model, label, at);
        const after = outcome === null ? model : advance(model, label, at, outcome);
        const key = modelKey(after, at);
        if (paths.has(key)) continue;
        paths.set(key, [...labels, label]);
        next.push({ model: after, now: at, labels: [...labels, label] });
      }
    }
    frontier = next;
  }
  return paths;
};

describe('client-session machine against its specification table', () => {
  const paths = modelPaths();

  it('the table reaches every state of the session lifecycle', () => {
    const reached = new Set([...paths.keys()].map((key) => JSON.parse(key)[0]));
    expect([...reached].sort()).to.deep.equal([...CLIENT_SESSION_STATES].sort());
    expect(Object.keys(SPEC).sort()).to.deep.equal([...CLIENT_SESSION_STATES].sort());
  });

  it('takes exactly the specified transition for every event in every qualified state', () => {
    let checked = 0;
    for (const labels of paths.values()) {
      for (const label of LABELS) {
        walk([...labels, label]);
        checked++;
      }
    }
    expect(checked).to.equal(paths.size * LABELS.length);
  });

  it('follows the table at every step of generated event sequences', () => {
    checkProperty(
      fc.property(fc.array(fc.constantFrom(...LABELS), { minLength: 1, maxLength: 40 }), (labels) => {
        walk(labels);
      }),
      { numRuns: 300 },
    );
  });

  it('a challenged connect the authenticator rejects is REJECTED, not INVALID', () => {
    const { model } = walk([
      'CONNECT_REQUEST(new)',
      'VALIDATE(leader here, room)',
      'CHALLENGE_ISSUED',
      'AUTH_REJECTED',
    ]);
    expect(model.state).to.equal('REJECTED');
  });
});
