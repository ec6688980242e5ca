// The counter example's oracle, written from what the counter promises (examples/counter-service.ts),
// for its model spec and for the testkit's spec, which plants bugs in copies of the machine.

import { expect } from 'chai';
import type { CounterEvent, counterMachine } from '../../examples/counter-service.ts';
import { type ModelOptions, REPLY_EVENT, type Step, WAIT } from '../../runtime/testkit/index.ts';

/** The counter's commands a model tries (BOOM throws on purpose, so it is left out). */
export const COUNTER_EVENTS: Step<CounterEvent>[] = [
  { type: 'INCREMENT', by: 1 },
  { type: 'REMIND', afterMs: 1000 },
  { type: 'CANCEL_REMINDER' },
];

const answers = (emitted: readonly { type: string }[]): unknown[] =>
  emitted.filter((event) => event.type === REPLY_EVENT).map((event) => (event as { value?: unknown }).value);

export const counterOracle: Omit<ModelOptions<typeof counterMachine>, 'events'> = {
  // The count does not change what the counter does next: a vertex is the state and the reminders fired.
  serializeState: (snapshot) => `${String(snapshot.value)} ${snapshot.context.reminders}`,
  stopWhen: (snapshot) => snapshot.context.reminders >= 2,
  table: {
    IDLE: { REMIND: 'WAITING' },
    WAITING: { CANCEL_REMINDER: 'IDLE', [WAIT]: 'IDLE' },
  },
  properties: {
    'INCREMENT adds its amount and answers the new count': ({ from, step, to, emitted }) => {
      if (step.type !== 'INCREMENT') return to.context.count === from.context.count;
      const by = (step as Extract<CounterEvent, { type: 'INCREMENT' }>).by;
      expect(to.context.count).to.equal(from.context.count + by);
      expect(answers(emitted)).to.deep.equal([to.context.count]);
      return true;
    },
    'a reminder counts once, when its timer fires in WAITING': ({ from, to, fired }) => {
      const counted = to.context.reminders - from.context.reminders;
      expect(counted).to.equal(String(from.value) === 'WAITING' && fired.length > 0 ? 1 : 0);
      expect(fired.length).to.be.at.most(1);
      return true;
    },
    'REMIND is answered WAITING, or ALREADY_WAITING while one is pending': ({ from, step, emitted }) => {
      if (step.type !== 'REMIND') return true;
      expect(answers(emitted)).to.deep.equal([
        String(from.value) === 'WAITING' ? 'ALREADY_WAITING' : 'WAITING',
      ]);
      return true;
    },
  },
};
