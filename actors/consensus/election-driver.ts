// The election driver: feeds the election statechart (machines/election.ts) the facts it decides on and
// carries out the effect records its actions return. The chart holds the election's tallies, votes,
// deadlines and positions and decides every phase change; this layer owns what only the node can do:
// raise the term and vote durably, send, append, apply. The role is the chart's (`roleOf`).
//
// Facts reach the chart only while an election runs (not CLOSED): a pure `transition()` of the chart
// costs 130-230 µs (measured, docs/architecture.md), more than handling an append, too much for every
// append, acknowledgement and tick of a steady cluster; and even while one runs, TICK goes in only once a deadline of the phase is due
// (`electionWakeAt`).
//
// Safety rules held here:
// - A vote goes only to a candidate whose log is at least as up to date, once per term (`onRequestVote`).
// - A candidate counts only votes of its current term (node.ts, VOTE) and leads only once its own term
//   and vote are durable (BALLOT_DURABLE, the chart's `ballotWon`).

import { initialTransition, transition } from 'xstate';
import {
  type ElectionEvent,
  type ElectionState,
  electionMachine,
  electionWakeAt,
  type Role,
} from '../../machines/election.ts';
import { EntryKind } from '../log/log-entry.ts';
import { FollowerProgress, NEVER } from './progress.ts';
import { ConsensusReplication } from './replication.ts';
import type { CanvassPosition, RequestVote } from './types.ts';

/** An election event before the node stamps it with its clock. */
type ElectionFact = ElectionEvent extends infer E
  ? E extends ElectionEvent
    ? Omit<E, 'now'>
    : never
  : never;

const EMPTY_PAYLOAD = new Uint8Array(0);

export abstract class ConsensusElection extends ConsensusReplication {
  protected started = false;
  /** The node-state save that makes the candidate's new term and self-vote durable. */
  protected ballotSeq = 0;
  /** The canvass round this member is in (the chart's; its broadcasts carry it, answers must name it). */
  get canvassRound(): number {
    return this.election.context.canvassRound;
  }
  /** Events raised while the chart's effects run wait here, so every transition completes first. */
  private electionQueue: ElectionEvent[] = [];
  private electionBusy = false;

  /** An election is running (the chart is not CLOSED): only then does it take facts. */
  protected get electing(): boolean {
    return this.election.status !== 'done';
  }

  /** Send the chart an event, stamped with the node's clock, and carry out the effects it returns. */
  protected electionSend(fact: ElectionFact): void {
    this.electionQueue.push({ ...fact, now: this.now } as ElectionEvent);
    if (this.electionBusy) return;
    this.electionBusy = true;
    try {
      while (this.electionQueue.length > 0) {
        const event = this.electionQueue.shift() as ElectionEvent;
        const state = this.electionState;
        const role = this.role;
        const [next, actions] = transition(electionMachine, this.election, event);
        this.election = next;
        this.noteElectionChange(state, role, event.type);
        for (const action of actions) this.runElectionEffect(action.type, action.params);
      }
    } finally {
      this.electionBusy = false;
    }
  }

  /** A fact for a running election (a steady cluster skips the chart). */
  protected electionFact(fact: ElectionFact): void {
    if (this.electing) this.electionSend(fact);
  }

  /** Time passed: tell a running election once one of its deadlines is due. */
  protected electionTick(): void {
    if (this.electing && this.now >= electionWakeAt(this.election)) this.electionSend({ type: 'TICK' });
  }

  private noteElectionChange(state: ElectionState, role: Role, event: string): void {
    const term = this.currentTerm;
    if (this.electionState !== state)
      this.out.push({ type: 'ELECTION_STATE_CHANGE', from: state, to: this.electionState, term, event });
    if (this.role !== role) this.out.push({ type: 'ROLE_CHANGE', from: role, to: this.role, term, event });
  }

  /** A new chart in INIT for this member as it is now (as Aeron creates a new Election object). */
  private freshElection(transfer: boolean): void {
    const { startup, lostBallots, rng, canvassRound } = this.election.context;
    this.election = initialTransition(electionMachine, {
      memberId: this.memberId,
      members: this.members,
      timeouts: this.timeouts,
      now: this.now,
      logTerm: this.lastTerm,
      logIndex: this.lastIndex,
      startup,
      lostBallots,
      rng,
      canvassRound,
      transfer,
    })[0];
  }

  /** Begin a fresh election. */
  protected startElection(kind: 'START' | 'START_TRANSFER'): void {
    const state = this.electionState;
    const role = this.role;
    this.freshElection(kind === 'START_TRANSFER');
    this.noteElectionChange(state, role, kind);
    this.electionSend({ type: kind });
  }

  /** The member shuts down: the election closes, as a follower. */
  protected closeElection(): void {
    const state = this.electionState;
    const role = this.role;
    if (!this.electing) this.freshElection(false);
    this.noteElectionChange(state, role, 'CLOSE');
    this.electionSend({ type: 'CLOSE' });
  }

  /** Carry out one effect record of the chart. */
  private runElectionEffect(name: string, params: unknown): void {
    switch (name) {
      case 'beginCanvass':
        this.leader = null;
        this.progress.clear();
        this.transferTarget = null;
        return;
      case 'broadcastCanvass':
        for (const peer of this.peers) this.send(peer, this.canvassPosition(false, this.canvassRound));
        return;
      case 'startBallot': {
        this.currentTerm = Math.max(this.currentTerm, this.candidateTermId) + 1;
        this.candidateTermId = this.currentTerm;
        this.votedFor = this.memberId;
        this.leader = null;
        this.ballotSeq = this.saveNodeState();
        const { transfer } = params as { transfer: boolean };
        for (const peer of this.peers) {
          const request: RequestVote = {
            type: 'REQUEST_VOTE',
            term: this.currentTerm,
            logTerm: this.lastTerm,
            logIndex: this.lastIndex,
            transfer,
          };
          this.send(peer, request);
        }
        return;
      }
      case 'becomeLeader':
        this.leader = this.memberId;
        this.leaderSince = this.now;
        this.progress.clear();
        for (const peer of this.peers)
          this.progress.set(peer, new FollowerProgress(this.lastIndex + 1, this.now));
        this.reportFlush();
        return;
      case 'replay':
        this.applyCommitted();
        this.electionSend({ type: 'SERVICES_REPLAYED', index: this.replayed });
        return;
      case 'appendTermEntry':
        this.appendLocal([
          {
            index: this.lastIndex + 1,
            term: this.currentTerm,
            timestamp: this.clusterTimestamp(),
            kind: EntryKind.NEW_LEADERSHIP_TERM,
            payload: EMPTY_PAYLOAD,
          },
        ]);
        this.electionSend({ type: 'TERM_APPENDED', index: this.lastIndex });
        return;
      case 'announceLeadership':
        for (const pr of this.progress.values()) pr.lastSentAt = NEVER;
        return;
      case 'requestCatchup':
      case 'sendReady':
        this.ackLeader(true);
        return;
    }
  }

  /** Leader: an append was flushed or acknowledged (the chart waits on the quorum's and commit position). */
  protected reportFlush(): void {
    if (this.electing && this.role === 'LEADER')
      this.electionSend({
        type: 'APPEND_FLUSHED',
        quorumIndex: this.quorumMatch(),
        commitIndex: this.commit,
      });
  }

  /** Follower: an append or snapshot of the leader matched the log (`data`: it brought entries). */
  protected reportMatch(data: boolean, leaderCommit: number): void {
    this.electionFact({
      type: 'APPEND_MATCHED',
      verified: this.verified,
      commitIndex: this.commit,
      leaderCommit,
      data,
    });
  }

  /** Follower: the leader's snapshot arrived and its install began. */
  protected reportSnapshotArrived(): void {
    this.electionFact({ type: 'SNAPSHOT_ARRIVED', commitIndex: this.commit });
  }

  /** This member's position: in a broadcast of its own `round`, or in an answer to another's `round`. */
  protected canvassPosition(reply: boolean, round: number): CanvassPosition {
    return {
      type: 'CANVASS_POSITION',
      logTerm: this.lastTerm,
      logIndex: this.lastIndex,
      term: this.currentTerm,
      reply,
      round,
    };
  }

  protected hasLiveLeader(): boolean {
    if (this.role === 'LEADER') return true;
    return this.leader !== null && this.now - this.lastLeaderContact < this.timeouts.heartbeatTimeoutMs;
  }

  protected leaderLost(): void {
    this.leader = null;
    if (!this.electing) this.startElection('START');
    else this.electionSend({ type: 'LEADER_LOST', logTerm: this.lastTerm, logIndex: this.lastIndex });
  }

  protected stepDown(): void {
    if (!this.electing) this.startElection('START');
    else this.electionSend({ type: 'STEP_DOWN', logTerm: this.lastTerm, logIndex: this.lastIndex });
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
    else this.electionFact({ type: 'HIGHER_TERM_SEEN' });
  }

  /** Record that `from` leads the current term; moves the election onto the follower path if needed. */
  protected discoverLeader(from: number): void {
    this.lastLeaderContact = this.now;
    if (this.leader === from && (!this.electing || this.election.matches('FOLLOWER_PATH'))) return;
    // Only a ballot takes a leader: from anywhere else a new election starts (entering CANVASS forgets
    // any previous leader).
    if (!this.election.matches('BALLOT')) this.startElection('START');
    this.leader = from;
    this.verified = Math.min(this.commit, this.lastIndex);
    this.lastAckSent = -1;
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
    if (message.reply) {
      // An answer: the chart counts it only if it names the round of its current canvass.
      this.electionFact({
        type: 'CANVASS_POSITION',
        from,
        logTerm: message.logTerm,
        logIndex: message.logIndex,
        round: message.round,
      });
    } else if (this.election.matches('BALLOT')) {
      this.send(from, this.canvassPosition(true, message.round));
    }
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
    if (!this.electing || this.election.matches('FOLLOWER_PATH')) {
      this.leader = null;
      this.startElection('START');
    }
    this.electionSend({ type: 'VOTE_GRANTED_TO_OTHER' });
  }
}
