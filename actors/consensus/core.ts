// The consensus node's state and its log: configuration, the durable term and vote, the in-memory log
// after the snapshot base, the flush / commit / apply positions, and the plumbing every concern shares
// (held sends, node-state saves, the role and module machines). Replication (replication.ts), the
// election (election-driver.ts) and the input dispatch (node.ts) build on it, one layer each.
//
// Safety rules held here:
// - A term or vote is acted on only once durable: every SEND is held while a SAVE_NODE_STATE is in
//   flight and released on NODE_STATE_SAVED (`send`).
// - A truncation lowers the flush mark, also of appends still in flight (`truncateFrom`).

import { initialTransition, transition } from 'xstate';
import {
  consensusModuleMachine,
  type ModuleEvent,
  type ModuleState,
} from '../../machines/consensus-module.ts';
import {
  type ElectionSnapshot,
  type ElectionState,
  electionMachine,
  electionStateOf,
  type Role,
  roleOf,
} from '../../machines/election.ts';
import { seedRandom } from '../../machines/random.ts';
import type { LogEntry } from '../log/log-entry.ts';
import {
  type ConsensusConfig,
  type ConsensusEffect,
  type ConsensusTimeouts,
  DEFAULT_TIMEOUTS,
  type FaultyRules,
  type PeerMessage,
  type PersistedState,
  type SnapshotImage,
} from './types.ts';

type ModuleSnapshot = ReturnType<typeof initialTransition<typeof consensusModuleMachine>>[0];

export abstract class ConsensusCore {
  readonly memberId: number;
  readonly members: readonly number[];
  readonly peers: readonly number[];
  readonly quorum: number;
  readonly timeouts: ConsensusTimeouts;
  protected readonly faulty: FaultyRules;
  protected readonly maxBytesInFlight: number;
  protected readonly maxBatchBytes: number;

  // Durable (once saved) Raft state.
  protected currentTerm: number;
  protected candidateTermId: number;
  protected votedFor: number | null;
  protected saveSeq = 0;
  protected savedSeq = 0;
  /** Sends held until the node state in flight is durable. */
  protected held: ConsensusEffect[] = [];

  // The log: entries after the snapshot base.
  protected base: number;
  protected baseTerm: number;
  protected entries: LogEntry[];
  protected snapshot: SnapshotImage | null;
  protected appendSeq = 0;
  protected pendingAppends: { seq: number; lastIndex: number }[] = [];
  protected flushed: number;
  protected commit: number;
  protected applied: number;
  /** The index of the leader's snapshot being installed (0: none). */
  protected installing = 0;
  /**
   * While a snapshot is installing: the last append seq emitted before it. Appends after it land on the
   * installed snapshot, so their APPENDED counts only once SNAPSHOT_INSTALLED says the install is durable;
   * until then the highest such seq waits in `appendedAfterInstall`.
   */
  protected installFence = 0;
  protected appendedAfterInstall = 0;

  // Machines.
  protected election: ElectionSnapshot;
  protected module: ModuleSnapshot;

  // Clock.
  protected now = 0;
  /** The member's wall clock (ms since the epoch) from TICK, for entry timestamps only, never for timeouts. */
  protected wallClock = 0;
  /** The member this one follows (itself when leading), or null. */
  protected leader: number | null = null;
  /** Follower: highest index known to match the current leader's log (this term). */
  protected verified = 0;

  /**
   * The highest index the services have replayed (SERVICES_REPLAYED), the replay phases of an election
   * wait for it. Unless `awaitServicesReplay` is configured, an APPLY handed to the shell counts.
   */
  protected replayed: number;
  protected readonly awaitServicesReplay: boolean;

  protected out: ConsensusEffect[] = [];

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
    this.replayed = this.base;
    this.awaitServicesReplay = config.awaitServicesReplay ?? false;

    this.election = initialTransition(electionMachine, {
      memberId: this.memberId,
      members: this.members,
      timeouts: this.timeouts,
      now: 0,
      logTerm: this.lastTerm,
      logIndex: this.lastIndex,
      startup: true,
      lostBallots: 0,
      rng: typeof config.randomSeed === 'number' ? seedRandom(config.randomSeed) : config.randomSeed,
      canvassRound: 0,
      transfer: false,
    })[0];
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
  /** The Raft role, derived from the election (machines/election.ts `roleOf`). */
  get role(): Role {
    return roleOf(this.election);
  }
  get electionState(): ElectionState {
    return electionStateOf(this.election);
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

  /**
   * The timestamp of a new entry: cluster time, in whole milliseconds, never behind the entry before it
   * (so it keeps moving forward across leaders whose clocks disagree: O5). It is the member's wall clock
   * when the shell supplies one, else the monotonic clock of TICK.
   */
  protected clusterTimestamp(): number {
    const last = this.entries.length > 0 ? this.entries[this.entries.length - 1].timestamp : 0;
    return Math.max(Math.floor(this.wallClock > 0 ? this.wallClock : this.now), last);
  }

  // ----------------------------------------------------------------------------------------------
  // Log, commit and apply
  // ----------------------------------------------------------------------------------------------

  protected appendLocal(entries: readonly LogEntry[]): void {
    for (const entry of entries) this.entries.push(entry);
    const seq = ++this.appendSeq;
    this.pendingAppends.push({ seq, lastIndex: this.lastIndex });
    this.out.push({ type: 'APPEND', seq, entries });
  }

  protected truncateFrom(index: number): void {
    this.entries.length = index - this.base - 1;
    if (this.flushed >= index) this.flushed = index - 1;
    for (const pending of this.pendingAppends) pending.lastIndex = Math.min(pending.lastIndex, index - 1);
    if (this.verified >= index) this.verified = index - 1;
    this.out.push({ type: 'TRUNCATE', fromIndex: index });
  }

  /** Count every pending append up to `seq` as flushed; true if the flushed position grew. */
  protected countAppended(seq: number): boolean {
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

  protected applyCommitted(): void {
    if (this.applied >= this.commit) return;
    const from = Math.max(this.applied, this.base) + 1;
    const to = Math.min(this.commit, this.lastIndex);
    if (to < from) return;
    this.out.push({ type: 'APPLY', entries: this.entries.slice(from - this.base - 1, to - this.base) });
    this.applied = to;
    // Without SERVICES_REPLAYED from the shell, handing the entries over counts as replaying them.
    if (!this.awaitServicesReplay) this.replayed = to;
  }

  protected onSnapshotTaken(snapshot: SnapshotImage): void {
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
  // Plumbing
  // ----------------------------------------------------------------------------------------------

  /** Send, unless a node-state save is in flight: then hold the message until it is durable. */
  protected send(to: number, message: PeerMessage): void {
    const effect: ConsensusEffect = { type: 'SEND', to, message };
    if (this.savedSeq < this.saveSeq) this.held.push(effect);
    else this.out.push(effect);
  }

  protected saveNodeState(): number {
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

  protected moduleSend(event: ModuleEvent): void {
    const before = this.moduleState;
    this.module = transition(consensusModuleMachine, this.module, event)[0];
    if (this.moduleState !== before)
      this.out.push({ type: 'MODULE_STATE_CHANGE', from: before, to: this.moduleState, event: event.type });
  }
}
