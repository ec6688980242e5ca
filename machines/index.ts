// The registry of every statechart in machines/. Each machine is registered under the name of its
// file (`machines/NAME.ts`), with a one-line summary and a one-line note per state. The notes are
// what the generated diagrams (runtime/diagrams.ts → docs/diagrams/NAME.md) print next to each
// state, and spec/machines/index.spec.ts checks that every machine file is registered here and every
// state has its note — so a state added to a machine without a word about it fails the tests.
//
// random.ts (the seeded generator and the backoff) and the context modules client-connection-context.ts
// and election-context.ts are helpers of the machines, not machines, and are not registered. There is no
// role machine: a member's role is derived from the election state (election.ts: roleOf).

import type { AnyStateMachine } from 'xstate';
import { clientConnectionMachine } from './client-connection.ts';
import { clientSessionMachine } from './client-session.ts';
import { consensusModuleMachine } from './consensus-module.ts';
import { electionMachine } from './election.ts';
import { gatewayLifecycleMachine } from './gateway-lifecycle.ts';
import { partyAssignmentMachine } from './party-assignment.ts';
import { tradingPhaseMachine } from './trading-phase.ts';

/** Every statechart, by the name of its file in machines/ (without `.ts`). */
export const machines = {
  election: electionMachine,
  'consensus-module': consensusModuleMachine,
  'client-session': clientSessionMachine,
  'client-connection': clientConnectionMachine,
  'trading-phase': tradingPhaseMachine,
  'gateway-lifecycle': gatewayLifecycleMachine,
  'party-assignment': partyAssignmentMachine,
} as const;

export type MachineName = keyof typeof machines;

/** What a registered machine models, and one line per state (keyed by the state's path, `A.B`). */
export interface MachineInfo {
  readonly title: string;
  readonly summary: string;
  readonly states: Readonly<Record<string, string>>;
}

export const machineInfo: Readonly<Record<MachineName, MachineInfo>> = {
  election: {
    title: 'Election',
    summary:
      "The phases of one election, as Aeron Cluster runs it, with the behaviour: tallies, votes, deadlines and positions in its context; the consensus node sends it facts (time, canvass positions, votes, flushed and matched appends, the services' replay) and carries out the effects its actions return. The member's role is derived from it.",
    states: {
      INIT: 'An election is about to start (start-up, the leader was lost, this member stepped down or voted).',
      BALLOT:
        'Choosing a leader: a leader heard from, or a vote for another member, moves on from any phase.',
      'BALLOT.CANVASS': 'Pre-vote: exchange log term and append position without raising the term.',
      'BALLOT.NOMINATE': 'Wait a delay staggered by rank among equal logs plus a seeded random part.',
      'BALLOT.CANDIDATE_BALLOT': 'Raise the term, vote for self durably and ask for votes; a quorum wins.',
      'BALLOT.FOLLOWER_BALLOT': 'This member voted for another candidate and waits to hear from a leader.',
      LEADER_PATH: 'Elected: the member is leader; STEP_DOWN leaves from any phase.',
      'LEADER_PATH.LEADER_LOG_REPLICATION': 'New leader: bring a quorum up to its append position.',
      'LEADER_PATH.LEADER_REPLAY': 'New leader: wait until the services have replayed the committed log.',
      'LEADER_PATH.LEADER_INIT': 'New leader: append the NEW_LEADERSHIP_TERM entry.',
      'LEADER_PATH.LEADER_READY':
        "New leader: announce the term and wait for the term's first entry to commit.",
      FOLLOWER_PATH: 'Following a leader; LEADER_LOST leaves from any phase.',
      'FOLLOWER_PATH.FOLLOWER_LOG_REPLICATION':
        'Follower: wait until an append of the leader matches the log.',
      'FOLLOWER_PATH.FOLLOWER_REPLAY': 'Follower: wait until the services have replayed the committed log.',
      'FOLLOWER_PATH.FOLLOWER_CATCHUP_INIT':
        "Follower behind the leader's commit position: ask for the missing log.",
      'FOLLOWER_PATH.FOLLOWER_CATCHUP_AWAIT':
        'Follower: wait for the first catch-up entries (or a snapshot).',
      'FOLLOWER_PATH.FOLLOWER_CATCHUP': 'Follower: receive catch-up data until caught up.',
      'FOLLOWER_PATH.FOLLOWER_LOG_INIT': 'Follower: prepare to join the live log.',
      'FOLLOWER_PATH.FOLLOWER_LOG_AWAIT':
        'Follower: wait until it holds everything the leader had committed.',
      'FOLLOWER_PATH.FOLLOWER_READY': 'Follower: tell the leader it is live.',
      CLOSED: 'The election is over (or the member is shutting down).',
    },
  },
  'consensus-module': {
    title: 'Consensus module',
    summary: "The consensus module's own lifecycle (Aeron's ConsensusModule.State).",
    states: {
      INIT: 'Recovering the log and node state from disk.',
      ACTIVE: 'Serving: replicating and applying the log, accepting client input.',
      SUSPENDED: 'An operator paused client input; the module still replicates.',
      SNAPSHOT: 'The services and the module are writing a snapshot.',
      TERMINATING: 'Draining for a graceful shutdown.',
      CLOSED: 'Shut down.',
    },
  },
  'client-session': {
    title: 'Client session',
    summary:
      "One client session as a cluster member sees it (Aeron's ClusterSession states). Open and close are log entries, so every member's services see the same sessions; the leader drives the handshake, every member applies.",
    states: {
      INIT: 'Nothing yet: a connect request arrives, or the open is learnt from the log.',
      CONNECTING: 'The connect is checked: protocol version, leadership, session limit.',
      CONNECTED: 'The authenticator is consulted.',
      CHALLENGED: 'The client must answer an authentication challenge.',
      AUTHENTICATED: 'The leader appends SESSION_OPEN; its log index becomes the session id.',
      REJECTED: 'Authentication failed or took too long; the client was told why.',
      INVALID: 'The connect was refused (version, no leader, redirect, limit); the client was told.',
      OPEN: 'The session is live; it outlives its connection until it is closed or times out.',
      CLOSING: 'The leader appended SESSION_CLOSE and waits for it to commit.',
      CLOSED: 'The session is over (its close is committed, or the connection left before it opened).',
    },
  },
  'client-connection': {
    title: 'Client connection',
    summary:
      "The client library's connection to a cluster: dial, follow redirects to the leader, back off with seeded jitter, resume the session after a failover and resend what was not acknowledged.",
    states: {
      CONNECTING:
        'Dial the target member, send CONNECT (resuming the session with its token, if any), wait for OK; a refused resume opens a new session.',
      CONNECTED: 'A session is open: resend what was not acknowledged, keep the session alive.',
      AWAITING_NEW_LEADER:
        'The leader is gone or unknown (lost, silent, or NO_LEADER): wait out the backoff, then try the next member, skipping one that just failed as the leader.',
      BACKING_OFF: 'A member refused for now (session or connection limit): wait, then retry it.',
      CLOSING: "CLOSE was sent; wait for the cluster's CLOSED or the connect timeout.",
      CLOSED: 'Closed for good; the reason is reported to the application.',
    },
  },
  'trading-phase': {
    title: 'Trading phase',
    summary:
      "The trading phases of one instrument's order book. Its two delays are cluster timers, so a replay on any member takes the same path.",
    states: {
      PRE_OPEN: 'Orders are accepted and rest; nothing matches.',
      OPENING_AUCTION: 'Auction call period: orders rest; leaving it uncrosses at one price.',
      CONTINUOUS: 'Price-time priority matching.',
      HALTED: 'A circuit breaker tripped or an operator halted trading; only cancels are accepted.',
      CLOSED: 'Nothing trades; REOPEN starts the next session.',
    },
  },
  'gateway-lifecycle': {
    title: 'Gateway lifecycle',
    summary:
      'One API gateway as the gateway registry sees it, bound to the client session it registered from: only that session closing makes it lost, and its parties then move.',
    states: {
      REGISTERING: 'Its REGISTER is being applied; the planning of that entry admits it.',
      ACTIVE: 'In the fleet: the planner may give it parties.',
      DRAINING: 'Giving its parties up: the planner moves them away and gives it none.',
      LOST: 'Its session closed (disconnect or timeout); its parties move; the name may register again.',
    },
  },
  'party-assignment': {
    title: 'Party assignment',
    summary:
      "Which gateway holds one trading party's outbound connection, under a fencing epoch per assignment: a party moves only once its old owner confirmed the close or was declared lost, so never two open connections.",
    states: {
      UNASSIGNED: 'Nobody holds or is offered the party.',
      OFFERED: 'OPEN was sent to the owner under the current epoch; waiting for OPENED or FAILED.',
      OPEN: 'The owner reported the connection open under the current epoch.',
      MOVING: 'CLOSE was sent to the owner; the target gets OPEN once the owner confirmed or was lost.',
      CLOSING: 'CLOSE was sent to the owner and the party goes nowhere (released, or its target was lost).',
    },
  },
};

/** The registered machine called `name`, or an error listing the names that exist. */
export const getMachine = (name: string): AnyStateMachine => {
  if (!Object.hasOwn(machines, name)) {
    throw new RangeError(
      `unknown machine '${name}': use one of ${Object.keys(machines).join(', ')} (see machines/index.ts)`,
    );
  }
  return machines[name as MachineName];
};

/** The registered names, in registry order. */
export const machineNames = (): MachineName[] => Object.keys(machines) as MachineName[];
