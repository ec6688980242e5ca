// A member's Raft role as a statechart: FOLLOWER, CANDIDATE, LEADER. The consensus module steps it
// purely (xstate `transition()`) whenever the election changes the role, so the inspector and the
// logs see the same machine the tests cover. Roles change rarely, so the cost of a pure transition
// is irrelevant here.

import { setup } from 'xstate';

export const ROLES = ['FOLLOWER', 'CANDIDATE', 'LEADER'] as const;
export type Role = (typeof ROLES)[number];

export type RoleEvent =
  /** The member raised its term and asked for votes. */
  | { type: 'BALLOT_STARTED' }
  /** A quorum voted for the member. */
  | { type: 'ELECTED' }
  /** The member heard from a leader, lost a ballot, saw a newer term or lost its quorum. */
  | { type: 'STEPPED_DOWN' };

export const roleMachine = setup({
  types: {} as { events: RoleEvent },
}).createMachine({
  id: 'role',
  initial: 'FOLLOWER',
  states: {
    FOLLOWER: { on: { BALLOT_STARTED: 'CANDIDATE' } },
    CANDIDATE: {
      on: {
        ELECTED: 'LEADER',
        STEPPED_DOWN: 'FOLLOWER',
        BALLOT_STARTED: { target: 'CANDIDATE', reenter: true },
      },
    },
    LEADER: { on: { STEPPED_DOWN: 'FOLLOWER' } },
  },
});

export type RoleMachine = typeof roleMachine;
