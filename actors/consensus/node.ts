// The consensus core: Raft with Aeron Cluster's election, as a pure object. `handle(input)` returns the
// effects to carry out, in order; nothing here touches a clock, a socket or a disk. The election phases
// run through the XState election machine (elections are rare); the per-entry path (append, ack,
// commit, apply) is plain code.
//
// Safety rules, and where they live:
// - A term or vote is acted on only once durable: every SEND is held while a SAVE_NODE_STATE is in
//   flight and released on NODE_STATE_SAVED (`send`).
// - A vote goes only to a candidate whose log is at least as up to date, once per term (`onRequestVote`).
// - Commit is the highest position a quorum has flushed, and only for an entry of the leader's term
//   (`maybeCommit`); a follower commits no further than it has verified against the leader.
// - A leader that has not heard from a quorum within the heartbeat timeout steps down (`onTick`).
// - A committed entry is never truncated (`appendFromLeader` throws if asked to).

import { initialTransition, transition } from 'xstate';
import {
  consensusModuleMachine,
  type ModuleEvent,
  type ModuleState,
} from '../../machines/consensus-module.ts';
import {
  ELECTION_STATES,
  type ElectionEvent,
  type ElectionState,
  electionMachine,
} from '../../machines/election.ts';
import { EntryKind, type LogEntry } from '../../machines/log-entry.ts';
import { nextUint32, type RandomState, seedRandom } from '../../machines/random.ts';
import { type Role, type RoleEvent, roleMachine } from '../../machines/role.ts';
import { FollowerProgress, NEVER } from './progress.ts';
import { encodeSessionMessage } from './session-message.ts';
import {
  type AppendEntries,
  type AppendResponse,
  type CanvassPosition,
  type ConsensusConfig,
  type ConsensusEffect,
  type ConsensusInput,
  type ConsensusTimeouts,
  DEFAULT_TIMEOUTS,
  type FaultyRules,
  type InstallSnapshot,
  type PeerMessage,
  type PersistedState,
  type RejectReason,
  type RequestVote,
  type SnapshotImage,
} from './types.ts';

type ElectionSnapshot = ReturnType<typeof initialTransition<typeof electionMachine>>[0];
type RoleSnapshot = ReturnType<typeof initialTransition<typeof roleMachine>>[0];
type ModuleSnapshot = ReturnType<typeof initialTransition<typeof consensusModuleMachine>>[0];

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

export class ConsensusNode {
  readonly memberId: number;
  readonly members: readonly number[];
  readonly peers: readonly number[];
  readonly quorum: number;
  readonly timeouts: ConsensusTimeouts;
  private readonly faulty: FaultyRules;
  private readonly maxBytesInFlight: number;
  private readonly maxBatchBytes: number;
  private rng: RandomState;

  // Durable (once saved) Raft state.
  private currentTerm: number;
  private candidateTermId: number;
  private votedFor: number | null;
  private saveSeq = 0;
  private savedSeq = 0;
  /** Sends held until the node state in flight is durable. */
  private held: ConsensusEffect[] = [];

  // The log: entries after the snapshot base.
  private base: number;
  private baseTerm: number;
  private entries: LogEntry[];
  private snapshot: SnapshotImage | null;
  private appendSeq = 0;
  private pendingAppends: { seq: number; lastIndex: number }[] = [];
  private flushed: number;
  private commit: number;
  private applied: number;
  /** The index of the leader's snapshot being installed (0: none). */
  private installing = 0;
  /**
   * While a snapshot is installing: the last append seq emitted before it. Appends after it land on the
   * installed snapshot, so their APPENDED counts only once SNAPSHOT_INSTALLED says the install is durable;
   * until then the highest such seq waits in `appendedAfterInstall`.
   */
  private installFence = 0;
  private appendedAfterInstall = 0;

  // Machines.
  private election: ElectionSnapshot;
  private roleSnapshot: RoleSnapshot;
  private module: ModuleSnapshot;

  // Clock and election bookkeeping.
  private now = 0;
  /** The member's wall clock (ms since the epoch) from TICK, for entry timestamps only, never for timeouts. */
  private wallClock = 0;
  private started = false;
  private startup = true;
  private canvass = new Map<number, { logTerm: number; logIndex: number }>();
  private canvassStartedAt = 0;
  private lastStatusAt = NEVER;
  private nominationAt = 0;
  private ballotDeadline = 0;
  private ballotSeq = 0;
  /** Ballots this member stood in and lost to the ballot timeout since its last election closed. */
  private lostBallots = 0;
  private votes = new Set<number>();
  private transferElection = false;

  // Leader state.
  private progress = new Map<number, FollowerProgress>();
  private leaderSince = 0;
  private electionLastIndex = 0;
  private termEntryIndex = 0;
  private transferTarget: number | null = null;
  private transferDeadline = 0;

  // Follower state.
  private leader: number | null = null;
  private lastLeaderContact = 0;
  /** Highest index known to match the current leader's log (this term). */
  private verified = 0;
  private lastAckSent = -1;
  private leaderCommitSeen = 0;
  private logMatched = false;
  private catchupTarget = 0;
  private catchupData = false;

  private out: ConsensusEffect[] = [];

  constructor(config: ConsensusConfig, persisted: PersistedState) {
    if (!config.members.includes(config.memberId)) {
      throw new RangeError(
        `memberId ${config.memberId} is not in members [${config.members.join(', ')}]: list every voting member, this one included`,
      );
    }
    if (new Set(config.members).size !== config.members.length) {
      throw new RangeError(`members [${config.members.join(', ')}] has duplicates: list each member id once`);
    }
    this.memberId = config.memberId;
    this.members = [...config.members].sort((a, b) => a - b);
    this.peers = this.members.filter((m) => m !== config.memberId);
    this.quorum = Math.floor(this.members.length / 2) + 1;
    this.timeouts = { ...DEFAULT_TIMEOUTS, ...config.timeouts };
    for (const [name, value] of Object.entries(this.timeouts)) {
      if (!(Number.isFinite(value) && value > 0)) {
        throw new RangeError(`timeouts.${name} must be a positive number of milliseconds, got ${value}`);
      }
    }
    this.faulty = config.faultyRules ?? {};
    this.maxBytesInFlight = config.maxBytesInFlight ?? 256 * 1024;
    this.maxBatchBytes = config.maxBatchBytes ?? 64 * 1024;
    this.rng = typeof config.randomSeed === 'number' ? seedRandom(config.randomSeed) : config.randomSeed;

    this.currentTerm = persisted.currentTerm;
    this.candidateTermId = persisted.candidateTermId;
    this.votedFor = persisted.votedFor;
    this.snapshot = persisted.snapshot;
    this.base = persisted.snapshot?.index ?? 0;
    this.baseTerm = persisted.snapshot?.term ?? 0;
    this.entries = [...persisted.entries];
    this.entries.forEach((entry, i) => {
      if (entry.index !== this.base + 1 + i) {
        throw new RangeError(
          `persisted entry ${i} has index ${entry.index}, expected ${this.base + 1 + i}: entries must follow the snapshot without gaps`,
        );
      }
    });
    this.flushed = this.lastIndex;
    this.commit = this.base;
    this.applied = this.base;

    this.election = initialTransition(electionMachine)[0];
    this.roleSnapshot = initialTransition(roleMachine)[0];
    this.module = initialTransition(consensusModuleMachine)[0];
  }

  // ----------------------------------------------------------------------------------------------
  // Read-only view (for shells, the inspector and the simulator's checkers)
  // ----------------------------------------------------------------------------------------------

  get term(): number {
    return this.currentTerm;
  }
  get vote(): number | null {
    return this.votedFor;
  }
  get role(): Role {
    return this.roleSnapshot.value as Role;
  }
  get electionState(): ElectionState {
    return this.election.value as ElectionState;
  }
  get moduleState(): ModuleState {
    return this.module.value as ModuleState;
  }
  get leaderId(): number | null {
    return this.leader;
  }
  get commitIndex(): number {
    return this.commit;
  }
  get appliedIndex(): number {
    return this.applied;
  }
  get flushedIndex(): number {
    return this.flushed;
  }
  get snapshotIndex(): number {
    return this.base;
  }
  get lastIndex(): number {
    return this.base + this.entries.length;
  }
  get lastTerm(): number {
    return this.entries.length > 0 ? this.entries[this.entries.length - 1].term : this.baseTerm;
  }
  /** True while this member leads and may take client commands. */
  get isReadyLeader(): boolean {
    const state = this.electionState;
    return this.role === 'LEADER' && (state === 'LEADER_READY' || state === 'CLOSED');
  }
  /** The term of the entry at `index`, or -1 when it is not in the in-memory log. */
  termAt(index: number): number {
    if (index === this.base) return this.baseTerm;
    if (index < this.base || index > this.lastIndex) return -1;
    return this.entries[index - this.base - 1].term;
  }
  entryAt(index: number): LogEntry | undefined {
    if (index <= this.base || index > this.lastIndex) return undefined;
    return this.entries[index - this.base - 1];
  }

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

  private finish(): void {
    if (this.moduleState === 'CLOSED') return;
    this.advanceElection();
    if (this.role === 'LEADER') {
      this.replicate();
      // A single-member cluster commits inside replicate(): let the election see it at once.
      if (this.electionState !== 'CLOSED') this.advanceElection();
    }
  }

  private dispatch(input: ConsensusInput): void {
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
      case 'SUSPEND':
        this.moduleSend({ type: 'SUSPEND' });
        return;
      case 'RESUME':
        this.moduleSend({ type: 'RESUME' });
        return;
      case 'SHUTDOWN':
        this.moduleSend({ type: 'SHUTDOWN' });
        this.electionSend({ type: 'CLOSE' });
        this.setRole('FOLLOWER');
        this.moduleSend({ type: 'TERMINATED' });
        return;
    }
  }

  /**
   * The timestamp of a new entry: cluster time, in whole milliseconds, never behind the entry before it
   * (so it keeps moving forward across leaders whose clocks disagree: O5). It is the member's wall clock
   * when the shell supplies one, else the monotonic clock of TICK.
   */
  private clusterTimestamp(): number {
    const last = this.entries.length > 0 ? this.entries[this.entries.length - 1].timestamp : 0;
    return Math.max(Math.floor(this.wallClock > 0 ? this.wallClock : this.now), last);
  }

  private onTick(now: number): void {
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
  // Election
  // ----------------------------------------------------------------------------------------------

  private electionSend(event: ElectionEvent): void {
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
  private startElection(kind: 'START' | 'START_TRANSFER'): void {
    const before = this.election.value as string;
    this.election = initialTransition(electionMachine)[0];
    if (before !== 'INIT') {
      this.out.push({ type: 'ELECTION_STATE_CHANGE', from: before, to: 'INIT', term: this.currentTerm });
    }
    this.transferElection = kind === 'START_TRANSFER';
    this.electionSend({ type: kind });
  }

  private runElectionAction(name: string): void {
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
  private nominationDelay(): number {
    const [value, next] = nextUint32(this.rng);
    this.rng = next;
    const half = Math.max(1, Math.floor(this.timeouts.electionTimeoutMs / 2));
    const window = Math.max(1, Math.floor(half / 2)) * 2 ** Math.min(this.lostBallots, 2);
    return this.nominationRank() * (half + window) + (value % window);
  }

  /** This member's place among the canvass answers with a log equal to its own (0: nominates first). */
  private nominationRank(): number {
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
  private advanceElection(): void {
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

  private nextElectionEvent(state: ElectionState): ElectionEvent | null {
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

  private canvassPosition(reply: boolean): CanvassPosition {
    return {
      type: 'CANVASS_POSITION',
      logTerm: this.lastTerm,
      logIndex: this.lastIndex,
      term: this.currentTerm,
      reply,
    };
  }

  private hasLiveLeader(): boolean {
    if (this.role === 'LEADER') return true;
    return this.leader !== null && this.now - this.lastLeaderContact < this.timeouts.heartbeatTimeoutMs;
  }

  private leaderLost(): void {
    this.leader = null;
    const state = this.electionState;
    if (FOLLOWER_PATH.has(state)) this.electionSend({ type: 'LEADER_LOST' });
    else if (state === 'CLOSED' || state === 'INIT') this.startElection('START');
  }

  private stepDown(): void {
    this.setRole('FOLLOWER');
    this.leader = null;
    this.progress.clear();
    this.transferTarget = null;
    if (LEADER_PATH.has(this.electionState)) this.electionSend({ type: 'STEP_DOWN' });
    else this.startElection('START');
  }

  /** Adopt a newer term: forget the vote, persist, and leave any leadership or candidacy. */
  private adoptTerm(term: number): void {
    this.currentTerm = term;
    this.votedFor = null;
    this.saveNodeState();
    if (this.role === 'LEADER') this.stepDown();
    else if (this.electionState === 'CANDIDATE_BALLOT') this.electionSend({ type: 'HIGHER_TERM_SEEN' });
  }

  /** Record that `from` leads the current term; moves the election onto the follower path if needed. */
  private discoverLeader(from: number): void {
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

  // ----------------------------------------------------------------------------------------------
  // Peer messages
  // ----------------------------------------------------------------------------------------------

  private onPeerMessage(from: number, message: PeerMessage): void {
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
          this.votes.add(from);
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

  private onCanvassPosition(from: number, message: CanvassPosition): void {
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

  private onRequestVote(from: number, message: RequestVote): void {
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

  private onAppend(from: number, message: AppendEntries): void {
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
        this.logMatched = true;
        this.ackLeader(true);
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
    if (entries.length > 0) this.catchupData = true;
    this.logMatched = true;
    this.verified = Math.max(this.verified, prevIndex + entries.length);
    const newCommit = Math.min(message.commitIndex, this.verified);
    if (newCommit > this.commit) {
      this.commit = newCommit;
      this.out.push({ type: 'COMMIT', commitIndex: newCommit });
      this.applyCommitted();
    }
    // New entries are acknowledged when flushed (APPENDED); anything else is answered now.
    if (!appended) this.ackLeader(true);
  }

  /** Reconcile the log with entries that follow a matching position; returns true if any were appended. */
  private appendFromLeader(entries: readonly LogEntry[]): boolean {
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

  private onAppendResponse(from: number, message: AppendResponse): void {
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

  private onInstallSnapshot(from: number, message: InstallSnapshot): void {
    if (message.term < this.currentTerm) {
      this.reply(from, false, message.index, this.lastIndex, this.lastTerm);
      return;
    }
    if (this.role === 'LEADER') return;
    this.discoverLeader(from);
    this.catchupData = true;
    if (message.index <= this.commit || this.installing >= message.index) {
      this.verified = Math.max(this.verified, this.commit);
      this.logMatched = true;
      this.ackLeader(true);
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
    this.installing = message.index;
    this.out.push({ type: 'INSTALL_SNAPSHOT', snapshot: image });
    this.out.push({ type: 'COMMIT', commitIndex: this.commit });
  }

  private onSnapshotInstalled(index: number): void {
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
      this.logMatched = true;
      this.ackLeader(true);
    }
  }

  private reply(
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
    this.send(to, message);
  }

  /** Tell the leader how far this member has flushed what it verified (always, or only if it grew). */
  private ackLeader(always: boolean): void {
    if (this.leader === null || this.leader === this.memberId || this.installing > 0) return;
    const match = Math.min(this.flushed, this.verified);
    if (!always && match <= this.lastAckSent) return;
    this.lastAckSent = match;
    this.reply(this.leader, true, 0, 0, 0);
  }

  // ----------------------------------------------------------------------------------------------
  // Log, commit and apply
  // ----------------------------------------------------------------------------------------------

  private appendLocal(entries: readonly LogEntry[]): void {
    for (const entry of entries) this.entries.push(entry);
    const seq = ++this.appendSeq;
    this.pendingAppends.push({ seq, lastIndex: this.lastIndex });
    this.out.push({ type: 'APPEND', seq, entries });
  }

  private truncateFrom(index: number): void {
    this.entries.length = index - this.base - 1;
    if (this.flushed >= index) this.flushed = index - 1;
    for (const pending of this.pendingAppends) pending.lastIndex = Math.min(pending.lastIndex, index - 1);
    if (this.verified >= index) this.verified = index - 1;
    this.out.push({ type: 'TRUNCATE', fromIndex: index });
  }

  private onAppended(seq: number): void {
    if (this.installing > 0 && seq > this.installFence) {
      // Flushed on top of a snapshot whose install is not durable yet: held until SNAPSHOT_INSTALLED.
      this.appendedAfterInstall = Math.max(this.appendedAfterInstall, seq);
      seq = this.installFence;
    }
    if (!this.countAppended(seq)) return;
    if (this.role === 'LEADER') this.maybeCommit();
    else this.ackLeader(false);
  }

  /** Count every pending append up to `seq` as flushed; true if the flushed position grew. */
  private countAppended(seq: number): boolean {
    let grew = false;
    while (this.pendingAppends.length > 0 && this.pendingAppends[0].seq <= seq) {
      const pending = this.pendingAppends.shift() as { seq: number; lastIndex: number };
      if (pending.lastIndex > this.flushed) {
        this.flushed = pending.lastIndex;
        grew = true;
      }
    }
    return grew;
  }

  /** The highest index a quorum (this member included) has flushed and matched. */
  private quorumMatch(): number {
    const matches = [this.flushed];
    for (const pr of this.progress.values()) matches.push(pr.match);
    matches.sort((a, b) => b - a);
    return matches[this.quorum - 1];
  }

  private maybeCommit(): void {
    const candidate = this.faulty.commitWithoutQuorum ? this.flushed : this.quorumMatch();
    // Only an entry of the leader's own term is committed by counting replicas (Raft §5.4.2).
    if (candidate > this.commit && this.termAt(candidate) === this.currentTerm) {
      this.commit = candidate;
      this.out.push({ type: 'COMMIT', commitIndex: candidate });
      this.applyCommitted();
    }
  }

  private applyCommitted(): void {
    if (this.applied >= this.commit) return;
    const from = Math.max(this.applied, this.base) + 1;
    const to = Math.min(this.commit, this.lastIndex);
    if (to < from) return;
    this.out.push({ type: 'APPLY', entries: this.entries.slice(from - this.base - 1, to - this.base) });
    this.applied = to;
  }

  private onSnapshotTaken(snapshot: SnapshotImage): void {
    if (this.moduleState === 'SNAPSHOT') this.moduleSend({ type: 'SNAPSHOT_DONE' });
    if (snapshot.index > this.commit) {
      throw new RangeError(
        `snapshot at ${snapshot.index} is past the commit position ${this.commit}: snapshot only the applied position TAKE_SNAPSHOT named`,
      );
    }
    if (snapshot.index <= this.base || snapshot.index > this.lastIndex) return;
    if (this.termAt(snapshot.index) !== snapshot.term) {
      throw new RangeError(
        `snapshot at ${snapshot.index} says term ${snapshot.term} but the log has term ${this.termAt(snapshot.index)} there`,
      );
    }
    this.entries = this.entries.slice(snapshot.index - this.base);
    this.base = snapshot.index;
    this.baseTerm = snapshot.term;
    this.snapshot = snapshot;
    this.out.push({ type: 'PURGE', toIndex: snapshot.index });
  }

  // ----------------------------------------------------------------------------------------------
  // Leader: client input, replication, transfer
  // ----------------------------------------------------------------------------------------------

  /** Why this member cannot take input now (null when it can: a ready leader, active, not transferring). */
  private refusal(): RejectReason | null {
    const state = this.moduleState;
    if (state === 'SUSPENDED') return 'SUSPENDED';
    if (state !== 'ACTIVE' && state !== 'SNAPSHOT') return 'CLOSED';
    if (!this.isReadyLeader) return 'NOT_LEADER';
    if (this.transferTarget !== null) return 'TRANSFERRING';
    return null;
  }

  private onClientCommand(input: Extract<ConsensusInput, { type: 'CLIENT_COMMAND' }>): void {
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

  private onPropose(kind: EntryKind, payload: Uint8Array): void {
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
  private replicate(): void {
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

  private sendSnapshot(peer: number, pr: FollowerProgress): void {
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
  private batchEnd(from: number): number {
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

  private sendAppend(to: number, prevIndex: number, entries: readonly LogEntry[]): void {
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

  private onTransferLeadership(to: number): void {
    if (!this.isReadyLeader || !this.peers.includes(to)) return;
    this.transferTarget = to;
    this.transferDeadline = this.now + this.timeouts.electionTimeoutMs;
    const pr = this.progress.get(to);
    if (pr && pr.match >= this.lastIndex) this.sendTimeoutNow(to);
  }

  private sendTimeoutNow(to: number): void {
    this.send(to, { type: 'TIMEOUT_NOW', term: this.currentTerm });
  }

  // ----------------------------------------------------------------------------------------------
  // Plumbing
  // ----------------------------------------------------------------------------------------------

  /** Send, unless a node-state save is in flight: then hold the message until it is durable. */
  private send(to: number, message: PeerMessage): void {
    const effect: ConsensusEffect = { type: 'SEND', to, message };
    if (this.savedSeq < this.saveSeq) this.held.push(effect);
    else this.out.push(effect);
  }

  private saveNodeState(): number {
    const seq = ++this.saveSeq;
    this.out.push({
      type: 'SAVE_NODE_STATE',
      seq,
      currentTerm: this.currentTerm,
      candidateTermId: this.candidateTermId,
      votedFor: this.votedFor,
    });
    return seq;
  }

  private setRole(role: Role): void {
    const from = this.role;
    if (from === role && role !== 'CANDIDATE') return;
    const event: RoleEvent =
      role === 'CANDIDATE'
        ? { type: 'BALLOT_STARTED' }
        : role === 'LEADER'
          ? { type: 'ELECTED' }
          : { type: 'STEPPED_DOWN' };
    this.roleSnapshot = transition(roleMachine, this.roleSnapshot, event)[0];
    if (this.role !== role) {
      throw new Error(`member ${this.memberId}: role cannot go from ${from} to ${role}`);
    }
    if (from !== role) this.out.push({ type: 'ROLE_CHANGE', from, to: role, term: this.currentTerm });
  }

  private moduleSend(event: ModuleEvent): void {
    const before = this.moduleState;
    this.module = transition(consensusModuleMachine, this.module, event)[0];
    if (this.moduleState !== before)
      this.out.push({ type: 'MODULE_STATE_CHANGE', from: before, to: this.moduleState });
  }
}
