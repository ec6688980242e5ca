// The counter example (examples/counter-service.ts) tested with chorus/testkit's model-based tool: an
// expected-transition table and properties written from what the counter promises, checked at every step
// of the shortest paths, every edge and random walks, the reminder's `after` driven by the simulated clock.
// BOOM throws on purpose (it shows the runtime's failure policy), so it is not among the model's events
// and the coverage report names its transition as never reached.

import { expect } from 'chai';
import { type CounterEvent, counterMachine } from '../../examples/counter-service.ts';
import {
  createModel,
  describeModel,
  REPLY_EVENT,
  type Step,
  WAIT,
  wait,
} from '../../runtime/testkit/index.ts';

const EVENTS: Step<CounterEvent>[] = [
  { type: 'INCREMENT', by: 1 },
  { type: 'INCREMENT', by: -3 },
  { type: 'REMIND', afterMs: 1000 },
  { type: 'CANCEL_REMINDER' },
  { type: 'GET' },
  wait(400),
];

const answers = (emitted: readonly { type: string }[]): unknown[] =>
  emitted.filter((event) => event.type === REPLY_EVENT).map((event) => (event as { value?: unknown }).value);

const model = createModel(counterMachine, {
  name: 'counter',
  events: EVENTS,
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
});

describe('counter model (examples/counter-service.ts): time and edges', () => {
  it('a 30 s reminder fires when 30 s of simulated time have passed, not a millisecond before', () => {
    const records = model.check([{ type: 'REMIND', afterMs: 30_000 }, wait(29_999), wait(1), wait(60_000)]);
    expect(records.map((r) => [String(r.to.value), r.to.context.reminders, r.time])).to.deep.equal([
      ['WAITING', 0, 0],
      ['WAITING', 0, 29_999],
      ['IDLE', 1, 30_000],
      ['IDLE', 1, 90_000],
    ]);
  });

  it('takes every step from every vertex once', () => {
    for (const path of model.edgePaths()) model.check(path.steps);
  });
});

describeModel(model, {
  paths: ['shortest'],
  walks: { runs: 50, maxLength: 20 },
  require: ['states', 'table'],
  report: false,
});
