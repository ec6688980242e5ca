// The leader's service edge (actors/actor-runtime/service-edge.ts) and the origin the runtime stamps on events: a raw
// client's body is checked with the service's own schemas and route before it may enter the log, and an
// actor can tell a client's command from another actor's message.

import { expect } from 'chai';
import { assign, emit, setup } from 'xstate';
import { z } from 'zod';
import { commandBody, pack, type ShardOutput, unpack } from '../../../actors/actor-runtime/protocol.ts';
import {
  type ActorInput,
  defineService,
  type EventOrigin,
  reply,
  type Service,
  tell,
} from '../../../actors/actor-runtime/service.ts';
import { admitCommand } from '../../../actors/actor-runtime/service-edge.ts';
import { Shard } from '../../../actors/actor-runtime/shard.ts';
import { EntryKind } from '../../../actors/log/log-entry.ts';
import { SESSION_MESSAGE_HEADER_BYTES } from '../../../actors/log/session-message.ts';
import { counterService } from '../../../examples/counter-service.ts';
import { LogBuilder } from './fixtures.ts';

const services = new Map<string, Service>([[counterService.name, counterService as unknown as Service]]);
const refusal = (body: Uint8Array) => {
  const admitted = admitCommand(services, body);
  expect(admitted.ok, 'refused').to.equal(false);
  return admitted.ok ? '' : `${admitted.error.code}: ${admitted.error.message}`;
};

describe('service edge (leader)', () => {
  it('routes a valid command to the body the shards apply, exactly as the service routes it', () => {
    const admitted = admitCommand(
      services,
      counterService.commandBody({ type: 'INCREMENT', id: 'a', by: 2 }),
    );
    expect(admitted).to.deep.equal({
      ok: true,
      body: commandBody('counters/counter/a', { type: 'INCREMENT', by: 2 }),
    });
    // Schema defaults are applied on the leader, not trusted from the client.
    const defaulted = admitCommand(services, pack(['counters', { type: 'INCREMENT', id: 'a' }]));
    expect(defaulted.ok && unpack(defaulted.body)).to.deep.equal([
      'counters/counter/a',
      { type: 'INCREMENT', by: 1 },
    ]);
  });

  it('refuses what a raw client may send: bad bytes and shapes, unknown services, schema violations', () => {
    expect(refusal(new Uint8Array([0x92, 0xa1]))).to.match(/BAD_COMMAND: .*not msgpack/);
    expect(refusal(pack({ type: 'INCREMENT' }))).to.match(/\[serviceName, command\]/);
    // The routed shape a client could once send straight to an actor.
    expect(refusal(commandBody('counters/counter/a', { type: 'INCREMENT', by: 5 }))).to.match(/no service/);
    expect(refusal(pack(['bank', { type: 'INCREMENT', id: 'a' }]))).to.match(/no service 'bank'.*counters/);
    expect(refusal(pack(['counters', { type: 'INCREMENT', id: 'a', by: '05' }]))).to.match(/by: .*number/);
    expect(refusal(pack(['counters', { type: 'INCREMENT', id: 'a', by: 1.5 }]))).to.match(/by/);
    expect(refusal(pack(['counters', { type: 'xstate.after.REMINDER.counter.WAITING', id: 'a' }]))).to.match(
      /command type .* is unknown/,
    );
    expect(refusal(pack(['counters', { type: '__proto__', id: 'a' }]))).to.match(/unknown/);
  });

  it('refuses a command whose route gives a runtime-reserved event type, and a route that throws', () => {
    const machine = setup({}).createMachine({});
    const sneaky = defineService({
      name: 'sneaky',
      actors: { thing: machine },
      commands: {
        POKE: z.object({ type: z.literal('POKE'), id: z.string(), as: z.string() }),
        CRASH: z.object({ type: z.literal('CRASH'), id: z.string() }),
      },
      route: (command) => {
        if (command.type === 'CRASH') throw new Error('no route for that');
        return { actorType: 'thing', actorId: command.id, event: { type: command.as } };
      },
    }) as unknown as Service;
    const edge = new Map([['sneaky', sneaky]]);
    const refused = (command: unknown) => {
      const admitted = admitCommand(edge, pack(['sneaky', command]));
      return admitted.ok ? 'admitted' : admitted.error.message;
    };
    expect(refused({ type: 'POKE', id: 'x', as: 'xstate.after.1000.thing.IDLE' })).to.match(/reserved/);
    expect(refused({ type: 'POKE', id: 'x', as: 'chorus.effect.done' })).to.match(/reserved/);
    expect(refused({ type: 'CRASH', id: 'x' })).to.match(/route\(\) threw no route for that/);
    expect(refused({ type: 'POKE', id: 'x', as: 'PING' })).to.equal('admitted');
  });
});

describe('event origin and actor address', () => {
  interface Seen {
    origins: EventOrigin[];
    me: string;
  }
  const ledger = setup({
    types: {
      context: {} as Seen,
      input: {} as ActorInput,
      events: {} as
        | { type: 'PING'; to?: string; origin?: EventOrigin }
        | { type: 'PONG'; origin?: EventOrigin },
    },
  }).createMachine({
    context: ({ input }) => ({ origins: [], me: input.address }),
    on: {
      PING: {
        actions: [
          assign({ origins: ({ context, event }) => [...context.origins, event.origin as EventOrigin] }),
          emit(({ event }) => tell('ledger', event.to ?? 'nobody', { type: 'PONG' })),
          emit(({ context }) => reply(context.me)),
        ],
      },
      PONG: {
        actions: assign({
          origins: ({ context, event }) => [...context.origins, event.origin as EventOrigin],
        }),
      },
    },
  });
  const svc = defineService({
    name: 'pp',
    actors: { ledger },
    commands: { PING: z.object({ type: z.literal('PING'), id: z.string(), to: z.string() }) },
    route: ({ id, ...event }) => ({ actorType: 'ledger', actorId: id, event }),
  });

  it('an actor knows its address; events carry their origin, and a forged origin is overwritten', () => {
    const log = new LogBuilder();
    const payload = svc.commandPayload({ type: 'PING', id: 'a', to: 'b' }, 42, 1);
    // A forged origin inside the routed event (as a buggy route could pass through) is replaced.
    const [address, event] = unpack(payload.subarray(SESSION_MESSAGE_HEADER_BYTES)) as [string, object];
    const forged = new Uint8Array([
      ...payload.subarray(0, SESSION_MESSAGE_HEADER_BYTES),
      ...pack([address, { ...event, origin: { actor: 'pp/ledger/z' } }]),
    ]);
    log.raw(EntryKind.SESSION_MESSAGE, forged);
    const shard = new Shard({ services: [svc] });
    const outputs: ShardOutput[] = shard.apply(log.entries);
    const answer = outputs.find((o) => o.type === 'REPLY');
    expect(answer?.type === 'REPLY' && answer.value).to.equal('pp/ledger/a');
    expect((shard.actorState('pp/ledger/a') as { context: Seen }).context.origins).to.deep.equal([
      { session: 42 },
    ]);
    // The tell goes through the log as a SERVICE_MESSAGE; applied, it carries the sender's address.
    const send = outputs.find((o) => o.type === 'SEND');
    expect(send, 'a SEND output').to.not.equal(undefined);
    const next = new LogBuilder(log.index);
    next.raw(EntryKind.SERVICE_MESSAGE, send?.type === 'SEND' ? send.payload : new Uint8Array());
    shard.apply(next.entries);
    expect((shard.actorState('pp/ledger/b') as { context: Seen }).context).to.deep.equal({
      origins: [{ actor: 'pp/ledger/a' }],
      me: 'pp/ledger/b',
    });
  });
});
