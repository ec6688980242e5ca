// The leader's view of one follower, as an explicit state (the idea of etcd-io/raft's tracker):
// - PROBE: the follower's log position is not known (a new leadership, a rejection, a stalled
//   pipeline). One append at a time at `next`, at most once per heartbeat interval, until the follower
//   accepts; reordered or duplicated rejections cannot start a storm of resends.
// - REPLICATE: the follower accepted `next - 1`; appends are pipelined optimistically (next advances as
//   they are sent), bounded by the bytes in flight.
// - SNAPSHOT: the follower needs entries the leader purged; it was sent the snapshot at
//   `snapshotIndex`. No entries until it acknowledges the install, but heartbeats keep going so it does
//   not lose its leader while a big install is written; the snapshot is sent again only if no
//   acknowledgement came within the resend interval.
// Pure: the caller passes the time, and sends what `replicate` decides.

export type ProgressState = 'PROBE' | 'REPLICATE' | 'SNAPSHOT';

export const NEVER = Number.NEGATIVE_INFINITY;

export class FollowerProgress {
  state: ProgressState = 'PROBE';
  /** Next index to send (in REPLICATE advanced as sent: pipelined). */
  next: number;
  /** Highest index the follower flushed and verified. */
  match = 0;
  /** Sent, unacknowledged batches (REPLICATE): last index and payload bytes. */
  inflight: { last: number; bytes: number }[] = [];
  inflightBytes = 0;
  lastSentAt = NEVER;
  lastAckAt: number;
  /** When match last advanced or the state was reset: a stalled pipeline is probed again after a while. */
  lastProgressAt: number;
  /** SNAPSHOT: the index of the snapshot sent. */
  snapshotIndex = 0;
  /** SNAPSHOT: when to send the snapshot again if the follower has not acknowledged it. */
  snapshotResendAt = NEVER;

  constructor(next: number, now: number) {
    this.next = next;
    this.lastAckAt = now;
    this.lastProgressAt = now;
  }

  /** Go back to probing from `next`: forget the pipeline, send at once. */
  probe(next: number, now: number): void {
    this.state = 'PROBE';
    this.next = next;
    this.clearInflight();
    this.lastProgressAt = now;
    this.lastSentAt = NEVER;
  }

  /** The snapshot at `index` went out; resend it at `resendAt` unless acknowledged. */
  snapshotSent(index: number, now: number, resendAt: number): void {
    this.state = 'SNAPSHOT';
    this.snapshotIndex = index;
    this.snapshotResendAt = resendAt;
    this.next = index + 1;
    this.clearInflight();
    this.lastSentAt = now;
    this.lastProgressAt = now;
  }

  /** A batch ending at `last` was pipelined (REPLICATE). */
  sent(last: number, bytes: number): void {
    this.inflight.push({ last, bytes });
    this.inflightBytes += bytes;
    this.next = last + 1;
  }

  /**
   * The follower acknowledged `matchIndex` (of this term). Leaves PROBE once the probe is accepted and
   * SNAPSHOT once the install is; returns true when the match position grew.
   */
  acknowledged(matchIndex: number, now: number): boolean {
    this.lastAckAt = now;
    if (this.state === 'PROBE' && matchIndex >= this.next - 1) {
      this.state = 'REPLICATE';
      this.next = Math.max(this.next, matchIndex + 1);
    } else if (this.state === 'SNAPSHOT' && matchIndex >= this.snapshotIndex) {
      this.state = 'REPLICATE';
      this.snapshotResendAt = NEVER;
      this.lastSentAt = NEVER;
      this.next = Math.max(this.next, matchIndex + 1);
    }
    if (matchIndex <= this.match) return false;
    this.match = matchIndex;
    this.lastProgressAt = now;
    if (this.next <= this.match) this.next = this.match + 1;
    while (this.inflight.length > 0 && this.inflight[0].last <= this.match) {
      this.inflightBytes -= this.inflight[0].bytes;
      this.inflight.shift();
    }
    return true;
  }

  /**
   * Whether a rejection of the append after `rejectedIndex` says something new: not when it is older
   * than what the follower already matched, nor (probing) of another probe than the one in flight, nor
   * while a snapshot is out (the resend interval covers a lost snapshot).
   */
  isStaleRejection(rejectedIndex: number): boolean {
    if (this.state === 'SNAPSHOT') return true;
    return rejectedIndex <= this.match || (this.state === 'PROBE' && rejectedIndex !== this.next - 1);
  }

  /** REPLICATE: sent entries saw no acknowledgement for `stallMs`. */
  isStalled(now: number, stallMs: number): boolean {
    return this.state === 'REPLICATE' && this.inflight.length > 0 && now - this.lastProgressAt >= stallMs;
  }

  private clearInflight(): void {
    this.inflight = [];
    this.inflightBytes = 0;
  }
}
