// The party-assignment machine against an expected-transition table written from what the registry
// promises (docs/gateways.md, issue 13), not read off the machine: a report counts only from the owner
// under its current epoch, a move or release first closes at the owner, and a party reaches its next
// owner only once the old one confirmed the close or was declared lost.
//
// The table names qualified events: whether a report comes from the owner with its current epoch, and
// whether a lost gateway is the owner or the target, are decided by a small reference model fed the
// same events, never by the machine's context. Paths: breadth-first over the model (every qualified
// event from every reachable state) and fast-check random walks; at every step the state, the owner and
// epoch, and the OPEN/CLOSE orders sent are checked, and so is the safety rule itself — at no moment
// may two gateways hold an OPEN order that was not confirmed closed or lost.

import { expect } from 'chai';
import fc from 'fast-check';
import { initialTransition, type SnapshotFrom, transition } from 'xstate';
import {
  PARTY_STATES,
  type PartyAssignmentEvent,
  type PartyState,
  partyAssignmentMachine,
} from '../../machines/party-assignment.ts';
import { checkProperty } from '../support/property.ts';

type Snapshot = SnapshotFrom<typeof partyAssignmentMachine>;

/** From (state, qualified event) to the next state; pairs not listed leave the state unchanged and `can` is false. */
const SPEC: Record<PartyState, Record<string, PartyState>> = {
  UNASSIGNED: { ASSIGN: 'OFFERED' },
  OFFERED: {
    'OPENED(owner)': 'OPEN',
    'FAILED(owner)': 'UNASSIGNED',
    'CLOSED(owner)': 'UNASSIGNED',
    'OWNER_LOST(owner)': 'UNASSIGNED',
    MOVE: 'MOVING',
    RELEASE: 'CLOSING',
  },
  OPEN: {
    'OPENED(owner)': 'OPEN',
    'FAILED(owner)': 'UNASSIGNED',
    'CLOSED(owner)': 'UNASSIGNED',
    'OWNER_LOST(owner)': 'UNASSIGNED',
    MOVE: 'MOVING',
    RELEASE: 'CLOSING',
  },
  MOVING: {
    'OPENED(owner)': 'MOVING',
    'FAILED(owner)': 'OFFERED',
    'CLOSED(owner)': 'OFFERED',
    'OWNER_LOST(owner)': 'OFFERED',
    'TARGET_LOST(target)': 'CLOSING',
    RELEASE: 'CLOSING',
  },
  CLOSING: {
    'OPENED(owner)': 'CLOSING',
    'FAILED(owner)': 'UNASSIGNED',
    'CLOSED(owner)': 'UNASSIGNED',
    'OWNER_LOST(owner)': 'UNASSIGNED',
  },
};

const GATEWAYS = ['g1', 'g2', 'g3'];

/** The reference model: what the registry has told whom, from the events alone. */
interface Model {
  state: PartyState;
  owner: string | null;
  epoch: number;
  target: string | null;
  targetEpoch: number;
  /** Gateways sent OPEN and not since confirmed closed or declared lost (each may hold a connection). */
  mayHold: Map<string, number>;
  /** The last epoch handed out (epochs only grow). */
  lastEpoch: number;
}

const newModel = (): Model => ({
  state: 'UNASSIGNED',
  owner: null,
  epoch: 0,
  target: null,
  targetEpoch: 0,
  mayHold: new Map(),
  lastEpoch: 0,
});

/** The qualified label of an event in the model's state. */
const label = (model: Model, event: PartyAssignmentEvent): string => {
  switch (event.type) {
    case 'OPENED':
    case 'FAILED':
    case 'CLOSED':
      return event.gateway === model.owner && event.epoch === model.epoch
        ? `${event.type}(owner)`
        : `${event.type}(other)`;
    case 'OWNER_LOST':
      return event.gateway === model.owner ? 'OWNER_LOST(owner)' : 'OWNER_LOST(other)';
    case 'TARGET_LOST':
      return event.gateway === model.target ? 'TARGET_LOST(target)' : 'TARGET_LOST(other)';
    default:
      return event.type;
  }
};

type Order = [kind: 'OPEN' | 'CLOSE', gateway: string, epoch: number];

/** Step the model: the next model and the orders the registry must send, from the protocol's meaning. */
const stepModel = (model: Model, event: PartyAssignmentEvent): { next: Model; orders: Order[] } => {
  const l = label(model, event);
  const nextState = SPEC[model.state][l];
  const next: Model = { ...model, mayHold: new Map(model.mayHold) };
  const orders: Order[] = [];
  if (nextState === undefined) return { next, orders };
  next.state = nextState;
  const letGo = l === 'FAILED(owner)' || l === 'CLOSED(owner)' || l === 'OWNER_LOST(owner)';
  if (letGo && model.owner !== null) next.mayHold.delete(model.owner);
  if (event.type === 'ASSIGN') {
    Object.assign(next, { owner: event.to, epoch: event.epoch });
    orders.push(['OPEN', event.to, event.epoch]);
  } else if (event.type === 'MOVE') {
    Object.assign(next, { target: event.to, targetEpoch: event.epoch });
    orders.push(['CLOSE', model.owner as string, model.epoch]);
  } else if (event.type === 'RELEASE') {
    Object.assign(next, { target: null, targetEpoch: 0 });
    if (model.state !== 'MOVING') orders.push(['CLOSE', model.owner as string, model.epoch]);
  } else if (l === 'TARGET_LOST(target)') {
    Object.assign(next, { target: null, targetEpoch: 0 });
  } else if (letGo && model.state === 'MOVING') {
    Object.assign(next, { owner: model.target, epoch: model.targetEpoch, target: null, targetEpoch: 0 });
    orders.push(['OPEN', model.target as string, model.targetEpoch]);
  } else if (letGo) {
    Object.assign(next, { owner: null, target: null, targetEpoch: 0 });
  }
  for (const [kind, gateway, epoch] of orders) if (kind === 'OPEN') next.mayHold.set(gateway, epoch);
  return { next, orders };
};

/** Every event worth trying in a model state: fresh epochs for ASSIGN/MOVE, reports right and wrong. */
const candidates = (model: Model): PartyAssignmentEvent[] => {
  const fresh = model.lastEpoch + 1;
  const events: PartyAssignmentEvent[] = [{ type: 'RELEASE' }];
  for (const to of GATEWAYS) {
    events.push({ type: 'ASSIGN', to, epoch: fresh }, { type: 'MOVE', to, epoch: fresh });
  }
  const epochs = [...new Set([model.epoch, model.epoch - 1, model.targetEpoch, fresh])];
  for (const gateway of GATEWAYS) {
    for (const epoch of epochs) {
      for (const type of ['OPENED', 'FAILED', 'CLOSED'] as const) events.push({ type, gateway, epoch });
    }
    events.push({ type: 'OWNER_LOST', gateway }, { type: 'TARGET_LOST', gateway });
  }
  return events;
};

/** Step the machine and check it against the model: state, owner, epoch, orders and the safety rule. */
const checkStep = (snapshot: Snapshot, model: Model, event: PartyAssignmentEvent): [Snapshot, Model] => {
  const where = `${model.state} --${label(model, event)} ${JSON.stringify(event)}-->`;
  const expected = stepModel(model, event);
  expect(snapshot.can(event), `can ${where}`).to.equal(label(model, event) in SPEC[model.state]);
  const [next, actions] = transition(partyAssignmentMachine, snapshot, event);
  expect(next.value, where).to.equal(expected.next.state);
  const { owner, epoch, target, targetEpoch } = expected.next;
  expect(next.context, where).to.deep.equal({ owner, epoch, target, targetEpoch });
  const orders = actions
    .filter((a) => a.type === 'sendOpen' || a.type === 'sendClose')
    .map((a) => {
      const { gateway, epoch: e } = a.params as { gateway: string; epoch: number };
      return [a.type === 'sendOpen' ? 'OPEN' : 'CLOSE', gateway, e];
    });
  expect(orders, `orders of ${where}`).to.deep.equal(expected.orders);
  expect(expected.next.mayHold.size, `gateways that may hold the connection after ${where}`).to.be.at.most(1);
  if (event.type === 'ASSIGN' || event.type === 'MOVE') {
    expected.next.lastEpoch = Math.max(model.lastEpoch, event.epoch);
  }
  return [next, expected.next];
};

const walk = (events: (model: Model) => PartyAssignmentEvent | null): void => {
  let [snapshot] = initialTransition(partyAssignmentMachine);
  let model = newModel();
  for (let event = events(model); event !== null; event = events(model)) {
    [snapshot, model] = checkStep(snapshot, model, event);
  }
};

describe('party-assignment machine (model-based)', () => {
  it('takes the specified transition for every qualified event in every state reached breadth-first', () => {
    const seen = new Map<string, { snapshot: Snapshot; model: Model }>();
    const key = (m: Model) => `${m.state}/${m.owner}/${m.epoch}/${m.target}/${m.targetEpoch}`;
    const queue: { snapshot: Snapshot; model: Model; depth: number }[] = [
      { snapshot: initialTransition(partyAssignmentMachine)[0], model: newModel(), depth: 0 },
    ];
    const labels = new Set<string>();
    while (queue.length > 0) {
      const { snapshot, model, depth } = queue.shift()!;
      if (seen.has(key(model))) continue;
      seen.set(key(model), { snapshot, model });
      for (const event of candidates(model)) {
        labels.add(`${model.state} ${label(model, event)}`);
        const [next, nextModel] = checkStep(snapshot, model, event);
        if (depth < 4) queue.push({ snapshot: next, model: nextModel, depth: depth + 1 });
      }
    }
    expect(new Set([...seen.values()].map((s) => s.model.state))).to.have.keys(...PARTY_STATES);
    for (const [state, row] of Object.entries(SPEC)) {
      for (const l of Object.keys(row)) expect(labels, `${state} ${l} was tried`).to.include(`${state} ${l}`);
    }
  });

  it('follows the table on random walks, and never has two gateways holding OPEN orders', () => {
    checkProperty(
      fc.property(fc.array(fc.nat(), { minLength: 1, maxLength: 60 }), (draws) => {
        let i = 0;
        walk((model) => {
          if (i >= draws.length) return null;
          const options = candidates(model);
          return options[draws[i++] % options.length];
        });
      }),
      { numRuns: 300 },
    );
  });

  it('a move hands the party over only once the old owner confirmed the close, under the new epoch', () => {
    let [s] = initialTransition(partyAssignmentMachine);
    [s] = transition(partyAssignmentMachine, s, { type: 'ASSIGN', to: 'g1', epoch: 1 });
    [s] = transition(partyAssignmentMachine, s, { type: 'OPENED', gateway: 'g1', epoch: 1 });
    [s] = transition(partyAssignmentMachine, s, { type: 'MOVE', to: 'g2', epoch: 2 });
    expect(s.value).to.equal('MOVING');
    // A stale close (epoch of an older assignment) and a close from the target change nothing.
    for (const stale of [
      { type: 'CLOSED', gateway: 'g1', epoch: 0 },
      { type: 'CLOSED', gateway: 'g2', epoch: 2 },
    ] as const) {
      expect(s.can(stale)).to.equal(false);
      expect(transition(partyAssignmentMachine, s, stale)[0].value).to.equal('MOVING');
    }
    [s] = transition(partyAssignmentMachine, s, { type: 'CLOSED', gateway: 'g1', epoch: 1 });
    expect([s.value, s.context.owner, s.context.epoch]).to.deep.equal(['OFFERED', 'g2', 2]);
    // g1's late report of its old epoch is refused.
    expect(s.can({ type: 'OPENED', gateway: 'g1', epoch: 1 })).to.equal(false);
  });
});
