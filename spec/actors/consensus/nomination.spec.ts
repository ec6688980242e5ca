// When a member nominates itself (issue 10, section 4). The leader of a 3-member cluster dies and its
// two followers, with equal logs, canvass together; if both stand in the same term each votes for itself
// and neither wins until the ballot times out. The core staggers the nomination of equally good members
// so the first one's REQUEST_VOTE has half an election timeout to reach the other before it stands.
// Two pure nodes on a virtual clock with a one-way message delay chosen by the test; node-state saves
// and appends complete at once.

import { expect } from 'chai';
import { ConsensusNode } from '../../../actors/consensus/node.ts';
import {
  type ConsensusInput,
  DEFAULT_TIMEOUTS,
  type PeerMessage,
  type PersistedState,
} from '../../../actors/consensus/types.ts';
import { entries } from '../../persistence/helpers.ts';
import { run } from './drive.ts';

const MEMBERS = [1, 2, 3];
const { electionTimeoutMs } = DEFAULT_TIMEOUTS;
/** What the stagger promises: the first nominee's REQUEST_VOTE may take this long to arrive. */
const PROMISED_DELIVERY_MS = Math.floor(electionTimeoutMs / 2);

/** Members 2 and 3 after following member 1, the leader of term `term`, up to index 5. */
const followerState = (term: number): PersistedState => ({
  currentTerm: term,
  candidateTermId: term,
  votedFor: 1,
  snapshot: null,
  entries: entries(1, 5, term),
});

/**
 * Two survivors of a dead member 1, connected by a network that delays every message `delayMs` and
 * loses the ones `lost` names.
 */
class Survivors {
  readonly nodes = new Map<number, ConsensusNode>();
  /** When each survivor became a candidate (entered CANDIDATE_BALLOT). */
  readonly ballots: { member: number; at: number }[] = [];
  private wire: { at: number; from: number; to: number; message: PeerMessage }[] = [];
  now = 0;

  constructor(
    seeds: [number, number],
    term: number,
    private readonly delayMs: number,
    private readonly lost: (message: PeerMessage) => boolean = () => false,
  ) {
    [2, 3].forEach((id, i) => {
      this.nodes.set(
        id,
        new ConsensusNode({ memberId: id, members: MEMBERS, randomSeed: seeds[i] }, followerState(term)),
      );
    });
    const heartbeat: PeerMessage = {
      type: 'APPEND',
      term,
      prevIndex: 5,
      prevTerm: term,
      entries: [],
      commitIndex: 5,
      leaderLastIndex: 5,
    };
    for (const id of this.nodes.keys()) {
      this.input(id, { type: 'TICK', now: 0 });
      this.input(id, { type: 'PEER_MESSAGE', from: 1, message: heartbeat });
      expect(this.node(id).electionState).to.equal('CLOSED');
      expect(this.node(id).leaderId).to.equal(1);
    }
  }

  node(id: number): ConsensusNode {
    return this.nodes.get(id) as ConsensusNode;
  }

  /** Handle one input; saves and appends complete at once, sends to the other survivor go on the wire. */
  input(id: number, input: ConsensusInput): void {
    for (const effect of run(this.node(id), input)) {
      if (effect.type === 'SEND' && this.nodes.has(effect.to) && !this.lost(effect.message))
        this.wire.push({ at: this.now + this.delayMs, from: id, to: effect.to, message: effect.message });
      if (effect.type === 'ELECTION_STATE_CHANGE' && effect.to === 'CANDIDATE_BALLOT')
        this.ballots.push({ member: id, at: this.now });
    }
  }

  /** Advance the clock 1 ms at a time: deliver what is due, then tick both. */
  runUntil(end: number): void {
    while (this.now < end) {
      this.now++;
      const due = this.wire.filter((m) => m.at <= this.now);
      this.wire = this.wire.filter((m) => m.at > this.now);
      for (const m of due) this.input(m.to, { type: 'PEER_MESSAGE', from: m.from, message: m.message });
      for (const id of this.nodes.keys()) this.input(id, { type: 'TICK', now: this.now });
    }
  }

  leaders(): number[] {
    return [...this.nodes.keys()].filter((id) => this.node(id).isReadyLeader);
  }
}

/** The leader dies now (both survivors' connections to it reset), then run for `ms`. */
const killLeader = (survivors: Survivors, ms: number): void => {
  const killedAt = survivors.now;
  for (const id of survivors.nodes.keys()) survivors.input(id, { type: 'PEER_DISCONNECTED', peer: 1 });
  survivors.runUntil(killedAt + ms);
};

describe('nomination: equal survivors of a dead leader stand one at a time', () => {
  const seedPairs = Array.from({ length: 60 }, (_, i): [number, number] => [1000 + 2 * i, 1001 + 2 * i]);

  it('the second survivor stands only after the first one’s REQUEST_VOTE had half an election timeout to arrive', () => {
    for (const [i, seeds] of seedPairs.entries()) {
      // Every REQUEST_VOTE is lost (the canvass arrives in 1 ms): both stand, and we read when.
      const survivors = new Survivors(seeds, 1 + (i % 3), 1, (m) => m.type === 'REQUEST_VOTE');
      killLeader(survivors, 4 * electionTimeoutMs);
      const [first, second] = survivors.ballots;
      expect(second, `seeds ${seeds}: both survivors stood`).to.not.equal(undefined);
      expect(second.member).to.not.equal(first.member);
      expect(second.at - first.at, `seeds ${seeds}, term ${1 + (i % 3)}`).to.be.at.least(
        PROMISED_DELIVERY_MS,
      );
    }
  });

  it('with every message taking almost that long, one ballot elects a leader', () => {
    const firsts = new Set<number>();
    for (const [i, seeds] of seedPairs.entries()) {
      const term = 1 + (i % 3);
      const survivors = new Survivors(seeds, term, PROMISED_DELIVERY_MS - 1);
      killLeader(survivors, 4 * electionTimeoutMs);
      expect(survivors.ballots, `seeds ${seeds}, term ${term}: ballots`).to.have.length(1);
      expect(survivors.leaders()).to.deep.equal([survivors.ballots[0].member]);
      firsts.add(survivors.ballots[0].member);
    }
    // The order rotates with the log's last term: neither survivor is always the one that stands.
    expect([...firsts].sort()).to.deep.equal([2, 3]);
  });

  it('after a ballot lost to the timeout a member waits a wider random window before standing again', () => {
    // A lone candidate (its peer's answers reach it, nothing of its own arrives): it stands, loses to
    // the ballot timeout, canvasses again and stands again. Its rank is the same every round (its peer
    // keeps its place), so the spread of its delays over many seeds is the random window.
    const delays: number[][] = [[], [], []];
    for (let seed = 1; seed <= 40; seed++) {
      const node = new ConsensusNode({ memberId: 3, members: MEMBERS, randomSeed: seed }, followerState(1));
      const feed = (input: ConsensusInput) => {
        for (const e of node.handle(input))
          if (e.type === 'SAVE_NODE_STATE') node.handle({ type: 'NODE_STATE_SAVED', seq: e.seq });
      };
      feed({ type: 'TICK', now: 0 });
      let nominateAt = 0;
      let round = 0;
      for (let now = 1; now < 20 * electionTimeoutMs && round < 3; now++) {
        const before = node.electionState;
        if (before === 'CANVASS' && now % 10 === 0) {
          const answer = {
            type: 'CANVASS_POSITION',
            logTerm: 1,
            logIndex: 5,
            term: node.term,
            reply: true,
            round: node.canvassRound,
          } as const;
          feed({ type: 'PEER_MESSAGE', from: 2, message: answer });
        }
        feed({ type: 'TICK', now });
        const after = node.electionState;
        if (after === 'NOMINATE' && before !== 'NOMINATE') nominateAt = now;
        if (after === 'CANDIDATE_BALLOT' && before !== 'CANDIDATE_BALLOT')
          delays[round++].push(now - nominateAt);
      }
    }
    const spread = (list: number[]) => Math.max(...list) - Math.min(...list);
    const window = Math.floor(electionTimeoutMs / 4);
    expect(delays[0]).to.have.length(40);
    expect(delays[2]).to.have.length(40);
    expect(spread(delays[0])).to.be.below(window);
    expect(spread(delays[2])).to.be.at.least(2 * window);
  });
});
