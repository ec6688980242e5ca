// The deterministic simulator: 3 or 5 members in one process with a seeded virtual clock, network and
// disk, running the production code everywhere else — the consensus module with its session manager
// (sim-member.ts), the services (services.ts: the KV service, or the actor runtime's shards), and real
// client libraries over a simulated client network (client-network.ts, clients.ts). Every random choice
// comes from one seeded generator, events run in (time, seq) order, so one seed replays a run exactly.
// The safety invariants are checked as the members carry out their effects.

import type { ModuleInput } from '../../actors/consensus/module-types.ts';
import type { ConsensusNode } from '../../actors/consensus/node.ts';
import {
  type ConsensusTimeouts,
  DEFAULT_TIMEOUTS,
  type FaultyRules,
  type PeerMessage,
} from '../../actors/consensus/types.ts';
import { Random } from '../../machines/random.ts';
import { ActorWorkload } from './actor-clients.ts';
import { ClientNetwork } from './client-network.ts';
import { KvWorkload, type Workload } from './clients.ts';
import type { FlushQueue } from './disk.ts';
import { EventQueue, type Queued } from './event-queue.ts';
import { GATEWAY_SIM_SERVICES, GatewayWorkload } from './gateways.ts';
import { InvariantChecker } from './invariants.ts';
import type { HistoryOperation } from './kv-history.ts';
import { CALM_NETWORK, type NetworkConditions, PeerLinks } from './peer-links.ts';
import { ActorSimServices, KvSimServices, type SimServices } from './services.ts';
import { type RoleEvent, SimMember } from './sim-member.ts';

export { CALM_NETWORK, type NetworkConditions } from './peer-links.ts';
export type { RoleEvent } from './sim-member.ts';

/** What the members host and the clients do: the KV service (linearizability) or the actor services. */
export type SimWorkload = 'kv' | 'actors' | 'gateways';

export interface SimulationOptions {
  seed: number;
  members?: 3 | 5;
  clients?: number;
  /** Default 'kv'. */
  workload?: SimWorkload;
  /** What each member hosts instead of the workload's services (the testkit's TestCluster: a user's). */
  services?: (member: number) => SimServices;
  timeouts?: Partial<ConsensusTimeouts>;
  faultyRules?: FaultyRules;
  /** Take a snapshot on a member after this many newly applied entries (0: never; default 60 for KV, 200 for actors). */
  snapshotEvery?: number;
  /** Clock skew: each member's clock gets a large random offset and a rate in [1 - skew, 1 + skew]. */
  clockRateSkew?: number;
  /** A client gives up on a command after this long (outcome unknown) and moves on. */
  clientOpTimeoutMs?: number;
  /** A session idle this long is closed by the cluster (C5). Default 4000. */
  sessionTimeoutMs?: number;
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
  /** Something that happens at a member (a client frame): deferred while it is paused, lost if it restarts. */
  | { kind: 'at-member'; member: number; incarnation: number; run: () => void }
  | { kind: 'script'; run: () => void };

const TICK_MS = 10;

export class Simulation {
  readonly seed: number;
  readonly rng: Random;
  readonly memberIds: number[];
  readonly timeouts: ConsensusTimeouts;
  readonly checker: InvariantChecker;
  /** The KV workload's history (empty for the actor workload). */
  readonly history: HistoryOperation[];
  readonly workload: Workload;
  readonly workloadKind: SimWorkload;
  readonly roleEvents: RoleEvent[] = [];
  /** Election state changes (`to` is the new election state). */
  readonly electionEvents: RoleEvent[] = [];
  now = 0;
  steps = 0;
  faultsInjected = 0;
  elections = 0;
  network: NetworkConditions;
  /** Set by healAll(): scripted faults scheduled earlier no longer fire. */
  healed = false;
  /**
   * Until then the fault plan's other draws stand down: a scripted sequence that must line up with the
   * cluster's own moves has the run to itself (another fault's heal would undo its cuts, its restarts
   * bring back the member it keeps down).
   */
  exclusiveUntil = 0;
  /** The first time, after healAll(), that a running member was a ready leader (null: not yet). */
  readyLeaderAfterHeal: number | null = null;
  /** Called after every processed event (scenario scripts use it to act at an exact moment). */
  afterStep: (() => void) | null = null;
  /** Sees every message put on the wire (a fault plan keeps copies to deliver again much later). */
  recorder: ((from: number, to: number, message: PeerMessage) => void) | null = null;
  /** Holds back the messages it returns true for: a fault plan delivers them later (redeliver), or never. */
  holder: ((from: number, to: number, message: PeerMessage) => boolean) | null = null;
  /** Called on every election state change (fault plans use it to strike at an exact phase). */
  readonly electionListeners = new Set<(event: RoleEvent) => void>();
  private readonly diskLatency = new Map<number, number>();
  private readonly queue = new EventQueue<SimEvent>();
  private seqCounter = 0;
  private readonly members = new Map<number, SimMember>();
  /** The clients' network (the testkit's TestCluster dials its own clients on it). */
  readonly clientNetwork: ClientNetwork;
  private readonly clientCount: number;
  private readonly links: PeerLinks;
  private readonly startedAt = performance.now();
  private readonly options: SimulationOptions;

  constructor(options: SimulationOptions) {
    this.options = options;
    this.seed = options.seed;
    this.rng = new Random(options.seed);
    const count = options.members ?? 3;
    this.memberIds = Array.from({ length: count }, (_, i) => i + 1);
    this.timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
    this.network = { ...CALM_NETWORK, ...options.network };
    const workload = options.workload ?? 'kv';
    // The actor state (order book, dedup tables) costs more to snapshot than the KV service's.
    const snapshotEvery = options.snapshotEvery ?? (workload === 'kv' ? 60 : 200);
    const skew = options.clockRateSkew ?? 0;
    this.workloadKind = workload;
    const host = {
      rng: this.rng,
      memberIds: this.memberIds,
      timeouts: this.timeouts,
      faultyRules: options.faultyRules,
      snapshotEvery: snapshotEvery > 0 ? snapshotEvery : null,
      sessionTimeoutMs: options.sessionTimeoutMs ?? 4000,
      now: () => this.now,
      transmit: (from: number, to: number, message: PeerMessage) => this.links.transmit(from, to, message),
      schedule: (ms: number, run: () => void) => this.schedule(ms, { kind: 'script', run }),
      diskLatency: (member: number) => this.diskLatency.get(member) ?? 0,
      onRole: (event: RoleEvent) => this.onRole(event),
      onElection: (event: RoleEvent) => this.onElection(event),
      stopped: (member: number) => this.clientNetwork.memberStopped(member),
      get checker() {
        return checker;
      },
    };
    for (const id of this.memberIds) {
      const services =
        options.services?.(id) ??
        (workload === 'kv'
          ? new KvSimServices()
          : new ActorSimServices(2, workload === 'gateways' ? GATEWAY_SIM_SERVICES : undefined));
      const clockOffset = skew > 0 ? this.rng.int(0, 3_600_000) : 0;
      const clockRate = skew > 0 ? 1 - skew + this.rng.float() * 2 * skew : 1;
      this.members.set(id, new SimMember(id, host, services, clockOffset, clockRate));
    }
    this.links = new PeerLinks({
      rng: this.rng,
      timeouts: this.timeouts,
      conditions: () => this.network,
      tamper: options.tamper,
      recorder: () => this.recorder,
      holder: () => this.holder,
      deliver: (delay, delivery) => this.schedule(delay, { kind: 'deliver', ...delivery }),
    });
    const views = new Map([...this.members].map(([id, member]) => [id, member.view()]));
    const checker = new InvariantChecker(Math.floor(count / 2) + 1, views, () => this.now);
    this.checker = checker;
    this.clientNetwork = new ClientNetwork({
      now: () => this.now,
      delay: () => this.links.delay(),
      schedule: (ms, run) => this.schedule(ms, { kind: 'script', run }),
      scheduleAtMember: (member, ms, run) => this.scheduleAtMember(member, ms, run),
      port: (member) => this.member(member),
      lateResendRate: () => this.network.lateResendRate ?? 0,
      chance: (probability) => this.rng.chance(probability),
    });
    for (const id of this.memberIds) {
      this.member(id).boot();
      this.schedule(this.rng.int(0, TICK_MS - 1), { kind: 'tick', member: id });
    }
    this.clientCount = options.clients ?? count;
    const clientHost = {
      rng: this.rng,
      memberIds: this.memberIds,
      now: () => this.now,
      schedule: (ms: number, run: () => void) => this.schedule(ms, { kind: 'script', run }),
      transportFor: (client: number) => this.clientNetwork.transportFor(client),
    };
    const opTimeoutMs = options.clientOpTimeoutMs ?? 1500;
    const problem = (invariant: string, detail: string) => this.checker.fail(invariant, -1, detail);
    this.workload =
      workload === 'kv'
        ? new KvWorkload(clientHost, this.clientCount, opTimeoutMs)
        : workload === 'gateways'
          ? new GatewayWorkload(clientHost, host.sessionTimeoutMs, opTimeoutMs, problem)
          : new ActorWorkload(clientHost, this.clientCount, opTimeoutMs, problem);
    this.history = this.workload instanceof KvWorkload ? this.workload.history : [];
  }

  // ----------------------------------------------------------------------------------------------
  // Scripting and observation
  // ----------------------------------------------------------------------------------------------

  member(id: number): SimMember {
    const member = this.members.get(id);
    if (!member) throw new RangeError(`no member ${id}: members are ${this.memberIds.join(', ')}`);
    return member;
  }

  node = (id: number): ConsensusNode | null => this.member(id).node;

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
    if (!member.module) return;
    this.faultsInjected++;
    const wasPaused = member.paused;
    member.paused = false;
    member.stop();
    member.disk.crash(this.rng, options.keepUnflushed === true);
    if (options.notifyPeers) for (const other of this.memberIds) if (other !== id) this.disconnect(id, other);
    // The member's clock keeps ticking across the crash: keep its (deferred) tick.
    if (wasPaused) this.schedule(TICK_MS, { kind: 'tick', member: id });
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
      this.links.breakConnection(from, to);
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
    this.schedule(this.links.delay(), { kind: 'deliver', to, from, message, epoch: Number.NaN });
  }

  /** Cut a client off from a member (both directions). */
  blockClient(client: number, member: number): void {
    this.clientNetwork.block(client, member);
  }

  /** A member's replies to a client are lost (its requests still arrive) until the network heals. */
  muteReplies(client: number, member: number): void {
    this.clientNetwork.muteReplies(client, member);
  }

  get clientIds(): number[] {
    return Array.from({ length: this.clientCount }, (_, i) => i);
  }

  restart(id: number): void {
    if (!this.member(id).module) this.member(id).boot();
  }

  pause(id: number): void {
    const member = this.member(id);
    if (!member.module || member.paused) return;
    this.faultsInjected++;
    member.paused = true;
  }

  resume(id: number): void {
    const member = this.member(id);
    if (!member.paused) return;
    member.paused = false;
    const deferred = member.deferred;
    member.deferred = [];
    for (const run of deferred) this.schedule(0, { kind: 'script', run });
  }

  /** Extra flush latency for one member's disk (a slow fsync; writes queued meanwhile share a flush). */
  setDiskLatency(id: number, ms: number): void {
    this.diskLatency.set(id, ms);
  }

  /** Feed an operator input (transfer leadership, snapshot, suspend...) to a running member. */
  input(id: number, input: ModuleInput): void {
    const member = this.member(id);
    if (member.module && !member.paused) member.feed(input);
  }

  /** Block the directed link from -> to. */
  block(from: number, to: number): void {
    this.faultsInjected++;
    this.links.block(from, to);
  }

  unblock(from: number, to: number): void {
    this.links.unblock(from, to);
  }

  /** Symmetric partition: members in different groups cannot talk. */
  partition(groups: readonly (readonly number[])[]): void {
    this.faultsInjected++;
    for (const a of groups) {
      for (const b of groups) {
        if (a === b) continue;
        for (const x of a) for (const y of b) this.links.block(x, y);
      }
    }
  }

  isolate(id: number): void {
    this.partition([[id], this.memberIds.filter((m) => m !== id)]);
  }

  healNetwork(): void {
    this.links.unblockAll();
    this.clientNetwork.unblockAll();
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
    this.workload.setActive(active);
  }

  /** Start the client workload. */
  startClients(): void {
    this.workload.start();
  }

  /** Commands completed (with a reply) by all clients. */
  get completedOps(): number {
    return this.workload.completed;
  }

  /** Retried KV commands a leader answered from the service's dedup table (applied once: C2, C3). */
  get duplicateReplies(): number {
    let total = 0;
    for (const member of this.members.values())
      if (member.services instanceof KvSimServices) total += member.services.duplicateReplies;
    return total;
  }

  /** Close out commands still pending: their outcome is unknown. */
  closeHistory(): void {
    this.workload.close();
  }

  // ----------------------------------------------------------------------------------------------
  // Engine
  // ----------------------------------------------------------------------------------------------

  private schedule(delay: number, event: SimEvent): void {
    this.queue.push({ time: this.now + delay, seq: this.seqCounter++, event });
  }

  private scheduleAtMember(member: number, delay: number, run: () => void): void {
    const { incarnation } = this.member(member);
    this.schedule(delay, { kind: 'at-member', member, incarnation, run });
  }

  private onRole(event: RoleEvent): void {
    this.roleEvents.push(event);
    if (event.to === 'LEADER') {
      this.elections++;
      this.checker.onLeader(event.member, event.term);
    }
  }

  private onElection(event: RoleEvent): void {
    this.electionEvents.push(event);
    for (const listener of this.electionListeners) listener(event);
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
          member.deferred.push(() => this.process(event));
          return;
        }
        this.schedule(TICK_MS, event);
        if (!member.module) return;
        const now = member.localNow();
        member.feed({ type: 'TICK', now, clusterTime: now });
        member.checkStaleLeader(TICK_MS);
        if (this.healed && this.readyLeaderAfterHeal === null && member.node?.isReadyLeader)
          this.readyLeaderAfterHeal = this.now;
        return;
      }
      case 'deliver': {
        const member = this.member(event.to);
        if (member.paused) {
          member.deferred.push(() => this.process(event));
          return;
        }
        if (!this.links.isCurrent(event)) return; // lost with its connection
        member.feed({ type: 'PEER_MESSAGE', from: event.from, message: event.message });
        return;
      }
      case 'at-member': {
        const member = this.member(event.member);
        if (event.incarnation !== member.incarnation) return;
        if (member.paused) {
          member.deferred.push(() => this.process(event));
          return;
        }
        event.run();
        return;
      }
      case 'script':
        event.run();
        return;
    }
  }
}
