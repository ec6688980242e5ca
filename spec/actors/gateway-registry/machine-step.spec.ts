// The registry's cheap pure step (machine-step.ts) against XState's own `transition()`: the same next
// state, context and actions (with their params) on random walks of both gateway registry machines.

import { expect } from 'chai';
import fc from 'fast-check';
import { type AnyStateMachine, type EventObject, initialTransition, transition } from 'xstate';
import { stepperFor } from '../../../actors/services/gateway-registry/machine-step.ts';
import { gatewayLifecycleMachine } from '../../../machines/gateway-lifecycle.ts';
import { partyAssignmentMachine } from '../../../machines/party-assignment.ts';
import { checkProperty } from '../../support/property.ts';

const gatewayEvents: EventObject[] = [
  { type: 'ADMIT' },
  { type: 'DRAIN' },
  ...[1, 2].flatMap((session) => [
    { type: 'REGISTER', session },
    { type: 'SESSION_CLOSED', session },
  ]),
];
const partyEvents: EventObject[] = [
  { type: 'RELEASE' },
  ...['g1', 'g2'].flatMap((g) => [
    { type: 'OWNER_LOST', gateway: g },
    { type: 'TARGET_LOST', gateway: g },
    ...[1, 2, 3].flatMap((epoch) => [
      { type: 'ASSIGN', to: g, epoch },
      { type: 'MOVE', to: g, epoch },
      { type: 'OPENED', gateway: g, epoch },
      { type: 'FAILED', gateway: g, epoch },
      { type: 'CLOSED', gateway: g, epoch },
    ]),
  ]),
];

const sameAsTransition = (machine: AnyStateMachine, events: EventObject[], input?: unknown) => {
  const step = stepperFor(machine, input);
  checkProperty(
    fc.property(fc.array(fc.constantFrom(...events), { maxLength: 30 }), (walk) => {
      let [reference] = initialTransition(machine, input);
      let ours = reference;
      for (const event of walk) {
        const [expected, expectedActions] = transition(machine, reference, event);
        const [next, actions] = step(ours, event);
        expect(next.value, event.type).to.deep.equal(expected.value);
        expect(next.context, event.type).to.deep.equal(expected.context);
        const shape = (list: readonly { type: string; params?: unknown }[]) =>
          list.map((a) => [a.type, a.params ?? null]);
        expect(shape(actions), event.type).to.deep.equal(shape(expectedActions));
        reference = expected;
        ours = next;
      }
    }),
    { numRuns: 200 },
  );
};

describe('machine-step (the registry’s pure step)', () => {
  it('steps the party-assignment machine exactly as transition() does', () => {
    sameAsTransition(partyAssignmentMachine, partyEvents);
  });

  it('steps the gateway-lifecycle machine exactly as transition() does', () => {
    sameAsTransition(gatewayLifecycleMachine, gatewayEvents, { session: 1 });
  });
});
