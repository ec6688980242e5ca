// One simulated cluster member: the production consensus module (actors/consensus/consensus-module.ts:
// the node, the session manager, back-pressure, the service edge, the snapshot policy) and the
// production services, driven by the simulator's clock, network and disk. This is the simulator's
// member shell: like runtime/member.ts it decides nothing, it carries out the module's effects in order
// — APPEND to the virtual disk, SEND over the simulated peer network, APPLY to the services, client
// events and replies over the simulated client connections — and feeds back what they produce.

import {
  ConsensusModule,
  type ModuleEffect,
  type ModuleInput,
  type ServiceReply,
} from '../../actors/consensus/consensus-module.ts';
import type { ConsensusNode } from '../../actors/consensus/node.ts';
import {
  decodeModulePart,
  encodeSnapshotParts,
  snapshotParts,
} from '../../actors/consensus/snapshot-parts.ts';
import type { ConsensusTimeouts, FaultyRules, PeerMessage } from '../../actors/consensus/types.ts';
import { allowAllAuthenticator } from '../../actors/sessions/authenticators.ts';
import { parseClientRequest } from '../../actors/sessions/requests.ts';
import type { Random } from '../../machines/random.ts';
import { ClientKind } from '../wire/client-frames.ts';
import { type ClientPort, endpointOf, type MemberEnd } from './client-network.ts';
import { type DiskOp, VirtualDisk } from './disk.ts';
import type { InvariantChecker, MemberView } from './invariants.ts';
import type { ProposedEntry, SimServices } from './services.ts';

/** A role or election state change, as the simulation records it. */
export interface RoleEvent {
  readonly time: number;
  readonly member: number;
  readonly to: string;
  readonly term: number;
}

/**
 * The longest a member's turn lasts (ms): high-rate inputs that arrive within it are handed to the module
 * together, as the member process gathers what one event-loop turn read (runtime/member.ts).
 */
const MAX_TURN_MS = 0.5;

/** What a member needs from the simulation. */
export interface MemberHost {
  readonly rng: Random;
  readonly checker: InvariantChecker;
  readonly memberIds: readonly number[];
  readonly timeouts: ConsensusTimeouts;
  readonly faultyRules: FaultyRules | undefined;
  /** Take a snapshot after this many newly applied entries (null: never). */
  readonly snapshotEvery: number | null;
  readonly sessionTimeoutMs: number;
  now(): number;
  schedule(ms: number, run: () => void): void;
  /** Extra flush latency of the member's disk (a slow fsync), ms. */
  diskLatency(member: number): number;
  transmit(from: number, to: number, message: PeerMessage): void;
  onRole(event: RoleEvent): void;
  onElection(event: RoleEvent): void;
  /** The member stopped: its client connections close. */
  stopped(member: number): void;
}

export class SimMember implements ClientPort {
  module: ConsensusModule | null = null;
  readonly disk = new VirtualDisk();
  incarnation = 0;
  paused = false;
  /** Events that reached the member while it was paused, run in order on resume. */
  deferred: (() => void)[] = [];
  staleLeaderMs = 0;
  private readonly connections = new Map<number, MemberEnd>();
  private nextConnectionId = 1;
  /** Inputs that effects produced (service replies, a closed connection), fed after the current batch. */
  private inbox: ModuleInput[] = [];
  private draining = false;
  /** A turn's end is scheduled: high-rate inputs wait for it (see feed). */
  private turnScheduled = false;
  /** The last index the services applied (or restored a snapshot at): what a snapshot taken now holds. */
  private servicesAt = 0;

  constructor(
    readonly id: number,
    private readonly host: MemberHost,
    readonly services: SimServices,
    /** The member's clock: offset and rate (the testkit's TestCluster skews them, never backwards). */
    public clockOffset: number,
    public clockRate: number,
  ) {}

  get node(): ConsensusNode | null {
    return this.module?.node ?? null;
  }

  /** The member's own monotonic clock (skewed: offset and rate). */
  localNow(): number {
    return this.clockOffset + this.host.now() * this.clockRate;
  }

  /** What the invariant checker reads of this member. */
  view(): MemberView {
    return {
      entryAt: (index) => this.node?.entryAt(index),
      snapshotIndex: () => this.node?.snapshotIndex ?? this.disk.base,
      durablyHolds: (entry) => this.disk.holds(entry),
    };
  }

  /** A leader of an old term that goes on leading long after a newer term elected one (STALE_LEADER). */
  checkStaleLeader(tickMs: number): void {
    const node = this.node;
    const checker = this.host.checker;
    if (node?.role !== 'LEADER' || node.term >= checker.maxLeaderTerm) {
      this.staleLeaderMs = 0;
      return;
    }
    this.staleLeaderMs += tickMs;
    const bound = this.host.timeouts.heartbeatTimeoutMs * 2 + 100;
    if (this.staleLeaderMs > bound && this.staleLeaderMs <= bound + tickMs) {
      checker.fail(
        'STALE_LEADER',
        this.id,
        `member ${this.id} still leads term ${node.term} ${this.staleLeaderMs} ms after term ${checker.maxLeaderTerm} elected a leader`,
      );
    }
  }

  /** Start from what the disk holds: its snapshot (services and session table) and log. */
  boot(): void {
    const host = this.host;
    const persisted = this.disk.load();
    const parts = persisted.snapshot ? snapshotParts(persisted.snapshot.data) : null;
    this.services.restore(parts?.service ?? null);
    this.module = new ConsensusModule(
      {
        consensus: {
          memberId: this.id,
          members: [...host.memberIds],
          timeouts: host.timeouts,
          randomSeed: host.rng.uint32(),
          faultyRules: host.faultyRules,
          maxBatchBytes: 4096,
          maxBytesInFlight: 16 * 1024,
          // As a member runs it: the replay phases wait for the services (SERVICES_REPLAYED).
          awaitServicesReplay: true,
        },
        sessions: {
          memberId: this.id,
          maxSessions: 1000,
          sessionTimeoutMs: host.sessionTimeoutMs,
          authenticator: allowAllAuthenticator(),
          resumeTokens: (length) => Uint8Array.from({ length }, () => host.rng.int(0, 255)),
        },
        clientEndpoints: new Map(host.memberIds.map((id) => [id, endpointOf(id)])),
        maxUnappliedEntries: 2000,
        snapshotPolicy: { everyEntries: host.snapshotEvery, everyBytes: null },
        admit: (body) => this.services.admit(body),
      },
      { persisted, sessions: decodeModulePart(parts?.module ?? null) },
    );
    this.staleLeaderMs = 0;
    this.disk.freeAt.log = host.now();
    this.disk.freeAt.state = host.now();
    host.checker.resetMember(this.id, persisted.snapshot?.index ?? 0);
    this.servicesAt = persisted.snapshot?.index ?? 0;
    if (persisted.snapshot)
      host.checker.onServiceState(this.id, persisted.snapshot.index, this.services.state());
  }

  /** Stop at once: the module and its connections are gone (the disk decides what survives). */
  stop(): void {
    this.module = null;
    this.incarnation++;
    this.connections.clear();
    this.inbox = [];
    this.draining = false;
    this.turnScheduled = false;
    this.deferred = [];
    this.host.stopped(this.id);
  }

  // ----------------------------------------------------------------------------------------------
  // The client port (runtime/sim/client-network.ts)
  // ----------------------------------------------------------------------------------------------

  get accepting(): boolean {
    return this.module !== null;
  }

  accept(end: MemberEnd): number {
    const connectionId = this.nextConnectionId++;
    this.connections.set(connectionId, end);
    this.feed({ type: 'CLIENT', input: { type: 'CONNECTION_OPENED', now: this.localNow(), connectionId } });
    return connectionId;
  }

  /** A client's frame, checked at the edge as the member's client port checks it. */
  frame(connectionId: number, kind: number, body: unknown): void {
    const end = this.connections.get(connectionId);
    if (!end) return;
    if (kind !== ClientKind.CLIENT_REQUEST) {
      this.dropConnection(connectionId, `unexpected frame kind ${kind}`);
      return;
    }
    const parsed = parseClientRequest(connectionId, this.localNow(), body);
    if (!parsed.ok) {
      end.send(ClientKind.SESSION_EVENT, { code: 'ERROR', detail: parsed.error, retryable: false });
      this.dropConnection(connectionId, parsed.error);
      return;
    }
    this.feed({ type: 'CLIENT', input: parsed.input });
  }

  closed(connectionId: number): void {
    if (!this.connections.delete(connectionId)) return;
    this.feed({ type: 'CLIENT', input: { type: 'CONNECTION_CLOSED', now: this.localNow(), connectionId } });
  }

  private dropConnection(connectionId: number, reason: string): void {
    const end = this.connections.get(connectionId);
    if (!end) return;
    end.close(reason);
    this.closed(connectionId);
  }

  // ----------------------------------------------------------------------------------------------
  // Inputs and effects
  // ----------------------------------------------------------------------------------------------

  /**
   * Feed the module as the member process does (runtime/member.ts `input`): the high-rate inputs (client
   * frames, peer messages, flush and apply completions) wait for the end of the member's turn, a fraction of
   * a millisecond drawn by the seed, and everything that arrived meanwhile goes to the module in one
   * `handleAll`; any other input is handled at once, after what is queued. Effects are carried out in
   * order, and what they feed back follows the batch.
   */
  feed(input: ModuleInput): void {
    if (!this.module) return;
    this.inbox.push(input);
    if (this.draining) return;
    const type = input.type;
    if (type === 'CLIENT' || type === 'PEER_MESSAGE' || type === 'APPENDED' || type === 'SERVICES_REPLAYED') {
      if (this.turnScheduled) return;
      this.turnScheduled = true;
      const incarnation = this.incarnation;
      const endTurn = (): void => {
        if (this.incarnation !== incarnation) return;
        if (this.paused) {
          this.deferred.push(endTurn);
          return;
        }
        this.turnScheduled = false;
        this.drain();
      };
      this.host.schedule(this.host.rng.float() * MAX_TURN_MS, endTurn);
      return;
    }
    this.drain();
  }

  private drain(): void {
    if (this.draining || !this.module) return;
    this.draining = true;
    while (this.inbox.length > 0 && this.module) {
      const module: ConsensusModule = this.module;
      const inputs = this.inbox;
      this.inbox = [];
      let effects: ModuleEffect[];
      try {
        effects = module.handleAll(inputs);
      } catch (error) {
        this.draining = false;
        this.host.checker.fail(
          'NODE_ASSERTION',
          this.id,
          error instanceof Error ? error.message : String(error),
        );
        this.stop();
        return;
      }
      this.executeAll(module, effects);
    }
    this.draining = false;
  }

  /**
   * Carry out effects in order, the services' tick last, as the member does (runtime/member-effects.ts):
   * a tick may propose entries at once, and the effects of that call must not overtake these.
   */
  private executeAll(module: ConsensusModule, effects: readonly ModuleEffect[]): void {
    let tickAt: number | null = null;
    for (const effect of effects) {
      if (this.module !== module) return; // stopped part-way (a scenario struck from a listener)
      if (effect.type === 'SERVICE_TICK') tickAt = effect.clusterTime;
      else this.execute(module, effect);
    }
    if (tickAt !== null && this.module === module) this.services.tick?.(tickAt);
  }

  private execute(module: ConsensusModule, effect: ModuleEffect): void {
    const { host, id } = this;
    const checker = host.checker;
    const node = module.node;
    switch (effect.type) {
      case 'SEND':
        if (effect.message.type === 'VOTE' && effect.message.granted)
          checker.onVote(id, effect.to, effect.message.term);
        host.transmit(id, effect.to, effect.message);
        return;
      case 'APPEND':
        checker.onAppend(id, effect.entries, (index) => node.termAt(index));
        this.write({ op: 'append', entries: effect.entries }, { type: 'APPENDED', seq: effect.seq });
        return;
      case 'TRUNCATE':
        this.write({ op: 'truncate', fromIndex: effect.fromIndex }, null);
        return;
      case 'PURGE':
        this.write({ op: 'purge', toIndex: effect.toIndex }, null);
        return;
      case 'SAVE_NODE_STATE': {
        const { currentTerm, candidateTermId, votedFor, seq } = effect;
        this.write(
          { op: 'state', currentTerm, candidateTermId, votedFor },
          { type: 'NODE_STATE_SAVED', seq },
        );
        return;
      }
      case 'COMMIT':
        checker.onCommit(id, effect.commitIndex);
        return;
      case 'APPLY': {
        const { entries } = effect;
        if (entries.length === 0) return;
        for (const entry of entries) checker.onApply(id, entry);
        const index = entries[entries.length - 1].index;
        this.servicesAt = index;
        const every = this.services.stateEvery;
        if (every === undefined) {
          const replies = this.services.apply(entries, effect.replies);
          checker.onServiceState(id, index, this.services.state());
          this.inbox.push({ type: 'SERVICES_REPLAYED', index, replies });
          return;
        }
        // Applied in runs cut at every multiple of `every`, the state compared there: every member
        // reports the same indexes, whatever its batches.
        const replies: ServiceReply[] = [];
        let from = 0;
        for (let i = 0; i < entries.length; i++) {
          const at = entries[i].index;
          if (at % every !== 0 && i < entries.length - 1) continue;
          for (const reply of this.services.apply(entries.slice(from, i + 1), effect.replies))
            replies.push(reply);
          from = i + 1;
          if (at % every === 0) checker.onServiceState(id, at, this.services.state());
        }
        this.inbox.push({ type: 'SERVICES_REPLAYED', index, replies });
        return;
      }
      case 'TAKE_SNAPSHOT': {
        const { index, term } = effect;
        checker.onSnapshot(id, index, node.commitIndex);
        checker.onSnapshotTerm(id, index, term);
        // The services' snapshot is taken in effect order: it stands for `index` only if every entry up
        // to it was applied before it, and none after (a restart from it must equal the live state).
        if (this.servicesAt !== index)
          checker.fail(
            'SNAPSHOT_STATE_MISMATCH',
            id,
            `a snapshot said to stand for index ${index} holds the services' state at ${this.servicesAt}`,
          );
        else checker.onServiceState(id, index, this.services.state());
        const data = encodeSnapshotParts({ module: effect.module, service: this.services.snapshot() });
        this.write(
          { op: 'snapshot', image: { index, term, data } },
          { type: 'SNAPSHOT_TAKEN', index, term, data },
        );
        return;
      }
      case 'INSTALL_SNAPSHOT': {
        const { snapshot } = effect;
        checker.onSnapshot(id, snapshot.index, checker.committedMax);
        checker.onSnapshotTerm(id, snapshot.index, snapshot.term);
        this.services.restore(snapshotParts(snapshot.data).service);
        this.servicesAt = snapshot.index;
        checker.resetMember(id, snapshot.index);
        checker.onServiceState(id, snapshot.index, this.services.state());
        this.write({ op: 'install', image: snapshot }, { type: 'SNAPSHOT_INSTALLED', index: snapshot.index });
        return;
      }
      case 'ROLE_CHANGE':
        host.onRole({ time: host.now(), member: id, to: effect.to, term: effect.term });
        return;
      case 'ELECTION_STATE_CHANGE':
        host.onElection({ time: host.now(), member: id, to: effect.to, term: effect.term });
        return;
      case 'CLIENT_EVENT':
        this.connections.get(effect.connectionId)?.send(ClientKind.SESSION_EVENT, effect.event);
        return;
      case 'CLIENT_REPLY': {
        const { correlationId, payload, outcomeUnknown } = effect;
        this.connections
          .get(effect.connectionId)
          ?.send(
            ClientKind.REPLY,
            outcomeUnknown ? { correlationId, payload, outcomeUnknown } : { correlationId, payload },
          );
        return;
      }
      case 'CLIENT_BUSY': {
        const { correlationId, retryAfterMs, detail } = effect;
        this.connections
          .get(effect.connectionId)
          ?.send(ClientKind.BUSY, { correlationId, retryAfterMs, detail });
        return;
      }
      case 'CLIENT_NOTIFY':
        this.connections.get(effect.connectionId)?.send(ClientKind.NOTIFY, { payload: effect.payload });
        return;
      case 'CLOSE_CONNECTION': {
        const end = this.connections.get(effect.connectionId);
        if (!end) return;
        end.close(effect.reason);
        this.connections.delete(effect.connectionId);
        const input = {
          type: 'CONNECTION_CLOSED',
          now: this.localNow(),
          connectionId: effect.connectionId,
        } as const;
        this.inbox.push({ type: 'CLIENT', input });
        return;
      }
      case 'LEAD_SERVICES': {
        const self = this;
        const term = effect.term;
        this.services.lead?.({
          propose: (entries) => this.propose(module, entries),
          get active() {
            return self.module === module && module.node.isReadyLeader && module.node.term === term;
          },
        });
        return;
      }
      case 'SERVICE_TICK': // executeAll runs it last
      case 'STORAGE_FENCED':
      case 'REJOIN':
      case 'MODULE_STATE_CHANGE':
      case 'PROPOSED':
      case 'PROPOSAL_REJECTED':
        return;
    }
  }

  /**
   * Queue a disk write on its flush queue; it becomes durable (and `done` is fed back) after a flush
   * delay, in order within its queue, no earlier than a stall ends. A crash loses it (or keeps part).
   */
  private write(op: DiskOp, done: ModuleInput | null): void {
    const { disk, host } = this;
    const write = disk.issue(op, done);
    const extra = Math.max(host.diskLatency(this.id), disk.latency[write.queue]);
    // A slow fsync delays each flush by `extra`, not each write: writes queued meanwhile share it.
    const start = Math.max(disk.freeAt[write.queue], host.now() + extra, disk.stallUntil[write.queue]);
    const at = start + 0.2 + host.rng.float() * 2;
    disk.freeAt[write.queue] = at;
    const incarnation = this.incarnation;
    const flushed = (): void => {
      if (this.incarnation !== incarnation) return; // lost (or partly kept) in a crash
      disk.complete(write);
      if (!write.done) return;
      const input = write.done;
      if (this.paused) this.deferred.push(() => this.incarnation === incarnation && this.feed(input));
      else this.feed(input);
    };
    host.schedule(at - host.now(), () => {
      if (this.incarnation !== incarnation) return;
      const stalled = disk.stallUntil[write.queue];
      if (stalled <= host.now()) return flushed();
      // The disk stalled after this write was queued: it completes when the stall ends.
      disk.freeAt[write.queue] = Math.max(disk.freeAt[write.queue], stalled);
      host.schedule(stalled - host.now(), flushed);
    });
  }

  /** The services' own entries (timer expiries, actor-to-actor sends): how many the module took. */
  private propose(module: ConsensusModule, entries: readonly ProposedEntry[]): number {
    if (this.module !== module || entries.length === 0) return 0;
    const effects = module.handleAll(
      entries.map(({ kind, payload }) => ({ type: 'PROPOSE', kind, payload }) as const),
    );
    this.executeAll(module, effects);
    return effects.filter((effect) => effect.type === 'PROPOSED').length;
  }
}
