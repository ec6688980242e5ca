// The service API's types, checked by `tsc` (this file is in the type-checked project): `tell` and `reply`
// typed by their target, `emitFor` for actions written outside `setup()`. Each `@ts-expect-error` line must
// be an error: if the types stop refusing it, `npx tsc --noEmit -p .` fails on the unused directive.

import { expect } from 'chai';
import { assign, createActor, setup } from 'xstate';
import {
  type ActorInput,
  actorInput,
  emitFor,
  REPLY_EVENT,
  reply,
  TELL_EVENT,
  tell,
} from '../../../actors/actor-runtime/service.ts';
import type { AccountEvent, accountMachine, BankReply } from '../../../examples/bank-service.ts';

describe('service API types', () => {
  it('tell is typed by the target: its machine or its event union; untyped, any event with fields goes', () => {
    const credit = tell<AccountEvent>('account', 'bob', { type: 'CREDIT', from: 'alice', amount: 5 });
    expect(credit).to.deep.equal({
      type: TELL_EVENT,
      actorType: 'account',
      actorId: 'bob',
      event: { type: 'CREDIT', from: 'alice', amount: 5 },
    });
    tell<typeof accountMachine>('account', 'bob', { type: 'REFUND', amount: 5 }, 'bank');
    // @ts-expect-error a field the event does not have
    tell<AccountEvent>('account', 'bob', { type: 'CREDIT', from: 'alice', amount: 5, memo: 'x' });
    // @ts-expect-error a missing field (from)
    tell<typeof accountMachine>('account', 'bob', { type: 'CREDIT', amount: 5 });
    // @ts-expect-error an event type the target does not accept
    tell<AccountEvent>('account', 'bob', { type: 'CREDITS', from: 'alice', amount: 5 });
    // @ts-expect-error a field of the wrong type
    tell<AccountEvent>('account', 'bob', { type: 'REFUND', amount: '5' });
    const untyped = tell('ledger', 'main', { type: 'POSTED', amount: 5, from: 'alice' });
    expect(untyped.event).to.deep.equal({ type: 'POSTED', amount: 5, from: 'alice' });
  });

  it('reply is typed by the reply type it names', () => {
    expect(reply<BankReply>({ ok: true, state: 'OPEN', balance: 3 })).to.deep.equal({
      type: REPLY_EVENT,
      value: { ok: true, state: 'OPEN', balance: 3 },
    });
    // @ts-expect-error a refusal needs a reason
    reply<BankReply>({ ok: false, balance: 3 });
    reply({ anything: 'goes untyped' });
  });

  it('emitFor: a reusable action outside setup() fits the machine and reads its context and events', () => {
    interface Ctx {
      readonly address: string;
      n: number;
    }
    type Ev = { type: 'ADD'; by: number } | { type: 'PING' };
    const emitCounter = emitFor<Ctx, Ev>();
    const answer = emitCounter(({ context }) => reply({ n: context.n, me: context.address }));
    // @ts-expect-error the context has no field `count`
    emitCounter(({ context }) => reply(context.count));
    const machine = setup({
      types: { context: {} as Ctx, events: {} as Ev, input: {} as ActorInput },
    }).createMachine({
      context: ({ input }) => ({ address: input.address, n: 0 }),
      on: {
        ADD: { actions: [assign({ n: ({ context, event }) => context.n + event.by }), answer] },
        PING: { actions: answer },
      },
    });
    const actor = createActor(machine, { input: actorInput('demo/counter/a') });
    const emitted: unknown[] = [];
    actor.on('*', (event) => emitted.push(event));
    actor.start();
    actor.send({ type: 'ADD', by: 2 });
    actor.send({ type: 'PING' });
    expect(emitted).to.deep.equal([
      { type: REPLY_EVENT, value: { n: 2, me: 'demo/counter/a' } },
      { type: REPLY_EVENT, value: { n: 2, me: 'demo/counter/a' } },
    ]);
  });
});
