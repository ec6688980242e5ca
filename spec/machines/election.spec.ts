// The election statechart against an independent table of Aeron's election: for each phase, what each
// fact does to it (reasoned from Aeron Cluster's Election, not read off the machine). Each row drives a
// fresh chart along a path of facts to its phase, sends one more and checks where the election is, and
// what the node is asked to do. Member 1 of three, log (term 1, index 5), timeouts 400 / 600 / 50 ms.

import { expect } from 'chai';
import { initialTransition, transition } from 'xstate';
import {
  ELECTION_STATES,
  type ElectionEvent,
  type ElectionInput,
  type ElectionSnapshot,
  electionMachine,
  electionStateOf,
  roleOf,
} from '../../machines/election.ts';
import { seedRandom } from '../../machines/random.ts';

const INPUT: ElectionInput = {
  memberId: 1,
  members: [1, 2, 3],
  timeouts: { electionTimeoutMs: 400, startupCanvassTimeoutMs: 600, electionStatusIntervalMs: 50 },
  now: 0,
  logTerm: 1,
  logIndex: 5,
  startup: false,
  lostBallots: 0,
  rng: seedRandom(7),
  canvassRound: 0,
  transfer: false,
};
/** The first canvass of the chart is round 1 (the input names the last one begun). */
const ROUND = 1;
/** Not at start-up, the canvass may nominate on a quorum half an election timeout after it began. */
const CANVASS_DEADLINE = 200;
/** A canvass that decided nothing for two election timeouts past its deadline starts again. */
const CANVASS_EXPIRY = CANVASS_DEADLINE + 800;
const BALLOT_TIMEOUT = 400;

type Fact = ElectionEvent;
const at = (now: number) => ({ now });
const E = {
  start: { type: 'START', ...at(0) },
  transfer: { type: 'START_TRANSFER', ...at(0) },
  tick: (now: number) => ({ type: 'TICK', ...at(now) }),
  position: (from: number, logTerm: number, logIndex: number, now = 10, round = ROUND) => ({
    type: 'CANVASS_POSITION',
    from,
    logTerm,
    logIndex,
    round,
    ...at(now),
  }),
  vote: (from: number) => ({ type: 'VOTE', from, ...at(10) }),
  durable: { type: 'BALLOT_DURABLE', ...at(10) },
  votedForOther: { type: 'VOTE_GRANTED_TO_OTHER', ...at(20) },
  leader: { type: 'LEADER_DISCOVERED', ...at(20) },
  higherTerm: { type: 'HIGHER_TERM_SEEN', ...at(20) },
  flushed: (quorumIndex: number, commitIndex: number) => ({
    type: 'APPEND_FLUSHED',
    quorumIndex,
    commitIndex,
    ...at(30),
  }),
  termAppended: (index: number) => ({ type: 'TERM_APPENDED', index, ...at(30) }),
  matched: (verified: number, commitIndex: number, leaderCommit: number, data = false) => ({
    type: 'APPEND_MATCHED',
    verified,
    commitIndex,
    leaderCommit,
    data,
    ...at(30),
  }),
  replayed: (index: number) => ({ type: 'SERVICES_REPLAYED', index, ...at(30) }),
  stepDown: { type: 'STEP_DOWN', logTerm: 2, logIndex: 6, ...at(40) },
  leaderLost: { type: 'LEADER_LOST', logTerm: 1, logIndex: 8, ...at(40) },
  close: { type: 'CLOSE', ...at(50) },
} satisfies Record<string, Fact | ((...args: never[]) => Fact)>;

/** Paths of facts to each resting phase. */
const PATH: Record<string, readonly Fact[]> = {
  CANVASS: [E.start],
  NOMINATE: [E.start, E.position(2, 1, 5), E.position(3, 1, 5)],
  CANDIDATE_BALLOT: [E.transfer],
  FOLLOWER_BALLOT: [E.start, E.votedForOther],
  LEADER_LOG_REPLICATION: [E.transfer, E.durable, E.vote(2)],
  // Elected with the log at 5: replay waits for the services to reach the commit position (5).
  LEADER_REPLAY: [E.transfer, E.durable, E.vote(2), E.flushed(5, 5)],
  LEADER_INIT: [E.transfer, E.durable, E.vote(2), E.flushed(5, 5), E.replayed(5)],
  LEADER_READY: [E.transfer, E.durable, E.vote(2), E.flushed(5, 5), E.replayed(5), E.termAppended(6)],
  FOLLOWER_LOG_REPLICATION: [E.start, E.leader],
  // Matched up to 5 (committed 5) while the leader has committed 8.
  FOLLOWER_REPLAY: [E.start, E.leader, E.matched(5, 5, 8)],
  FOLLOWER_CATCHUP_AWAIT: [E.start, E.leader, E.matched(5, 5, 8), E.replayed(5)],
  FOLLOWER_CATCHUP: [E.start, E.leader, E.matched(5, 5, 8), E.replayed(5), E.matched(6, 6, 8, true)],
  // Caught up with the 8 the catch-up aimed at, while the leader moved on to 10.
  FOLLOWER_LOG_AWAIT: [
    E.start,
    E.leader,
    E.matched(5, 5, 8),
    E.replayed(5),
    E.matched(6, 6, 8, true),
    E.matched(8, 8, 10, true),
  ],
};

const drive = (facts: readonly Fact[]): ElectionSnapshot => {
  let [snapshot] = initialTransition(electionMachine, INPUT);
  for (const fact of facts) [snapshot] = transition(electionMachine, snapshot, fact);
  return snapshot;
};

interface Row {
  readonly from: keyof typeof PATH;
  /** Facts after the path to `from`, still in `from`. */
  readonly before: readonly Fact[];
  readonly fact: string;
  readonly event: (s: ElectionSnapshot) => Fact;
  readonly to: string;
  /** Effects the node must be asked for, in order (only those named; others may come too). */
  readonly effects?: readonly string[];
}

const EFFECTS = new Set([
  'beginCanvass',
  'broadcastCanvass',
  'startBallot',
  'becomeLeader',
  'replay',
  'appendTermEntry',
  'announceLeadership',
  'requestCatchup',
  'sendReady',
]);

const row = (
  from: keyof typeof PATH,
  fact: string,
  event: Fact | ((s: ElectionSnapshot) => Fact),
  to: string,
  effects?: readonly string[],
  before: readonly Fact[] = [],
): Row => ({ from, before, fact, event: typeof event === 'function' ? event : () => event, to, effects });

// The table. Ballot phases take a leader or a vote for another member from anywhere in the ballot;
// the leader path is left only by stepping down, the follower path only by losing the leader.
const TABLE: readonly Row[] = [
  row('CANVASS', 'one member answered, before the deadline', E.position(3, 1, 5), 'CANVASS'),
  row(
    'CANVASS',
    'every member answered, none better',
    E.position(3, 1, 5),
    'NOMINATE',
    [],
    [E.position(2, 1, 5)],
  ),
  row(
    'CANVASS',
    'every member answered, one better',
    E.position(3, 1, 6),
    'CANVASS',
    [],
    [E.position(2, 1, 5)],
  ),
  row(
    'CANVASS',
    'deadline passed, quorum, none better',
    E.tick(CANVASS_DEADLINE),
    'NOMINATE',
    [],
    [E.position(2, 1, 5)],
  ),
  row(
    'CANVASS',
    'deadline passed, quorum, one better',
    E.tick(CANVASS_DEADLINE),
    'CANVASS',
    [],
    [E.position(2, 2, 3)],
  ),
  row('CANVASS', 'a better log answered', E.position(2, 2, 1), 'CANVASS'),
  row(
    'CANVASS',
    'every member answered, one naming an earlier round',
    E.position(3, 1, 5, 10, ROUND - 1),
    'CANVASS',
    [],
    [E.position(2, 1, 5)],
  ),
  row(
    'CANVASS',
    'expired, then every member answered the old round',
    E.position(3, 1, 5, CANVASS_EXPIRY + 10),
    'CANVASS',
    [],
    [E.tick(CANVASS_EXPIRY), E.position(2, 1, 5, CANVASS_EXPIRY + 10)],
  ),
  row(
    'CANVASS',
    'expired, then every member answered the new round',
    E.position(3, 1, 5, CANVASS_EXPIRY + 10, ROUND + 1),
    'NOMINATE',
    [],
    [E.tick(CANVASS_EXPIRY), E.position(2, 1, 5, CANVASS_EXPIRY + 10, ROUND + 1)],
  ),
  row('CANVASS', 'quorum, before the deadline', E.position(2, 1, 4), 'CANVASS'),
  row('CANVASS', 'status interval passed', E.tick(50), 'CANVASS', ['broadcastCanvass']),
  row('CANVASS', 'deadline passed, no quorum', E.tick(CANVASS_DEADLINE), 'CANVASS'),
  row('CANVASS', 'canvass expired', E.tick(CANVASS_EXPIRY), 'CANVASS', ['beginCanvass', 'broadcastCanvass']),
  row('CANVASS', 'leader discovered', E.leader, 'FOLLOWER_LOG_REPLICATION'),
  row('CANVASS', 'voted for another', E.votedForOther, 'FOLLOWER_BALLOT'),
  row('CANVASS', 'leader lost (not on the follower path)', E.leaderLost, 'CANVASS'),
  row('NOMINATE', 'before the nomination time', (s) => E.tick(s.context.nominationAt - 1), 'NOMINATE'),
  row('NOMINATE', 'nomination time', (s) => E.tick(s.context.nominationAt), 'CANDIDATE_BALLOT', [
    'startBallot',
  ]),
  row('NOMINATE', 'leader discovered', E.leader, 'FOLLOWER_LOG_REPLICATION'),
  row('NOMINATE', 'voted for another', E.votedForOther, 'FOLLOWER_BALLOT'),
  row('CANDIDATE_BALLOT', 'a vote, own vote not durable', E.vote(2), 'CANDIDATE_BALLOT'),
  row('CANDIDATE_BALLOT', 'own vote durable, no other vote', E.durable, 'CANDIDATE_BALLOT'),
  row('CANDIDATE_BALLOT', 'ballot timeout', E.tick(BALLOT_TIMEOUT), 'CANVASS', ['beginCanvass']),
  row('CANDIDATE_BALLOT', 'higher term seen', E.higherTerm, 'CANVASS'),
  row('CANDIDATE_BALLOT', 'leader discovered', E.leader, 'FOLLOWER_LOG_REPLICATION'),
  row('CANDIDATE_BALLOT', 'voted for another', E.votedForOther, 'FOLLOWER_BALLOT'),
  row('FOLLOWER_BALLOT', 'before the ballot timeout', E.tick(20 + BALLOT_TIMEOUT - 1), 'FOLLOWER_BALLOT'),
  row('FOLLOWER_BALLOT', 'ballot timeout', E.tick(20 + BALLOT_TIMEOUT), 'CANVASS'),
  row('FOLLOWER_BALLOT', 'leader discovered', E.leader, 'FOLLOWER_LOG_REPLICATION'),
  row(
    'LEADER_LOG_REPLICATION',
    'quorum below the election position',
    E.flushed(4, 4),
    'LEADER_LOG_REPLICATION',
  ),
  row('LEADER_LOG_REPLICATION', 'quorum at the election position', E.flushed(5, 5), 'LEADER_REPLAY', [
    'replay',
  ]),
  row('LEADER_LOG_REPLICATION', 'step down', E.stepDown, 'CANVASS', ['beginCanvass']),
  row('LEADER_LOG_REPLICATION', 'leader lost (a follower fact)', E.leaderLost, 'LEADER_LOG_REPLICATION'),
  row('LEADER_REPLAY', 'services behind the commit', E.replayed(4), 'LEADER_REPLAY'),
  row('LEADER_REPLAY', 'services at the commit', E.replayed(5), 'LEADER_INIT', ['appendTermEntry']),
  row('LEADER_REPLAY', 'step down', E.stepDown, 'CANVASS'),
  row('LEADER_INIT', 'term entry appended', E.termAppended(6), 'LEADER_READY', ['announceLeadership']),
  row('LEADER_INIT', 'step down', E.stepDown, 'CANVASS'),
  row('LEADER_READY', 'commit below the term entry', E.flushed(6, 5), 'LEADER_READY'),
  row('LEADER_READY', 'term entry committed', E.flushed(6, 6), 'CLOSED'),
  row('LEADER_READY', 'step down', E.stepDown, 'CANVASS'),
  row('FOLLOWER_LOG_REPLICATION', 'an append matched', E.matched(5, 5, 5), 'FOLLOWER_REPLAY', ['replay']),
  row('FOLLOWER_LOG_REPLICATION', 'leader lost', E.leaderLost, 'CANVASS', ['beginCanvass']),
  row('FOLLOWER_LOG_REPLICATION', 'step down (a leader fact)', E.stepDown, 'FOLLOWER_LOG_REPLICATION'),
  row('FOLLOWER_REPLAY', 'services behind the commit', E.replayed(4), 'FOLLOWER_REPLAY'),
  row('FOLLOWER_REPLAY', 'replayed, behind the leader', E.replayed(5), 'FOLLOWER_CATCHUP_AWAIT', [
    'requestCatchup',
  ]),
  row('FOLLOWER_REPLAY', 'leader lost', E.leaderLost, 'CANVASS'),
  row('FOLLOWER_CATCHUP_AWAIT', 'a heartbeat (no data)', E.matched(5, 5, 8), 'FOLLOWER_CATCHUP_AWAIT'),
  row('FOLLOWER_CATCHUP_AWAIT', 'data, still behind', E.matched(6, 6, 8, true), 'FOLLOWER_CATCHUP'),
  row('FOLLOWER_CATCHUP_AWAIT', 'leader lost', E.leaderLost, 'CANVASS'),
  row('FOLLOWER_CATCHUP', 'still behind the catch-up target', E.matched(7, 7, 8, true), 'FOLLOWER_CATCHUP'),
  row('FOLLOWER_CATCHUP', 'caught up, leader moved on', E.matched(8, 8, 10, true), 'FOLLOWER_LOG_AWAIT'),
  row('FOLLOWER_CATCHUP', 'caught up with the live log', E.matched(8, 8, 8, true), 'CLOSED', ['sendReady']),
  row('FOLLOWER_CATCHUP', 'leader lost', E.leaderLost, 'CANVASS'),
  row('FOLLOWER_LOG_AWAIT', 'joined the live log', E.matched(10, 10, 10), 'CLOSED', ['sendReady']),
  row('FOLLOWER_LOG_AWAIT', 'leader lost', E.leaderLost, 'CANVASS'),
  // Shutdown closes an election from any phase.
  ...Object.keys(PATH).map((from) => row(from, 'shutdown', E.close, 'CLOSED')),
];

describe('election machine: the table of Aeron’s election', () => {
  for (const r of TABLE) {
    it(`${r.from} --${r.fact}${r.before.length > 0 ? ` (after ${r.before.length} more)` : ''}--> ${r.to}`, () => {
      const from = drive([...PATH[r.from], ...r.before]);
      expect(electionStateOf(from), `the path reaches ${r.from}`).to.equal(r.from);
      const [next, actions] = transition(electionMachine, from, r.event(from));
      expect(electionStateOf(next)).to.equal(r.to);
      const asked = actions.map((a) => a.type).filter((t) => EFFECTS.has(t));
      let i = 0;
      for (const effect of asked) if (effect === r.effects?.[i]) i++;
      expect(asked, 'effects asked of the node').to.include.members(r.effects ?? []);
      expect(i, `effects in order: ${asked.join(', ')}`).to.equal(r.effects?.length ?? 0);
    });
  }

  it("every one of Aeron's states is rested in or passed through", () => {
    const rested = new Set<string>([...Object.keys(PATH), 'INIT', 'CLOSED']);
    // The three pass-through phases show by their effects: the catch-up request, the ready message;
    // FOLLOWER_LOG_INIT lies between FOLLOWER_CATCHUP and FOLLOWER_LOG_AWAIT (no effect of its own).
    const passed = ['FOLLOWER_CATCHUP_INIT', 'FOLLOWER_LOG_INIT', 'FOLLOWER_READY'];
    expect([...rested, ...passed].sort()).to.deep.equal([...ELECTION_STATES].sort());
  });

  it('NOMINATE nominates on a quorum after the deadline, also when not every member answered', () => {
    const s = drive([E.start, E.position(2, 1, 5), E.tick(CANVASS_DEADLINE)]);
    expect(electionStateOf(s)).to.equal('NOMINATE');
    expect(s.context.nominationAt).to.be.at.least(CANVASS_DEADLINE);
  });

  it('a vote for another member restarts the wait for a leader', () => {
    const s = drive([
      E.start,
      E.votedForOther,
      { ...E.votedForOther, now: 300 },
      E.tick(20 + BALLOT_TIMEOUT),
    ]);
    expect(electionStateOf(s)).to.equal('FOLLOWER_BALLOT');
  });

  it('a candidate counts each voter once', () => {
    const five = { ...INPUT, members: [1, 2, 3, 4, 5] };
    let [s] = initialTransition(electionMachine, five);
    for (const fact of [E.transfer, E.durable, E.vote(2), E.vote(2)])
      [s] = transition(electionMachine, s, fact);
    expect(electionStateOf(s), 'self and member 2 are not a quorum of five').to.equal('CANDIDATE_BALLOT');
    [s] = transition(electionMachine, s, E.vote(3));
    expect(electionStateOf(s)).to.equal('LEADER_LOG_REPLICATION');
  });

  it('derives the role: candidate in the ballot, leader from election to close, else follower', () => {
    const role = (facts: readonly Fact[]) => roleOf(drive(facts));
    expect(role(PATH.CANVASS)).to.equal('FOLLOWER');
    expect(role(PATH.CANDIDATE_BALLOT)).to.equal('CANDIDATE');
    expect(role(PATH.LEADER_LOG_REPLICATION)).to.equal('LEADER');
    expect(role([...PATH.LEADER_READY, E.flushed(6, 6)])).to.equal('LEADER');
    expect(role([...PATH.LEADER_READY, E.close])).to.equal('FOLLOWER');
    expect(role([...PATH.LEADER_READY, E.stepDown])).to.equal('FOLLOWER');
    expect(role(PATH.FOLLOWER_CATCHUP)).to.equal('FOLLOWER');
  });

  it('a canvass after stepping down compares the log the leader ended with', () => {
    const s = drive([...PATH.LEADER_READY, E.stepDown, E.position(2, 2, 6, 50), E.position(3, 2, 6, 50)]);
    expect(electionStateOf(s), 'equal logs (term 2, index 6): nominate').to.equal('NOMINATE');
  });
});
