// Safety invariants, checked incrementally as the simulator carries out each member's effects, so a
// check after every step costs O(1) per entry rather than a scan of every log:
// - ELECTION_SAFETY: at most one leader per term.
// - LOG_MATCHING: two entries with the same index and term have the same content and the same
//   predecessor term (by induction, identical prefixes).
// - LEADER_COMPLETENESS: a new leader holds every entry committed before it.
// - COMMITTED_ENTRY_CHANGED / COMMIT_WITHOUT_QUORUM / COMMITTED_ENTRY_LOST: a committed entry is the
//   same everywhere, was flushed by a quorum when it committed, and stays on a quorum's disks.
// - APPLIED_PREFIX: every member applies the same entries in the same order without gaps.
// - SNAPSHOT_PAST_COMMIT: a snapshot never covers an uncommitted position.
// - STALE_LEADER: a running leader does not outlive a newer leader by more than the check-quorum bound.
// - LEADER_WITHOUT_QUORUM: every leader was granted votes of its own term by a quorum (itself included).
// - SERVICE_STATE_DIVERGED: members' service state (not only their logs) is equal at equal applied index.
// - SNAPSHOT_TERM: a snapshot stands for an entry only with that entry's term.
// - SNAPSHOT_STATE_MISMATCH (checked by the member, runtime/sim/sim-member.ts): a snapshot said to stand for
//   index i holds the services' state after exactly the entries up to i, so a restart from it equals the
//   live state at i (the snapshot's state also joins SERVICE_STATE_DIVERGED's comparison at i).
// (Liveness after the heal is checked at the end of a run: runtime/sim/index.ts.)

import type { LogEntry } from '../../actors/log/log-entry.ts';

export interface Violation {
  readonly invariant: string;
  /** Virtual time (ms). */
  readonly time: number;
  readonly member: number;
  readonly detail: string;
}

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean =>
  a.length === b.length && a.every((byte, i) => byte === b[i]);

export const sameEntry = (a: LogEntry, b: LogEntry): boolean => {
  if (
    a.index !== b.index ||
    a.term !== b.term ||
    a.kind !== b.kind ||
    a.payload.length !== b.payload.length
  ) {
    return false;
  }
  for (let i = 0; i < a.payload.length; i++) if (a.payload[i] !== b.payload[i]) return false;
  return true;
};

/** What the checker needs to read from a member's durable and in-memory state. */
export interface MemberView {
  /** In-memory log entry (undefined when absent or covered by the snapshot). */
  entryAt(index: number): LogEntry | undefined;
  snapshotIndex(): number;
  /** Durable: does the member's disk hold this entry (or a snapshot covering it)? */
  durablyHolds(entry: LogEntry): boolean;
}

export class InvariantChecker {
  readonly violations: Violation[] = [];
  private readonly leaders = new Map<number, number>();
  private readonly byIndexTerm = new Map<string, { entry: LogEntry; prevTerm: number }>();
  private readonly committed: LogEntry[] = [];
  private readonly applied: LogEntry[] = [];
  private readonly lastApplied = new Map<number, number>();
  private readonly checkedCommit = new Map<number, number>();
  /** Granted votes sent, by term and candidate. */
  private readonly votes = new Map<number, Map<number, Set<number>>>();
  /** The service state first seen at each applied index. */
  private readonly serviceStates = new Map<number, { member: number; state: Uint8Array }>();
  /** The term each snapshot position was first said to have. */
  private readonly snapshotTerms = new Map<number, number>();
  maxLeaderTerm = 0;
  committedMax = 0;

  constructor(
    private readonly quorum: number,
    private readonly views: ReadonlyMap<number, MemberView>,
    private readonly clock: () => number,
  ) {}

  get ok(): boolean {
    return this.violations.length === 0;
  }

  fail(invariant: string, member: number, detail: string): void {
    if (this.violations.length < 50) this.violations.push({ invariant, time: this.clock(), member, detail });
  }

  committedEntry(index: number): LogEntry | undefined {
    return this.committed[index];
  }

  /** `voter` sent a granted vote of `term` to `candidate`. */
  onVote(voter: number, candidate: number, term: number): void {
    let byCandidate = this.votes.get(term);
    if (!byCandidate) {
      byCandidate = new Map();
      this.votes.set(term, byCandidate);
    }
    const voters = byCandidate.get(candidate) ?? new Set<number>();
    voters.add(voter);
    byCandidate.set(candidate, voters);
  }

  onLeader(member: number, term: number): void {
    const granted = this.votes.get(term)?.get(member);
    const votes = 1 + (granted ? [...granted].filter((v) => v !== member).length : 0);
    if (votes < this.quorum) {
      this.fail(
        'LEADER_WITHOUT_QUORUM',
        member,
        `member ${member} leads term ${term} with ${votes} vote(s) of that term (quorum ${this.quorum})`,
      );
    }
    const existing = this.leaders.get(term);
    if (existing !== undefined && existing !== member) {
      this.fail('ELECTION_SAFETY', member, `members ${existing} and ${member} both lead term ${term}`);
    }
    this.leaders.set(term, member);
    if (term > this.maxLeaderTerm) this.maxLeaderTerm = term;
    const view = this.views.get(member);
    if (!view) return;
    const base = view.snapshotIndex();
    for (let i = base + 1; i <= this.committedMax; i++) {
      const mine = view.entryAt(i);
      const want = this.committed[i];
      if (want && (!mine || !sameEntry(mine, want))) {
        this.fail(
          'LEADER_COMPLETENESS',
          member,
          `leader of term ${term} lacks committed entry ${i} (term ${want.term})`,
        );
        return;
      }
    }
  }

  onAppend(member: number, entries: readonly LogEntry[], prevTermOf: (index: number) => number): void {
    for (const entry of entries) {
      const key = `${entry.index}:${entry.term}`;
      const prevTerm = prevTermOf(entry.index - 1);
      const seen = this.byIndexTerm.get(key);
      if (!seen) {
        this.byIndexTerm.set(key, { entry, prevTerm });
        continue;
      }
      if (!sameEntry(seen.entry, entry)) {
        this.fail(
          'LOG_MATCHING',
          member,
          `entry ${entry.index} of term ${entry.term} differs between members`,
        );
      } else if (seen.prevTerm >= 0 && prevTerm >= 0 && seen.prevTerm !== prevTerm) {
        this.fail(
          'LOG_MATCHING',
          member,
          `entry ${entry.index} of term ${entry.term} follows different terms`,
        );
      }
    }
  }

  /** A member's commit position advanced to `commitIndex`. */
  onCommit(member: number, commitIndex: number): void {
    const view = this.views.get(member);
    if (!view) return;
    const from = Math.max(this.checkedCommit.get(member) ?? 0, view.snapshotIndex()) + 1;
    for (let i = from; i <= commitIndex; i++) {
      const entry = view.entryAt(i);
      if (!entry) continue;
      const known = this.committed[i];
      if (known) {
        if (!sameEntry(known, entry)) {
          this.fail(
            'COMMITTED_ENTRY_CHANGED',
            member,
            `member ${member} committed a different entry ${i} (term ${entry.term}) than was committed before (term ${known.term})`,
          );
        }
        continue;
      }
      this.committed[i] = entry;
      if (i > this.committedMax) this.committedMax = i;
      let holders = 0;
      for (const other of this.views.values()) if (other.durablyHolds(entry)) holders++;
      if (holders < this.quorum) {
        this.fail(
          'COMMIT_WITHOUT_QUORUM',
          member,
          `entry ${i} committed while only ${holders} member(s) had flushed it`,
        );
      }
    }
    if (commitIndex > (this.checkedCommit.get(member) ?? 0)) this.checkedCommit.set(member, commitIndex);
  }

  /** A member restarted or installed a snapshot: its apply and commit streams resume at `index`. */
  resetMember(member: number, index: number): void {
    this.lastApplied.set(member, index);
    this.checkedCommit.set(member, index);
  }

  onApply(member: number, entry: LogEntry): void {
    const last = this.lastApplied.get(member) ?? 0;
    if (entry.index !== last + 1) {
      this.fail('APPLIED_PREFIX', member, `applied entry ${entry.index} after ${last}`);
    }
    this.lastApplied.set(member, entry.index);
    const before = this.applied[entry.index];
    if (!before) this.applied[entry.index] = entry;
    else if (!sameEntry(before, entry)) {
      this.fail('APPLIED_PREFIX', member, `applied a different entry ${entry.index} than another member`);
    }
    const committed = this.committed[entry.index];
    if (committed && !sameEntry(committed, entry)) {
      this.fail('APPLIED_PREFIX', member, `applied entry ${entry.index} differs from the committed one`);
    }
  }

  onSnapshot(member: number, index: number, commitIndex: number): void {
    if (index > commitIndex || index > this.committedMax) {
      this.fail(
        'SNAPSHOT_PAST_COMMIT',
        member,
        `snapshot at ${index} but commit is ${commitIndex} (cluster ${this.committedMax})`,
      );
    }
  }

  /** A member's service state after applying (or installing, or restarting at) `index`. */
  onServiceState(member: number, index: number, state: Uint8Array): void {
    const first = this.serviceStates.get(index);
    if (!first) {
      this.serviceStates.set(index, { member, state });
      return;
    }
    if (!sameBytes(first.state, state)) {
      this.fail(
        'SERVICE_STATE_DIVERGED',
        member,
        `member ${member}'s service state at applied index ${index} differs from member ${first.member}'s`,
      );
    }
  }

  /** A snapshot (taken or installed) says the entry at `index` has `term`. */
  onSnapshotTerm(member: number, index: number, term: number): void {
    const committed = this.committed[index];
    const said = this.snapshotTerms.get(index);
    if (said === undefined) this.snapshotTerms.set(index, term);
    const want = committed?.term ?? said;
    if (want !== undefined && want !== term) {
      this.fail(
        'SNAPSHOT_TERM',
        member,
        `snapshot at ${index} says term ${term} but the entry there has term ${want}`,
      );
    }
  }

  /** Every committed entry is still durable on a quorum (checked after crashes and at the end). */
  checkDurability(): void {
    for (let i = 1; i <= this.committedMax; i++) {
      const entry = this.committed[i];
      if (!entry) continue;
      let holders = 0;
      for (const view of this.views.values()) if (view.durablyHolds(entry)) holders++;
      if (holders < this.quorum) {
        this.fail('COMMITTED_ENTRY_LOST', -1, `committed entry ${i} is durable on only ${holders} member(s)`);
        return;
      }
    }
  }
}
