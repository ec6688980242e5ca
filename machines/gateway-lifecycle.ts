// The life of one API gateway as the gateway registry (actors/services/gateway-registry) sees it.
//
//   REGISTERING ──ADMIT──▶ ACTIVE ──DRAIN──▶ DRAINING
//        │  └──────────DRAIN──────────────────▲   │
//        └──── SESSION_CLOSED (its own session) ──┴──▶ LOST ──REGISTER──▶ REGISTERING
//
// - REGISTERING: the gateway's REGISTER is being applied; the planning that entry runs admits it (ADMIT).
//   It stays REGISTERING only if that planning fails (until the next one).
// - ACTIVE: it may be given parties.
// - DRAINING: an operator asked it to give its parties up; the planner moves them away and gives it none
//   (DRAIN again changes nothing).
// - LOST: its session closed (it disconnected for good, or timed out). Its parties move at once. The
//   same name may register again from a new session.
//
// The gateway is bound to the client session it registered from: only that session's close makes it
// LOST, and while it is not LOST a REGISTER from another session is refused (`can` is false), so two
// processes configured with one name never both hold its parties. A REGISTER from its own session (a
// resync after a leader change) changes nothing. The machine is pure and has no timers; the registry
// steps it with XState's `transition()`.

import { assign, setup } from 'xstate';

export const GATEWAY_STATES = ['REGISTERING', 'ACTIVE', 'DRAINING', 'LOST'] as const;
export type GatewayState = (typeof GATEWAY_STATES)[number];

export interface GatewayLifecycleContext {
  /** The client session the gateway registered from (its log index). */
  readonly session: number;
}

export interface GatewayLifecycleInput {
  readonly session: number;
}

export type GatewayLifecycleEvent =
  | { type: 'REGISTER'; session: number }
  | { type: 'ADMIT' }
  | { type: 'DRAIN' }
  | { type: 'SESSION_CLOSED'; session: number };

export const gatewayLifecycleMachine = setup({
  types: {
    context: {} as GatewayLifecycleContext,
    events: {} as GatewayLifecycleEvent,
    input: {} as GatewayLifecycleInput,
  },
  guards: {
    ownSession: ({ context, event }) =>
      (event.type === 'REGISTER' || event.type === 'SESSION_CLOSED') && event.session === context.session,
  },
  actions: {
    bindSession: assign({
      session: ({ context, event }) => (event.type === 'REGISTER' ? event.session : context.session),
    }),
  },
}).createMachine({
  id: 'gatewayLifecycle',
  initial: 'REGISTERING',
  context: ({ input }) => ({ session: input.session }),
  states: {
    REGISTERING: {
      on: {
        ADMIT: { target: 'ACTIVE' },
        DRAIN: { target: 'DRAINING' },
        REGISTER: { guard: 'ownSession', target: 'REGISTERING' },
        SESSION_CLOSED: { guard: 'ownSession', target: 'LOST' },
      },
    },
    ACTIVE: {
      on: {
        DRAIN: { target: 'DRAINING' },
        REGISTER: { guard: 'ownSession', target: 'ACTIVE' },
        SESSION_CLOSED: { guard: 'ownSession', target: 'LOST' },
      },
    },
    DRAINING: {
      on: {
        DRAIN: { target: 'DRAINING' },
        REGISTER: { guard: 'ownSession', target: 'DRAINING' },
        SESSION_CLOSED: { guard: 'ownSession', target: 'LOST' },
      },
    },
    LOST: {
      on: { REGISTER: { target: 'REGISTERING', actions: 'bindSession' } },
    },
  },
});

export type GatewayLifecycleMachine = typeof gatewayLifecycleMachine;
