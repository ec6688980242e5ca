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
  type PersistedState,
  type SnapshotImage,
} from '../../actors/consensus/types.ts';
import { encodeKvCommand, type KvResult, KvService } from '../../actors/services/kv.ts';
import type { LogEntry } from '../../machines/log-entry.ts';
import { Random } from '../../machines/random.ts';
import { InvariantChecker, type MemberView } from './invariants.ts';
import type { HistoryOperation, KvInput } from './linearizability.ts';

export interface NetworkConditions {
  dropRate: number;
  dupRate: number;
  minDelayMs: number;
  maxDelayMs: number;
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
}

type SimEvent =
  | { kind: 'tick'; member: number }
  | { kind: 'deliver'; to: number; from: number; message: PeerMessage }
  | { kind: 'disk'; member: number; incarnation: number; input: ConsensusInput | null }
  | { kind: 'request'; to: number; client: number; correlationId: number; payload: Uint8Array }
  | {
      kind: 'response';
      client: number;
      correlationId: number;
      result: KvResult | null;
      leaderHint: number | null;
    }
  | { kind: 'client'; client: number; token: number }
  | { kind: 'script'; run: () => void };

interface Queued {
  time: number;
  seq: number;
  event: SimEvent;
}

/** A binary min-heap on (time, seq). */
class EventQueue {
  private heap: Queued[] = [];
  get size(): number {
    return this.heap.length;
  }
  peekTime(): number {
    return this.heap.length > 0 ? this.heap[0].time : Number.POSITIVE_INFINITY;
  }
  push(item: Queued): void {
    const h = this.heap;
    h.push(item);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!less(h[i], h[p])) break;
      [h[i], h[p]] = [h[p], h[i]];
      i = p;
    }
  }
  pop(): Queued | undefined {
    const h = this.heap;
    if (h.length === 0) return undefined;
    const top = h[0];
    const last = h.pop() as Queued;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && less(h[l], h[m])) m = l;
        if (r < h.length && less(h[r], h[m])) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m], h[i]];
        i = m;
      }
    }
    return top;
  }
}
const less = (a: Queued, b: Queued): boolean => a.time < b.time || (a.time === b.time && a.seq < b.seq);

type DiskOp =
  | { op: 'append'; entries: readonly LogEntry[] }
  | { op: 'truncate'; fromIndex: number }
  | { op: 'purge'; toIndex: number }
  | { op: 'state'; currentTerm: number; candidateTermId: number; votedFor: number | null }
  | { op: 'snapshot'; image: SnapshotImage }
  | { op: 'install'; image: SnapshotImage };

/** A member's disk: what is durable, plus writes queued to flush in order (lost on a crash). */
class VirtualDisk {
  currentTerm = 0;
  candidateTermId = 0;
  votedFor: number | null = null;
  snapshot: SnapshotImage | null = null;
  entries: LogEntry[] = [];
  flushFreeAt = 0;

  get base(): number {
    return this.snapshot?.index ?? 0;
  }

  apply(op: DiskOp): void {
    switch (op.op) {
      case 'append':
        for (const entry of op.entries) {
          const at = entry.index - this.base - 1;
          if (at < 0) continue;
          this.entries.length = Math.min(this.entries.length, at);
          if (at === this.entries.length) this.entries.push(entry);
        }
        return;
      case 'truncate':
        this.entries.length = Math.max(0, Math.min(this.entries.length, op.fromIndex - this.base - 1));
        return;
      case 'purge': {
        const drop = op.toIndex - this.base;
        if (drop > 0 && this.snapshot && this.snapshot.index >= op.toIndex)
          this.entries = this.entries.slice(drop);
        return;
      }
      case 'state':
        this.currentTerm = op.currentTerm;
        this.candidateTermId = op.candidateTermId;
        this.votedFor = op.votedFor;
        return;
      case 'snapshot': {
        if (op.image.index <= this.base) return; // an older snapshot than the one installed
        // The log is purged by the PURGE that follows; keep entries aligned to the new base now.
        const drop = op.image.index - this.base;
        this.entries = this.entries.slice(Math.max(0, drop));
        this.snapshot = op.image;
        return;
      }
      case 'install': {
        const at = op.image.index - this.base - 1;
        const keep = at >= 0 && at < this.entries.length && this.entries[at].term === op.image.term;
        this.entries = keep ? this.entries.slice(at + 1) : [];
        this.snapshot = op.image;
        return;
      }
    }
  }

  load(): PersistedState {
    return {
      currentTerm: this.currentTerm,
      candidateTermId: this.candidateTermId,
      votedFor: this.votedFor,
      snapshot: this.snapshot,
      entries: [...this.entries],
    };
  }

  holds(entry: LogEntry): boolean {
    if (entry.index <= this.base) return true;
    const mine = this.entries[entry.index - this.base - 1];
    return mine !== undefined && mine.term === entry.term;
  }
}

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

interface Client {
  readonly id: number;
  readonly sessionId: number;
  target: number;
  nextCorrelation: number;
  op: { correlationId: number; record: HistoryOperation; giveUpAt: number; token: number } | null;
  token: number;
  active: boolean;
  completed: number;
}

export interface RoleEvent {
  readonly time: number;
  readonly member: number;
  readonly to: string;
  readonly term: number;
}

const TICK_MS = 10;
const CLIENT_RETRY_MS = 150;
const KEYS = ['x', 'y', 'z'];

export class Simulation {
  readonly seed: number;
  readonly rng: Random;
  readonly memberIds: number[];
  readonly timeouts: ConsensusTimeouts;
  readonly checker: InvariantChecker;
  readonly history: HistoryOperation[] = [];
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
  /** Called after every processed event (scenario scripts use it to act at an exact moment). */
  afterStep: (() => void) | null = null;
  private readonly diskLatency = new Map<number, number>();
  private readonly queue = new EventQueue();
  private seqCounter = 0;
  private readonly members = new Map<number, Member>();
  private readonly clients: Client[] = [];
  private readonly blocked = new Set<string>();
  private readonly options: SimulationOptions;
  private readonly snapshotEvery: number;
  private readonly clientOpTimeoutMs: number;

  constructor(options: SimulationOptions) {
    this.options = options;
    this.seed = options.seed;
    this.rng = new Random(options.seed);
    const count = options.members ?? 3;
    this.memberIds = Array.from({ length: count }, (_, i) => i + 1);
    this.timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
    this.network = { ...CALM_NETWORK, ...options.network };
    this.snapshotEvery = options.snapshotEvery ?? 60;
    this.clientOpTimeoutMs = options.clientOpTimeoutMs ?? 1500;
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
    const clientCount = options.clients ?? count;
    for (let i = 0; i < clientCount; i++) {
      this.clients.push({
        id: i,
        sessionId: 1000 + i,
        target: this.rng.pick(this.memberIds),
        nextCorrelation: 1,
        op: null,
        token: 0,
        active: true,
        completed: 0,
      });
    }
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
      const item = this.queue.pop() as Queued;
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

  crash(id: number): void {
    const member = this.member(id);
    if (!member.node) return;
    this.faultsInjected++;
    member.node = null;
    member.incarnation++;
    if (member.paused) {
      // The member's clock keeps ticking across the crash: keep its (deferred) tick.
      member.paused = false;
      this.schedule(TICK_MS, { kind: 'tick', member: id });
    }
    member.deferred = [];
    this.checker.checkDurability();
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

  /** Extra flush latency for one member's disk (a slow fsync). */
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
  }

  /** Heal everything: links, crashed and paused members, and a calm network. */
  healAll(): void {
    this.healed = true;
    this.healNetwork();
    this.network = { ...CALM_NETWORK };
    for (const id of this.memberIds) {
      this.resume(id);
      this.restart(id);
    }
  }

  setClientsActive(active: boolean): void {
    for (const client of this.clients) {
      const wasActive = client.active;
      client.active = active;
      if (active && !wasActive && client.op === null) this.scheduleClient(client, this.rng.int(0, 20));
    }
  }

  /** Start the client workload (each client runs one operation at a time). */
  startClients(): void {
    for (const client of this.clients) this.scheduleClient(client, this.rng.int(0, 50));
  }

  /** Operations completed (with a reply) by all clients. */
  get completedOps(): number {
    return this.clients.reduce((n, c) => n + c.completed, 0);
  }

  /** Close out operations still pending: their outcome is unknown. */
  closeHistory(): void {
    for (const client of this.clients) {
      client.op = null;
      client.active = false;
    }
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
    member.disk.flushFreeAt = this.now;
    this.checker.resetMember(member.id, persisted.snapshot?.index ?? 0);
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
          sessionId: this.clients[event.client].sessionId,
          correlationId: event.correlationId,
          // A simulated client awaits one command at a time: the one it sends.
          lowestAwaited: event.correlationId,
          payload: event.payload,
        });
        return;
      }
      case 'response':
        this.onClientResponse(event.client, event.correlationId, event.result, event.leaderHint);
        return;
      case 'client':
        this.onClientTimer(event.client, event.token);
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
    for (const effect of effects) this.execute(member, node, effect);
  }

  private execute(member: Member, node: ConsensusNode, effect: ConsensusEffect): void {
    switch (effect.type) {
      case 'SEND':
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
            const client = reply.sessionId - 1000;
            if (client >= 0 && client < this.clients.length) {
              // A command not applied (a stale copy: outcome unknown) answers nothing the client awaits.
              if (reply.outcome.applied)
                this.toClient(client, reply.correlationId, reply.outcome.result, null);
            }
          }
        }
        return;
      case 'REJECT': {
        const client = effect.sessionId - 1000;
        if (client >= 0 && client < this.clients.length)
          this.toClient(client, effect.correlationId, null, effect.leaderId);
        return;
      }
      case 'TAKE_SNAPSHOT': {
        this.checker.onSnapshot(member.id, effect.index, node.commitIndex);
        const image: SnapshotImage = { index: effect.index, term: effect.term, data: member.kv.snapshot() };
        this.write(member, { op: 'snapshot', image }, { type: 'SNAPSHOT_TAKEN', snapshot: image });
        return;
      }
      case 'INSTALL_SNAPSHOT':
        this.checker.onSnapshot(member.id, effect.snapshot.index, this.checker.committedMax);
        member.kv = KvService.restore(effect.snapshot.data);
        this.checker.resetMember(member.id, effect.snapshot.index);
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
        return;
      case 'MODULE_STATE_CHANGE':
      case 'PROPOSED':
      case 'PROPOSAL_REJECTED':
        return;
    }
  }

  /** Queue a disk write; it becomes durable (and `done` is fed back) after a short flush delay. */
  private write(member: Member, op: DiskOp, done: ConsensusInput | null): void {
    const extra = this.diskLatency.get(member.id) ?? 0;
    const at = Math.max(member.disk.flushFreeAt, this.now) + 0.2 + this.rng.float() * 2 + extra;
    member.disk.flushFreeAt = at;
    const incarnation = member.incarnation;
    this.schedule(at - this.now, {
      kind: 'script',
      run: () => {
        if (member.incarnation !== incarnation) return; // lost in a crash
        member.disk.apply(op);
        this.process({ kind: 'disk', member: member.id, incarnation, input: done });
      },
    });
  }

  private delay(): number {
    const { minDelayMs, maxDelayMs } = this.network;
    return minDelayMs + this.rng.float() * (maxDelayMs - minDelayMs);
  }

  private transmit(from: number, to: number, message: PeerMessage): void {
    if (this.blocked.has(`${from}>${to}`)) return;
    if (this.network.dropRate > 0 && this.rng.chance(this.network.dropRate)) return;
    this.schedule(this.delay(), { kind: 'deliver', to, from, message });
    if (this.network.dupRate > 0 && this.rng.chance(this.network.dupRate)) {
      this.schedule(this.delay() * 2, { kind: 'deliver', to, from, message });
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

  // ----------------------------------------------------------------------------------------------
  // Clients
  // ----------------------------------------------------------------------------------------------

  private scheduleClient(client: Client, delay: number): void {
    client.token++;
    this.schedule(delay, { kind: 'client', client: client.id, token: client.token });
  }

  private toClient(
    client: number,
    correlationId: number,
    result: KvResult | null,
    leaderHint: number | null,
  ): void {
    if (this.network.dropRate > 0 && this.rng.chance(this.network.dropRate)) return;
    this.schedule(this.delay(), { kind: 'response', client, correlationId, result, leaderHint });
  }

  private sendRequest(client: Client): void {
    const op = client.op;
    if (!op) return;
    const payload = encodeKvCommand(op.record.input);
    if (!(this.network.dropRate > 0 && this.rng.chance(this.network.dropRate))) {
      this.schedule(this.delay(), {
        kind: 'request',
        to: client.target,
        client: client.id,
        correlationId: op.correlationId,
        payload,
      });
    }
    this.scheduleClient(client, CLIENT_RETRY_MS);
  }

  private newInput(client: Client): KvInput {
    const key = this.rng.pick(KEYS);
    const roll = this.rng.float();
    const value = `c${client.id}-${client.nextCorrelation}`;
    if (roll < 0.3) return { op: 'get', key };
    if (roll < 0.7) return { op: 'put', key, value };
    const expected = this.rng.chance(0.3) ? null : this.lastValueFor(key);
    return { op: 'cas', key, expected, value };
  }

  private lastValueFor(key: string): string | null {
    for (let i = this.history.length - 1; i >= 0 && i >= this.history.length - 20; i--) {
      const h = this.history[i];
      if (h.input.key !== key) continue;
      if (h.input.op !== 'get') return h.input.value;
      if (h.output && 'value' in h.output) return h.output.value;
    }
    return null;
  }

  private onClientTimer(id: number, token: number): void {
    const client = this.clients[id];
    if (token !== client.token) return;
    if (client.op === null) {
      if (!client.active) return;
      const correlationId = client.nextCorrelation++;
      const input = this.newInput(client);
      const record: HistoryOperation = { clientId: id, input, call: this.now, ret: null, output: null };
      this.history.push(record);
      client.op = { correlationId, record, giveUpAt: this.now + this.clientOpTimeoutMs, token: 0 };
      this.sendRequest(client);
      return;
    }
    if (this.now >= client.op.giveUpAt) {
      // Unknown outcome: the history keeps ret = null; the client moves on.
      client.op = null;
      if (client.active) this.scheduleClient(client, this.rng.int(1, 20));
      return;
    }
    // No answer in time: try another member with the same correlation id (dedup applies it once).
    client.target = this.rng.pick(this.memberIds);
    this.sendRequest(client);
  }

  private onClientResponse(
    id: number,
    correlationId: number,
    result: KvResult | null,
    leaderHint: number | null,
  ): void {
    const client = this.clients[id];
    const op = client.op;
    if (!op || op.correlationId !== correlationId) return;
    if (result === null) {
      client.target = leaderHint ?? this.rng.pick(this.memberIds);
      client.token++;
      const token = client.token;
      this.schedule(this.rng.int(5, 25), {
        kind: 'script',
        run: () => {
          if (client.token === token && client.op === op) this.sendRequest(client);
        },
      });
      return;
    }
    op.record.ret = this.now;
    op.record.output = result;
    client.op = null;
    client.completed++;
    if (client.active) this.scheduleClient(client, this.rng.int(0, 10));
  }
}
