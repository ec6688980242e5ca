// The election driver: steps the election statechart (machines/election.ts) and acts on what it says.
//
// Safety rules held here:
// - A vote goes only to a candidate whose log is at least as up to date, once per term (`onRequestVote`).
// - A candidate counts only votes of its current term, and leads only once its own term and vote are
//   durable.

import { initialTransition, transition } from 'xstate';
import {
  ELECTION_STATES,
  type ElectionEvent,
  type ElectionState,
  electionMachine,
} from '../../machines/election.ts';
import { nextUint32 } from '../../machines/random.ts';
import { EntryKind } from '../log/log-entry.ts';
import { FollowerProgress, NEVER } from './progress.ts';
import { ConsensusReplication } from './replication.ts';
import type { CanvassPosition, RequestVote } from './types.ts';

// The election's phases, grouped by which path they belong to (Aeron's naming carries the grouping).
const FOLLOWER_PATH: ReadonlySet<string> = new Set(
  ELECTION_STATES.filter((state) => state.startsWith('FOLLOWER_') && state !== 'FOLLOWER_BALLOT'),
);
const LEADER_PATH: ReadonlySet<string> = new Set(
  ELECTION_STATES.filter((state) => state.startsWith('LEADER_')),
);
const BALLOT_PATH: ReadonlySet<string> = new Set([
  'CANVASS',
  'NOMINATE',
  'CANDIDATE_BALLOT',
  'FOLLOWER_BALLOT',
]);

const EMPTY_PAYLOAD = new Uint8Array(0);

export abstract class ConsensusElection extends ConsensusReplication {
  protected started = false;
  protected startup = true;
  protected canvass = new Map<number, { logTerm: number; logIndex: number }>();
  protected canvassStartedAt = 0;
  protected lastStatusAt = NEVER;
  protected nominationAt = 0;
  protected ballotDeadline = 0;
  protected ballotSeq = 0;
  /** Ballots this member stood in and lost to the ballot timeout since its last election closed. */
  protected lostBallots = 0;
  protected votes = new Set<number>();
  protected transferElection = false;
  protected electionLastIndex = 0;
  protected termEntryIndex = 0;
  protected catchupTarget = 0;

  // ----------------------------------------------------------------------------------------------
  // Election
  // ----------------------------------------------------------------------------------------------

  protected electionSend(event: ElectionEvent): void {
    const before = this.election.value as string;
    const [next, actions] = transition(electionMachine, this.election, event);
    this.election = next;
    const after = next.value as string;
    if (before === 'CANDIDATE_BALLOT' && event.type === 'BALLOT_TIMEOUT') this.lostBallots++;
    if (after !== before) {
      this.out.push({ type: 'ELECTION_STATE_CHANGE', from: before, to: after, term: this.currentTerm });
    }
    for (const action of actions) this.runElectionAction(action.type);
  }

  /** Begin a fresh election (a new machine, as Aeron creates a new Election object). */
  protected startElection(kind: 'START' | 'START_TRANSFER'): void {
    const before = this.election.value as string;
    this.election = initialTransition(electionMachine)[0];
    if (before !== 'INIT') {
      this.out.push({ type: 'ELECTION_STATE_CHANGE', from: before, to: 'INIT', term: this.currentTerm });
    }
    this.transferElection = kind === 'START_TRANSFER';
    this.electionSend({ type: kind });
  }

  protected runElectionAction(name: string): void {
    switch (name) {
      case 'beginCanvass':
        this.setRole('FOLLOWER');
        this.leader = null;
        this.progress.clear();
        this.transferTarget = null;
        this.canvass = new Map([[this.memberId, { logTerm: this.lastTerm, logIndex: this.lastIndex }]]);
        this.canvassStartedAt = this.now;
        return;
      case 'broadcastCanvass':
        this.lastStatusAt = this.now;
        for (const peer of this.peers) this.send(peer, this.canvassPosition(false));
        return;
      case 'scheduleNomination':
        this.nominationAt = this.now + this.nominationDelay();
        return;
      case 'startBallot':
        this.currentTerm = Math.max(this.currentTerm, this.candidateTermId) + 1;
        this.candidateTermId = this.currentTerm;
        this.votedFor = this.memberId;
        this.leader = null;
        this.ballotSeq = this.saveNodeState();
        this.votes = new Set([this.memberId]);
        this.ballotDeadline = this.now + this.timeouts.electionTimeoutMs;
        this.setRole('CANDIDATE');
        for (const peer of this.peers) {
          const request: RequestVote = {
            type: 'REQUEST_VOTE',
            term: this.currentTerm,
            logTerm: this.lastTerm,
            logIndex: this.lastIndex,
            transfer: this.transferElection,
          };
          this.send(peer, request);
        }
        return;
      case 'awaitLeader':
        this.ballotDeadline = this.now + this.timeouts.electionTimeoutMs;
        return;
      case 'becomeLeader':
        this.setRole('LEADER');
        this.leader = this.memberId;
        this.leaderSince = this.now;
        this.electionLastIndex = this.lastIndex;
        this.progress.clear();
        for (const peer of this.peers) {
          this.progress.set(peer, new FollowerProgress(this.lastIndex + 1, this.now));
        }
        return;
      case 'replayLog':
        this.applyCommitted();
        return;
      case 'appendNewLeadershipTerm':
        this.appendLocal([
          {
            index: this.lastIndex + 1,
            term: this.currentTerm,
            timestamp: this.clusterTimestamp(),
            kind: EntryKind.NEW_LEADERSHIP_TERM,
            payload: EMPTY_PAYLOAD,
          },
        ]);
        this.termEntryIndex = this.lastIndex;
        return;
      case 'announceLeadership':
        for (const pr of this.progress.values()) pr.lastSentAt = NEVER;
        return;
      case 'followLeader':
        this.setRole('FOLLOWER');
        return;
      case 'requestCatchup':
        this.catchupTarget = this.leaderCommitSeen;
        this.catchupData = false;
        this.ackLeader(true);
        return;
      case 'sendReady':
        this.ackLeader(true);
        return;
      case 'closeElection':
        this.startup = false;
        this.lostBallots = 0;
        return;
    }
  }

  /**
   * How long NOMINATE waits. The members that answered this canvass with a log equal to this member's
   * (none is better, or it would not nominate) are ranked in member order, rotated by the log's last
   * term so no member is always first; each rank waits a stride of half the election timeout plus the
   * random window longer than the one before, so the first one's REQUEST_VOTE (after its term is
   * durable) has that half election timeout to reach the others before the next nominates. The random
   * window (a quarter of the election timeout) still separates members whose views (and so ranks)
   * differ; it doubles after each ballot this member lost to the ballot timeout, to at most 4x its size.
   */
  protected nominationDelay(): number {
    const [value, next] = nextUint32(this.rng);
    this.rng = next;
    const half = Math.max(1, Math.floor(this.timeouts.electionTimeoutMs / 2));
    const window = Math.max(1, Math.floor(half / 2)) * 2 ** Math.min(this.lostBallots, 2);
    return this.nominationRank() * (half + window) + (value % window);
  }

  /** This member's place among the canvass answers with a log equal to its own (0: nominates first). */
  protected nominationRank(): number {
    const n = this.members.length;
    const shift = this.lastTerm % n;
    const order = (id: number) => (this.members.indexOf(id) - shift + n) % n;
    let rank = 0;
    for (const [id, pos] of this.canvass) {
      if (
        pos.logTerm === this.lastTerm &&
        pos.logIndex === this.lastIndex &&
        order(id) < order(this.memberId)
      )
        rank++;
    }
    return rank;
  }

  /** Send the election the event its current phase is waiting for, until none applies. */
  protected advanceElection(): void {
    for (let guard = 0; guard < 32; guard++) {
      const state = this.electionState;
      const event = this.nextElectionEvent(state);
      if (event === null) return;
      this.electionSend(event);
      if (
        this.electionState === state &&
        event.type !== 'STATUS_INTERVAL' &&
        event.type !== 'CANVASS_EXPIRED'
      )
        return;
    }
  }

  protected nextElectionEvent(state: ElectionState): ElectionEvent | null {
    const t = this.timeouts;
    switch (state) {
      case 'CANVASS': {
        if (this.now - this.lastStatusAt >= t.electionStatusIntervalMs) return { type: 'STATUS_INTERVAL' };
        const deadline =
          this.canvassStartedAt +
          (this.startup ? t.startupCanvassTimeoutMs : Math.floor(t.electionTimeoutMs / 2));
        if (this.now >= deadline + 2 * t.electionTimeoutMs) return { type: 'CANVASS_EXPIRED' };
        const mine = { logTerm: this.lastTerm, logIndex: this.lastIndex };
        let betterLogSeen = false;
        for (const pos of this.canvass.values()) {
          if (pos.logTerm > mine.logTerm || (pos.logTerm === mine.logTerm && pos.logIndex > mine.logIndex)) {
            betterLogSeen = true;
          }
        }
        return {
          type: 'CANVASS_UPDATE',
          allAnswered: this.canvass.size === this.members.length,
          quorumAnswered: this.canvass.size >= this.quorum,
          betterLogSeen,
          deadlinePassed: this.now >= deadline,
        };
      }
      case 'NOMINATE':
        return this.now >= this.nominationAt ? { type: 'NOMINATION_DUE' } : null;
      case 'CANDIDATE_BALLOT':
        if (this.savedSeq >= this.ballotSeq && this.votes.size >= this.quorum) return { type: 'BALLOT_WON' };
        return this.now >= this.ballotDeadline ? { type: 'BALLOT_TIMEOUT' } : null;
      case 'FOLLOWER_BALLOT':
        return this.now >= this.ballotDeadline ? { type: 'BALLOT_TIMEOUT' } : null;
      case 'LEADER_LOG_REPLICATION':
        return this.quorumMatch() >= this.electionLastIndex ? { type: 'QUORUM_REPLICATED' } : null;
      case 'LEADER_REPLAY':
        return { type: 'REPLAY_DONE', behind: false };
      case 'LEADER_INIT':
        return { type: 'TERM_APPENDED' };
      case 'LEADER_READY':
        return this.commit >= this.termEntryIndex ? { type: 'TERM_COMMITTED' } : null;
      case 'FOLLOWER_LOG_REPLICATION':
        return this.logMatched ? { type: 'LOG_MATCHED' } : null;
      case 'FOLLOWER_REPLAY':
        return { type: 'REPLAY_DONE', behind: this.verified < this.leaderCommitSeen };
      case 'FOLLOWER_CATCHUP_INIT':
        return { type: 'CATCHUP_REQUESTED' };
      case 'FOLLOWER_CATCHUP_AWAIT':
        return this.catchupData ? { type: 'CATCHUP_DATA' } : null;
      case 'FOLLOWER_CATCHUP':
        return this.verified >= this.catchupTarget ? { type: 'CAUGHT_UP' } : null;
      case 'FOLLOWER_LOG_INIT':
        return { type: 'LOG_INIT_DONE' };
      case 'FOLLOWER_LOG_AWAIT':
        return this.verified >= this.leaderCommitSeen ? { type: 'LOG_JOINED' } : null;
      case 'FOLLOWER_READY':
        return { type: 'READY_SENT' };
      default:
        return null;
    }
  }

  protected canvassPosition(reply: boolean): CanvassPosition {
    return {
      type: 'CANVASS_POSITION',
      logTerm: this.lastTerm,
      logIndex: this.lastIndex,
      term: this.currentTerm,
      reply,
    };
  }

  protected hasLiveLeader(): boolean {
    if (this.role === 'LEADER') return true;
    return this.leader !== null && this.now - this.lastLeaderContact < this.timeouts.heartbeatTimeoutMs;
  }

  protected leaderLost(): void {
    this.leader = null;
    const state = this.electionState;
    if (FOLLOWER_PATH.has(state)) this.electionSend({ type: 'LEADER_LOST' });
    else if (state === 'CLOSED' || state === 'INIT') this.startElection('START');
  }

  protected stepDown(): void {
    this.setRole('FOLLOWER');
    this.leader = null;
    this.progress.clear();
    this.transferTarget = null;
    if (LEADER_PATH.has(this.electionState)) this.electionSend({ type: 'STEP_DOWN' });
    else this.startElection('START');
  }

  /** Adopt a newer term: forget the vote, persist, and leave any leadership or candidacy. */
  protected adoptTerm(term: number): void {
    this.currentTerm = term;
    this.votedFor = null;
    // What was verified against the old term's leader says nothing of the new term's log, even when the
    // same member leads it (restarted, with a different tail; discoverLeader keeps a known leader's
    // state): only the committed prefix is known to match. Found by the simulator's sweep.
    this.verified = Math.min(this.commit, this.lastIndex);
    this.lastAckSent = -1;
    this.saveNodeState();
    if (this.role === 'LEADER') this.stepDown();
    else if (this.electionState === 'CANDIDATE_BALLOT') this.electionSend({ type: 'HIGHER_TERM_SEEN' });
  }

  /** Record that `from` leads the current term; moves the election onto the follower path if needed. */
  protected discoverLeader(from: number): void {
    this.lastLeaderContact = this.now;
    if (this.leader === from && (FOLLOWER_PATH.has(this.electionState) || this.electionState === 'CLOSED'))
      return;
    // Move the election first: entering CANVASS forgets any previous leader.
    if (!BALLOT_PATH.has(this.electionState)) this.startElection('START');
    this.leader = from;
    this.verified = Math.min(this.commit, this.lastIndex);
    this.lastAckSent = -1;
    this.logMatched = false;
    this.catchupData = false;
    this.electionSend({ type: 'LEADER_DISCOVERED' });
  }

  protected onCanvassPosition(from: number, message: CanvassPosition): void {
    if (this.role === 'LEADER') {
      // A member canvassing while this one leads: make it hear from the leader now.
      const pr = this.progress.get(from);
      if (pr) pr.lastSentAt = NEVER;
      return;
    }
    if (this.hasLiveLeader()) return; // a live follower does not help anyone unseat its leader (P4)
    if (this.electionState === 'CANVASS') {
      this.canvass.set(from, { logTerm: message.logTerm, logIndex: message.logIndex });
    }
    if (!message.reply && BALLOT_PATH.has(this.electionState)) this.send(from, this.canvassPosition(true));
  }

  protected onRequestVote(from: number, message: RequestVote): void {
    // Leader stickiness: a member that hears a live leader ignores ballots, unless the leader asked.
    if (!message.transfer && this.hasLiveLeader()) return;
    if (message.term > this.currentTerm) {
      if (this.role === 'LEADER' && this.faulty.leaderNeverStepsDown) return;
      this.adoptTerm(message.term);
    }
    const upToDate =
      message.logTerm > this.lastTerm ||
      (message.logTerm === this.lastTerm && message.logIndex >= this.lastIndex);
    const grant =
      message.term === this.currentTerm &&
      this.role !== 'LEADER' &&
      (this.votedFor === null || this.votedFor === from) &&
      upToDate;
    if (!grant) {
      this.send(from, { type: 'VOTE', term: this.currentTerm, granted: false });
      return;
    }
    if (this.votedFor === null) {
      this.votedFor = from;
      this.saveNodeState();
    }
    const vote = { type: 'VOTE', term: this.currentTerm, granted: true } as const;
    if (this.faulty.voteBeforeDurable) this.out.push({ type: 'SEND', to: from, message: vote });
    else this.send(from, vote);
    const state = this.electionState;
    if (FOLLOWER_PATH.has(state) || state === 'CLOSED' || state === 'INIT') {
      this.leader = null;
      this.startElection('START');
    }
    this.electionSend({ type: 'VOTE_GRANTED_TO_OTHER' });
  }
}
