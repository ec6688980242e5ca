// The election chart's context and the pure rules its guards and actions use (machines/election.ts):
// what a new election is given, what it keeps, the canvass comparison, the nomination rank and delay.

import type { RandomState } from './random.ts';

export const ROLES = ['FOLLOWER', 'CANDIDATE', 'LEADER'] as const;
/** A member's Raft role, derived from its election (`roleOf`). */
export type Role = (typeof ROLES)[number];

/** The timeouts an election uses, in milliseconds of the member's monotonic clock. */
export interface ElectionTimeouts {
  /** Ballot timeout; the canvass deadline after start-up is half of it. */
  readonly electionTimeoutMs: number;
  /** The canvass deadline of the first election after start-up. */
  readonly startupCanvassTimeoutMs: number;
  /** How often a member in a canvass re-sends its position. */
  readonly electionStatusIntervalMs: number;
}

/** What the node gives a new election. */
export interface ElectionInput {
  readonly memberId: number;
  /** Every voting member, sorted. */
  readonly members: readonly number[];
  readonly timeouts: ElectionTimeouts;
  readonly now: number;
  /** This member's log: last term and append position. */
  readonly logTerm: number;
  readonly logIndex: number;
  /** No election has closed since the member started. */
  readonly startup: boolean;
  /** Ballots this member lost to the ballot timeout since its last election closed. */
  readonly lostBallots: number;
  /** The nomination delay's generator (carried from election to election). */
  readonly rng: RandomState;
  /**
   * The last canvass round this member began (carried from election to election). Each canvass is a
   * new round; its broadcasts name it and only answers naming it are counted, so a position that waited
   * in a socket buffer across a partition cannot make the member nominate itself.
   */
  readonly canvassRound: number;
  /** A leadership transfer asked this member to ballot (its vote requests say so). */
  readonly transfer: boolean;
}

export interface CanvassAnswer {
  readonly member: number;
  readonly logTerm: number;
  readonly logIndex: number;
}

export interface ElectionContext extends ElectionInput {
  readonly quorum: number;
  readonly canvass: readonly CanvassAnswer[];
  readonly canvassStartedAt: number;
  readonly lastStatusAt: number;
  readonly nominationAt: number;
  readonly votes: readonly number[];
  /** The candidate's own new term and self-vote are durable. */
  readonly ballotDurable: boolean;
  readonly ballotDeadline: number;
  /** On the leader path, or the election closed as leader. */
  readonly leading: boolean;
  /** Leader: the append position it was elected with. */
  readonly electionLastIndex: number;
  /** Leader: the highest position a quorum has flushed. */
  readonly quorumIndex: number;
  /** Leader: the index of its NEW_LEADERSHIP_TERM entry (0: not appended). */
  readonly termEntryIndex: number;
  readonly commitIndex: number;
  /** The highest index the services said they replayed. */
  readonly servicesReplayed: number;
  /** What a replay phase waits for: the commit position when it began. */
  readonly replayTarget: number;
  /** Follower: the highest index known to match the leader's log. */
  readonly verified: number;
  /** Follower: the highest commit position the leader announced. */
  readonly leaderCommit: number;
  readonly catchupTarget: number;
  readonly catchupData: boolean;
}

/** Is `a` a better log than (logTerm, logIndex): a higher last term, then a longer log. */
export const better = (
  a: { logTerm: number; logIndex: number },
  logTerm: number,
  logIndex: number,
): boolean => a.logTerm > logTerm || (a.logTerm === logTerm && a.logIndex > logIndex);

/** When the current canvass may nominate on a quorum instead of every member. */
export const canvassDeadline = (c: ElectionContext): number =>
  c.canvassStartedAt +
  (c.startup ? c.timeouts.startupCanvassTimeoutMs : Math.floor(c.timeouts.electionTimeoutMs / 2));

/**
 * This member's place among the canvass answers with a log equal to its own (0: nominates first): the
 * members in order, rotated by the log's last term so no member is always first.
 */
export const nominationRank = (c: ElectionContext): number => {
  const n = c.members.length;
  const shift = c.logTerm % n;
  const order = (id: number) => (c.members.indexOf(id) - shift + n) % n;
  return c.canvass.filter(
    (a) => a.logTerm === c.logTerm && a.logIndex === c.logIndex && order(a.member) < order(c.memberId),
  ).length;
};

/**
 * How long NOMINATE waits: each rank a stride of half the election timeout plus the random window
 * longer than the one before, so the first nominee's REQUEST_VOTE (after its term is durable) has that
 * half election timeout to reach the others before the next nominates. The random window (a quarter of
 * the election timeout) separates members whose views (and so ranks) differ; it doubles after each
 * ballot this member lost to the ballot timeout, to at most 4x its size.
 */
export const nominationDelay = (c: ElectionContext, draw: number): number => {
  const half = Math.max(1, Math.floor(c.timeouts.electionTimeoutMs / 2));
  const window = Math.max(1, Math.floor(half / 2)) * 2 ** Math.min(c.lostBallots, 2);
  return nominationRank(c) * (half + window) + (draw % window);
};
