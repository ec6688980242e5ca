// A service for the session egress specs (and, as a services module, for member processes): a bell per
// channel that sessions subscribe to. RING pushes a message to every subscriber (`notify`); a session's
// close (`sessionClosed`) unsubscribes it from every channel it may be on.

import { assign, enqueueActions, setup } from 'xstate';
import { z } from 'zod';
import { defineService, type EventOrigin, notify, reply } from '../../../actors/actor-runtime/service.ts';

/** The channels a session can subscribe to: a session close is told to each of them. */
export const CHANNELS = ['a', 'b', 'c', 'd'] as const;

type BellEvent =
  | { type: 'SUBSCRIBE'; origin?: EventOrigin }
  | { type: 'RING'; text: string; origin?: EventOrigin }
  | { type: 'RING_THEN_THROW'; origin?: EventOrigin }
  | { type: 'LIST'; origin?: EventOrigin }
  | { type: 'SESSION_CLOSED'; origin?: EventOrigin };

interface BellContext {
  subscribers: number[];
  /** Every session close this bell was told, in order (with the session and whether it was subscribed). */
  closes: [number, boolean][];
  rings: number;
}

const sessionOf = (origin: EventOrigin | undefined): number =>
  origin && 'session' in origin ? origin.session : 0;

export const bellMachine = setup({
  types: { context: {} as BellContext, events: {} as BellEvent, input: {} as unknown },
}).createMachine({
  id: 'bell',
  context: { subscribers: [], closes: [], rings: 0 },
  on: {
    SUBSCRIBE: {
      actions: [
        assign({
          subscribers: ({ context, event }) => [
            ...context.subscribers.filter((s) => s !== sessionOf(event.origin)),
            sessionOf(event.origin),
          ],
        }),
        enqueueActions(({ enqueue, context }) => enqueue.emit(reply(context.subscribers))),
      ],
    },
    RING: {
      actions: [
        assign({ rings: ({ context }) => context.rings + 1 }),
        enqueueActions(({ enqueue, context, event }) => {
          for (const session of context.subscribers)
            enqueue.emit(notify(session, { type: 'RING', text: event.text, ring: context.rings }));
          enqueue.emit(reply(context.subscribers.length));
        }),
      ],
    },
    RING_THEN_THROW: {
      actions: [
        enqueueActions(({ enqueue, context }) => {
          for (const session of context.subscribers) enqueue.emit(notify(session, { type: 'NEVER' }));
        }),
        () => {
          throw new Error('RING_THEN_THROW always throws');
        },
      ],
    },
    LIST: { actions: enqueueActions(({ enqueue, context }) => enqueue.emit(reply(context))) },
    SESSION_CLOSED: {
      actions: assign(({ context, event }) => {
        const origin = event.origin;
        if (!origin || !('sessionClosed' in origin)) return context; // only the runtime tells a close
        const session = origin.sessionClosed;
        return {
          ...context,
          subscribers: context.subscribers.filter((s) => s !== session),
          closes: [...context.closes, [session, context.subscribers.includes(session)] as [number, boolean]],
        };
      }),
    },
  },
});

const channel = z.enum(CHANNELS);
export const bellService = defineService({
  name: 'bells',
  actors: { bell: bellMachine },
  commands: {
    SUBSCRIBE: z.object({ type: z.literal('SUBSCRIBE'), channel }),
    RING: z.object({ type: z.literal('RING'), channel, text: z.string() }),
    RING_THEN_THROW: z.object({ type: z.literal('RING_THEN_THROW'), channel }),
    LIST: z.object({ type: z.literal('LIST'), channel }),
  },
  route: (command) => {
    const { channel: actorId, ...event } = command;
    return { actorType: 'bell', actorId, event: event as BellEvent };
  },
  sessionClosed: () =>
    CHANNELS.map((actorId) => ({ actorType: 'bell', actorId, event: { type: 'SESSION_CLOSED' } })),
});

export const services = [bellService];
