// The rules `npm run mutate` breaks, one at a time: each a find/replace patch (or a few) on the
// consensus module's source. A patch's text is looked for in every file under actors/consensus/, with
// any run of whitespace matching any other, and must be found exactly once (./scratch.ts refuses
// otherwise): a refactor that moves the guarded line to another file still finds it, one that rewrites
// it fails loudly instead of leaving a mutation that silently changes nothing.
//
// `kind`: a `safety` break must be caught by the sweep (the runner fails if one is not); a `liveness`
// break is reported, caught or not; a `redundant` one breaks a second guard of a rule another line
// already holds (named in `rule`), so no run can tell it apart: reported, not required.

export interface Patch {
  readonly find: string;
  readonly replace: string;
}

export interface Mutation extends Patch {
  readonly id: string;
  /** The rule the patch breaks, in words. */
  readonly rule: string;
  readonly kind: 'safety' | 'liveness' | 'redundant';
  /** Further patches applied with the first (a rule held in more than one place). */
  readonly more?: readonly Patch[];
}

export const MUTATIONS: readonly Mutation[] = [
  {
    id: 'commit-old-term-by-count',
    rule: "a leader commits by counting replicas only entries of its own term (Raft's figure 8)",
    kind: 'safety',
    find: 'if (candidate > this.commit && this.termAt(candidate) === this.currentTerm) {',
    replace: 'if (candidate > this.commit) {',
  },
  {
    id: 'commit-without-quorum',
    rule: 'commit is the highest position a quorum has flushed',
    kind: 'safety',
    find: 'return matches[this.quorum - 1];',
    replace: 'return matches[0];',
  },
  {
    id: 'vote-for-stale-log',
    rule: 'a vote goes only to a candidate whose log is at least as up to date',
    kind: 'safety',
    find: '(message.logTerm === this.lastTerm && message.logIndex >= this.lastIndex);',
    replace: '(message.logTerm === this.lastTerm && message.logIndex >= this.lastIndex) || true;',
  },
  {
    id: 'vote-twice-in-a-term',
    rule: 'a member votes at most once per term',
    kind: 'safety',
    find: '(this.votedFor === null || this.votedFor === from) &&',
    replace: '',
  },
  {
    id: 'vote-before-durable',
    rule: 'a vote is durable before it is sent',
    kind: 'safety',
    find: 'else this.send(from, vote);',
    replace: "else this.out.push({ type: 'SEND', to: from, message: vote });",
  },
  {
    id: 'send-before-term-durable',
    rule: 'nothing that depends on a new term or vote is sent before it is durable',
    kind: 'safety',
    find: 'if (this.savedSeq < this.saveSeq) this.held.push(effect);',
    replace: 'if (this.savedSeq < 0) this.held.push(effect);',
  },
  {
    id: 'lead-before-own-vote-durable',
    rule: 'a candidate leads only once its own term and vote are durable (also held by send(): its vote requests wait for that save, so no vote can come back before it)',
    kind: 'redundant',
    find: 'ballotWon: ({ context: c }) => c.ballotDurable && c.votes.length >= c.quorum,',
    replace: 'ballotWon: ({ context: c }) => c.votes.length >= c.quorum,',
  },
  {
    id: 'count-votes-of-older-terms',
    rule: 'a candidate counts only votes of its current term',
    kind: 'safety',
    find: "message.term === this.currentTerm &&\n          message.granted &&\n          this.electionState === 'CANDIDATE_BALLOT'",
    replace: "message.granted &&\n          this.electionState === 'CANDIDATE_BALLOT'",
  },
  {
    id: 'accept-append-responses-of-older-terms',
    rule: 'a leader ignores append responses of older terms',
    kind: 'safety',
    find: "if (this.role !== 'LEADER' || message.term !== this.currentTerm) return;",
    replace: "if (this.role !== 'LEADER') return;",
  },
  {
    id: 'flush-mark-kept-on-truncate',
    rule: 'a truncation lowers the flush mark',
    kind: 'safety',
    find: 'if (this.flushed >= index) this.flushed = index - 1;',
    replace: '',
  },
  {
    id: 'pending-flush-kept-on-truncate',
    rule: 'appends in flight when a truncation is issued do not count past it once flushed',
    kind: 'safety',
    find: 'for (const pending of this.pendingAppends) pending.lastIndex = Math.min(pending.lastIndex, index - 1);',
    replace: '',
  },
  {
    id: 'flush-mark-kept-on-install',
    rule: 'a snapshot install that discards the log lowers the flush mark to the commit position',
    kind: 'safety',
    find: 'this.flushed = Math.min(this.flushed, this.commit);',
    replace: '',
  },
  {
    id: 'appends-count-before-install-durable',
    rule: 'appends flushed on top of a snapshot count only once the install is durable (also held by ackLeader, which acknowledges nothing while an install is in flight, and by the store: a member cannot lead before its install is durable, as the term it would stand in is saved behind it; so no run tells it apart)',
    kind: 'redundant',
    find: 'if (this.installing > 0 && seq > this.installFence) {',
    replace: 'if (this.installing > 0 && seq < 0) {',
  },
  {
    id: 'follower-commits-unverified',
    rule: 'a follower commits no further than it has verified against the leader',
    kind: 'safety',
    find: 'const newCommit = Math.min(message.commitIndex, this.verified);',
    replace: 'const newCommit = Math.min(message.commitIndex, this.lastIndex);',
  },
  {
    id: 'snapshot-with-current-term',
    rule: "a snapshot stands for an entry only with that entry's term",
    kind: 'safety',
    find: "this.out.push({ type: 'TAKE_SNAPSHOT', index: this.applied, term: this.termAt(this.applied) });",
    replace: "this.out.push({ type: 'TAKE_SNAPSHOT', index: this.applied, term: this.currentTerm });",
  },
  {
    id: 'leader-never-steps-down',
    rule: 'a leader that hears from no quorum within the heartbeat timeout steps down',
    kind: 'liveness',
    find: 'if (heard < this.quorum) {',
    replace: 'if (heard < 1) {',
  },
];
