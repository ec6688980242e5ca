// The gateway-lifecycle machine against an expected-transition table written from what the registry
// promises (issue 13): a gateway is bound to the session it registered from — only that session's close
// makes it LOST, and while it is not LOST a REGISTER from another session is refused; a REGISTER from its
// own session (a resync) changes nothing; a LOST name may register again from a new session.
// Whether an event names the gateway's own session is decided by a reference model fed the same events,
// never by the machine's context. Paths: breadth-first and fast-check random walks.

import { expect } from 'chai';
import fc from 'fast-check';
import { initialTransition, type SnapshotFrom, transition } from 'xstate';
import {
  GATEWAY_STATES,
  type GatewayLifecycleEvent,
  type GatewayState,
  gatewayLifecycleMachine,
} from '../../machines/gateway-lifecycle.ts';
import { checkProperty } from '../support/property.ts';

type Snapshot = SnapshotFrom<typeof gatewayLifecycleMachine>;

const SPEC: Record<GatewayState, Record<string, GatewayState>> = {
  REGISTERING: {
    ADMIT: 'ACTIVE',
    DRAIN: 'DRAINING',
    'REGISTER(own)': 'REGISTERING',
    'SESSION_CLOSED(own)': 'LOST',
  },
  ACTIVE: { DRAIN: 'DRAINING', 'REGISTER(own)': 'ACTIVE', 'SESSION_CLOSED(own)': 'LOST' },
  DRAINING: { DRAIN: 'DRAINING', 'REGISTER(own)': 'DRAINING', 'SESSION_CLOSED(own)': 'LOST' },
  LOST: { 'REGISTER(own)': 'REGISTERING', 'REGISTER(other)': 'REGISTERING' },
};

interface Model {
  state: GatewayState;
  session: number;
}

const label = (model: Model, event: GatewayLifecycleEvent): string =>
  event.type === 'REGISTER' || event.type === 'SESSION_CLOSED'
    ? `${event.type}(${event.session === model.session ? 'own' : 'other'})`
    : event.type;

const SESSIONS = [3, 7, 11];
const EVENTS: GatewayLifecycleEvent[] = [
  { type: 'ADMIT' },
  { type: 'DRAIN' },
  ...SESSIONS.flatMap((session) => [
    { type: 'REGISTER' as const, session },
    { type: 'SESSION_CLOSED' as const, session },
  ]),
];

const check = (snapshot: Snapshot, model: Model, event: GatewayLifecycleEvent): [Snapshot, Model] => {
  const l = label(model, event);
  const where = `${model.state} --${l} ${JSON.stringify(event)}-->`;
  const expectedState = SPEC[model.state][l] ?? model.state;
  // A new registration binds the gateway to the session it came from; nothing else rebinds it.
  const expectedSession = model.state === 'LOST' && event.type === 'REGISTER' ? event.session : model.session;
  expect(snapshot.can(event), `can ${where}`).to.equal(l in SPEC[model.state]);
  const [next] = transition(gatewayLifecycleMachine, snapshot, event);
  expect(next.value, where).to.equal(expectedState);
  expect(next.context.session, where).to.equal(expectedSession);
  return [next, { state: expectedState, session: expectedSession }];
};

const start = (): [Snapshot, Model] => [
  initialTransition(gatewayLifecycleMachine, { session: SESSIONS[0] })[0],
  { state: 'REGISTERING', session: SESSIONS[0] },
];

describe('gateway-lifecycle machine (model-based)', () => {
  it('takes the specified transition for every qualified event in every state reached breadth-first', () => {
    const queue = [start()];
    const seen = new Set<string>();
    const tried = new Set<string>();
    while (queue.length > 0) {
      const [snapshot, model] = queue.shift()!;
      const key = `${model.state}/${model.session}`;
      if (seen.has(key)) continue;
      seen.add(key);
      for (const event of EVENTS) {
        tried.add(`${model.state} ${label(model, event)}`);
        queue.push(check(snapshot, model, event));
      }
    }
    expect(new Set([...seen].map((k) => k.split('/')[0]))).to.have.keys(...GATEWAY_STATES);
    for (const [state, row] of Object.entries(SPEC))
      for (const l of Object.keys(row)) expect(tried).to.include(`${state} ${l}`);
  });

  it('follows the table on random walks', () => {
    checkProperty(
      fc.property(fc.array(fc.constantFrom(...EVENTS), { maxLength: 40 }), (events) => {
        let [snapshot, model] = start();
        for (const event of events) [snapshot, model] = check(snapshot, model, event);
      }),
      { numRuns: 300 },
    );
  });
});
