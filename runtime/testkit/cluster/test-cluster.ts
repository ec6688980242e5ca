// TestCluster: 3 or 5 members in one process running a user's real services on the simulator
// (runtime/sim: the production consensus module, the actor runtime's shards, the client library's
// connection machine) over a seeded virtual network, disk and clock. A test drives real ChorusClients,
// injects faults, moves virtual time, and at the end gets the simulator's safety invariants plus the
// checks in checks.ts. One seed replays a run exactly, so a failure names the seed that reproduces it.
//
//   const cluster = new TestCluster({ services: bank, seed: 7 });
//   const accounts = cluster.serviceClient(bankService);
//   await cluster.run(accounts.command({ type: 'DEPOSIT', account: 'alice', amount: 100 }));
//   cluster.kill(cluster.leader());
//   await cluster.runUntilIdle();
//   cluster.verify();   // throws TestClusterFailure naming the seed

import type { z } from 'zod';
import { formatAddress } from '../../../actors/actor-runtime/protocol.ts';
import type { HostedService, Service } from '../../../actors/actor-runtime/service.ts';
import type { ConsensusTimeouts } from '../../../actors/consensus/types.ts';
import type { LogEntry } from '../../../actors/log/log-entry.ts';
import { Random } from '../../../machines/random.ts';
import { type ServiceClient, serviceClient } from '../../actor-runtime/service-client.ts';
import { ChorusClient, type ClientOptions } from '../../client/client.ts';
import { endpointOf } from '../../sim/client-network.ts';
import { type FaultKind, planFaults } from '../../sim/faults.ts';
import type { Violation } from '../../sim/invariants.ts';
import { ActorSimServices, KvSimServices, type SimServices } from '../../sim/services.ts';
import { type NetworkConditions, Simulation } from '../../sim/simulation.ts';
import { checkAcknowledged, checkModels, checkReplay } from './checks.ts';
import { clusterGuard, GuardedSimServices, holdTripwires, instrumentServices } from './determinism.ts';
import { VirtualTimeDriver } from './driver.ts';
import { type HistoryModel, kvModel } from './models.ts';
import { CommandRecorder } from './recorder.ts';
import { TestClusterFailure, type TestClusterReport } from './report.ts';

export { TestClusterFailure, type TestClusterReport } from './report.ts';

/** What the members host: the built-in KV service, a services module, or its services array. */
export type TestClusterServices =
  | 'kv'
  | { readonly services: readonly HostedService[] }
  | readonly HostedService[];

/** A user's own check, run by `check()`: returning a string (or throwing) says what is wrong. */
export type ClusterInvariant = (cluster: TestCluster) => unknown;

export interface TestClusterOptions {
  services: TestClusterServices;
  /** Everything random in the run — network, disk, clocks, elections, the client's jitter — comes from it. */
  seed: number;
  members?: 3 | 5;
  /** Linearizability models of the services (the KV service's is on by default). */
  models?: readonly HistoryModel[];
  /** The user's own invariants, by name, checked by `check()` on top of the free ones. */
  invariants?: Readonly<Record<string, ClusterInvariant>>;
  timeouts?: Partial<ConsensusTimeouts>;
  /** Members snapshot after this many applied entries (0: never; default 200, KV 60). */
  snapshotEvery?: number;
  /** Each member's clock gets a random offset and a rate in [1 - skew, 1 + skew] (default 0). */
  clockSkew?: number;
  /** Actor shards per member (default 2). */
  shards?: number;
  /**
   * Fail the run at once, naming the action, when an actor's machine reads the clock or randomness, or
   * goes asynchronous, while it applies an entry (default true; actor services only).
   */
  checkDeterminism?: boolean;
  /** Virtual ms between two looks at the test's promises (default 2). */
  stepMs?: number;
  /** Real-time budget of the linearizability check, ms (default 10,000). */
  linearizabilityTimeoutMs?: number;
}

const servicesOf = (services: TestClusterServices): readonly HostedService[] | 'kv' => {
  if (services === 'kv') return 'kv';
  const list = Array.isArray(services)
    ? services
    : (services as { services: readonly HostedService[] }).services;
  if (!Array.isArray(list) || list.length === 0) {
    throw new TypeError(
      'TestCluster: services must be "kv", a services module (import * as m from ...) or an array of defineService(...) results',
    );
  }
  return list;
};

export class TestCluster {
  readonly seed: number;
  /** The simulator underneath (faults and observations the TestCluster does not wrap). */
  readonly sim: Simulation;
  /** A generator for the test's own choices, seeded from the cluster's seed: a run replays exactly. */
  readonly random: Random;
  private readonly recorder: CommandRecorder;
  private readonly clients: ChorusClient[] = [];
  private readonly fresh: () => SimServices;
  private readonly options: TestClusterOptions;
  private readonly driver: VirtualTimeDriver;
  private readonly invariants = new Map<string, ClusterInvariant>();
  private readonly watchers: { condition: () => boolean; action: () => void }[] = [];

  constructor(options: TestClusterOptions) {
    const members = options.members ?? 3;
    if (members !== 3 && members !== 5)
      throw new RangeError(`TestCluster: members must be 3 or 5, got ${members}`);
    if (!Number.isSafeInteger(options.seed))
      throw new RangeError(`TestCluster: seed must be an integer, got ${options.seed}`);
    this.options = options;
    this.seed = options.seed;
    const services = servicesOf(options.services);
    const shards = options.shards ?? 2;
    this.fresh = services === 'kv' ? () => new KvSimServices() : () => new ActorSimServices(shards, services);
    const guard = services !== 'kv' && options.checkDeterminism !== false ? clusterGuard : null;
    const hosted = guard && services !== 'kv' ? instrumentServices(services, guard) : null;
    const where = (member: number) => (entries: readonly LogEntry[]) =>
      `on member ${member} applying entries ${entries[0]?.index}..${entries.at(-1)?.index} (TestCluster seed ${options.seed})`;
    this.sim = new Simulation({
      seed: options.seed,
      members,
      clients: 0,
      workload: services === 'kv' ? 'kv' : 'actors',
      services: (member) =>
        guard && hosted ? new GuardedSimServices(shards, hosted, guard, where(member)) : this.fresh(),
      timeouts: options.timeouts,
      snapshotEvery: options.snapshotEvery,
      clockRateSkew: options.clockSkew,
    });
    this.driver = new VirtualTimeDriver(this.sim, options.stepMs ?? 2, guard ? holdTripwires : undefined);
    this.random = new Random(options.seed ^ 0x7e57c1a5);
    this.recorder = new CommandRecorder(() => this.sim.now);
    for (const [name, invariant] of Object.entries(options.invariants ?? {}))
      this.invariants.set(name, invariant);
  }

  // ----------------------------------------------------------------------------------------------
  // Clients
  // ----------------------------------------------------------------------------------------------

  /** A real ChorusClient on the simulated network (same API as one connected over TCP). */
  client(options: Omit<ClientOptions, 'endpoints' | 'transport' | 'seed'> = {}): ChorusClient {
    const number = this.clients.length;
    const client = ChorusClient.start({
      ...options,
      endpoints: this.sim.memberIds.map(endpointOf),
      seed: this.random.uint32(),
      transport: this.recorder.transport(number, this.sim.clientNetwork.transportFor(number)),
    });
    this.clients.push(client);
    return client;
  }

  /** `serviceClient(cluster.client(options), service)`. */
  serviceClient<C extends Record<string, z.ZodType>>(
    service: Service<C>,
    options: Omit<ClientOptions, 'endpoints' | 'transport' | 'seed'> = {},
  ): ServiceClient<C> {
    return serviceClient(this.client(options), service);
  }

  // ----------------------------------------------------------------------------------------------
  // Time
  // ----------------------------------------------------------------------------------------------

  /** Virtual time, ms. */
  get now(): number {
    return this.sim.now;
  }

  /** Let `ms` of virtual time pass (the test's promises settle along the way). */
  advance(ms: number): Promise<void> {
    const target = this.sim.now + ms;
    return this.driver.until(() => this.sim.now >= target, { target });
  }

  /** Run virtual time until `promise` settles (at most `withinMs`), and return what it settles with. */
  async run<T>(promise: Promise<T>, { withinMs = 60_000 } = {}): Promise<T> {
    let settled = false;
    const watched = promise.finally(() => {
      settled = true;
    });
    watched.catch(() => {}); // the caller sees the rejection from the return value
    await this.driver.until(() => settled, {
      deadline: this.sim.now + withinMs,
      timedOut: () =>
        new Error(
          `TestCluster seed ${this.seed}: the promise did not settle within ${withinMs} ms of virtual time`,
        ),
    });
    return watched;
  }

  /**
   * Run until nothing is left to do: no client awaits a reply, a leader is ready, every running member
   * applied all the leader holds, and no actor message or due timer waits (timers later on do not count).
   */
  runUntilIdle({ maxMs = 60_000 } = {}): Promise<void> {
    return this.driver.until(() => this.idle(), {
      deadline: this.sim.now + maxMs,
      timedOut: () =>
        new Error(
          `TestCluster seed ${this.seed}: not idle after ${maxMs} ms of virtual time (${this.busyWith()})`,
        ),
    });
  }

  /**
   * Do `action` at the exact simulation step after which `condition` first holds (checked after every
   * step from now on): strike at a precise moment, e.g. kill a leader the moment a transfer is half done.
   */
  when(condition: () => boolean, action: () => void): void {
    this.watchers.push({ condition, action });
    this.sim.afterStep = () => {
      for (const watcher of [...this.watchers]) {
        if (!watcher.condition()) continue;
        this.watchers.splice(this.watchers.indexOf(watcher), 1);
        watcher.action();
      }
      if (this.watchers.length === 0) this.sim.afterStep = null;
    };
  }

  /** True when nothing is left to do (see runUntilIdle). */
  idle(): boolean {
    return this.busyWith() === null;
  }

  private busyWith(): string | null {
    const waiting = this.clients.reduce((n, c) => n + c.unacknowledged, 0);
    if (waiting > 0) return `${waiting} command(s) await a reply`;
    const leader = this.sim.leader();
    const node = leader === null ? null : this.sim.node(leader);
    if (leader === null || !node?.isReadyLeader) return 'no ready leader';
    for (const id of this.sim.memberIds) {
      const member = this.sim.node(id);
      if (member && member.appliedIndex < node.lastIndex)
        return `member ${id} applied ${member.appliedIndex} of ${node.lastIndex}`;
    }
    const { sends, nextTimer } = this.pendingWork(leader);
    if (sends > 0) return `${sends} actor message(s) not yet in the log`;
    if (nextTimer !== undefined && nextTimer <= this.sim.member(leader).localNow()) return 'a timer is due';
    return null;
  }

  // ----------------------------------------------------------------------------------------------
  // Members and faults
  // ----------------------------------------------------------------------------------------------

  get memberIds(): readonly number[] {
    return this.sim.memberIds;
  }

  /** The member leading the highest term (null: none). */
  leader(): number | null {
    return this.sim.leader();
  }

  /** Run until a leader is ready; its id. */
  async waitForLeader({ withinMs = 10_000 } = {}): Promise<number> {
    const ready = (): boolean => {
      const leader = this.sim.leader();
      return leader !== null && this.sim.node(leader)?.isReadyLeader === true;
    };
    await this.driver.until(ready, {
      deadline: this.sim.now + withinMs,
      timedOut: () => new Error(`TestCluster seed ${this.seed}: no ready leader within ${withinMs} ms`),
    });
    return this.sim.leader() as number;
  }

  /** Members in different groups cannot reach each other (clients still reach every member). */
  partition(...groups: readonly (readonly number[])[]): void {
    this.sim.partition(groups);
  }

  /** Cut one member off from the others. */
  isolate(id: number): void {
    this.sim.isolate(id);
  }

  /** The process dies: what its disk had not flushed is lost; peers and clients see the connections drop. */
  kill(id: number | null): void {
    if (id === null)
      throw new RangeError(`TestCluster seed ${this.seed}: kill(null): no member to kill (no leader?)`);
    this.sim.crash(id, { notifyPeers: true });
  }

  /** Start a killed member again from what its disk holds. */
  restart(id: number): void {
    this.sim.restart(id);
  }

  /** The member's process stalls (a GC pause, SIGSTOP): it handles nothing until `resume`. */
  pause(id: number): void {
    this.sim.pause(id);
  }

  resume(id: number): void {
    this.sim.resume(id);
  }

  /** Peer messages are lost with this probability (0 stops it). */
  drop(rate: number): void {
    this.setNetwork({ dropRate: rate });
  }

  /** Peer and client messages take between `minMs` and `maxMs` (the calm network: 0.5 to 3 ms). */
  delay(minMs: number, maxMs = minMs): void {
    this.setNetwork({ minDelayMs: minMs, maxDelayMs: maxMs });
  }

  /** Peer messages are delivered twice with this probability. */
  duplicate(rate: number): void {
    this.setNetwork({ dupRate: rate });
  }

  private setNetwork(change: Partial<NetworkConditions>): void {
    for (const [name, value] of Object.entries(change)) {
      if (!(typeof value === 'number' && value >= 0))
        throw new RangeError(`TestCluster: ${name} must be a number >= 0, got ${value}`);
    }
    this.sim.network = { ...this.sim.network, ...change };
    this.sim.faultsInjected++;
  }

  /**
   * The member's clock runs at `rate` from now on and jumps `jumpMs` ahead (O5). A member's clock only
   * moves forward; cluster time comes from the log, so safety must not depend on it.
   */
  skewClock(id: number, { rate, jumpMs = 0 }: { rate?: number; jumpMs?: number }): void {
    const member = this.sim.member(id);
    const nextRate = rate ?? member.clockRate;
    if (!(nextRate > 0 && jumpMs >= 0)) {
      throw new RangeError(
        `TestCluster: skewClock needs rate > 0 and jumpMs >= 0, got ${nextRate} and ${jumpMs}`,
      );
    }
    const local = member.localNow() + jumpMs;
    member.clockRate = nextRate;
    member.clockOffset = local - this.sim.now * nextRate;
    this.sim.faultsInjected++;
  }

  /**
   * Random faults drawn from the seed (the simulator's fault plan: crashes, partitions, pauses, lossy
   * links, disk stalls, ...) over the next `forMs` of virtual time; each undoes itself. Returns how many
   * of each kind were planned. Time must still be advanced for them to strike.
   */
  faults({
    forMs,
    intensity = 0.5,
    kinds,
  }: {
    forMs: number;
    intensity?: number;
    kinds?: readonly FaultKind[];
  }): Partial<Record<FaultKind, number>> {
    this.sim.healed = false;
    return planFaults(this.sim, this.random, {
      intensity,
      start: this.sim.now,
      end: this.sim.now + forMs,
      kinds,
    });
  }

  /** Heal everything: links, the network's conditions, paused and killed members; planned faults stop. */
  heal(): void {
    this.sim.healAll();
  }

  // ----------------------------------------------------------------------------------------------
  // State
  // ----------------------------------------------------------------------------------------------

  /** An actor's persisted state (`{ value, context, ... }`) on one member; undefined: no such actor. */
  actorState(member: number, service: string, actorType: string, actorId: string): unknown {
    const services = this.sim.member(member).services;
    if (!(services instanceof ActorSimServices))
      throw new TypeError('TestCluster.actorState: the members host the KV service');
    return services.actorState(formatAddress(service, actorType, actorId));
  }

  /** What a member's actor services still owe the log: sends not yet committed, and the next timer's deadline. */
  pendingWork(member: number): { sends: number; nextTimer: number | undefined } {
    const services = this.sim.member(member).services;
    return services instanceof ActorSimServices ? services.pendingWork() : { sends: 0, nextTimer: undefined };
  }

  /** How far a member applied the log (null: it is not running). */
  appliedIndex(member: number): number | null {
    return this.sim.node(member)?.appliedIndex ?? null;
  }

  /** Add an invariant `check()` runs. */
  invariant(name: string, check: ClusterInvariant): void {
    this.invariants.set(name, check);
  }

  // ----------------------------------------------------------------------------------------------
  // Checks
  // ----------------------------------------------------------------------------------------------

  /** Every check, now: the simulator's invariants, replay, exactly-once, linearizability, the user's. */
  check(): TestClusterReport {
    const violations: Violation[] = [...this.sim.checker.violations];
    const fail = (v: Omit<Violation, 'time'>) => violations.push({ ...v, time: this.sim.now });
    const replies = checkReplay(this.sim, this.fresh, fail);
    const admitter = this.fresh();
    const acknowledged = checkAcknowledged(
      this.recorder.commands,
      replies,
      (body) => admitter.admit(body),
      fail,
    );
    for (const [name, invariant] of this.invariants) {
      try {
        const problem = invariant(this);
        if (typeof problem === 'string') fail({ invariant: name, member: -1, detail: problem });
      } catch (error) {
        fail({ invariant: name, member: -1, detail: error instanceof Error ? error.message : String(error) });
      }
    }
    const models = this.options.models ?? (this.options.services === 'kv' ? [kvModel] : []);
    const linearizability = checkModels(
      this.recorder.commands,
      models,
      this.options.linearizabilityTimeoutMs ?? 10_000,
    );
    return {
      seed: this.seed,
      ok: violations.length === 0 && linearizability.every((v) => v.linearizable),
      violations,
      linearizability,
      commands: this.recorder.commands.length,
      acknowledged,
      faultsInjected: this.sim.faultsInjected,
      elections: this.sim.elections,
      virtualMs: Math.round(this.sim.now),
      replay: `new TestCluster({ ...options, seed: ${this.seed} })`,
    };
  }

  /** `check()`, throwing a TestClusterFailure that names the seed when anything failed. */
  verify(): TestClusterReport {
    const report = this.check();
    if (!report.ok) throw new TestClusterFailure(report);
    return report;
  }

  /** Close the clients (their sessions end through the log). */
  async close(): Promise<void> {
    const closing = Promise.all(this.clients.map((c) => c.close()));
    await this.run(closing, { withinMs: 10_000 }).catch(() => {});
  }
}
