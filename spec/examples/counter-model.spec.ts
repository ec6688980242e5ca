// The counter example (examples/counter-service.ts) tested with chorus/testkit's model-based tool: the
// expected-transition table and properties of counter-model.ts, checked at every step of the shortest
// paths, every edge and random walks, the reminder's `after` driven by the simulated clock. BOOM throws on
// purpose (it shows the runtime's failure policy), so it is not among the model's events and the coverage
// report names its transition as never reached.

import { expect } from 'chai';
import { counterMachine } from '../../examples/counter-service.ts';
import { createModel, describeModel, wait } from '../../runtime/testkit/index.ts';
import { COUNTER_EVENTS, counterOracle } from './counter-model.ts';

const model = createModel(counterMachine, {
  ...counterOracle,
  name: 'counter',
  events: [...COUNTER_EVENTS, { type: 'INCREMENT', by: -3 }, { type: 'GET' }, wait(400)],
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
