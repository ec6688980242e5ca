// Log replication, both sides. The leader sends each follower what its progress state (progress.ts)
// calls for, counts flushed positions into the commit position and takes client input; a follower
// reconciles its log with the leader's appends and snapshots and acknowledges what it flushed.
//
// Safety rules held here:
// - Commit is the highest position a quorum has flushed, and only for an entry of the leader's term
//   (`maybeCommit`); a follower commits no further than it has verified against the leader (`onAppend`).
// - A leader ignores append responses of older terms (`onAppendResponse`).
// - A committed entry is never truncated (`appendFromLeader` throws if asked to).
// - Appends flushed on top of a snapshot count only once the install is durable (`onAppended`).

import { EntryKind, type LogEntry } from '../log/log-entry.ts';
import { encodeSessionMessage } from '../log/session-message.ts';
import { ConsensusCore } from './core.ts';
import type { FollowerProgress } from './progress.ts';
import type {
  AppendEntries,
  AppendResponse,
  ConsensusInput,
  InstallSnapshot,
  RejectReason,
  SnapshotImage,
} from './types.ts';

export abstract class ConsensusReplication extends ConsensusCore {
  // Leader state.
  protected progress = new Map<number, FollowerProgress>();
  protected leaderSince = 0;
  protected transferTarget: number | null = null;
  protected transferDeadline = 0;

  /** The leader's view of each follower, in member order (the last leadership's after it ends): for the inspector. */
  followerProgress(): { id: number; matchIndex: number; progress: FollowerProgress['state'] }[] {
    return [...this.progress]
      .sort(([a], [b]) => a - b)
      .map(([id, pr]) => ({ id, matchIndex: pr.match, progress: pr.state }));
  }

  // Follower state.
  protected lastLeaderContact = 0;
  protected lastAckSent = -1;
  /** When this member last answered an append (any answer): the leader's proof that it is alive. */
  protected lastReplyAt = Number.NEGATIVE_INFINITY;
  protected leaderCommitSeen = 0;

  // The election's facts (election-driver.ts).
  /** Move the election onto the follower path of `from`'s leadership. */
  protected abstract discoverLeader(from: number): void;
  /** Leader: the quorum's flushed position or the commit position may have moved. */
  protected abstract reportFlush(): void;
  /** Follower: an append or snapshot of the leader matched the log. */
  protected abstract reportMatch(data: boolean, leaderCommit: number): void;
  /** Follower: the leader's snapshot arrived and its install began. */
  protected abstract reportSnapshotArrived(): void;

  protected onAppend(from: number, message: AppendEntries): void {
    if (message.term < this.currentTerm) {
      this.reply(from, false, message.prevIndex, this.lastIndex, this.lastTerm);
      return;
    }
    if (this.role === 'LEADER') return; // two leaders in one term cannot happen; never follow one
    this.discoverLeader(from);
    this.leaderCommitSeen = Math.max(this.leaderCommitSeen, message.commitIndex);

    let prevIndex = message.prevIndex;
    let prevTerm = message.prevTerm;
    let entries = message.entries;
    if (prevIndex < this.base) {
      // Our snapshot covers the start: those entries are committed and match the leader's.
      const skip = this.base - prevIndex;
      if (skip > entries.length) {
        this.verified = Math.max(this.verified, this.base);
        this.ackLeader(true);
        this.reportMatch(false, this.leaderCommitSeen);
        return;
      }
      entries = entries.slice(skip);
      prevIndex = this.base;
      prevTerm = this.baseTerm;
    }
    if (prevIndex > this.lastIndex) {
      this.reply(from, false, message.prevIndex, this.lastIndex, this.lastTerm);
      return;
    }
    if (this.termAt(prevIndex) !== prevTerm) {
      let hint = Math.min(prevIndex, this.lastIndex);
      while (hint > this.base && this.termAt(hint) > prevTerm) hint--;
      this.reply(from, false, message.prevIndex, hint, this.termAt(hint));
      return;
    }
    const appended = this.appendFromLeader(entries);
    this.verified = Math.max(this.verified, prevIndex + entries.length);
    const newCommit = Math.min(message.commitIndex, this.verified);
    if (newCommit > this.commit) {
      this.commit = newCommit;
      this.out.push({ type: 'COMMIT', commitIndex: newCommit });
      this.applyCommitted();
    }
    // New entries are acknowledged when flushed (APPENDED); anything else is answered now. A leader
    // that streams entries to a follower whose disk is slow still hears from it at least once per
    // heartbeat interval (with the position flushed so far, as etcd answers heartbeats): the leader's
    // quorum check measures whether followers are alive, not how fast they flush (issue 10).
    if (!appended || this.now - this.lastReplyAt >= this.timeouts.heartbeatIntervalMs) this.ackLeader(true);
    this.reportMatch(entries.length > 0, this.leaderCommitSeen);
  }

  /** Reconcile the log with entries that follow a matching position; returns true if any were appended. */
  protected appendFromLeader(entries: readonly LogEntry[]): boolean {
    let i = 0;
    while (i < entries.length) {
      const entry = entries[i];
      if (entry.index > this.lastIndex) break;
      if (this.termAt(entry.index) !== entry.term) {
        if (entry.index <= this.commit) {
          throw new Error(
            `member ${this.memberId}: leader asked to overwrite committed entry ${entry.index} (commit ${this.commit}): the log diverged, refusing to lose committed data`,
          );
        }
        this.truncateFrom(entry.index);
        break;
      }
      i++;
    }
    if (i >= entries.length) return false;
    this.appendLocal(entries.slice(i));
    return true;
  }

  protected onAppendResponse(from: number, message: AppendResponse): void {
    if (this.role !== 'LEADER' || message.term !== this.currentTerm) return;
    const pr = this.progress.get(from);
    if (!pr) return;
    if (message.success) {
      if (pr.acknowledged(message.matchIndex, this.now)) this.maybeCommit();
      if (this.transferTarget === from && pr.match >= this.lastIndex) this.sendTimeoutNow(from);
      return;
    }
    pr.lastAckAt = this.now;
    // A stale rejection (of an older message) changes nothing.
    if (pr.isStaleRejection(message.rejectedIndex)) return;
    let next = Math.min(message.hintIndex, this.lastIndex);
    while (next > this.base && this.termAt(next) > message.hintTerm) next--;
    pr.probe(Math.max(pr.match + 1, next + 1), this.now);
  }

  protected onInstallSnapshot(from: number, message: InstallSnapshot): void {
    if (message.term < this.currentTerm) {
      this.reply(from, false, message.index, this.lastIndex, this.lastTerm);
      return;
    }
    if (this.role === 'LEADER') return;
    this.discoverLeader(from);
    if (message.index <= this.commit || this.installing >= message.index) {
      this.verified = Math.max(this.verified, this.commit);
      this.ackLeader(true);
      this.reportMatch(true, this.leaderCommitSeen);
      return;
    }
    const image: SnapshotImage = { index: message.index, term: message.snapshotTerm, data: message.data };
    if (this.termAt(message.index) === message.snapshotTerm) {
      // The log agrees at the snapshot: the store keeps the suffix, and what was flushed stays flushed.
      this.entries = this.entries.slice(message.index - this.base);
    } else {
      // The log is discarded. Until the install is durable only the committed prefix is known to hold
      // on disk (nothing past it, and not the snapshot), so that is all this member counts as flushed.
      this.entries = [];
      this.flushed = Math.min(this.flushed, this.commit);
      for (const pending of this.pendingAppends) pending.lastIndex = Math.min(pending.lastIndex, this.commit);
    }
    if (this.installing === 0) this.installFence = this.appendSeq;
    this.base = message.index;
    this.baseTerm = message.snapshotTerm;
    this.snapshot = image;
    this.commit = message.index;
    this.applied = message.index;
    // The services restore the snapshot: they stand at its index.
    if (message.index > this.replayed) this.replayed = message.index;
    this.installing = message.index;
    this.out.push({ type: 'INSTALL_SNAPSHOT', snapshot: image });
    this.out.push({ type: 'COMMIT', commitIndex: this.commit });
    this.reportSnapshotArrived();
  }

  protected onSnapshotInstalled(index: number): void {
    if (index !== this.installing) return;
    this.installing = 0;
    if (index > this.flushed) this.flushed = index;
    // Appends that followed the snapshot and were flushed meanwhile count now.
    if (this.appendedAfterInstall > 0) {
      this.countAppended(this.appendedAfterInstall);
      this.appendedAfterInstall = 0;
    }
    if (this.leader !== null) {
      this.verified = Math.max(this.verified, index);
      this.ackLeader(true);
      this.reportMatch(false, this.leaderCommitSeen);
    }
  }

  protected reply(
    to: number,
    success: boolean,
    rejectedIndex: number,
    hintIndex: number,
    hintTerm: number,
  ): void {
    const message: AppendResponse = {
      type: 'APPEND_RESPONSE',
      term: this.currentTerm,
      success,
      matchIndex: success ? Math.min(this.flushed, this.verified) : 0,
      rejectedIndex,
      hintIndex,
      hintTerm,
    };
    this.lastReplyAt = this.now;
    this.send(to, message);
  }

  /** Tell the leader how far this member has flushed what it verified (always, or only if it grew). */
  protected ackLeader(always: boolean): void {
    if (this.leader === null || this.leader === this.memberId || this.installing > 0) return;
    const match = Math.min(this.flushed, this.verified);
    if (!always && match <= this.lastAckSent) return;
    this.lastAckSent = match;
    this.reply(this.leader, true, 0, 0, 0);
  }

  protected onAppended(seq: number): void {
    if (this.installing > 0 && seq > this.installFence) {
      // Flushed on top of a snapshot whose install is not durable yet: held until SNAPSHOT_INSTALLED.
      this.appendedAfterInstall = Math.max(this.appendedAfterInstall, seq);
      seq = this.installFence;
    }
    if (!this.countAppended(seq)) return;
    if (this.role === 'LEADER') this.maybeCommit();
    else this.ackLeader(false);
  }

  /** The highest index a quorum (this member included) has flushed and matched. */
  protected quorumMatch(): number {
    const matches = [this.flushed];
    for (const pr of this.progress.values()) matches.push(pr.match);
    matches.sort((a, b) => b - a);
    return matches[this.quorum - 1];
  }

  protected maybeCommit(): void {
    const candidate = this.faulty.commitWithoutQuorum ? this.flushed : this.quorumMatch();
    // Only an entry of the leader's own term is committed by counting replicas (Raft §5.4.2).
    if (candidate > this.commit && this.termAt(candidate) === this.currentTerm) {
      this.commit = candidate;
      this.out.push({ type: 'COMMIT', commitIndex: candidate });
      this.applyCommitted();
    }
    this.reportFlush();
  }

  // ----------------------------------------------------------------------------------------------
  // Leader: client input, replication, transfer
  // ----------------------------------------------------------------------------------------------

  /** Why this member cannot take input now (null when it can: a ready leader, active, not transferring). */
  protected refusal(): RejectReason | null {
    const state = this.moduleState;
    if (state === 'SUSPENDED') return 'SUSPENDED';
    if (state !== 'ACTIVE' && state !== 'SNAPSHOT') return 'CLOSED';
    if (!this.isReadyLeader) return 'NOT_LEADER';
    if (this.transferTarget !== null) return 'TRANSFERRING';
    return null;
  }

  protected onClientCommand(input: Extract<ConsensusInput, { type: 'CLIENT_COMMAND' }>): void {
    const { sessionId, correlationId } = input;
    const reason = this.refusal();
    if (reason !== null) {
      this.out.push({ type: 'REJECT', sessionId, correlationId, reason, leaderId: this.leader });
      return;
    }
    this.appendLocal([
      {
        index: this.lastIndex + 1,
        term: this.currentTerm,
        timestamp: this.clusterTimestamp(),
        kind: EntryKind.SESSION_MESSAGE,
        payload: encodeSessionMessage(sessionId, correlationId, input.lowestAwaited, input.payload),
      },
    ]);
  }

  protected onPropose(kind: EntryKind, payload: Uint8Array): void {
    const reason = this.refusal();
    if (reason !== null) {
      this.out.push({ type: 'PROPOSAL_REJECTED', kind, reason, leaderId: this.leader });
      return;
    }
    const index = this.lastIndex + 1;
    this.appendLocal([{ index, term: this.currentTerm, timestamp: this.clusterTimestamp(), kind, payload }]);
    this.out.push({ type: 'PROPOSED', index, term: this.currentTerm, kind });
  }

  /** Send each follower what its progress state calls for, within the flow-control bound. */
  protected replicate(): void {
    if (this.progress.size === 0 && this.peers.length > 0) return;
    if (this.peers.length === 0) this.maybeCommit();
    const interval = this.timeouts.heartbeatIntervalMs;
    for (const [peer, pr] of this.progress) {
      if (pr.next <= this.base || (pr.state === 'SNAPSHOT' && this.now >= pr.snapshotResendAt)) {
        if (this.snapshot !== null) this.sendSnapshot(peer, pr);
        continue;
      }
      if (pr.state === 'SNAPSHOT') {
        // Installing: heartbeats only, so the follower keeps its leader through a long install.
        if (this.now - pr.lastSentAt >= interval) {
          this.sendAppend(peer, Math.max(pr.snapshotIndex, this.base), []);
          pr.lastSentAt = this.now;
        }
        continue;
      }
      if (pr.state === 'PROBE') {
        if (this.now - pr.lastSentAt >= interval) {
          const from = pr.next;
          const to = Math.min(this.lastIndex, this.batchEnd(from));
          this.sendAppend(peer, from - 1, this.entries.slice(from - this.base - 1, to - this.base));
          pr.lastSentAt = this.now;
        }
        continue;
      }
      let sent = false;
      while (pr.next <= this.lastIndex && pr.inflightBytes < this.maxBytesInFlight) {
        const from = pr.next;
        const to = this.batchEnd(from);
        let bytes = 0;
        for (let i = from; i <= to; i++) bytes += this.entries[i - this.base - 1].payload.length + 32;
        this.sendAppend(peer, from - 1, this.entries.slice(from - this.base - 1, to - this.base));
        pr.sent(to, bytes);
        sent = true;
      }
      if (sent) {
        pr.lastSentAt = this.now;
      } else if (this.now - pr.lastSentAt >= interval) {
        const prev = Math.max(this.base, pr.inflight.length > 0 ? pr.match : pr.next - 1);
        this.sendAppend(peer, prev, []);
        pr.lastSentAt = this.now;
      }
    }
  }

  protected sendSnapshot(peer: number, pr: FollowerProgress): void {
    const snapshot = this.snapshot as SnapshotImage;
    this.send(peer, {
      type: 'INSTALL_SNAPSHOT',
      term: this.currentTerm,
      index: snapshot.index,
      snapshotTerm: snapshot.term,
      data: snapshot.data,
    });
    pr.snapshotSent(snapshot.index, this.now, this.now + this.timeouts.heartbeatTimeoutMs);
  }

  /** The last index of a batch starting at `from` within the batch byte bound (at least one entry). */
  protected batchEnd(from: number): number {
    if (from > this.lastIndex) return from - 1;
    let to = from;
    let bytes = this.entries[from - this.base - 1].payload.length + 32;
    while (to < this.lastIndex) {
      const size = this.entries[to - this.base].payload.length + 32;
      if (bytes + size > this.maxBatchBytes) break;
      bytes += size;
      to++;
    }
    return to;
  }

  protected sendAppend(to: number, prevIndex: number, entries: readonly LogEntry[]): void {
    this.send(to, {
      type: 'APPEND',
      term: this.currentTerm,
      prevIndex,
      prevTerm: this.termAt(prevIndex),
      entries,
      commitIndex: this.commit,
      leaderLastIndex: this.lastIndex,
    });
  }

  protected onTransferLeadership(to: number): void {
    if (!this.isReadyLeader || !this.peers.includes(to)) return;
    this.transferTarget = to;
    this.transferDeadline = this.now + this.timeouts.electionTimeoutMs;
    const pr = this.progress.get(to);
    if (pr && pr.match >= this.lastIndex) this.sendTimeoutNow(to);
  }

  protected sendTimeoutNow(to: number): void {
    this.send(to, { type: 'TIMEOUT_NOW', term: this.currentTerm });
  }
}
