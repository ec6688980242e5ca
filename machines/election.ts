// The election, as Aeron Cluster runs it, as an XState statechart. The machine only says which phase
// an election is in and which phase may follow; the consensus module (actors/consensus) measures the
// conditions (answers counted, votes counted, positions replicated) and sends the events, and runs
// the named entry actions itself. The machine is stepped purely with xstate's `transition()`: its
// action implementations are empty, the module interprets the returned action names.
//
// Phases (Aeron's names and meanings):
// - INIT: the module starts an election (startup, lost leader, stepped down).
// - CANVASS: a pre-vote. Members in an election exchange (log term, append position, leadership
//   term) without raising any term. A member nominates itself when every member answered and none
//   has a better log, or after the canvass deadline when a quorum answered and none is better.
// - NOMINATE: wait a delay staggered by rank among members with an equally good log (rotated by term) plus
//   a seeded random part, wider after a lost ballot, so that two equal members rarely ballot at once.
// - CANDIDATE_BALLOT: raise the term, vote for self (durably), request votes; win with a quorum.
// - FOLLOWER_BALLOT: this member voted for a candidate and waits to hear from a leader.
// - LEADER_LOG_REPLICATION: the new leader brings a quorum up to its append position.
// - LEADER_REPLAY: the leader replays its committed log into the services.
// - LEADER_INIT: the leader appends the NEW_LEADERSHIP_TERM entry (records the term).
// - LEADER_READY: the leader announces the term and waits until the term's first entry commits.
// - FOLLOWER_LOG_REPLICATION: a follower's log is reconciled with the leader's (tails truncated).
// - FOLLOWER_REPLAY: the follower replays its committed log into the services.
// - FOLLOWER_CATCHUP_INIT / _AWAIT / FOLLOWER_CATCHUP: a follower behind the leader's commit
//   position asks for, waits for and receives the missing log (or a snapshot).
// - FOLLOWER_LOG_INIT / FOLLOWER_LOG_AWAIT: the follower joins the live log.
// - FOLLOWER_READY: the follower tells the leader it is live.
// - CLOSED: the election is over (or the member is shutting down).

import { setup } from 'xstate';

/** Every election state, in Aeron's order. */
export const ELECTION_STATES = [
  'INIT',
  'CANVASS',
  'NOMINATE',
  'CANDIDATE_BALLOT',
  'FOLLOWER_BALLOT',
  'LEADER_LOG_REPLICATION',
  'LEADER_REPLAY',
  'LEADER_INIT',
  'LEADER_READY',
  'FOLLOWER_LOG_REPLICATION',
  'FOLLOWER_REPLAY',
  'FOLLOWER_CATCHUP_INIT',
  'FOLLOWER_CATCHUP_AWAIT',
  'FOLLOWER_CATCHUP',
  'FOLLOWER_LOG_INIT',
  'FOLLOWER_LOG_AWAIT',
  'FOLLOWER_READY',
  'CLOSED',
] as const;

export type ElectionState = (typeof ELECTION_STATES)[number];

/** What a canvass has learned so far (counted by the consensus module). */
export interface CanvassTally {
  /** Every member (self included) has answered in this canvass. */
  readonly allAnswered: boolean;
  /** A quorum (self included) has answered. */
  readonly quorumAnswered: boolean;
  /** Some answering member has a better log (higher log term, then higher append position). */
  readonly betterLogSeen: boolean;
  /** The canvass deadline (startup or election canvass timeout) has passed. */
  readonly deadlinePassed: boolean;
}

export type ElectionEvent =
  /** Begin an election with a canvass. */
  | { type: 'START' }
  /** Begin an election as the target of a leadership transfer: ballot at once, no canvass. */
  | { type: 'START_TRANSFER' }
  /** The canvass tally changed (or time passed); guarded by `canNominate`. */
  | ({ type: 'CANVASS_UPDATE' } & CanvassTally)
  /** The election status interval passed: re-send this member's canvass position. */
  | { type: 'STATUS_INTERVAL' }
  /** The canvass ran too long without a decision: start it again with fresh answers. */
  | { type: 'CANVASS_EXPIRED' }
  /** The random nomination delay is over. */
  | { type: 'NOMINATION_DUE' }
  /** This member durably voted for another candidate. */
  | { type: 'VOTE_GRANTED_TO_OTHER' }
  /** A leader of the current (or a newer) term was heard from. */
  | { type: 'LEADER_DISCOVERED' }
  /** A quorum voted for this member (its term and self-vote are durable). */
  | { type: 'BALLOT_WON' }
  /** The ballot did not end within the election timeout. */
  | { type: 'BALLOT_TIMEOUT' }
  /** A peer answered with a newer term: give up this ballot. */
  | { type: 'HIGHER_TERM_SEEN' }
  /** Leader: a quorum holds the leader's log up to its append position at election. */
  | { type: 'QUORUM_REPLICATED' }
  /** The committed log was replayed into the services; a follower says if it is behind the leader. */
  | { type: 'REPLAY_DONE'; behind: boolean }
  /** Leader: the NEW_LEADERSHIP_TERM entry was appended. */
  | { type: 'TERM_APPENDED' }
  /** Leader: the term's first entry is committed. */
  | { type: 'TERM_COMMITTED' }
  /** Leader: lost its quorum or saw a newer term. */
  | { type: 'STEP_DOWN' }
  /** Follower: an append from the leader matched this member's log. */
  | { type: 'LOG_MATCHED' }
  /** Follower: the catch-up request went out. */
  | { type: 'CATCHUP_REQUESTED' }
  /** Follower: catch-up data (entries or a snapshot) arrived. */
  | { type: 'CATCHUP_DATA' }
  /** Follower: caught up with the commit position the leader had when catch-up began. */
  | { type: 'CAUGHT_UP' }
  /** Follower: ready to join the live log. */
  | { type: 'LOG_INIT_DONE' }
  /** Follower: holds everything the leader had committed when it last wrote. */
  | { type: 'LOG_JOINED' }
  /** Follower: told the leader it is live. */
  | { type: 'READY_SENT' }
  /** Follower: the leader went silent for the heartbeat timeout. */
  | { type: 'LEADER_LOST' }
  /** The member is shutting down. */
  | { type: 'CLOSE' };

/** The entry actions the consensus module runs, by name. */
export type ElectionAction =
  | 'beginCanvass'
  | 'broadcastCanvass'
  | 'scheduleNomination'
  | 'startBallot'
  | 'awaitLeader'
  | 'becomeLeader'
  | 'replayLog'
  | 'appendNewLeadershipTerm'
  | 'announceLeadership'
  | 'followLeader'
  | 'requestCatchup'
  | 'sendReady'
  | 'closeElection';

const noop = (): void => {};

export const electionMachine = setup({
  types: {} as { events: ElectionEvent },
  guards: {
    /** Nominate when every member answered and none is better, or, after the deadline, a quorum did. */
    canNominate: ({ event }) =>
      event.type === 'CANVASS_UPDATE' &&
      !event.betterLogSeen &&
      (event.allAnswered || (event.deadlinePassed && event.quorumAnswered)),
    isBehind: ({ event }) => event.type === 'REPLAY_DONE' && event.behind,
  },
  actions: {
    beginCanvass: noop,
    broadcastCanvass: noop,
    scheduleNomination: noop,
    startBallot: noop,
    awaitLeader: noop,
    becomeLeader: noop,
    replayLog: noop,
    appendNewLeadershipTerm: noop,
    announceLeadership: noop,
    followLeader: noop,
    requestCatchup: noop,
    sendReady: noop,
    closeElection: noop,
  },
}).createMachine({
  id: 'election',
  initial: 'INIT',
  on: { CLOSE: '.CLOSED' },
  states: {
    INIT: {
      on: { START: 'CANVASS', START_TRANSFER: 'CANDIDATE_BALLOT' },
    },
    CANVASS: {
      entry: ['beginCanvass', 'broadcastCanvass'],
      on: {
        CANVASS_UPDATE: { guard: 'canNominate', target: 'NOMINATE' },
        STATUS_INTERVAL: { actions: 'broadcastCanvass' },
        CANVASS_EXPIRED: { target: 'CANVASS', reenter: true },
        LEADER_DISCOVERED: 'FOLLOWER_LOG_REPLICATION',
        VOTE_GRANTED_TO_OTHER: 'FOLLOWER_BALLOT',
      },
    },
    NOMINATE: {
      entry: 'scheduleNomination',
      on: {
        NOMINATION_DUE: 'CANDIDATE_BALLOT',
        LEADER_DISCOVERED: 'FOLLOWER_LOG_REPLICATION',
        VOTE_GRANTED_TO_OTHER: 'FOLLOWER_BALLOT',
      },
    },
    CANDIDATE_BALLOT: {
      entry: 'startBallot',
      on: {
        BALLOT_WON: 'LEADER_LOG_REPLICATION',
        BALLOT_TIMEOUT: 'CANVASS',
        HIGHER_TERM_SEEN: 'CANVASS',
        LEADER_DISCOVERED: 'FOLLOWER_LOG_REPLICATION',
        VOTE_GRANTED_TO_OTHER: 'FOLLOWER_BALLOT',
      },
    },
    FOLLOWER_BALLOT: {
      entry: 'awaitLeader',
      on: {
        LEADER_DISCOVERED: 'FOLLOWER_LOG_REPLICATION',
        BALLOT_TIMEOUT: 'CANVASS',
        VOTE_GRANTED_TO_OTHER: { target: 'FOLLOWER_BALLOT', reenter: true },
      },
    },
    LEADER_LOG_REPLICATION: {
      entry: 'becomeLeader',
      on: { QUORUM_REPLICATED: 'LEADER_REPLAY', STEP_DOWN: 'CANVASS' },
    },
    LEADER_REPLAY: {
      entry: 'replayLog',
      on: { REPLAY_DONE: 'LEADER_INIT', STEP_DOWN: 'CANVASS' },
    },
    LEADER_INIT: {
      entry: 'appendNewLeadershipTerm',
      on: { TERM_APPENDED: 'LEADER_READY', STEP_DOWN: 'CANVASS' },
    },
    LEADER_READY: {
      entry: 'announceLeadership',
      on: { TERM_COMMITTED: 'CLOSED', STEP_DOWN: 'CANVASS' },
    },
    FOLLOWER_LOG_REPLICATION: {
      entry: 'followLeader',
      on: { LOG_MATCHED: 'FOLLOWER_REPLAY', LEADER_LOST: 'CANVASS' },
    },
    FOLLOWER_REPLAY: {
      entry: 'replayLog',
      on: {
        REPLAY_DONE: [
          { guard: 'isBehind', target: 'FOLLOWER_CATCHUP_INIT' },
          { target: 'FOLLOWER_LOG_INIT' },
        ],
        LEADER_LOST: 'CANVASS',
      },
    },
    FOLLOWER_CATCHUP_INIT: {
      entry: 'requestCatchup',
      on: { CATCHUP_REQUESTED: 'FOLLOWER_CATCHUP_AWAIT', LEADER_LOST: 'CANVASS' },
    },
    FOLLOWER_CATCHUP_AWAIT: {
      on: { CATCHUP_DATA: 'FOLLOWER_CATCHUP', LEADER_LOST: 'CANVASS' },
    },
    FOLLOWER_CATCHUP: {
      on: { CAUGHT_UP: 'FOLLOWER_LOG_INIT', LEADER_LOST: 'CANVASS' },
    },
    FOLLOWER_LOG_INIT: {
      on: { LOG_INIT_DONE: 'FOLLOWER_LOG_AWAIT', LEADER_LOST: 'CANVASS' },
    },
    FOLLOWER_LOG_AWAIT: {
      on: { LOG_JOINED: 'FOLLOWER_READY', LEADER_LOST: 'CANVASS' },
    },
    FOLLOWER_READY: {
      entry: 'sendReady',
      on: { READY_SENT: 'CLOSED', LEADER_LOST: 'CANVASS' },
    },
    CLOSED: {
      type: 'final',
      entry: 'closeElection',
    },
  },
});

export type ElectionMachine = typeof electionMachine;
