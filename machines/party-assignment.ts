// The assignment of one trading party's outbound connection to a gateway, as the gateway registry
// (actors/services/gateway-registry) holds it. Every assignment carries a fencing epoch, drawn by the
// registry from one counter that only grows, so a report naming an older epoch (a stale gateway's late
// OPENED or CLOSED) never matches and changes nothing.
//
//   UNASSIGNED ──ASSIGN──▶ OFFERED ──OPENED──▶ OPEN
//       ▲                   │  │                │ │
//       │   FAILED / CLOSED / OWNER_LOST ◀──────┘ │        MOVE (both): CLOSE sent to the owner
//       │                   │  └──MOVE──▶ MOVING ◀┘──────▶ then, once the owner confirmed FAILED/CLOSED
//       │                   │               │               or was declared lost: OFFERED to the target
//       └──── CLOSING ◀─RELEASE (or TARGET_LOST in MOVING)
//
// - UNASSIGNED: nobody holds or is offered the party.
// - OFFERED: OPEN was sent to the owner with the current epoch; waiting for OPENED (or FAILED).
// - OPEN: the owner reported the connection open under the current epoch.
// - MOVING: CLOSE was sent to the owner; the party goes to `target` (with `targetEpoch`) only once the
//   owner confirmed the close (CLOSED or FAILED) or was declared lost — never two open connections.
// - CLOSING: CLOSE was sent to the owner and the party goes nowhere (it was released, or its target
//   was lost meanwhile); it is UNASSIGNED once the owner confirmed or was declared lost.
//
// Reports (OPENED, FAILED, CLOSED) count only from the owner and under the current epoch (`fromOwner`);
// OWNER_LOST and TARGET_LOST name the gateway lost. The actions `sendOpen` and `sendClose` carry the
// gateway and epoch as params; the registry performs them (a notification to the gateway's session).
// Pure, no timers; the registry steps it with XState's `transition()`.

import { assign, setup } from 'xstate';

export const PARTY_STATES = ['UNASSIGNED', 'OFFERED', 'OPEN', 'MOVING', 'CLOSING'] as const;
export type PartyState = (typeof PARTY_STATES)[number];

export interface PartyAssignmentContext {
  /** The gateway holding or offered the party (the one a CLOSE went to, in MOVING and CLOSING). */
  readonly owner: string | null;
  /** The epoch of the owner's assignment (0: never assigned). */
  readonly epoch: number;
  /** Where a MOVING party goes once its owner has let go. */
  readonly target: string | null;
  readonly targetEpoch: number;
}

/** A gateway's report on its assignment, as the registry hands it to the party. */
export type PartyReport = { gateway: string; epoch: number };

export type PartyAssignmentEvent =
  | { type: 'ASSIGN'; to: string; epoch: number }
  | { type: 'MOVE'; to: string; epoch: number }
  | { type: 'RELEASE' }
  | ({ type: 'OPENED' } & PartyReport)
  | ({ type: 'FAILED' } & PartyReport)
  | ({ type: 'CLOSED' } & PartyReport)
  | { type: 'OWNER_LOST'; gateway: string }
  | { type: 'TARGET_LOST'; gateway: string };

/** What `sendOpen` and `sendClose` carry: the gateway to tell, and the epoch. */
export interface PartyOrder {
  readonly gateway: string;
  readonly epoch: number;
}

const unowned = { owner: null, target: null, targetEpoch: 0 } as const;

type Args = { context: PartyAssignmentContext };
/** The order to the current owner, under the current epoch (after the transition's assigns). */
const toOwner = ({ context }: Args): PartyOrder => ({ gateway: context.owner ?? '', epoch: context.epoch });
const closeOwner = { type: 'sendClose', params: toOwner } as const;
const openOwner = { type: 'sendOpen', params: toOwner } as const;

export const partyAssignmentMachine = setup({
  types: {
    context: {} as PartyAssignmentContext,
    events: {} as PartyAssignmentEvent,
  },
  guards: {
    fromOwner: ({ context, event }) =>
      'epoch' in event &&
      'gateway' in event &&
      event.gateway === context.owner &&
      event.epoch === context.epoch,
    ownerLost: ({ context, event }) => event.type === 'OWNER_LOST' && event.gateway === context.owner,
    targetLost: ({ context, event }) => event.type === 'TARGET_LOST' && event.gateway === context.target,
  },
  actions: {
    /** Tell `gateway` to open the party's connection under `epoch`. The registry performs it. */
    sendOpen: (_, _params: PartyOrder) => {},
    /** Tell `gateway` to close the connection it holds under `epoch`. The registry performs it. */
    sendClose: (_, _params: PartyOrder) => {},
    assignOwner: assign(({ event }) =>
      event.type === 'ASSIGN' ? { owner: event.to, epoch: event.epoch, target: null, targetEpoch: 0 } : {},
    ),
    setTarget: assign(({ event }) =>
      event.type === 'MOVE' ? { target: event.to, targetEpoch: event.epoch } : {},
    ),
    /** The target becomes the owner, under the epoch drawn when the move began. */
    handOver: assign(({ context }) => ({
      owner: context.target,
      epoch: context.targetEpoch,
      target: null,
      targetEpoch: 0,
    })),
    clearOwner: assign(unowned),
    clearTarget: assign({ target: null, targetEpoch: 0 }),
  },
}).createMachine({
  id: 'partyAssignment',
  initial: 'UNASSIGNED',
  context: { owner: null, epoch: 0, target: null, targetEpoch: 0 },
  states: {
    UNASSIGNED: {
      on: {
        ASSIGN: {
          target: 'OFFERED',
          actions: ['assignOwner', openOwner],
        },
      },
    },
    OFFERED: {
      on: {
        OPENED: { guard: 'fromOwner', target: 'OPEN' },
        FAILED: { guard: 'fromOwner', target: 'UNASSIGNED', actions: 'clearOwner' },
        CLOSED: { guard: 'fromOwner', target: 'UNASSIGNED', actions: 'clearOwner' },
        OWNER_LOST: { guard: 'ownerLost', target: 'UNASSIGNED', actions: 'clearOwner' },
        MOVE: { target: 'MOVING', actions: ['setTarget', closeOwner] },
        RELEASE: { target: 'CLOSING', actions: closeOwner },
      },
    },
    OPEN: {
      on: {
        OPENED: { guard: 'fromOwner', target: 'OPEN' },
        FAILED: { guard: 'fromOwner', target: 'UNASSIGNED', actions: 'clearOwner' },
        CLOSED: { guard: 'fromOwner', target: 'UNASSIGNED', actions: 'clearOwner' },
        OWNER_LOST: { guard: 'ownerLost', target: 'UNASSIGNED', actions: 'clearOwner' },
        MOVE: { target: 'MOVING', actions: ['setTarget', closeOwner] },
        RELEASE: { target: 'CLOSING', actions: closeOwner },
      },
    },
    MOVING: {
      on: {
        // The owner opened before it saw the CLOSE: the CLOSE is on its way; nothing changes.
        OPENED: { guard: 'fromOwner', target: 'MOVING' },
        FAILED: { guard: 'fromOwner', target: 'OFFERED', actions: ['handOver', openOwner] },
        CLOSED: { guard: 'fromOwner', target: 'OFFERED', actions: ['handOver', openOwner] },
        OWNER_LOST: { guard: 'ownerLost', target: 'OFFERED', actions: ['handOver', openOwner] },
        TARGET_LOST: { guard: 'targetLost', target: 'CLOSING', actions: 'clearTarget' },
        RELEASE: { target: 'CLOSING', actions: 'clearTarget' },
      },
    },
    CLOSING: {
      on: {
        OPENED: { guard: 'fromOwner', target: 'CLOSING' },
        FAILED: { guard: 'fromOwner', target: 'UNASSIGNED', actions: 'clearOwner' },
        CLOSED: { guard: 'fromOwner', target: 'UNASSIGNED', actions: 'clearOwner' },
        OWNER_LOST: { guard: 'ownerLost', target: 'UNASSIGNED', actions: 'clearOwner' },
      },
    },
  },
});

export type PartyAssignmentMachine = typeof partyAssignmentMachine;
