// The actors of one shard: created on their first committed input, kept live up to a bound, passivated
// beyond it and rehydrated on demand, and given each input inside a transaction (actor-transaction.ts)
// under their type's failure policy. The shard (shard.ts) decides which inputs reach which actor.
//
// How XState is made deterministic and durable here:
// - Each actor's `system.scheduler` is replaced by one that records a delayed event (an `after` delay, a
//   delayed raise/sendTo) as a cluster timer owned by the actor record: timer seq from the actor's own
//   counter, due at entry timestamp + delay. The TIMER_EVENT entry that later names that seq delivers the
//   event. XState's persisted snapshots do not include scheduled events; ours do, so a pending timer
//   survives passivation, snapshots and restarts, and fires exactly once (a TIMER_EVENT for a timer that
//   is no longer pending is ignored). The real clock passed to XState throws if ever used.
// - Live actors are bounded (LRU by input); the least recently used is passivated to msgpack bytes kept
//   in its record (part of the shard's snapshot) and rehydrated on its next input.

import { type AnyActor, type AnyMachineSnapshot, createActor, type EventObject } from 'xstate';
import type { LogEntry } from '../log/log-entry.ts';
import {
  type ActorRecord,
  commit,
  errorMessage,
  forgetTimersAndEffects,
  isFailure,
  newRecord,
  newTransaction,
  StagedContext,
  stageCancel,
  stageCancelAll,
  stageEmitted,
  stageTimer,
  type Transaction,
} from './actor-transaction.ts';
import { effectId, pack, parseAddress, type ReplyError, type ShardOutput, unpack } from './protocol.ts';
import {
  type ActorBehaviour,
  type ActorType,
  actorInput,
  EFFECT_DONE_EVENT,
  type HostedService,
} from './service.ts';

/** A clock that must never run: every delay goes through the shard's scheduler instead. */
const forbiddenClock = {
  setTimeout: (): never => {
    throw new Error(
      'chorus shard: XState tried to start a real timer; delays must go through cluster timers',
    );
  },
  clearTimeout: (): void => {},
};

export class ActorHost {
  /** Every actor, in creating-index order (see encodeShardSnapshot). */
  readonly records = new Map<string, ActorRecord>();
  /** Live records. Recency is `lastUsed`, so a hot actor costs no reordering per input. */
  private readonly live = new Map<string, ActorRecord>();
  private inputs = 0;
  /** The transaction of the input being applied, if any. */
  private tx: Transaction | null = null;
  /** The reply value of the last successful `deliver` asked for one. */
  replyValue: unknown;

  constructor(
    private readonly services: ReadonlyMap<string, HostedService>,
    readonly maxLiveActors: number,
  ) {}

  get liveCount(): number {
    return this.live.size;
  }

  /** Records decoded from a snapshot, passivated, in creating-index order. */
  adopt(records: readonly ActorRecord[]): void {
    for (const record of records) this.records.set(record.address, record);
  }

  /**
   * Deliver one event to one actor (creating or rehydrating it) under the failure policy. Null on
   * success, with the reply value left in `replyValue` (no result object per input); else the error.
   */
  deliver(
    entry: LogEntry,
    address: string,
    event: EventObject,
    outputs: ShardOutput[],
    wantReply = false,
    sessionId = 0,
  ): ReplyError | null {
    let record = this.records.get(address);
    if (record?.type.behaviour)
      return this.deliverBehaviour(entry, record, event, outputs, wantReply, sessionId);
    if (!record) {
      const type = this.actorTypeOf(address);
      if (typeof type === 'string') return { code: 'UNKNOWN_ACTOR_TYPE', message: type };
      if (typeof event?.type !== 'string') {
        return { code: 'BAD_EVENT', message: `event for ${address} has no string 'type'` };
      }
      if (type.behaviour) {
        const created = newRecord(address, type, entry.index);
        try {
          this.liveBehaviour(created);
        } catch (error) {
          this.live.delete(address); // `create` threw: the actor does not exist
          return { code: 'ACTOR_FAILED', message: `${address}: ${errorMessage(error)}` };
        }
        this.records.set(address, created);
        return this.deliverBehaviour(entry, created, event, outputs, wantReply, sessionId);
      }
      record = newRecord(address, type, entry.index);
      const created = this.transact(entry, record, null);
      if (isFailure(created)) {
        this.live.delete(address); // the first input failed to even start the actor: it does not exist
        return created;
      }
      this.records.set(address, record);
      commit(created, outputs);
    } else if (typeof event?.type !== 'string') {
      return { code: 'BAD_EVENT', message: `event for ${address} has no string 'type'` };
    }
    const actor = this.ensureLive(record);
    const before = actor.getSnapshot() as AnyMachineSnapshot;
    const sent = this.transact(entry, record, event);
    if (isFailure(sent)) {
      this.recover(entry, record, before, outputs);
      return sent;
    }
    commit(sent, outputs);
    if (wantReply) {
      this.replyValue = sent.reply
        ? sent.reply.value
        : record.type.reply(actor.getSnapshot() as AnyMachineSnapshot);
    }
    this.evictBeyondBound(record);
    return null;
  }

  /** A TIMER_EVENT: the pending timer `seq` of `address` delivers its event, once. */
  fireTimer(entry: LogEntry, address: string, seq: number, outputs: ShardOutput[]): void {
    const record = this.records.get(address);
    const timer = record?.timers && [...record.timers.values()].find((t) => t.seq === seq);
    if (!record || !timer) return; // fired or cancelled already: exactly once
    record.timers!.delete(timer.xstateId);
    if (record.timers!.size === 0) record.timers = null;
    this.deliver(entry, address, timer.event, outputs);
  }

  /** An effect's completion: delivered to its actor once, while the effect is still pending. */
  completeEffect(
    entry: LogEntry,
    address: string,
    seq: number,
    result: unknown,
    outputs: ShardOutput[],
  ): void {
    const record = this.records.get(address);
    if (!record?.effects?.has(seq)) return; // already completed (a resent effect): exactly once
    record.effects.delete(seq);
    if (record.effects.size === 0) record.effects = null;
    const done: EventObject & { effectId: string; result: unknown } = {
      type: EFFECT_DONE_EVENT,
      effectId: effectId(address, seq),
      result,
    };
    this.deliver(entry, address, done, outputs);
  }

  /** The persisted snapshot of one actor (live or passivated), or undefined if it does not exist. */
  actorState(address: string): unknown {
    const record = this.records.get(address);
    if (!record) return undefined;
    if (record.behaviour) return record.behaviour.snapshot();
    return record.actor ? record.actor.getPersistedSnapshot() : unpack(record.passivated!);
  }

  actorTypeOf(address: string): ActorType | string {
    let parts: ReturnType<typeof parseAddress>;
    try {
      parts = parseAddress(address);
    } catch (error) {
      return (error as Error).message;
    }
    const service = this.services.get(parts.service);
    if (!service) return `no service '${parts.service}' is registered on this member`;
    const type = service.actorTypes.get(parts.actorType);
    if (!type) return `service '${parts.service}' has no actor type '${parts.actorType}'`;
    return type;
  }

  /** Send `event` to the record's live actor (or, with null, start the record's actor from its initial
   *  state) inside a fresh transaction; a throw or an actor left in error is a failure. */
  private transact(
    entry: LogEntry,
    record: ActorRecord,
    event: EventObject | null,
  ): Transaction | ReplyError {
    const seqBefore = record.nextSeq;
    const tx = newTransaction(entry, record);
    this.tx = tx;
    let failure: unknown;
    let failed = false;
    try {
      const actor = event === null ? this.instantiate(record, undefined) : record.actor!;
      if (event !== null) actor.send(event);
      const snapshot = actor.getSnapshot() as AnyMachineSnapshot;
      if (snapshot.status === 'error') {
        failed = true;
        failure = snapshot.error;
      }
    } catch (error) {
      failed = true;
      failure = error;
    } finally {
      this.tx = null;
    }
    if (!failed) return tx;
    record.nextSeq = seqBefore;
    return { code: 'ACTOR_FAILED', message: `${record.address}: ${errorMessage(failure)}` };
  }

  /** The failure policy, after a transition threw: identical on every member, because it depends only on
   *  the actor's last good state and the policy. */
  private recover(
    entry: LogEntry,
    record: ActorRecord,
    before: AnyMachineSnapshot,
    outputs: ShardOutput[],
  ): void {
    if (record.type.onError === 'keep-state') {
      this.instantiate(record, record.type.machine!.getPersistedSnapshot(before));
      return;
    }
    // 'restart': cancel its timers, forget its effects, start over from the initial state.
    forgetTimersAndEffects(entry, record, outputs);
    const restarted = this.transact(entry, record, null);
    if (!isFailure(restarted)) {
      commit(restarted, outputs);
      return;
    }
    // Even the initial state throws: the actor is removed; a later input creates it again.
    this.live.delete(record.address);
    this.records.delete(record.address);
  }

  /** Create the live XState actor for a record, from a persisted snapshot or from the initial state. */
  private instantiate(record: ActorRecord, persisted: unknown): AnyActor {
    const actor = createActor(record.type.machine!, {
      clock: forbiddenClock,
      // The actor's own address, for a machine whose context starts from `input` (ignored on restore).
      input: actorInput(record.address),
      ...(persisted === undefined ? {} : { snapshot: persisted as never }),
    });
    actor.system.scheduler = {
      schedule: (source, target, event, delay, id) => {
        const tx = this.requireTx(record, 'schedule a delayed event');
        if (source !== actor || target !== actor) {
          throw new Error(
            `chorus shard: ${record.address}: a delayed event must target the actor itself (after, raise with delay); use tell() for other actors`,
          );
        }
        stageTimer(tx, id, event, delay);
      },
      cancel: (_source, id) => stageCancel(this.requireTx(record, 'cancel a delayed event'), id),
      cancelAll: () => {
        const tx = this.tx;
        // A passivated or replaced actor being dropped: keep its timers.
        if (tx && tx.record === record) stageCancelAll(tx);
      },
    };
    // Without an error observer XState rethrows asynchronously; the failure policy handles errors instead.
    actor.subscribe({ error: () => {} });
    actor.on('*', (emitted) => {
      const tx = this.tx;
      if (tx && tx.record === record) stageEmitted(tx, emitted);
    });
    record.actor = actor;
    record.passivated = null;
    record.lastUsed = ++this.inputs;
    this.live.set(record.address, record);
    actor.start();
    return actor;
  }

  private ensureLive(record: ActorRecord): AnyActor {
    if (record.actor) {
      record.lastUsed = ++this.inputs;
      return record.actor;
    }
    return this.instantiate(record, unpack(record.passivated!));
  }

  private requireTx(record: ActorRecord, what: string): Transaction {
    const tx = this.tx;
    if (!tx || tx.record !== record) {
      throw new Error(`chorus shard: ${record.address} tried to ${what} outside the input being applied`);
    }
    return tx;
  }

  /**
   * Keep at most `maxLiveActors` live: past the bound, passivate the least recently used down to 90% of it
   * (one sort per eviction round, not a reorder per input). Deterministic: recency is an input counter.
   */
  private evictBeyondBound(keep: ActorRecord): void {
    if (this.live.size <= this.maxLiveActors) return;
    const target = Math.max(1, Math.floor(this.maxLiveActors * 0.9));
    const byAge = [...this.live.values()].sort((a, b) => a.lastUsed - b.lastUsed);
    for (const record of byAge) {
      if (this.live.size <= target) break;
      if (record === keep) continue;
      this.passivate(record);
      this.live.delete(record.address);
    }
  }

  private passivate(record: ActorRecord): void {
    if (record.behaviour) {
      record.passivated = pack(record.behaviour.snapshot());
      record.behaviour = null;
      return;
    }
    if (!record.actor) return;
    // Not stopped: stopping would cancel its timers. Dropping every reference lets it be collected.
    record.passivated = pack(record.actor.getPersistedSnapshot());
    record.actor = null;
  }

  // ----- behaviour actor types (see BehaviourTypeOptions in service.ts) -----

  /** The record's live behaviour object: kept, restored from its passivated state, or created. */
  private liveBehaviour(record: ActorRecord): ActorBehaviour {
    record.lastUsed = ++this.inputs;
    if (record.behaviour) return record.behaviour;
    const factory = record.type.behaviour!;
    const { actorId } = parseAddress(record.address);
    const behaviour =
      record.passivated === null
        ? factory.create(actorId)
        : factory.restore(unpack(record.passivated), actorId);
    record.behaviour = behaviour;
    record.passivated = null;
    this.live.set(record.address, record);
    return behaviour;
  }

  /** Apply one input to a behaviour actor inside a transaction, under the failure policy. */
  private deliverBehaviour(
    entry: LogEntry,
    record: ActorRecord,
    event: EventObject,
    outputs: ShardOutput[],
    wantReply: boolean,
    sessionId: number,
  ): ReplyError | null {
    if (typeof event?.type !== 'string') {
      return { code: 'BAD_EVENT', message: `event for ${record.address} has no string 'type'` };
    }
    const tx = newTransaction(entry, record);
    const seqBefore = record.nextSeq;
    const context = new StagedContext(tx, sessionId);
    let failure: unknown;
    let failed = false;
    try {
      this.liveBehaviour(record).apply(event, context);
    } catch (error) {
      failed = true;
      failure = error;
    } finally {
      context.close();
    }
    if (failed) {
      record.nextSeq = seqBefore;
      if (record.type.onError === 'restart') this.restartBehaviour(entry, record, outputs);
      return { code: 'ACTOR_FAILED', message: `${record.address}: ${errorMessage(failure)}` };
    }
    commit(tx, outputs);
    if (wantReply) this.replyValue = tx.reply ? tx.reply.value : null;
    this.evictBeyondBound(record);
    return null;
  }

  /** 'restart' for a behaviour: cancel its timers, forget its effects, a fresh `create(actorId)`. */
  private restartBehaviour(entry: LogEntry, record: ActorRecord, outputs: ShardOutput[]): void {
    forgetTimersAndEffects(entry, record, outputs);
    record.behaviour = null;
    record.passivated = null;
    try {
      this.liveBehaviour(record);
    } catch {
      // Even `create` throws: the actor is removed; a later input creates it again.
      this.live.delete(record.address);
      this.records.delete(record.address);
    }
  }
}
