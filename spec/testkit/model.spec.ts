// chorus/testkit's model-based tool finds real bugs. Copies of the example machines with a planted bug —
// a wrong transition, a wrong guard, a timer that fires twice — must each be reported with the path that
// shows it; a machine that reads the clock or randomness or starts a promise must get an error naming the
// action; coverage must name what was never reached; bounds must hold.

import { expect } from 'chai';
import { assign, createMachine, raise, setup } from 'xstate';
import { actorInput } from '../../actors/actor-runtime/service.ts';
import { type AccountEvent, accountMachine } from '../../examples/bank-service.ts';
import { counterMachine } from '../../examples/counter-service.ts';
import {
  createModel,
  ModelPathError,
  NondeterminismError,
  type Step,
  wait,
} from '../../runtime/testkit/index.ts';
import { COUNTER_EVENTS, counterOracle } from '../examples/counter-model.ts';

/** Drive every path; the first failure, or undefined. */
const firstFailure = <S>(paths: readonly { steps: S }[], check: (steps: S) => unknown) => {
  for (const path of paths) {
    try {
      check(path.steps);
    } catch (error) {
      if (error instanceof ModelPathError) return error;
      throw error;
    }
  }
  return undefined;
};

/** A copy of the counter with its WAITING state replaced. */
const counterWith = (waiting: object, root: object = {}) =>
  createMachine(
    {
      ...counterMachine.config,
      states: { ...counterMachine.config.states, WAITING: waiting },
      on: { ...counterMachine.config.on, ...root },
    } as typeof counterMachine.config,
    counterMachine.implementations as never,
  ) as unknown as typeof counterMachine;

const WAITING = counterMachine.config.states?.WAITING as { after: object; on: object };

describe('testkit model: planted bugs are found, each with its path', () => {
  it('a wrong transition (CANCEL_REMINDER that stays in WAITING) fails the table on REMIND, CANCEL_REMINDER', () => {
    const buggy = counterWith({ ...WAITING, on: { ...WAITING.on, CANCEL_REMINDER: { actions: [] } } });
    const clean = createModel(counterMachine, { ...counterOracle, events: COUNTER_EVENTS });
    expect(firstFailure(clean.edgePaths(), (steps) => clean.check(steps))).to.equal(undefined);
    const model = createModel(buggy, {
      ...counterOracle,
      events: COUNTER_EVENTS,
      name: 'counter, wrong transition',
    });
    const failure = firstFailure(model.edgePaths(), (steps) => model.check(steps));
    expect(failure, 'the planted transition was not found').to.be.instanceOf(ModelPathError);
    expect(failure?.message).to.equal(
      [
        "model 'counter, wrong transition': step 2 of 2 went wrong: expected WAITING → IDLE, the actor went WAITING → WAITING",
        '    start in IDLE',
        '    1. REMIND {"afterMs":1000}   IDLE → WAITING',
        '  ✗ 2. CANCEL_REMINDER   WAITING → WAITING',
      ].join('\n'),
    );
    expect(failure?.steps).to.deep.equal([{ type: 'REMIND', afterMs: 1000 }, { type: 'CANCEL_REMINDER' }]);
  });

  it('a wrong guard (an overdraft check off by one) is shrunk to the smallest failing random walk', () => {
    const buggy = accountMachine.provide({
      guards: {
        covered: ({ context, event }) =>
          (event.type === 'WITHDRAW' || event.type === 'TRANSFER') && event.amount < context.balance,
      },
    });
    const events: Step<AccountEvent>[] = [
      { type: 'DEPOSIT', amount: 50 },
      { type: 'WITHDRAW', amount: 50 },
      { type: 'WITHDRAW', amount: 80 },
      { type: 'FREEZE', forMs: 30_000 },
    ];
    const oracle = {
      input: actorInput('bank/account/alice'),
      events,
      properties: {
        'a withdrawal the balance covers is paid': ({
          from,
          step,
          to,
        }: {
          from: typeof to;
          step: Step<AccountEvent>;
          to: { value: unknown; context: { balance: number } };
        }) =>
          step.type !== 'WITHDRAW' ||
          String(from.value) !== 'OPEN' ||
          step.amount > from.context.balance ||
          to.context.balance === from.context.balance - step.amount,
      },
    };
    expect(() => createModel(accountMachine, oracle).checkRandomWalks({ runs: 40, seed: 42 })).not.to.throw();
    const model = createModel(buggy, { ...oracle, name: 'account, wrong guard' });
    let failure: unknown;
    try {
      model.checkRandomWalks({ runs: 100, maxLength: 30, seed: 42 });
    } catch (error) {
      failure = error;
    }
    expect(failure, 'the planted guard was not found').to.be.instanceOf(ModelPathError);
    const { message, steps } = failure as ModelPathError;
    expect(steps).to.deep.equal([
      { type: 'DEPOSIT', amount: 50 },
      { type: 'WITHDRAW', amount: 50 },
    ]);
    expect(message).to.match(/^random walk \d+ of 100 failed, shrunk \d+ times; replay: FC_SEED=42/);
    expect(message).to.include("property 'a withdrawal the balance covers is paid' does not hold");
    expect(message).to.include('  ✗ 2. WITHDRAW {"amount":50}   OPEN → OPEN');
  });

  it('a timer that fires twice (a leftover delayed raise beside the after) is reported on REMIND, 1 s pass', () => {
    const buggy = counterWith(
      { ...WAITING, entry: raise({ type: 'REMINDED' }, { delay: 'REMINDER' as never }) },
      { REMINDED: { actions: assign({ reminders: ({ context }) => context.reminders + 1 }) } },
    );
    // Without CANCEL_REMINDER: the leftover raise is never cancelled, so REMIND, CANCEL_REMINDER cycles
    // would pile up timers without bound (a model too big to explore, as the testkit would say).
    const events = COUNTER_EVENTS.filter((event) => event.type !== 'CANCEL_REMINDER');
    const model = createModel(buggy, { ...counterOracle, events, name: 'counter, timer twice' });
    const failure = firstFailure(model.shortestPaths(), (steps) => model.check(steps));
    expect(failure, 'the planted timer was not found').to.be.instanceOf(ModelPathError);
    expect(failure?.message).to.include(
      "property 'a reminder counts once, when its timer fires in WAITING' failed: expected 2 to equal 1",
    );
    expect(failure?.steps).to.deep.equal([{ type: 'REMIND', afterMs: 1000 }, wait(1000)]);
    expect(failure?.message).to.include('  ✗ 2. 1 s pass   WAITING → IDLE');
  });
});

describe('testkit model: a machine that is not deterministic gets an error naming the action', () => {
  const stamped = setup({
    types: { context: {} as { at: number; lucky: number }, events: {} as { type: 'GO' } },
    actions: {
      stamp: assign({ at: () => Date.now() }),
      save: () => {
        void Promise.resolve('saved');
      },
      later: () => {
        setTimeout(() => undefined, 0);
      },
    },
    guards: { businessHours: () => new Date().getHours() < 17 },
  });
  const run = (machine: ReturnType<typeof stamped.createMachine>) => () =>
    createModel(machine, { events: [{ type: 'GO' }] }).check([{ type: 'GO' }]);

  it("a named assign that reads Date.now() is named: action 'stamp'", () => {
    const machine = stamped.createMachine({ context: { at: 0, lucky: 0 }, on: { GO: { actions: 'stamp' } } });
    expect(run(machine)).to.throw(
      NondeterminismError,
      /^model '\(machine\)': step 1 of 1 went wrong: action 'stamp' read Date\.now\(\) in \(root\) on GO, in at \(spec\/testkit\/model\.spec\.ts:\d+:\d+\)\. A Chorus machine must be deterministic/,
    );
  });

  it("an action that starts a promise is named: action 'save'", () => {
    const machine = stamped.createMachine({ context: { at: 0, lucky: 0 }, on: { GO: { actions: 'save' } } });
    expect(run(machine)).to.throw(/action 'save' started a promise in/);
  });

  it("an action that starts a timer is named: action 'later'", () => {
    const machine = stamped.createMachine({ context: { at: 0, lucky: 0 }, on: { GO: { actions: 'later' } } });
    expect(run(machine)).to.throw(/action 'later' started a timer \(setTimeout\) in/);
  });

  it("a guard that calls new Date() is named: guard 'businessHours'", () => {
    const machine = stamped.createMachine({
      context: { at: 0, lucky: 0 },
      on: { GO: { guard: 'businessHours', actions: [] } },
    });
    expect(run(machine)).to.throw(/guard 'businessHours' called new Date\(\)/);
  });

  it('an inline assign that reads Math.random() is named by its line in the spec', () => {
    const machine = stamped.createMachine({
      context: { at: 0, lucky: 0 },
      on: { GO: { actions: assign({ lucky: () => Math.random() }) } },
    });
    expect(run(machine)).to.throw(
      /an inline action, guard or delay of the machine read Math\.random\(\) in \(root\) on GO, in lucky \(spec\/testkit\/model\.spec\.ts:\d+:\d+\)/,
    );
  });

  it('an assign that reads Date.now() is named while the paths are generated, not left to blow up the graph', () => {
    const machine = stamped.createMachine({ context: { at: 0, lucky: 0 }, on: { GO: { actions: 'stamp' } } });
    expect(() => createModel(machine, { events: [{ type: 'GO' }] }).shortestPaths()).to.throw(
      NondeterminismError,
      /^action 'stamp' read Date\.now\(\) while exploring the model, in \(root\) on GO, in at \(spec\/testkit\/model\.spec\.ts:\d+:\d+\)/,
    );
  });

  it('the examples are deterministic: XState stamping its own timers is not the machine', () => {
    const model = createModel(counterMachine, { ...counterOracle, events: COUNTER_EVENTS });
    for (const path of model.edgePaths()) model.check(path.steps);
  });
});

describe('testkit model: coverage names what was never reached; bounds hold', () => {
  const input = actorInput('bank/account/alice');
  const events: Step<AccountEvent>[] = [
    { type: 'DEPOSIT', amount: 50 },
    { type: 'WITHDRAW', amount: 50 },
  ];

  it('a model without CLOSE or an overdraft never reaches CLOSED, the empty guard, or covered=false', () => {
    const model = createModel(accountMachine, {
      input,
      // Withdraw only what the balance covers: the events offered depend on the state.
      events: (s) => (s.context.balance >= 50 ? events : events.slice(0, 1)),
      stopWhen: (s) => s.context.balance > 50,
    });
    for (const path of model.edgePaths()) model.check(path.steps);
    const { states, transitions, guards } = model.coverage();
    expect(states).to.deep.equal({ reached: ['OPEN'], never: ['FROZEN', 'CLOSED'] });
    expect(transitions.reached).to.deep.equal([
      '(root) --DEPOSIT--> (stays)',
      'OPEN --WITHDRAW [covered]--> (stays)',
    ]);
    expect(transitions.never).to.include.members([
      'OPEN --CLOSE [empty]--> CLOSED',
      'OPEN --WITHDRAW [#2]--> (stays)',
      'FROZEN --after FREEZE--> OPEN',
    ]);
    expect(guards.reached).to.deep.equal(['OPEN --WITHDRAW [covered]--> (stays): true']);
    expect(guards.never).to.include('OPEN --WITHDRAW [covered]--> (stays): false');
    expect(model.formatCoverage()).to.include('states: 1 of 3 reached\n  never: FROZEN\n  never: CLOSED');
  });

  it('simple paths keep to their length and count, and visit no vertex twice', () => {
    const model = createModel(accountMachine, {
      input,
      events: [...events, { type: 'FREEZE', forMs: 1000 }],
      stopWhen: (s) => s.context.balance > 100,
    });
    const paths = model.simplePaths({ maxLength: 3, maxPaths: 7 });
    expect(paths).to.have.length(7);
    for (const path of paths) {
      expect(path.steps.length).to.be.within(1, 3);
      const vertex = (s: { value: unknown; context: object }) =>
        `${String(s.value)} ${JSON.stringify(s.context)}`;
      const records = model.check(path.steps);
      const seen = [records[0]?.from, ...records.map((r) => r.to)].map((s) => vertex(s as never));
      expect(new Set(seen).size, path.name).to.equal(seen.length);
    }
  });

  it('a model too big to explore says how to bound it', () => {
    const model = createModel(accountMachine, { input, events, limit: 50 });
    expect(() => model.shortestPaths()).to.throw(
      'the model has more than 50 vertices: bound it (events, serializeState, stopWhen) or raise limit',
    );
  });
});
