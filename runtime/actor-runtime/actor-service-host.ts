// The actor runtime as a member's ServiceHost (runtime/service-host.ts): worker shards plus the
// main-thread state that follows their outputs in log order — the cluster timer service and the outbox
// of actor-to-actor sends. Registering services with a member is one call:
//
//   await Member.start({ config, memberId, logger,
//     service: await ActorServiceHost.open({ servicesModule: './examples/counter-service.ts', shards: 2 }) });
//
// (or the `services` field of the cluster configuration). The member applies committed entries, snapshots
// and restores it, calls `lead(leader)` when it becomes the ready leader and `tick(clusterTime)` on every
// tick. While leading, the host appends due timer expiries and pending actor-to-actor sends, and performs
// external effects with the services module's `performEffect`, appending each result. Followers do none of
// that: their timers and outbox follow the log all the same. Replay never performs an effect: only
// `lead()` (the pending ones, handed over) and entries applied after it do.

import { dueEntries, followApplied } from '../../actors/actor-runtime/log-followers.ts';
import { Outbox } from '../../actors/actor-runtime/outbox.ts';
import {
  effectDonePayload,
  pack,
  replyOutput,
  type ShardOutput,
  unpack,
} from '../../actors/actor-runtime/protocol.ts';
import type { HostedService, Service } from '../../actors/actor-runtime/service.ts';
import {
  type Admission,
  admitCommand,
  isResolvableService,
} from '../../actors/actor-runtime/service-edge.ts';
import {
  decodeShardSetSnapshot,
  encodeShardSetSnapshot,
  type ShardSetSnapshot,
} from '../../actors/actor-runtime/shard-set.ts';
import { ClusterTimers } from '../../actors/consensus/cluster-timers.ts';
import type { CommandAdmission, ServiceReply } from '../../actors/consensus/module-types.ts';
import { EntryKind, type LogEntry } from '../../actors/log/log-entry.ts';
import { type LeaderContext, oversize, type ProposedEntry, type ServiceHost } from '../service-host.ts';
import { loadServicesModule, type PerformEffect } from './services-module.ts';
import { type PendingEffect, ShardPool, type ShardPoolOptions } from './shard-pool.ts';

export const ACTOR_SNAPSHOT_VERSION = 1;

export interface ActorSnapshot {
  readonly shards: ShardSetSnapshot;
  readonly timers: ClusterTimers;
  readonly outbox: Outbox;
}

export const encodeActorSnapshot = (snapshot: ActorSnapshot): Uint8Array =>
  pack([
    ACTOR_SNAPSHOT_VERSION,
    encodeShardSetSnapshot(snapshot.shards),
    snapshot.timers.snapshot(),
    snapshot.outbox.snapshot(),
  ]);

export const decodeActorSnapshot = (bytes: Uint8Array): ActorSnapshot => {
  const decoded = unpack(bytes) as [number, Uint8Array, Uint8Array, Uint8Array];
  if (!Array.isArray(decoded) || decoded[0] !== ACTOR_SNAPSHOT_VERSION) {
    throw new Error(
      `actor runtime snapshot: version ${Array.isArray(decoded) ? decoded[0] : 'unknown'} is not supported (this build reads ${ACTOR_SNAPSHOT_VERSION})`,
    );
  }
  return {
    shards: decodeShardSetSnapshot(decoded[1]),
    timers: ClusterTimers.restore(decoded[2]),
    outbox: Outbox.restore(decoded[3]),
  };
};

/** A reply's payload to the client: `{ ok: true, value }` or `{ ok: false, error: { code, message } }`. */
export const encodeReply = (output: Extract<ShardOutput, { type: 'REPLY' }>): Uint8Array =>
  pack(output.ok ? { ok: true, value: output.value } : { ok: false, error: output.error });

/** The replies to client sessions among a batch's outputs (and the services' notifications), as the member sends them. */
export const serviceReplies = (outputs: readonly ShardOutput[]): ServiceReply[] => {
  const replies: ServiceReply[] = [];
  for (const output of outputs) {
    if (output.type === 'NOTIFY') {
      replies.push({
        sessionId: output.sessionId,
        correlationId: 0,
        payload: pack(output.message),
        notify: true,
      });
      continue;
    }
    if (output.type !== 'REPLY') continue;
    replies.push({
      sessionId: output.sessionId,
      correlationId: output.correlationId,
      payload: encodeReply(output),
      ...(output.error?.code === 'OUTCOME_UNKNOWN' ? { outcomeUnknown: true } : {}),
    });
  }
  return replies;
};

/** The result an actor gets for an effect (its EFFECT_DONE_EVENT `result`): the same shape as a reply. */
export type EffectResult =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly error: { readonly code: string; readonly message: string } };

/** The service edge of actor services: the body to append, or the refusal reply (as a shard would encode it). */
export const admitActorCommand = (
  services: ReadonlyMap<string, Service>,
  body: Uint8Array,
  maxBytes: number,
): CommandAdmission => {
  const tooLarge = oversize(body, maxBytes);
  const admission: Admission = tooLarge
    ? { ok: false, error: { code: 'BAD_COMMAND', message: tooLarge } }
    : admitCommand(services, body);
  return admission.ok
    ? admission
    : { ok: false, payload: encodeReply(replyOutput(0, 0, 0, false, undefined, admission.error, false)) };
};

export interface ActorServiceHostOptions extends Omit<ShardPoolOptions, 'snapshot'> {
  /** Called for each EFFECT output in log order (every member): only the live leader performs it. */
  readonly onEffect?: (effect: Extract<ShardOutput, { type: 'EFFECT' }>) => void;
  /** How the leader performs external effects (default: the services module's `performEffect` export,
   *  when opened with `ActorServiceHost.open`). Without one, an effect completes with NO_EFFECT_HANDLER. */
  readonly performEffect?: PerformEffect;
  /** The services, for the leader's service edge (`open` loads them from the module; without them every
   *  client command is refused as naming no service). */
  readonly services?: readonly HostedService[];
}

type EffectOutput = Extract<ShardOutput, { type: 'EFFECT' }>;

export class ActorServiceHost implements ServiceHost {
  readonly name = 'actors';
  private current: ShardPool | null = null;
  private timerState = new ClusterTimers();
  private outboxState = new Outbox();
  /** Called for each EFFECT output; may be set later (e.g. once start-up replay is over). */
  onEffect: ActorServiceHostOptions['onEffect'];
  /** The leadership this member holds (set by `lead`, in apply order); null on a follower and in replay. */
  private leader: LeaderContext | null = null;
  /** Effect results the leader could not append yet (refused proposals), retried on the next tick. */
  private completions: ProposedEntry[] = [];

  /** The services by name, for the leader's service edge (`admit`). */
  private readonly services: ReadonlyMap<string, Service>;

  constructor(private readonly options: ActorServiceHostOptions) {
    this.onEffect = options.onEffect;
    this.services = new Map((options.services ?? []).filter(isResolvableService).map((s) => [s.name, s]));
  }

  /** The services this host runs (the inspector lists their actor types and replays them in isolation). */
  get hostedServices(): readonly HostedService[] {
    return this.options.services ?? [];
  }

  /** ServiceHost: the service edge — the service's schemas and route run here, on the leader. */
  admit(body: Uint8Array, maxBytes: number): CommandAdmission {
    return admitActorCommand(this.services, body, maxBytes);
  }

  /**
   * A host for the services in `options.servicesModule`, loaded and checked on this thread first (a bad
   * path or a module without services throws a ConfigError naming the `services` field, before any worker
   * starts). Its `performEffect` export is used unless `options.performEffect` is given. The member (or
   * the caller) starts the shards with `restore(snapshot or null)`.
   */
  static async open(options: ActorServiceHostOptions): Promise<ActorServiceHost> {
    const loaded = await loadServicesModule(options.servicesModule);
    return new ActorServiceHost({
      ...options,
      services: loaded.services,
      servicesModule: loaded.url,
      performEffect: options.performEffect ?? loaded.performEffect,
    });
  }

  get pool(): ShardPool {
    if (!this.current) throw new Error('ActorServiceHost: restore(snapshot or null) before using the host');
    return this.current;
  }

  get timers(): ClusterTimers {
    return this.timerState;
  }

  get outbox(): Outbox {
    return this.outboxState;
  }

  /** Start the shards from a snapshot (`snapshot()`'s bytes) or empty; replaces any running shards. */
  async restore(bytes: Uint8Array | null): Promise<void> {
    const snapshot = bytes ? decodeActorSnapshot(bytes) : null; // throws before anything is replaced
    const { onEffect: _onEffect, performEffect: _performEffect, ...poolOptions } = this.options;
    const next = await ShardPool.start({ ...poolOptions, snapshot: snapshot?.shards });
    await this.current?.close();
    this.current = next;
    this.timerState = snapshot?.timers ?? new ClusterTimers();
    this.outboxState = snapshot?.outbox ?? new Outbox();
  }

  /** Apply committed entries; every output, in log order. Timers and outbox follow them in order. */
  applyOutputs(entries: readonly LogEntry[]): Promise<ShardOutput[]> {
    return this.pool.apply(entries).then((outputs) => {
      followApplied(this.timerState, this.outboxState, entries, outputs);
      const onEffect = this.onEffect;
      const leader = this.leader?.active ? this.leader : null;
      if (onEffect || leader) {
        for (const output of outputs) {
          if (output.type !== 'EFFECT') continue;
          onEffect?.(output);
          if (leader) this.perform(output, leader);
        }
      }
      return outputs;
    });
  }

  /** ServiceHost: apply committed entries; the replies to client sessions. */
  async apply(entries: readonly LogEntry[]): Promise<ServiceReply[]> {
    return serviceReplies(await this.applyOutputs(entries));
  }

  /** Leader: the entries to append now — due timer expiries and pending actor-to-actor sends. */
  dueEntries(now: number): { kind: EntryKind; payload: Uint8Array }[] {
    return dueEntries(this.timerState, this.outboxState, now);
  }

  /** A member that just became leader: re-append what the previous leadership may not have (duplicates
   *  are applied once) and get the external effects it must perform again. */
  takeOverAsLeader(): Promise<PendingEffect[]> {
    this.timerState.resetInFlight();
    this.outboxState.resetAppended();
    return this.pool.pendingEffects();
  }

  /**
   * ServiceHost: this member became the ready leader (called in apply order, so everything applied so far
   * is in the timers, outbox and shards). Re-appends what an earlier leadership may not have and performs
   * the external effects still pending; effects decided by entries applied from now on are performed as
   * they are applied.
   */
  async lead(leader: LeaderContext): Promise<void> {
    this.completions = [];
    const pending = await this.takeOverAsLeader();
    if (!leader.active) return;
    this.leader = leader;
    for (const effect of pending) this.perform({ type: 'EFFECT', index: 0, ...effect }, leader);
  }

  /** ServiceHost: while leading, append due timer expiries, pending sends and effect results. */
  tick(clusterTime: number): void {
    const leader = this.leader;
    if (!leader) return;
    if (!leader.active) {
      this.leader = null;
      this.completions = [];
      return;
    }
    const completions = this.completions;
    const due = this.dueEntries(clusterTime);
    if (completions.length === 0 && due.length === 0) return;
    const entries = completions.length === 0 ? due : [...completions, ...due];
    const taken = leader.propose(entries);
    this.completions = completions.slice(Math.min(taken, completions.length));
    if (taken < entries.length) {
      // Refused (suspended, transferring, or no longer leading): offer them again on a later tick.
      this.timerState.resetInFlight();
      this.outboxState.resetAppended();
    }
  }

  /** Perform one external effect as the leader and append its result (a later leader redoes it if this
   *  leadership ends first: effects are at least once, identified by effectId). */
  private perform(effect: EffectOutput, leader: LeaderContext): void {
    const performEffect = this.options.performEffect;
    const run = async (): Promise<EffectResult> => {
      if (!performEffect) {
        return {
          ok: false,
          error: {
            code: 'NO_EFFECT_HANDLER',
            message: 'the services module exports no performEffect(intent, context) to carry out effects',
          },
        };
      }
      try {
        return {
          ok: true,
          value: await performEffect(effect.intent, { effectId: effect.effectId, address: effect.address }),
        };
      } catch (error) {
        return {
          ok: false,
          error: { code: 'EFFECT_FAILED', message: String((error as Error)?.message ?? error) },
        };
      }
    };
    void run().then((result) => {
      if (this.leader !== leader || !leader.active) return;
      const entry = {
        kind: EntryKind.SERVICE_MESSAGE,
        payload: effectDonePayload(effect.address, effect.seq, result),
      };
      if (leader.propose([entry]) === 0) this.completions.push(entry);
    });
  }

  /** ServiceHost: the whole actor state at the last applied entry (ordered after every earlier apply). */
  async snapshot(): Promise<Uint8Array> {
    const shards = await this.pool.snapshot();
    return encodeActorSnapshot({ shards, timers: this.timerState, outbox: this.outboxState });
  }

  async close(): Promise<void> {
    await this.current?.close();
    this.current = null;
  }
}
