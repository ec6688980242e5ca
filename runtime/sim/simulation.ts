// The deterministic simulator: 3 or 5 consensus cores in one process with a seeded virtual clock,
// network and disk. Every random choice comes from one seeded generator, events run in (time, seq)
// order, so one seed replays a run exactly. The simulator carries out each core's effects the way a
// real member would (SEND over a lossy network, APPEND to a disk that loses unflushed writes on a
// crash, APPLY into a KV service) and checks the safety invariants as it goes.

import { ConsensusNode } from '../../actors/consensus/node.ts';
import {
  type ConsensusEffect,
  type ConsensusInput,
  type ConsensusTimeouts,
  DEFAULT_TIMEOUTS,
  type FaultyRules,
  type PeerMessage,
  type SnapshotImage,
} from '../../actors/consensus/types.ts';
import { KvService } from '../../actors/services/kv.ts';
import { Random } from '../../machines/random.ts';
import { type ClientEvent, KvClients } from './clients.ts';
import { type DiskOp, type FlushQueue, VirtualDisk } from './disk.ts';
import { EventQueue, type Queued } from './event-queue.ts';
import { InvariantChecker, type MemberView } from './invariants.ts';
import type { HistoryOperation } from './kv-history.ts';

export interface NetworkConditions {
  dropRate: number;
  dupRate: number;
  minDelayMs: number;
  maxDelayMs: number;
  /** Chance that a peer message is held back past an election timeout (it lands in a later term). */
  lateRate?: number;
  /** Chance that a TIMEOUT_NOW is delivered once more, late (after a later election began). */
  echoTimeoutNowRate?: number;
  /** Chance that a client's request is delivered once more, late (behind the client's newer commands). */
  lateResendRate?: number;
}

export const CALM_NETWORK: NetworkConditions = Object.freeze({
  dropRate: 0,
  dupRate: 0,
  minDelayMs: 0.5,
  maxDelayMs: 3,
});

export interface SimulationOptions {
  seed: number;
  members?: 3 | 5;
  clients?: number;
  timeouts?: Partial<ConsensusTimeouts>;
  faultyRules?: FaultyRules;
  /** Take a snapshot on a member after this many newly applied entries (0: never). */
  snapshotEvery?: number;
  /** Clock skew: each member's clock gets a large random offset and a rate in [1 - skew, 1 + skew]. */
  clockRateSkew?: number;
  /** A client gives up on an operation after this long (ret null) and moves on. */
  clientOpTimeoutMs?: number;
  network?: Partial<NetworkConditions>;
  /** Budget: the run throws SimulationBudgetExceeded past this many events (default: none). */
  maxSteps?: number;
  /** Budget: ... or past this much real time (ms, from construction; default: none). */
  maxRealMs?: number;
  /**
   * Test-only: a network that rewrites peer messages in flight (null drops it), to show the checkers
   * catch what a broken rule would produce. The checkers see what was sent, not what was delivered.
   */
  tamper?: (from: number, to: number, message: PeerMessage) => PeerMessage | null;
}

/** A seed ran past its step or time budget (a livelock, or a run far slower than it should be). */
export class SimulationBudgetExceeded extends Error {}

type SimEvent =
  | { kind: 'tick'; member: number }
  | { kind: 'deliver'; to: number; from: number; message: PeerMessage; epoch: number }
  | { kind: 'disk'; member: number; incarnation: number; input: ConsensusInput | null }
  | ClientEvent
  | { kind: 'script'; run: () => void };

interface Member {
  readonly id: number;
  node: ConsensusNode | null;
  kv: KvService;
  readonly disk: VirtualDisk;
  incarnation: number;
  paused: boolean;
  deferred: SimEvent[];
  clockOffset: number;
  clockRate: number;
  appliedSinceSnapshot: number;
  staleLeaderMs: number;
}

export interface RoleEvent {
  readonly time: number;
  readonly member: number;
  readonly to: string;
  readonly term: number;
}

const TICK_MS = 10;

export class Simulation {
  readonly seed: number;
  readonly rng: Random;
  readonly memberIds: number[];
  readonly timeouts: ConsensusTimeouts;
  readonly checker: InvariantChecker;
  readonly history: HistoryOperation[];
  readonly roleEvents: RoleEvent[] = [];
  /** Election state changes (`to` is the new election state). */
  readonly electionEvents: RoleEvent[] = [];
  now = 0;
  steps = 0;
  faultsInjected = 0;
  elections = 0;
  /** Retried commands a leader answered from the service's dedup table (applied once: C2, C3). */
  duplicateReplies = 0;
  network: NetworkConditions;
  /** Set by healAll(): scripted faults scheduled earlier no longer fire. */
  healed = false;
  /** The first time, after healAll(), that a running member was a ready leader (null: not yet). */
  readyLeaderAfterHeal: number | null = null;
  /** Called after every processed event (scenario scripts use it to act at an exact moment). */
  afterStep: (() => void) | null = null;
  /** Sees every message put on the wire (a fault plan keeps copies to deliver again much later). */
  recorder: ((from: number, to: number, message: PeerMessage) => void) | null = null;
  /** Called on every election state change (fault plans use it to strike at an exact phase). */
  readonly electionListeners = new Set<(event: RoleEvent) => void>();
  private readonly diskLatency = new Map<number, number>();
  private readonly queue = new EventQueue<SimEvent>();
  private seqCounter = 0;
  private readonly members = new Map<number, Member>();
  private readonly clients: KvClients;
  private readonly blocked = new Set<string>();
  /** A connection's generation per directed link: a message of an older one was lost with it. */
  private readonly linkEpoch = new Map<string, number>();
  private readonly startedAt = performance.now();
  private readonly options: SimulationOptions;
  private readonly snapshotEvery: number;

  constructor(options: SimulationOptions) {
    this.options = options;
    this.seed = options.seed;
    this.rng = new Random(options.seed);
    const count = options.members ?? 3;
    this.memberIds = Array.from({ length: count }, (_, i) => i + 1);
    this.timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
    this.network = { ...CALM_NETWORK, ...options.network };
    this.snapshotEvery = options.snapshotEvery ?? 60;
    const skew = options.clockRateSkew ?? 0;
    const views = new Map<number, MemberView>();
    for (const id of this.memberIds) {
      const member: Member = {
        id,
        node: null,
        kv: new KvService(),
        disk: new VirtualDisk(),
        incarnation: 0,
        paused: false,
        deferred: [],
        clockOffset: skew > 0 ? this.rng.int(0, 3_600_000) : 0,
        clockRate: skew > 0 ? 1 - skew + this.rng.float() * 2 * skew : 1,
        appliedSinceSnapshot: 0,
        staleLeaderMs: 0,
      };
      this.members.set(id, member);
      views.set(id, {
        entryAt: (index) => member.node?.entryAt(index),
        snapshotIndex: () => member.node?.snapshotIndex ?? member.disk.base,
        durablyHolds: (entry) => member.disk.holds(entry),
      });
    }
    this.checker = new InvariantChecker(Math.floor(count / 2) + 1, views, () => this.now);
    for (const id of this.memberIds) {
      this.boot(this.member(id));
      this.schedule(this.rng.int(0, TICK_MS - 1), { kind: 'tick', member: id });
    }
    this.clients = new KvClients(
      {
        rng: this.rng,
        memberIds: this.memberIds,
        now: () => this.now,
        network: () => this.network,
        delay: () => this.delay(),
        schedule: (delay, event) => this.schedule(delay, event),
      },
      options.clients ?? count,
      options.clientOpTimeoutMs ?? 1500,
    );
    this.history = this.clients.history;
  }

  // ----------------------------------------------------------------------------------------------
  // Scripting and observation
  // ----------------------------------------------------------------------------------------------

  member(id: number): Member {
    const member = this.members.get(id);
    if (!member) throw new RangeError(`no member ${id}: members are ${this.memberIds.join(', ')}`);
    return member;
  }

  node(id: number): ConsensusNode | null {
    return this.member(id).node;
  }

  /** The running member that leads the highest term, or null. */
  leader(): number | null {
    let best: number | null = null;
    let bestTerm = -1;
    for (const member of this.members.values()) {
      const node = member.node;
      if (node && !member.paused && node.role === 'LEADER' && node.term > bestTerm) {
        best = member.id;
        bestTerm = node.term;
      }
    }
    return best;
  }

  /** Run a function at a virtual time. */
  at(time: number, run: () => void): void {
    this.schedule(Math.max(0, time - this.now), { kind: 'script', run });
  }

  runUntil(time: number): void {
    while (this.queue.size > 0 && this.queue.peekTime() <= time) {
      const item = this.queue.pop() as Queued<SimEvent>;
      this.checkBudget();
      this.now = item.time;
      this.steps++;
      this.process(item.event);
      if (this.afterStep) this.afterStep();
    }
    this.now = Math.max(this.now, time);
  }

  runFor(ms: number): void {
    this.runUntil(this.now + ms);
  }

  /**
   * Stop a member at once. Its unflushed writes are lost, or (`keepUnflushed`) a random prefix of
   * each flush queue lands, the last append maybe torn. `notifyPeers`: the others' connections to it
   * break (PEER_DISCONNECTED), as when a process dies; otherwise it just goes silent.
   */
  crash(id: number, options: { keepUnflushed?: boolean; notifyPeers?: boolean } = {}): void {
    const member = this.member(id);
    if (!member.node) return;
    this.faultsInjected++;
    member.node = null;
    member.incarnation++;
    member.disk.crash(this.rng, options.keepUnflushed === true);
    if (options.notifyPeers) for (const other of this.memberIds) if (other !== id) this.disconnect(id, other);
    if (member.paused) {
      // The member's clock keeps ticking across the crash: keep its (deferred) tick.
      member.paused = false;
      this.schedule(TICK_MS, { kind: 'tick', member: id });
    }
    member.deferred = [];
    this.checker.checkDurability();
  }

  /** The member's directory is lost (D5): it stops, and restarts (on `restart`) with an empty one. */
  loseDirectory(id: number): void {
    const member = this.member(id);
    this.crash(id);
    member.disk.wipe();
    this.checker.checkDurability();
  }

  /** The connection between two members breaks: what was in flight is lost, both sides are told. */
  disconnect(a: number, b: number): void {
    this.faultsInjected++;
    for (const [from, to] of [
      [a, b],
      [b, a],
    ]) {
      const link = `${from}>${to}`;
      this.linkEpoch.set(link, (this.linkEpoch.get(link) ?? 0) + 1);
      this.schedule(this.rng.float() * 2, {
        kind: 'script',
        run: () => this.input(to, { type: 'PEER_DISCONNECTED', peer: from }),
      });
    }
  }

  /**
   * The member's disk completes no flush for `ms` (then everything queued completes at once), on both
   * flush queues or on one (the other's flushes then overtake it).
   */
  stallDisk(id: number, ms: number, queues: readonly FlushQueue[] = ['log', 'state']): void {
    this.faultsInjected++;
    const disk = this.member(id).disk;
    for (const queue of queues) disk.stallUntil[queue] = Math.max(disk.stallUntil[queue], this.now + ms);
  }

  /** Deliver a copy of an old message now (a connection's buffer replayed long after it was sent). */
  redeliver(from: number, to: number, message: PeerMessage): void {
    this.faultsInjected++;
    this.schedule(this.delay(), { kind: 'deliver', to, from, message, epoch: Number.NaN });
  }

  /** Cut a client off from a member (both directions). */
  blockClient(client: number, member: number): void {
    this.clients.block(client, member);
  }

  get clientIds(): number[] {
    return this.clients.ids;
  }

  restart(id: number): void {
    const member = this.member(id);
    if (member.node) return;
    this.boot(member);
  }

  pause(id: number): void {
    const member = this.member(id);
    if (!member.node || member.paused) return;
    this.faultsInjected++;
    member.paused = true;
  }

  resume(id: number): void {
    const member = this.member(id);
    if (!member.paused) return;
    member.paused = false;
    const deferred = member.deferred;
    member.deferred = [];
    for (const event of deferred) this.schedule(0, event);
  }

  /** Extra flush latency for one member's disk (a slow fsync; writes queued meanwhile share a flush). */
  setDiskLatency(id: number, ms: number): void {
    this.diskLatency.set(id, ms);
  }

  /** Feed an operator input (transfer leadership, snapshot, suspend...) to a running member. */
  input(id: number, input: ConsensusInput): void {
    const member = this.member(id);
    if (member.node && !member.paused) this.feed(member, input);
  }

  /** Block the directed link from -> to. */
  block(from: number, to: number): void {
    this.faultsInjected++;
    this.blocked.add(`${from}>${to}`);
  }

  unblock(from: number, to: number): void {
    this.blocked.delete(`${from}>${to}`);
  }

  /** Symmetric partition: members in different groups cannot talk. */
  partition(groups: readonly (readonly number[])[]): void {
    this.faultsInjected++;
    for (const a of groups) {
      for (const b of groups) {
        if (a === b) continue;
        for (const x of a) for (const y of b) this.blocked.add(`${x}>${y}`);
      }
    }
  }

  isolate(id: number): void {
    this.partition([[id], this.memberIds.filter((m) => m !== id)]);
  }

  healNetwork(): void {
    this.blocked.clear();
    this.clients.unblockAll();
  }

  /** Heal everything: links, crashed and paused members, and a calm network. */
  healAll(): void {
    this.healed = true;
    this.readyLeaderAfterHeal = null;
    this.healNetwork();
    this.network = { ...CALM_NETWORK };
    this.diskLatency.clear();
    for (const id of this.memberIds) {
      this.resume(id);
      this.restart(id);
      this.member(id).disk.calm();
      this.input(id, { type: 'RESUME' });
    }
  }

  setClientsActive(active: boolean): void {
    this.clients.setActive(active);
  }

  /** Start the client workload (each client runs one operation at a time). */
  startClients(): void {
    this.clients.start();
  }

  /** Operations completed (with a reply) by all clients. */
  get completedOps(): number {
    return this.clients.completedOps;
  }

  /** Close out operations still pending: their outcome is unknown. */
  closeHistory(): void {
    this.clients.close();
  }

  // ----------------------------------------------------------------------------------------------
  // Engine
  // ----------------------------------------------------------------------------------------------

  private schedule(delay: number, event: SimEvent): void {
    this.queue.push({ time: this.now + delay, seq: this.seqCounter++, event });
  }

  private localNow(member: Member): number {
    return member.clockOffset + this.now * member.clockRate;
  }

  private boot(member: Member): void {
    const persisted = member.disk.load();
    member.node = new ConsensusNode(
      {
        memberId: member.id,
        members: this.memberIds,
        timeouts: this.timeouts,
        randomSeed: this.rng.uint32(),
        faultyRules: this.options.faultyRules,
        maxBatchBytes: 4096,
        maxBytesInFlight: 16 * 1024,
      },
      persisted,
    );
    member.kv = persisted.snapshot ? KvService.restore(persisted.snapshot.data) : new KvService();
    member.appliedSinceSnapshot = 0;
    member.staleLeaderMs = 0;
    member.disk.freeAt.log = this.now;
    member.disk.freeAt.state = this.now;
    this.checker.resetMember(member.id, persisted.snapshot?.index ?? 0);
    if (persisted.snapshot)
      this.checker.onServiceState(member.id, persisted.snapshot.index, member.kv.snapshot());
  }

  private checkBudget(): void {
    const { maxSteps, maxRealMs } = this.options;
    if (maxSteps !== undefined && this.steps > maxSteps) {
      throw new SimulationBudgetExceeded(
        `seed ${this.seed}: more than ${maxSteps} steps by ${Math.round(this.now)} ms`,
      );
    }
    if (
      maxRealMs !== undefined &&
      (this.steps & 1023) === 0 &&
      performance.now() - this.startedAt > maxRealMs
    ) {
      throw new SimulationBudgetExceeded(
        `seed ${this.seed}: over ${maxRealMs} ms of real time at ${Math.round(this.now)} ms of virtual time (${this.steps} steps)`,
      );
    }
  }

  private process(event: SimEvent): void {
    switch (event.kind) {
      case 'tick': {
        const member = this.member(event.member);
        if (member.paused) {
          member.deferred.push(event);
          return;
        }
        this.schedule(TICK_MS, event);
        if (!member.node) return;
        this.feed(member, { type: 'TICK', now: this.localNow(member) });
        this.checkStaleLeader(member);
        if (this.healed && this.readyLeaderAfterHeal === null && member.node?.isReadyLeader)
          this.readyLeaderAfterHeal = this.now;
        if (
          this.snapshotEvery > 0 &&
          member.appliedSinceSnapshot >= this.snapshotEvery &&
          member.node?.moduleState === 'ACTIVE'
        ) {
          member.appliedSinceSnapshot = 0;
          this.feed(member, { type: 'REQUEST_SNAPSHOT' });
        }
        return;
      }
      case 'deliver': {
        const member = this.member(event.to);
        if (member.paused) {
          member.deferred.push(event);
          return;
        }
        const epoch = this.linkEpoch.get(`${event.from}>${event.to}`) ?? 0;
        if (!Number.isNaN(event.epoch) && event.epoch !== epoch) return; // lost with its connection
        if (member.node)
          this.feed(member, { type: 'PEER_MESSAGE', from: event.from, message: event.message });
        return;
      }
      case 'disk': {
        const member = this.member(event.member);
        if (event.incarnation !== member.incarnation) return;
        if (member.paused) {
          member.deferred.push(event);
          return;
        }
        if (member.node && event.input) this.feed(member, event.input);
        return;
      }
      case 'request': {
        const member = this.member(event.to);
        if (member.paused) {
          member.deferred.push(event);
          return;
        }
        if (!member.node) return;
        this.feed(member, {
          type: 'CLIENT_COMMAND',
          sessionId: this.clients.sessionOf(event.client),
          correlationId: event.correlationId,
          // A simulated client awaits one command at a time: the one it sent.
          lowestAwaited: event.lowestAwaited,
          payload: event.payload,
        });
        return;
      }
      case 'response':
        this.clients.onResponse(event.client, event.correlationId, event.result, event.leaderHint);
        return;
      case 'client':
        this.clients.onTimer(event.client, event.token);
        return;
      case 'script':
        event.run();
        return;
    }
  }

  private feed(member: Member, input: ConsensusInput): void {
    const node = member.node;
    if (!node) return;
    let effects: ConsensusEffect[];
    try {
      effects = node.handle(input);
    } catch (error) {
      this.checker.fail('NODE_ASSERTION', member.id, error instanceof Error ? error.message : String(error));
      this.crash(member.id);
      return;
    }
    for (const effect of effects) {
      if (member.node !== node) return; // crashed part-way (a scenario struck from a listener)
      this.execute(member, node, effect);
    }
  }

  private execute(member: Member, node: ConsensusNode, effect: ConsensusEffect): void {
    switch (effect.type) {
      case 'SEND':
        if (effect.message.type === 'VOTE' && effect.message.granted)
          this.checker.onVote(member.id, effect.to, effect.message.term);
        this.transmit(member.id, effect.to, effect.message);
        return;
      case 'APPEND':
        this.checker.onAppend(member.id, effect.entries, (index) => node.termAt(index));
        this.write(member, { op: 'append', entries: effect.entries }, { type: 'APPENDED', seq: effect.seq });
        return;
      case 'TRUNCATE':
        this.write(member, { op: 'truncate', fromIndex: effect.fromIndex }, null);
        return;
      case 'PURGE':
        this.write(member, { op: 'purge', toIndex: effect.toIndex }, null);
        return;
      case 'SAVE_NODE_STATE':
        this.write(
          member,
          {
            op: 'state',
            currentTerm: effect.currentTerm,
            candidateTermId: effect.candidateTermId,
            votedFor: effect.votedFor,
          },
          { type: 'NODE_STATE_SAVED', seq: effect.seq },
        );
        return;
      case 'COMMIT':
        this.checker.onCommit(member.id, effect.commitIndex);
        return;
      case 'APPLY':
        for (const entry of effect.entries) {
          this.checker.onApply(member.id, entry);
          const reply = member.kv.apply(entry);
          member.appliedSinceSnapshot++;
          if (reply && node.role === 'LEADER') {
            if (reply.duplicate) this.duplicateReplies++;
            const client = this.clients.ofSession(reply.sessionId);
            // A command not applied (a stale copy: outcome unknown) answers nothing the client awaits.
            if (client !== null && reply.outcome.applied)
              this.clients.reply(member.id, client, reply.correlationId, reply.outcome.result, null);
          }
        }
        if (effect.entries.length > 0)
          this.checker.onServiceState(
            member.id,
            effect.entries[effect.entries.length - 1].index,
            member.kv.snapshot(),
          );
        return;
      case 'REJECT': {
        const client = this.clients.ofSession(effect.sessionId);
        if (client !== null)
          this.clients.reply(member.id, client, effect.correlationId, null, effect.leaderId);
        return;
      }
      case 'TAKE_SNAPSHOT': {
        this.checker.onSnapshot(member.id, effect.index, node.commitIndex);
        this.checker.onSnapshotTerm(member.id, effect.index, effect.term);
        const image: SnapshotImage = { index: effect.index, term: effect.term, data: member.kv.snapshot() };
        this.write(member, { op: 'snapshot', image }, { type: 'SNAPSHOT_TAKEN', snapshot: image });
        return;
      }
      case 'INSTALL_SNAPSHOT':
        this.checker.onSnapshot(member.id, effect.snapshot.index, this.checker.committedMax);
        this.checker.onSnapshotTerm(member.id, effect.snapshot.index, effect.snapshot.term);
        member.kv = KvService.restore(effect.snapshot.data);
        this.checker.resetMember(member.id, effect.snapshot.index);
        this.checker.onServiceState(member.id, effect.snapshot.index, member.kv.snapshot());
        this.write(
          member,
          { op: 'install', image: effect.snapshot },
          { type: 'SNAPSHOT_INSTALLED', index: effect.snapshot.index },
        );
        return;
      case 'ROLE_CHANGE':
        this.roleEvents.push({ time: this.now, member: member.id, to: effect.to, term: effect.term });
        if (effect.to === 'LEADER') {
          this.elections++;
          this.checker.onLeader(member.id, effect.term);
        }
        return;
      case 'ELECTION_STATE_CHANGE':
        this.electionEvents.push({ time: this.now, member: member.id, to: effect.to, term: effect.term });
        for (const listener of this.electionListeners)
          listener(this.electionEvents[this.electionEvents.length - 1]);
        return;
      case 'MODULE_STATE_CHANGE':
      case 'PROPOSED':
      case 'PROPOSAL_REJECTED':
        return;
    }
  }

  /**
   * Queue a disk write on its flush queue; it becomes durable (and `done` is fed back) after a flush
   * delay, in order within its queue, no earlier than a stall ends.
   */
  private write(member: Member, op: DiskOp, done: ConsensusInput | null): void {
    const disk = member.disk;
    const write = disk.issue(op, done);
    const extra = Math.max(this.diskLatency.get(member.id) ?? 0, disk.latency[write.queue]);
    // A slow fsync delays each flush by `extra`, not each write: writes queued meanwhile share it.
    const start = Math.max(disk.freeAt[write.queue], this.now + extra, disk.stallUntil[write.queue]);
    const at = start + 0.2 + this.rng.float() * 2;
    disk.freeAt[write.queue] = at;
    const incarnation = member.incarnation;
    this.schedule(at - this.now, {
      kind: 'script',
      run: () => {
        if (member.incarnation !== incarnation) return; // lost (or partly kept) in a crash
        const stalled = disk.stallUntil[write.queue];
        if (stalled > this.now) {
          // The disk stalled after this write was queued: it completes when the stall ends.
          disk.freeAt[write.queue] = Math.max(disk.freeAt[write.queue], stalled);
          this.schedule(stalled - this.now, {
            kind: 'script',
            run: () => this.flushed(member, write, incarnation),
          });
          return;
        }
        this.flushed(member, write, incarnation);
      },
    });
  }

  private flushed(member: Member, write: ReturnType<VirtualDisk['issue']>, incarnation: number): void {
    if (member.incarnation !== incarnation) return;
    member.disk.complete(write);
    this.process({ kind: 'disk', member: member.id, incarnation, input: write.done });
  }

  private delay(): number {
    const { minDelayMs, maxDelayMs } = this.network;
    return minDelayMs + this.rng.float() * (maxDelayMs - minDelayMs);
  }

  /** Held back past an election timeout or several: the message arrives in a later term, or terms. */
  private lateDelay(): number {
    const timeout = this.timeouts.electionTimeoutMs;
    return this.rng.chance(0.7) ? this.rng.int(timeout, 3 * timeout) : this.rng.int(3 * timeout, 8 * timeout);
  }

  private transmit(from: number, to: number, sent: PeerMessage): void {
    const link = `${from}>${to}`;
    if (this.blocked.has(link)) return;
    const message = this.options.tamper ? this.options.tamper(from, to, sent) : sent;
    if (message === null) return;
    const network = this.network;
    if (network.dropRate > 0 && this.rng.chance(network.dropRate)) return;
    const epoch = this.linkEpoch.get(link) ?? 0;
    const late = (network.lateRate ?? 0) > 0 && this.rng.chance(network.lateRate ?? 0);
    this.schedule(late ? this.lateDelay() : this.delay(), { kind: 'deliver', to, from, message, epoch });
    if (network.dupRate > 0 && this.rng.chance(network.dupRate)) {
      this.schedule(this.delay() * 2, { kind: 'deliver', to, from, message, epoch });
    }
    if (this.recorder) this.recorder(from, to, message);
    const echo = network.echoTimeoutNowRate ?? 0;
    if (message.type === 'TIMEOUT_NOW' && echo > 0 && this.rng.chance(echo)) {
      // The copy outlives the connection it was sent on (as a resend after a reconnect would).
      this.schedule(this.lateDelay(), { kind: 'deliver', to, from, message, epoch: Number.NaN });
    }
  }

  private checkStaleLeader(member: Member): void {
    const node = member.node;
    if (node?.role !== 'LEADER' || node.term >= this.checker.maxLeaderTerm) {
      member.staleLeaderMs = 0;
      return;
    }
    member.staleLeaderMs += TICK_MS;
    const bound = this.timeouts.heartbeatTimeoutMs * 2 + 100;
    if (member.staleLeaderMs > bound && member.staleLeaderMs <= bound + TICK_MS) {
      this.checker.fail(
        'STALE_LEADER',
        member.id,
        `member ${member.id} still leads term ${node.term} ${member.staleLeaderMs} ms after term ${this.checker.maxLeaderTerm} elected a leader`,
      );
    }
  }
}
