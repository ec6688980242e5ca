// The consensus core: Raft with Aeron Cluster's election, as a pure object. `handle(input)` returns the
// effects to carry out, in order; nothing here touches a clock, a socket or a disk. It is built in
// layers, one concern each:
//
//   core.ts             configuration, durable term and vote, the log, flush / commit / apply, plumbing
//   replication.ts      leader and follower replication, per-follower progress (progress.ts)
//   election-driver.ts  the election statechart and what its phases do
//   node.ts             (this file) inputs: dispatch, clock, peer messages
//
// A leader that has not heard from a quorum within the heartbeat timeout steps down (`onTick`).

import { ConsensusElection } from './election-driver.ts';
import type { ConsensusEffect, ConsensusInput, PeerMessage } from './types.ts';

export class ConsensusNode extends ConsensusElection {
  // ----------------------------------------------------------------------------------------------
  // Inputs
  // ----------------------------------------------------------------------------------------------

  /** Handle several inputs at once (one event-loop turn): replication is batched across them. */
  handleAll(inputs: readonly ConsensusInput[]): ConsensusEffect[] {
    this.out = [];
    for (const input of inputs) this.dispatch(input);
    this.finish();
    return this.out;
  }

  handle(input: ConsensusInput): ConsensusEffect[] {
    this.out = [];
    this.dispatch(input);
    this.finish();
    return this.out;
  }

  protected finish(): void {
    if (this.moduleState === 'CLOSED') return;
    this.electionTick();
    if (this.role === 'LEADER') this.replicate();
  }

  protected dispatch(input: ConsensusInput): void {
    if (this.moduleState === 'CLOSED') return;
    switch (input.type) {
      case 'TICK':
        if (input.clusterTime !== undefined && input.clusterTime > this.wallClock)
          this.wallClock = input.clusterTime;
        this.onTick(input.now);
        return;
      case 'PEER_MESSAGE':
        if (!this.started || !this.members.includes(input.from) || input.from === this.memberId) return;
        this.onPeerMessage(input.from, input.message);
        return;
      case 'PEER_DISCONNECTED':
        if (this.started && this.role !== 'LEADER' && this.leader === input.peer) this.leaderLost();
        return;
      case 'CLIENT_COMMAND':
        this.onClientCommand(input);
        return;
      case 'PROPOSE':
        this.onPropose(input.kind, input.payload);
        return;
      case 'APPENDED':
        this.onAppended(input.seq);
        return;
      case 'NODE_STATE_SAVED':
        if (input.seq > this.savedSeq) this.savedSeq = input.seq;
        if (this.savedSeq >= this.saveSeq && this.held.length > 0) {
          for (const effect of this.held) this.out.push(effect);
          this.held = [];
        }
        if (this.savedSeq >= this.ballotSeq && this.electionState === 'CANDIDATE_BALLOT')
          this.electionSend({ type: 'BALLOT_DURABLE' });
        return;
      case 'SNAPSHOT_TAKEN':
        this.onSnapshotTaken(input.snapshot);
        return;
      case 'SNAPSHOT_INSTALLED':
        this.onSnapshotInstalled(input.index);
        return;
      case 'REQUEST_SNAPSHOT':
        if (this.moduleState !== 'ACTIVE' || this.applied === 0 || this.applied <= this.base) return;
        this.moduleSend({ type: 'SNAPSHOT_REQUESTED' });
        this.out.push({ type: 'TAKE_SNAPSHOT', index: this.applied, term: this.termAt(this.applied) });
        return;
      case 'TRANSFER_LEADERSHIP':
        this.onTransferLeadership(input.to);
        return;
      case 'SERVICES_REPLAYED':
        if (input.index > this.replayed) this.replayed = input.index;
        this.electionFact({ type: 'SERVICES_REPLAYED', index: this.replayed });
        return;
      case 'SUSPEND':
        this.moduleSend({ type: 'SUSPEND' });
        return;
      case 'RESUME':
        this.moduleSend({ type: 'RESUME' });
        return;
      case 'SHUTDOWN':
        this.moduleSend({ type: 'SHUTDOWN' });
        this.closeElection();
        this.moduleSend({ type: 'TERMINATED' });
        return;
    }
  }

  protected onTick(now: number): void {
    if (now < this.now) return; // monotonic clock: a stale tick changes nothing
    this.now = now;
    if (!this.started) {
      this.started = true;
      this.moduleSend({ type: 'RECOVERED' });
      this.lastLeaderContact = now;
      this.startElection('START');
      return;
    }
    if (this.role === 'LEADER') {
      if (!this.faulty.leaderNeverStepsDown && now - this.leaderSince >= this.timeouts.heartbeatTimeoutMs) {
        let heard = 1;
        for (const pr of this.progress.values()) {
          if (now - pr.lastAckAt < this.timeouts.heartbeatTimeoutMs) heard++;
        }
        if (heard < this.quorum) {
          this.stepDown();
          return;
        }
      }
      if (this.transferTarget !== null && now >= this.transferDeadline) this.transferTarget = null;
      // A pipeline that made no progress for a while lost a message: resend from the match position.
      const stall = this.timeouts.heartbeatTimeoutMs / 2;
      for (const pr of this.progress.values()) {
        if (pr.isStalled(now, stall)) pr.probe(pr.match + 1, now);
      }
      return;
    }
    if (this.leader !== null && now - this.lastLeaderContact >= this.timeouts.heartbeatTimeoutMs) {
      this.leaderLost();
    }
  }

  // ----------------------------------------------------------------------------------------------
  // Peer messages
  // ----------------------------------------------------------------------------------------------

  protected onPeerMessage(from: number, message: PeerMessage): void {
    if (message.type === 'CANVASS_POSITION') {
      this.onCanvassPosition(from, message);
      return;
    }
    if (message.type === 'REQUEST_VOTE') {
      this.onRequestVote(from, message);
      return;
    }
    if (message.term > this.currentTerm) {
      if (this.role === 'LEADER' && this.faulty.leaderNeverStepsDown) return;
      this.adoptTerm(message.term);
    }
    switch (message.type) {
      case 'VOTE':
        if (
          message.term === this.currentTerm &&
          message.granted &&
          this.electionState === 'CANDIDATE_BALLOT'
        ) {
          this.electionSend({ type: 'VOTE', from });
        }
        return;
      case 'APPEND':
        this.onAppend(from, message);
        return;
      case 'APPEND_RESPONSE':
        this.onAppendResponse(from, message);
        return;
      case 'INSTALL_SNAPSHOT':
        this.onInstallSnapshot(from, message);
        return;
      case 'TIMEOUT_NOW':
        if (message.term === this.currentTerm && this.leader === from && this.role === 'FOLLOWER') {
          this.startElection('START_TRANSFER');
        }
        return;
    }
  }
}
