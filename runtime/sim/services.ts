// The services a simulated member hosts, run synchronously in the simulator's thread: the built-in KV
// service (runtime/service-host.ts, what a member hosts by default) or the actor runtime's pure shards
// (actors/actor-runtime: ShardSet, with the cluster timers and outbox beside them) running the example
// counters and an order book — the same code the worker shards run.

import { crc32c } from '@node-rs/crc32';
import { dueEntries, followApplied } from '../../actors/actor-runtime/log-followers.ts';
import { Outbox } from '../../actors/actor-runtime/outbox.ts';
import { formatAddress } from '../../actors/actor-runtime/protocol.ts';
import type { HostedService, Service } from '../../actors/actor-runtime/service.ts';
import { isResolvableService } from '../../actors/actor-runtime/service-edge.ts';
import { ShardSet } from '../../actors/actor-runtime/shard-set.ts';
import { ClusterTimers } from '../../actors/consensus/cluster-timers.ts';
import type { CommandAdmission, ServiceReply } from '../../actors/consensus/module-types.ts';
import { EntryKind, type LogEntry } from '../../actors/log/log-entry.ts';
import { decodeSessionMessage } from '../../actors/log/session-message.ts';
import { defineOrdersService } from '../../actors/order-book/service.ts';
import { counterService } from '../../examples/counter-service.ts';
import {
  admitActorCommand,
  decodeActorSnapshot,
  encodeActorSnapshot,
  serviceReplies,
} from '../actor-runtime/actor-service-host.ts';
import { KvServiceHost } from '../service-host.ts';

/** An entry the services ask the leader to append. */
export interface ProposedEntry {
  readonly kind: EntryKind;
  readonly payload: Uint8Array;
}

/** A leadership handed to the services: append through it while it is active. */
export interface SimLeadership {
  propose(entries: readonly ProposedEntry[]): number;
  readonly active: boolean;
}

export interface SimServices {
  /** The service edge (on the leader, before the log). */
  admit(body: Uint8Array): CommandAdmission;
  /** Apply committed entries in log order; the replies to client sessions (none unless `replies`). */
  apply(entries: readonly LogEntry[], replies: boolean): ServiceReply[];
  /** The replicated state, compared across members at equal applied index. */
  state(): Uint8Array;
  /**
   * Compare the state only at indexes that are multiples of this (for a state costly to encode); left
   * out, at the end of every applied batch.
   */
  readonly stateEvery?: number;
  snapshot(): Uint8Array;
  restore(bytes: Uint8Array | null): void;
  /** This member became the ready leader (in apply order). */
  lead?(leadership: SimLeadership): void;
  /** Every tick with the cluster time: a leading service appends what is due. */
  tick?(clusterTime: number): void;
}

/** A command carries at most this many bytes in the simulator. */
const MAX_COMMAND_BYTES = 64 * 1024;

/** The built-in KV service, as a member hosts it by default. */
export class KvSimServices implements SimServices {
  private readonly host = new KvServiceHost();
  /** Commands applied here (`session:correlation`), to count the retries answered from the dedup table. */
  private readonly seen = new Set<string>();
  /** Retried commands this member answered as the leader from the dedup table (applied once: C2, C3). */
  duplicateReplies = 0;

  admit(body: Uint8Array): CommandAdmission {
    return this.host.admit(body, MAX_COMMAND_BYTES);
  }

  apply(entries: readonly LogEntry[], replies: boolean): ServiceReply[] {
    for (const entry of entries) {
      if (entry.kind !== EntryKind.SESSION_MESSAGE) continue;
      const { sessionId, correlationId } = decodeSessionMessage(entry.payload);
      const key = `${sessionId}:${correlationId}`;
      if (this.seen.has(key)) {
        if (replies) this.duplicateReplies++;
      } else this.seen.add(key);
    }
    return this.host.apply(entries, { replies });
  }

  state(): Uint8Array {
    return this.host.snapshot();
  }

  snapshot(): Uint8Array {
    return this.host.snapshot();
  }

  restore(bytes: Uint8Array | null): void {
    this.host.restore(bytes);
  }
}

/** The order-book instrument the simulator trades. */
export const SIM_INSTRUMENT = 'SIM';

export const simOrdersService = defineOrdersService({
  instruments: { [SIM_INSTRUMENT]: { referencePrice: 100, maxQuantity: 1_000 } },
  replyWith: 'own-reports',
});

/** The actor services the simulator runs: the example counters and an order book. */
export const SIM_ACTOR_SERVICES: readonly HostedService[] = [counterService, simOrdersService];

/** The actor runtime in-process: pure shards, cluster timers and outbox, as ActorServiceHost runs them. */
export class ActorSimServices implements SimServices {
  private shards: ShardSet;
  private timers = new ClusterTimers();
  private outbox = new Outbox();
  private leadership: SimLeadership | null = null;
  /** The whole actor state is encoded to compare it: at every 100th index. */
  readonly stateEvery = 100;
  private readonly byName: ReadonlyMap<string, Service>;

  constructor(
    private readonly shardCount = 2,
    private readonly services: readonly HostedService[] = SIM_ACTOR_SERVICES,
  ) {
    this.shards = new ShardSet(shardCount, { services });
    this.byName = new Map(services.filter(isResolvableService).map((s) => [s.name, s]));
  }

  admit(body: Uint8Array): CommandAdmission {
    return admitActorCommand(this.byName, body, MAX_COMMAND_BYTES);
  }

  apply(entries: readonly LogEntry[], replies: boolean): ServiceReply[] {
    const outputs = this.shards.apply(entries);
    followApplied(this.timers, this.outbox, entries, outputs);
    return replies ? serviceReplies(outputs) : [];
  }

  /** A digest of the whole state (the checker keeps one per applied index; the state itself is larger). */
  state(): Uint8Array {
    const digest = new Uint8Array(4);
    new DataView(digest.buffer).setUint32(0, crc32c(this.snapshot()));
    return digest;
  }

  snapshot(): Uint8Array {
    return encodeActorSnapshot({ shards: this.shards.snapshot(), timers: this.timers, outbox: this.outbox });
  }

  restore(bytes: Uint8Array | null): void {
    this.leadership = null;
    if (bytes === null) {
      this.shards = new ShardSet(this.shardCount, { services: this.services });
      this.timers = new ClusterTimers();
      this.outbox = new Outbox();
      return;
    }
    const snapshot = decodeActorSnapshot(bytes);
    this.shards = ShardSet.restore(snapshot.shards, this.shardCount, { services: this.services });
    this.timers = snapshot.timers;
    this.outbox = snapshot.outbox;
  }

  /** A new leader appends again what an earlier leadership may not have (duplicates are applied once). */
  lead(leadership: SimLeadership): void {
    this.timers.resetInFlight();
    this.outbox.resetAppended();
    this.leadership = leadership;
  }

  tick(clusterTime: number): void {
    const leadership = this.leadership;
    if (!leadership) return;
    if (!leadership.active) {
      this.leadership = null;
      return;
    }
    const due = dueEntries(this.timers, this.outbox, clusterTime);
    if (due.length === 0) return;
    if (leadership.propose(due) < due.length) {
      // Refused (suspended, transferring, or no longer leading): offered again on a later tick.
      this.timers.resetInFlight();
      this.outbox.resetAppended();
    }
  }

  /** One actor's persisted state as this member's shards hold it (undefined: no such actor). */
  actorState(address: string): unknown {
    return this.shards.actorState(address);
  }

  /** Work the services still owe the log: actor-to-actor sends not yet committed, and the next timer. */
  pendingWork(): { sends: number; nextTimer: number | undefined } {
    return { sends: this.outbox.size, nextTimer: this.timers.nextDeadline() };
  }

  /** A counter's value as this member's shards hold it (undefined: never incremented). */
  counter(id: string): number | undefined {
    const address = formatAddress(counterService.name, 'counter', id);
    const state = this.shards.actorState(address) as { context?: { count?: number } } | undefined;
    return state?.context?.count;
  }
}
