// An example Chorus service: named counters, each one an actor. A counter can be incremented, read, and
// asked for a reminder that fires once after a delay — an XState `after` transition, which Chorus turns
// into a cluster timer: the timer is part of the replicated state and its expiry is a log entry, so the
// reminder fires exactly once across snapshots, restarts and leader changes.
//
// Run it on a cluster by naming this module in the configuration: `"services": "./examples/counter-service.ts"`.
// Talk to it from a client:
//
//   const counters = serviceClient(await ChorusClient.connect({ endpoints }), counterService);
//   await counters.command({ type: 'INCREMENT', id: 'visits', by: 1 });        // → 1
//   await counters.command({ type: 'REMIND', id: 'visits', afterMs: 500 });    // → 'WAITING'
//   await counters.command({ type: 'GET', id: 'visits' });   // → { state, count, reminders }

import { assign, emit, setup } from 'xstate';
import { z } from 'zod';
import { defineService, reply } from '../actors/actor-runtime/service.ts';

export interface CounterContext {
  /** The counter's value. */
  count: number;
  /** The delay of the pending (or last) reminder, ms. */
  reminderMs: number;
  /** Reminders that have fired. */
  reminders: number;
}

export type CounterEvent =
  | { type: 'INCREMENT'; by: number }
  | { type: 'REMIND'; afterMs: number }
  | { type: 'CANCEL_REMINDER' }
  | { type: 'GET' }
  | { type: 'BOOM' };

export const counterMachine = setup({
  types: { context: {} as CounterContext, events: {} as CounterEvent },
  delays: {
    /** How long the pending reminder waits (from the REMIND command). */
    REMINDER: ({ context }) => context.reminderMs,
  },
}).createMachine({
  id: 'counter',
  context: { count: 0, reminderMs: 0, reminders: 0 },
  initial: 'IDLE',
  states: {
    IDLE: {
      on: {
        REMIND: {
          target: 'WAITING',
          actions: [assign({ reminderMs: ({ event }) => event.afterMs }), emit(() => reply('WAITING'))],
        },
      },
    },
    WAITING: {
      after: {
        REMINDER: { target: 'IDLE', actions: assign({ reminders: ({ context }) => context.reminders + 1 }) },
      },
      on: {
        CANCEL_REMINDER: { target: 'IDLE', actions: emit(() => reply('IDLE')) },
        // Only one reminder at a time: a second REMIND is answered, not queued.
        REMIND: { actions: emit(() => reply('ALREADY_WAITING')) },
      },
    },
  },
  on: {
    INCREMENT: {
      actions: [
        assign({ count: ({ context, event }) => context.count + event.by }),
        emit(({ context }) => reply(context.count)),
      ],
    },
    GET: {
      actions: emit(({ context, self }) =>
        reply({
          state: self.getSnapshot().value,
          count: context.count,
          reminders: context.reminders,
        }),
      ),
    },
    // A transition that throws. With the default failure policy ('keep-state') every member rejects the
    // command with ACTOR_FAILED and keeps the actor's last good state, so the count is never zeroed.
    BOOM: {
      actions: [
        assign({ count: () => 0 }),
        () => {
          throw new Error('BOOM: this transition always throws');
        },
      ],
    },
  },
});

const id = z.string().min(1, 'name the counter');

export const counterService = defineService({
  name: 'counters',
  actors: { counter: counterMachine },
  commands: {
    INCREMENT: z.object({ type: z.literal('INCREMENT'), id, by: z.number().int().default(1) }),
    REMIND: z.object({
      type: z.literal('REMIND'),
      id,
      afterMs: z.number().int().min(0).max(86_400_000, 'at most a day'),
    }),
    CANCEL_REMINDER: z.object({ type: z.literal('CANCEL_REMINDER'), id }),
    GET: z.object({ type: z.literal('GET'), id }),
    BOOM: z.object({ type: z.literal('BOOM'), id }),
  },
  route: ({ id: actorId, ...event }) => ({ actorType: 'counter', actorId, event: event as CounterEvent }),
});

/** What a member hosts from this module. */
export const services = [counterService];
