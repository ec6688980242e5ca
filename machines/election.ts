// The election, as Aeron Cluster runs it, as an XState statechart that carries the behaviour: the
// tallies, votes, deadlines and positions live in its context; the consensus node sends it raw facts
// (time passed, a canvass position, a vote, the ballot is durable, an append flushed or matched, the
// services replayed) and named guards decide; named actions update the context and hand the node
// effect records (the action objects xstate's pure `transition()` returns, with their params) for what
// only the node can do — raise the term, send, append, apply. The machine stays pure: no clock, no
// randomness but the seeded generator in its context, no I/O. The role is derived from it (`roleOf`).
//
// Phases (Aeron's names and meanings), grouped under three parents:
// - INIT: the node starts an election (startup, lost leader, stepped down, a vote for another member).
// - BALLOT
//   - CANVASS: a pre-vote. Members exchange (log term, append position) without raising any term. A
//     member nominates itself when every member answered and none has a better log, or after the
//     canvass deadline when a quorum answered and none is better.
//   - NOMINATE: wait a delay staggered by rank among members with an equally good log (rotated by
//     term) plus a seeded random part, wider after a lost ballot, so two equal members rarely ballot
//     at once.
//   - CANDIDATE_BALLOT: raise the term, vote for self (durably), request votes; win with a quorum.
//   - FOLLOWER_BALLOT: this member voted for a candidate and waits to hear from a leader.
// - LEADER_PATH (STEP_DOWN leaves it, from any phase, for CANVASS)
//   - LEADER_LOG_REPLICATION: the new leader brings a quorum up to its append position.
//   - LEADER_REPLAY: the services replay the committed log; waits until they say they have.
//   - LEADER_INIT: the leader appends the NEW_LEADERSHIP_TERM entry.
//   - LEADER_READY: the leader announces the term and waits until the term's first entry commits.
// - FOLLOWER_PATH (LEADER_LOST leaves it, from any phase, for CANVASS)
//   - FOLLOWER_LOG_REPLICATION: the follower's log is reconciled with the leader's.
//   - FOLLOWER_REPLAY: the services replay the committed log; waits until they say they have.
//   - FOLLOWER_CATCHUP_INIT / _AWAIT / FOLLOWER_CATCHUP: a follower behind the leader's commit
//     position asks for, waits for and receives the missing log (or a snapshot).
//   - FOLLOWER_LOG_INIT / FOLLOWER_LOG_AWAIT: the follower joins the live log.
//   - FOLLOWER_READY: the follower tells the leader it is live.
// - CLOSED: the election is over (or the member is shutting down).
//
// Every event carries the time the node observed it (`now`); `recordTime` stores it first, so the
// deadlines the entry actions compute and the time guards use are the node's clock.

import { and, assign, type SnapshotFrom, setup } from 'xstate';
import {
  better,
  canvassDeadline,
  type ElectionContext,
  type ElectionInput,
  nominationDelay,
  type Role,
} from './election-context.ts';
import { nextUint32 } from './random.ts';

export * from './election-context.ts';

/** Every election state (the leaves), in Aeron's order. */
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

/** Every state node of the chart by its path: the leaves above under their parents. */
export const ELECTION_STATE_PATHS = [
  'INIT',
  'BALLOT',
  'BALLOT.CANVASS',
  'BALLOT.NOMINATE',
  'BALLOT.CANDIDATE_BALLOT',
  'BALLOT.FOLLOWER_BALLOT',
  'LEADER_PATH',
  'LEADER_PATH.LEADER_LOG_REPLICATION',
  'LEADER_PATH.LEADER_REPLAY',
  'LEADER_PATH.LEADER_INIT',
  'LEADER_PATH.LEADER_READY',
  'FOLLOWER_PATH',
  'FOLLOWER_PATH.FOLLOWER_LOG_REPLICATION',
  'FOLLOWER_PATH.FOLLOWER_REPLAY',
  'FOLLOWER_PATH.FOLLOWER_CATCHUP_INIT',
  'FOLLOWER_PATH.FOLLOWER_CATCHUP_AWAIT',
  'FOLLOWER_PATH.FOLLOWER_CATCHUP',
  'FOLLOWER_PATH.FOLLOWER_LOG_INIT',
  'FOLLOWER_PATH.FOLLOWER_LOG_AWAIT',
  'FOLLOWER_PATH.FOLLOWER_READY',
  'CLOSED',
] as const;

type Stamped<E> = E & { readonly now: number };

export type ElectionEvent = Stamped<
  /** Begin with a canvass. */
  | { type: 'START' }
  /** Begin as the target of a leadership transfer: ballot at once, no canvass. */
  | { type: 'START_TRANSFER' }
  /** Time passed. */
  | { type: 'TICK' }
  /** A member answered this member's canvass `round` with its position. */
  | { type: 'CANVASS_POSITION'; from: number; logTerm: number; logIndex: number; round: number }
  /** A granted vote of the candidate's current term. */
  | { type: 'VOTE'; from: number }
  /** The candidate's new term and self-vote are durable. */
  | { type: 'BALLOT_DURABLE' }
  /** This member durably voted for another candidate. */
  | { type: 'VOTE_GRANTED_TO_OTHER' }
  /** A leader of the current term was heard from. */
  | { type: 'LEADER_DISCOVERED' }
  /** A peer answered with a newer term. */
  | { type: 'HIGHER_TERM_SEEN' }
  /** Leader: an append was flushed; a quorum now holds `quorumIndex`, the commit is `commitIndex`. */
  | { type: 'APPEND_FLUSHED'; quorumIndex: number; commitIndex: number }
  /** Leader: its NEW_LEADERSHIP_TERM entry was appended at `index`. */
  | { type: 'TERM_APPENDED'; index: number }
  /** Follower: an append (or snapshot) of the leader matched the log up to `verified`. */
  | { type: 'APPEND_MATCHED'; verified: number; commitIndex: number; leaderCommit: number; data: boolean }
  /** Follower: the leader's snapshot arrived and is being installed (commit moved to it). */
  | { type: 'SNAPSHOT_ARRIVED'; commitIndex: number }
  /** The services have replayed every entry up to `index`. */
  | { type: 'SERVICES_REPLAYED'; index: number }
  /** Leader: lost its quorum or saw a newer term; the log now ends at (logTerm, logIndex). */
  | { type: 'STEP_DOWN'; logTerm: number; logIndex: number }
  /** Follower: the leader went silent or its connection closed; the log ends at (logTerm, logIndex). */
  | { type: 'LEADER_LOST'; logTerm: number; logIndex: number }
  /** The member is shutting down. */
  | { type: 'CLOSE' }
>;

/**
 * The effect records the machine's actions hand the node (the action's type, and its params):
 * beginCanvass (forget any leader and followers), broadcastCanvass (send this member's position),
 * startBallot { transfer } (raise the term, vote for self durably, request votes), becomeLeader
 * (track followers), replay (apply what is committed), appendTermEntry (append NEW_LEADERSHIP_TERM),
 * announceLeadership (heartbeat every follower now), requestCatchup and sendReady (answer the leader).
 */
export type ElectionEffect =
  | 'beginCanvass'
  | 'broadcastCanvass'
  | 'startBallot'
  | 'becomeLeader'
  | 'replay'
  | 'appendTermEntry'
  | 'announceLeadership'
  | 'requestCatchup'
  | 'sendReady';

const effect = (): void => {};

export const electionMachine = setup({
  types: {} as { context: ElectionContext; events: ElectionEvent; input: ElectionInput },
  guards: {
    statusIntervalDue: ({ context: c }) => c.now - c.lastStatusAt >= c.timeouts.electionStatusIntervalMs,
    canvassExpired: ({ context: c }) => c.now >= canvassDeadline(c) + 2 * c.timeouts.electionTimeoutMs,
    /** Nominate when every member answered and none is better, or, after the deadline, a quorum did. */
    canNominate: ({ context: c }) =>
      !c.canvass.some((a) => better(a, c.logTerm, c.logIndex)) &&
      (c.canvass.length === c.members.length ||
        (c.now >= canvassDeadline(c) && c.canvass.length >= c.quorum)),
    nominationDue: ({ context: c }) => c.now >= c.nominationAt,
    /** The answer names the canvass round this member is in (not an earlier one). */
    answersThisCanvass: ({ context, event }) =>
      event.type === 'CANVASS_POSITION' && event.round === context.canvassRound,
    /** A quorum voted in this ballot, and the candidate's own term and vote are durable. */
    ballotWon: ({ context: c }) => c.ballotDurable && c.votes.length >= c.quorum,
    ballotTimedOut: ({ context: c }) => c.now >= c.ballotDeadline,
    quorumHasElectionLog: ({ context: c }) => c.quorumIndex >= c.electionLastIndex,
    servicesReplayed: ({ context: c }) => c.servicesReplayed >= c.replayTarget,
    isBehind: ({ context: c }) => c.verified < c.leaderCommit,
    termCommitted: ({ context: c }) => c.termEntryIndex > 0 && c.commitIndex >= c.termEntryIndex,
    catchupDataArrived: ({ context: c }) => c.catchupData,
    caughtUp: ({ context: c }) => c.verified >= c.catchupTarget,
    joinedLiveLog: ({ context: c }) => c.verified >= c.leaderCommit,
  },
  actions: {
    recordTime: assign({ now: ({ context, event }) => Math.max(context.now, event.now) }),
    recordPosition: assign(({ event }) =>
      event.type === 'STEP_DOWN' || event.type === 'LEADER_LOST'
        ? { logTerm: event.logTerm, logIndex: event.logIndex }
        : {},
    ),
    recordCanvassPosition: assign({
      canvass: ({ context, event }) =>
        event.type !== 'CANVASS_POSITION'
          ? context.canvass
          : [
              ...context.canvass.filter((a) => a.member !== event.from),
              { member: event.from, logTerm: event.logTerm, logIndex: event.logIndex },
            ],
    }),
    countVote: assign({
      votes: ({ context, event }) =>
        event.type === 'VOTE' && !context.votes.includes(event.from)
          ? [...context.votes, event.from]
          : context.votes,
    }),
    markBallotDurable: assign({ ballotDurable: true }),
    recordFlush: assign(({ context, event }) =>
      event.type === 'APPEND_FLUSHED'
        ? {
            quorumIndex: Math.max(context.quorumIndex, event.quorumIndex),
            commitIndex: Math.max(context.commitIndex, event.commitIndex),
          }
        : {},
    ),
    recordTermEntry: assign({
      termEntryIndex: ({ context, event }) =>
        event.type === 'TERM_APPENDED' ? event.index : context.termEntryIndex,
    }),
    recordMatch: assign(({ context, event }) =>
      event.type === 'APPEND_MATCHED'
        ? {
            verified: Math.max(context.verified, event.verified),
            commitIndex: Math.max(context.commitIndex, event.commitIndex),
            leaderCommit: Math.max(context.leaderCommit, event.leaderCommit),
            catchupData: context.catchupData || event.data,
          }
        : event.type === 'SNAPSHOT_ARRIVED'
          ? { commitIndex: Math.max(context.commitIndex, event.commitIndex), catchupData: true }
          : {},
    ),
    recordReplayed: assign({
      servicesReplayed: ({ context, event }) =>
        event.type === 'SERVICES_REPLAYED'
          ? Math.max(context.servicesReplayed, event.index)
          : context.servicesReplayed,
    }),
    // Entry bookkeeping.
    resetCanvass: assign(({ context: c }) => ({
      leading: false,
      canvass: [{ member: c.memberId, logTerm: c.logTerm, logIndex: c.logIndex }],
      canvassStartedAt: c.now,
      canvassRound: c.canvassRound + 1,
    })),
    noteStatusSent: assign(({ context: c }) => ({ lastStatusAt: c.now })),
    drawNomination: assign(({ context: c }) => {
      const [draw, rng] = nextUint32(c.rng);
      return { rng, nominationAt: c.now + nominationDelay(c, draw) };
    }),
    openBallot: assign(({ context: c }) => ({
      leading: false,
      votes: [c.memberId],
      ballotDurable: false,
      ballotDeadline: c.now + c.timeouts.electionTimeoutMs,
    })),
    countLostBallot: assign(({ context: c }) => ({ lostBallots: c.lostBallots + 1 })),
    awaitLeader: assign(({ context: c }) => ({
      leading: false,
      ballotDeadline: c.now + c.timeouts.electionTimeoutMs,
    })),
    takeLead: assign(({ context: c }) => ({
      leading: true,
      electionLastIndex: c.logIndex,
      termEntryIndex: 0,
    })),
    follow: assign({ leading: false }),
    fixReplayTarget: assign(({ context: c }) => ({ replayTarget: c.commitIndex })),
    fixCatchupTarget: assign(({ context: c }) => ({ catchupTarget: c.leaderCommit, catchupData: false })),
    closeElection: assign({ startup: false, lostBallots: 0 }),
    leave: assign({ leading: false }),
    // Effects the node carries out.
    beginCanvass: effect,
    broadcastCanvass: effect,
    startBallot: (_: unknown, _params: { transfer: boolean }) => {},
    becomeLeader: effect,
    replay: effect,
    appendTermEntry: effect,
    announceLeadership: effect,
    requestCatchup: effect,
    sendReady: effect,
  },
}).createMachine({
  id: 'election',
  initial: 'INIT',
  context: ({ input }) => ({
    ...input,
    quorum: Math.floor(input.members.length / 2) + 1,
    canvass: [],
    canvassStartedAt: input.now,
    lastStatusAt: Number.NEGATIVE_INFINITY,
    nominationAt: 0,
    votes: [],
    ballotDurable: false,
    ballotDeadline: 0,
    leading: false,
    electionLastIndex: 0,
    quorumIndex: 0,
    termEntryIndex: 0,
    commitIndex: 0,
    servicesReplayed: 0,
    replayTarget: 0,
    verified: 0,
    leaderCommit: 0,
    catchupTarget: 0,
    catchupData: false,
  }),
  // Facts are recorded wherever the election is; the phases decide on them with eventless, guarded
  // transitions.
  on: {
    TICK: { actions: 'recordTime' },
    CANVASS_POSITION: { actions: 'recordTime' },
    VOTE: { actions: 'recordTime' },
    BALLOT_DURABLE: { actions: 'recordTime' },
    APPEND_FLUSHED: { actions: ['recordTime', 'recordFlush'] },
    TERM_APPENDED: { actions: ['recordTime', 'recordTermEntry'] },
    APPEND_MATCHED: { actions: ['recordTime', 'recordMatch'] },
    SNAPSHOT_ARRIVED: { actions: ['recordTime', 'recordMatch'] },
    SERVICES_REPLAYED: { actions: ['recordTime', 'recordReplayed'] },
    CLOSE: { target: '.CLOSED', actions: ['recordTime', 'leave'] },
  },
  states: {
    INIT: {
      on: {
        START: { target: 'BALLOT.CANVASS', actions: 'recordTime' },
        START_TRANSFER: { target: 'BALLOT.CANDIDATE_BALLOT', actions: 'recordTime' },
      },
    },
    BALLOT: {
      initial: 'CANVASS',
      on: {
        LEADER_DISCOVERED: { target: 'FOLLOWER_PATH', actions: 'recordTime' },
        VOTE_GRANTED_TO_OTHER: { target: '.FOLLOWER_BALLOT', reenter: true, actions: 'recordTime' },
      },
      states: {
        CANVASS: {
          entry: ['resetCanvass', 'beginCanvass', 'noteStatusSent', 'broadcastCanvass'],
          on: {
            CANVASS_POSITION: {
              guard: 'answersThisCanvass',
              actions: ['recordTime', 'recordCanvassPosition'],
            },
          },
          always: [
            { guard: 'statusIntervalDue', actions: ['noteStatusSent', 'broadcastCanvass'] },
            { guard: 'canvassExpired', target: 'CANVASS', reenter: true },
            { guard: 'canNominate', target: 'NOMINATE' },
          ],
        },
        NOMINATE: {
          entry: 'drawNomination',
          always: { guard: 'nominationDue', target: 'CANDIDATE_BALLOT' },
        },
        CANDIDATE_BALLOT: {
          entry: [
            'openBallot',
            { type: 'startBallot', params: ({ context }) => ({ transfer: context.transfer }) },
          ],
          on: {
            VOTE: { actions: ['recordTime', 'countVote'] },
            BALLOT_DURABLE: { actions: ['recordTime', 'markBallotDurable'] },
            HIGHER_TERM_SEEN: { target: 'CANVASS', actions: 'recordTime' },
          },
          always: [
            { guard: 'ballotWon', target: '#election.LEADER_PATH' },
            { guard: 'ballotTimedOut', target: 'CANVASS', actions: 'countLostBallot' },
          ],
        },
        FOLLOWER_BALLOT: {
          entry: 'awaitLeader',
          always: { guard: 'ballotTimedOut', target: 'CANVASS' },
        },
      },
    },
    LEADER_PATH: {
      initial: 'LEADER_LOG_REPLICATION',
      on: { STEP_DOWN: { target: '#election.BALLOT.CANVASS', actions: ['recordTime', 'recordPosition'] } },
      states: {
        LEADER_LOG_REPLICATION: {
          entry: ['takeLead', 'becomeLeader'],
          always: { guard: 'quorumHasElectionLog', target: 'LEADER_REPLAY' },
        },
        LEADER_REPLAY: {
          entry: ['fixReplayTarget', 'replay'],
          always: { guard: 'servicesReplayed', target: 'LEADER_INIT' },
        },
        LEADER_INIT: {
          entry: 'appendTermEntry',
          on: { TERM_APPENDED: { target: 'LEADER_READY', actions: ['recordTime', 'recordTermEntry'] } },
        },
        LEADER_READY: {
          entry: 'announceLeadership',
          always: { guard: 'termCommitted', target: '#election.CLOSED' },
        },
      },
    },
    FOLLOWER_PATH: {
      initial: 'FOLLOWER_LOG_REPLICATION',
      entry: 'follow',
      on: { LEADER_LOST: { target: '#election.BALLOT.CANVASS', actions: ['recordTime', 'recordPosition'] } },
      states: {
        FOLLOWER_LOG_REPLICATION: {
          on: { APPEND_MATCHED: { target: 'FOLLOWER_REPLAY', actions: ['recordTime', 'recordMatch'] } },
        },
        FOLLOWER_REPLAY: {
          entry: ['fixReplayTarget', 'replay'],
          always: [
            { guard: and(['servicesReplayed', 'isBehind']), target: 'FOLLOWER_CATCHUP_INIT' },
            { guard: 'servicesReplayed', target: 'FOLLOWER_LOG_INIT' },
          ],
        },
        FOLLOWER_CATCHUP_INIT: {
          entry: ['fixCatchupTarget', 'requestCatchup'],
          always: 'FOLLOWER_CATCHUP_AWAIT',
        },
        FOLLOWER_CATCHUP_AWAIT: {
          always: { guard: 'catchupDataArrived', target: 'FOLLOWER_CATCHUP' },
        },
        FOLLOWER_CATCHUP: {
          always: { guard: 'caughtUp', target: 'FOLLOWER_LOG_INIT' },
        },
        FOLLOWER_LOG_INIT: {
          always: 'FOLLOWER_LOG_AWAIT',
        },
        FOLLOWER_LOG_AWAIT: {
          always: { guard: 'joinedLiveLog', target: 'FOLLOWER_READY' },
        },
        FOLLOWER_READY: {
          entry: 'sendReady',
          always: '#election.CLOSED',
        },
      },
    },
    CLOSED: {
      type: 'final',
      entry: 'closeElection',
    },
  },
});

export type ElectionMachine = typeof electionMachine;
export type ElectionSnapshot = SnapshotFrom<ElectionMachine>;

/** The phase (leaf state) an election is in. */
export const electionStateOf = (snapshot: ElectionSnapshot): ElectionState => {
  let value: unknown = snapshot.value;
  while (typeof value === 'object' && value !== null) value = Object.values(value)[0];
  return value as ElectionState;
};

/** The role the election gives this member: one source of truth for it. */
export const roleOf = (snapshot: ElectionSnapshot): Role => {
  if (snapshot.matches({ BALLOT: 'CANDIDATE_BALLOT' })) return 'CANDIDATE';
  return snapshot.context.leading ? 'LEADER' : 'FOLLOWER';
};

/**
 * The earliest time a time guard of the current phase can become true (Infinity when none can): the
 * node sends TICK only from then on. Per-tick TICKs into a running election would cost a pure
 * `transition()` each (130-230 µs measured, see docs/architecture.md), every tick of a long canvass.
 */
export const electionWakeAt = (snapshot: ElectionSnapshot): number => {
  const c = snapshot.context;
  switch (electionStateOf(snapshot)) {
    case 'CANVASS':
      return Math.min(
        c.lastStatusAt + c.timeouts.electionStatusIntervalMs,
        canvassDeadline(c),
        canvassDeadline(c) + 2 * c.timeouts.electionTimeoutMs,
      );
    case 'NOMINATE':
      return c.nominationAt;
    case 'CANDIDATE_BALLOT':
    case 'FOLLOWER_BALLOT':
      return c.ballotDeadline;
    default:
      return Number.POSITIVE_INFINITY;
  }
};
