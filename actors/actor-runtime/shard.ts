// The pure, in-process shard: a set of virtual XState actors that applies committed log entries in
// order and returns what they produce. No I/O, no wall time, no real timers: the same code runs inside a
// worker thread (runtime/actor-runtime) and in the simulator, and every member computes the same outputs.
//
// How XState is made deterministic and durable here:
// - Each actor's `system.scheduler` is replaced by one that records a delayed event (an `after` delay, a
//   delayed raise/sendTo) as a cluster timer owned by the actor record: timer seq from the actor's own
//   counter, due at entry timestamp + delay. The TIMER_EVENT entry that later names that seq delivers the
//   event. XState's persisted snapshots do not include scheduled events; ours do, so a pending timer
//   survives passivation, snapshots and restarts, and fires exactly once (a TIMER_EVENT for a timer that
//   is no longer pending is ignored). The real clock passed to XState throws if ever used.
// - Each input is a small transaction: timer changes, sends, effects and the reply are staged and kept
//   only if the transition succeeds. A throwing transition is rolled back by the failure policy.
// - Live actors are bounded (LRU by input); the least recently used is passivated to msgpack bytes kept
//   by the shard (part of its snapshot) and rehydrated on its next input.

import { type AnyActor, type AnyMachineSnapshot, createActor, type EventObject } from 'xstate';
import { EntryKind, type LogEntry } from '../../machines/log-entry.ts';
import { decodeSessionMessage, SESSION_MESSAGE_HEADER_BYTES } from '../consensus/session-message.ts';
import {
  CommandDedup,
  type DedupSnapshotRow,
  MAX_UNANSWERED_PER_SESSION,
} from '../sessions/command-dedup.ts';
import {
  ClusterAction,
  EFFECT_DONE_FROM,
  effectId,
  formatAddress,
  messageId,
  pack,
  parseAddress,
  type ReplyError,
  replyOutput,
  type ShardOutput,
  serviceMessagePayload,
  timerEventPayload,
  timerId,
  unpack,
} from './protocol.ts';
import {
  type ActorBehaviour,
  type ActorType,
  actorInput,
  type BehaviourContext,
  EFFECT_DONE_EVENT,
  EFFECT_EVENT,
  type EffectEmitted,
  type EventOrigin,
  type HostedService,
  REPLY_EVENT,
  type ReplyEmitted,
  TELL_EVENT,
  type TellEmitted,
} from './service.ts';

export const SHARD_SNAPSHOT_VERSION = 2;

export interface ShardOptions {
  readonly services: readonly HostedService[];
  /** This shard's number (only labels SNAPSHOT outputs). */
  readonly shard?: number;
  /** Most actors kept live; the least recently used beyond this are passivated. Default 10,000. */
  readonly maxLiveActors?: number;
}

interface TimerRecord {
  readonly seq: number;
  /** XState's id for the delayed event (for `after`: `xstate.after.<delay>.<stateId>`). */
  readonly xstateId: string;
  readonly event: EventObject;
  readonly deadline: number;
}

interface ActorRecord {
  readonly address: string;
  readonly type: ActorType;
  /** The live actor, or null while passivated (always null for a behaviour actor type). */
  actor: AnyActor | null;
  /** The live behaviour object of a behaviour actor type, or null while passivated. */
  behaviour: ActorBehaviour | null;
  /** msgpack of the persisted XState snapshot while passivated. */
  passivated: Uint8Array | null;
  /** One counter for the actor's timers, sends and effects: ids are `address#seq`, `address>seq`, `address!seq`. */
  nextSeq: number;
  /** Pending timers by XState id (insertion order = scheduling order). */
  timers: Map<string, TimerRecord> | null;
  /** Pending external effects by seq: cleared when their completion is applied. */
  effects: Map<number, unknown> | null;
  /** The shard's input counter when this actor last got an input (for least-recently-used passivation). */
  lastUsed: number;
  /** Index of the entry that created the actor: unique, and the order of `records` (see snapshot). */
  readonly createdAt: number;
}

type TimerOp = { readonly schedule: TimerRecord } | { readonly cancel: string };

/** What one input staged; kept only if the actor's transition succeeds. Lists are allocated on first
 *  use: most inputs stage nothing but their reply. */
interface Transaction {
  readonly record: ActorRecord;
  readonly index: number;
  readonly timestamp: number;
  timerOps: TimerOp[] | null;
  outputs: ShardOutput[] | null;
  effectsAdded: [number, unknown][] | null;
  reply: ReplyEmitted | null;
}

const isFailure = (result: Transaction | ReplyError): result is ReplyError => 'code' in result;

/** What a session's command got, remembered to answer its resends (C2). */
type SessionReply = [ok: boolean, value: unknown, error: ReplyError | null];

/** A clock that must never run: every delay goes through the shard's scheduler instead. */
const forbiddenClock = {
  setTimeout: (): never => {
    throw new Error(
      'chorus shard: XState tried to start a real timer; delays must go through cluster timers',
    );
  },
  clearTimeout: (): void => {},
};

const isInt = (value: unknown): value is number => Number.isSafeInteger(value);
const NONE: readonly never[] = Object.freeze([]);

/** A decoded SESSION_MESSAGE. */
type SessionCommand = [
  address: string,
  sessionId: number,
  correlationId: number,
  event: EventObject,
  lowestAwaited: number,
];

/**
 * The event as the actor gets it: with `origin` set by the runtime from the log entry (a client session or
 * the sending actor's address), so a machine can tell a client's command from another actor's message.
 * Whatever `origin` the event carried is overwritten: it cannot be forged.
 */
const withOrigin = (event: EventObject, origin: EventOrigin): EventObject => {
  // The event was just decoded from the entry: no one else holds it, so it is stamped in place (a copy
  // per event cost about 10% of `npx chorus bench actors`).
  if (typeof event === 'object' && event !== null) (event as { origin?: EventOrigin }).origin = origin;
  return event;
};

/** Why a command was not applied, as the reply's error (see CommandDedup). */
const notApplied = (kind: 'OUTCOME_UNKNOWN' | 'WINDOW_FULL'): ReplyError =>
  kind === 'OUTCOME_UNKNOWN'
    ? {
        code: 'OUTCOME_UNKNOWN',
        message: 'a stale copy of a command this session no longer awaits: nothing was applied now',
      }
    : {
        code: 'WINDOW_FULL',
        message: `the session has ${MAX_UNANSWERED_PER_SESSION} unanswered commands; this one was not applied`,
      };

/** An entry's decoded payload; SESSION_MESSAGE becomes a SessionCommand. */
const decodeEntry = (entry: LogEntry): unknown => {
  try {
    if (entry.kind !== EntryKind.SESSION_MESSAGE) return unpack(entry.payload);
    const { sessionId, correlationId, lowestAwaited, body } = decodeSessionMessage(entry.payload);
    const command = unpack(body) as unknown[];
    return Array.isArray(command)
      ? [command[0], sessionId, correlationId, command[1], lowestAwaited]
      : undefined;
  } catch {
    return undefined;
  }
};

/** The decoded payload has the shape its kind needs (see protocol.ts). */
const wellFormed = (kind: number, body: unknown): boolean => {
  switch (kind) {
    case EntryKind.SESSION_MESSAGE:
      return (
        Array.isArray(body) &&
        typeof body[0] === 'string' &&
        isInt(body[1]) &&
        isInt(body[2]) &&
        isInt(body[4])
      );
    case EntryKind.SERVICE_MESSAGE:
      return (
        Array.isArray(body) && typeof body[0] === 'string' && typeof body[1] === 'string' && isInt(body[2])
      );
    case EntryKind.TIMER_EVENT:
      return Array.isArray(body) && typeof body[0] === 'string' && isInt(body[1]);
    case EntryKind.CLUSTER_ACTION:
      return Array.isArray(body);
    default:
      return body !== undefined;
  }
};

const errorMessage = (error: unknown): string =>
  error instanceof Error ? `${error.name}: ${error.message}` : `thrown value: ${String(error)}`;

/** A behaviour's view of the input being applied: every request is staged in the shard's transaction. */
class StagedContext implements BehaviourContext {
  readonly timestamp: number;
  readonly index: number;

  constructor(
    private readonly shard: Shard,
    private readonly tx: Transaction,
    readonly sessionId: number,
  ) {
    this.timestamp = tx.timestamp;
    this.index = tx.index;
  }

  reply(value: unknown): void {
    this.shard.stageFromBehaviour(this.tx, { kind: 'reply', value });
  }

  schedule(key: string, delayMs: number, event: EventObject): void {
    this.shard.stageFromBehaviour(this.tx, { kind: 'schedule', key, delayMs, event });
  }

  cancel(key: string): void {
    this.shard.stageFromBehaviour(this.tx, { kind: 'cancel', key });
  }

  tell(actorType: string, actorId: string, event: EventObject, service?: string): void {
    this.shard.stageFromBehaviour(this.tx, {
      kind: 'tell',
      tell: {
        type: TELL_EVENT,
        actorType,
        actorId,
        event,
        ...(service === undefined ? {} : { service }),
      },
    });
  }

  effect(intent: unknown): void {
    this.shard.stageFromBehaviour(this.tx, { kind: 'effect', intent });
  }
}

/** What one committed entry's delivery to one actor stages, before it is kept or rolled back. */
const newTransaction = (entry: LogEntry, record: ActorRecord): Transaction => ({
  record,
  index: entry.index,
  timestamp: entry.timestamp,
  timerOps: null,
  outputs: null,
  effectsAdded: null,
  reply: null,
});

/** The record of an actor about to be created by its first committed input. */
const newRecord = (address: string, type: ActorType, createdAt: number): ActorRecord => ({
  address,
  type,
  actor: null,
  behaviour: null,
  passivated: null,
  nextSeq: 1,
  timers: null,
  effects: null,
  lastUsed: 0,
  createdAt,
});

export class Shard {
  readonly shard: number;
  readonly maxLiveActors: number;
  private readonly services = new Map<string, HostedService>();
  private readonly records = new Map<string, ActorRecord>();
  /** Live records. Recency is `lastUsed`, so a hot actor costs no reordering per input. */
  private readonly live = new Map<string, ActorRecord>();
  private inputs = 0;
  private readonly sessions = new CommandDedup<SessionReply>();
  /** Highest applied actor-to-actor seq per sender (dedup of a new leader's resends). */
  private readonly senders = new Map<string, number>();
  private tx: Transaction | null = null;
  /** The reply value of the last successful `deliver`. */
  private replyValue: unknown;
  private applied = 0;

  constructor(options: ShardOptions) {
    this.shard = options.shard ?? 0;
    this.maxLiveActors = options.maxLiveActors ?? 10_000;
    if (!(Number.isInteger(this.maxLiveActors) && this.maxLiveActors >= 1)) {
      throw new RangeError(`Shard: maxLiveActors must be an integer >= 1, got ${options.maxLiveActors}`);
    }
    for (const service of options.services) {
      if (this.services.has(service.name)) {
        throw new TypeError(
          `Shard: service '${service.name}' registered twice; give each service a unique name`,
        );
      }
      this.services.set(service.name, service);
    }
  }

  /** Index of the last entry applied (entries at or below it are skipped: replay is idempotent). */
  get lastApplied(): number {
    return this.applied;
  }

  get actorCount(): number {
    return this.records.size;
  }

  get liveActorCount(): number {
    return this.live.size;
  }

  /** Apply committed entries in log order; returns their outputs in the same order. */
  apply(entries: readonly LogEntry[], outputs: ShardOutput[] = []): ShardOutput[] {
    for (const entry of entries) {
      if (entry.index <= this.applied) continue;
      const body = decodeEntry(entry);
      if (wellFormed(entry.kind, body)) this.applyOne(entry, body, outputs);
      else if (
        entry.kind === EntryKind.SESSION_MESSAGE &&
        entry.payload.length >= SESSION_MESSAGE_HEADER_BYTES
      ) {
        // The command body is not [address, event]: the client is told, identically on every member.
        const { sessionId, correlationId } = decodeSessionMessage(entry.payload);
        const error: ReplyError = {
          code: 'BAD_EVENT',
          message: 'command body is not a msgpack [address, event] array',
        };
        outputs.push(replyOutput(entry.index, sessionId, correlationId, false, undefined, error, false));
      }
      // Other malformed entries are skipped the same way on every member (they never change state); the
      // edge validates input, so this only guards against a bug or a hostile peer.
      this.applied = entry.index;
    }
    return outputs;
  }

  private applyOne(entry: LogEntry, body: unknown, outputs: ShardOutput[]): void {
    switch (entry.kind) {
      case EntryKind.SESSION_MESSAGE: {
        const [address, sessionId, correlationId, event, lowestAwaited] = body as SessionCommand;
        const verdict = this.sessions.check(sessionId, correlationId, lowestAwaited);
        if (verdict.kind !== 'NEW') {
          // C2: a resend is answered with the original reply; never applied twice, never dropped.
          outputs.push(
            verdict.kind === 'APPLIED'
              ? replyOutput(
                  entry.index,
                  sessionId,
                  correlationId,
                  verdict.reply[0],
                  verdict.reply[1],
                  verdict.reply[2] ?? undefined,
                  true,
                )
              : replyOutput(
                  entry.index,
                  sessionId,
                  correlationId,
                  false,
                  undefined,
                  notApplied(verdict.kind),
                  false,
                ),
          );
          return;
        }
        const error = this.deliver(
          entry,
          address,
          withOrigin(event, { session: sessionId }),
          outputs,
          true,
          sessionId,
        );
        const value = error === null ? this.replyValue : undefined;
        this.replyValue = undefined;
        this.sessions.record(sessionId, correlationId, [error === null, value, error]);
        outputs.push(
          replyOutput(
            entry.index,
            sessionId,
            correlationId,
            error === null,
            value,
            error ?? undefined,
            false,
          ),
        );
        return;
      }
      case EntryKind.SERVICE_MESSAGE: {
        const [address, from, seq, message] = body as [string, string, number, unknown];
        if (from === EFFECT_DONE_FROM) {
          const record = this.records.get(address);
          if (!record?.effects?.has(seq)) return; // already completed (a resent effect): exactly once
          record.effects.delete(seq);
          if (record.effects.size === 0) record.effects = null;
          const done: EventObject & { effectId: string; result: unknown } = {
            type: EFFECT_DONE_EVENT,
            effectId: effectId(address, seq),
            result: message,
          };
          this.deliver(entry, address, done, outputs);
          return;
        }
        const highest = this.senders.get(from);
        if (highest !== undefined && seq <= highest) return; // a resend of a message already applied
        this.senders.set(from, seq);
        this.deliver(entry, address, withOrigin(message as EventObject, { actor: from }), outputs);
        return;
      }
      case EntryKind.TIMER_EVENT: {
        const [address, seq] = body as [string, number];
        const record = this.records.get(address);
        const timer = record?.timers && [...record.timers.values()].find((t) => t.seq === seq);
        if (!record || !timer) return; // fired or cancelled already: exactly once
        record.timers!.delete(timer.xstateId);
        if (record.timers!.size === 0) record.timers = null;
        this.deliver(entry, address, timer.event, outputs);
        return;
      }
      case EntryKind.CLUSTER_ACTION: {
        const [action] = body as [string];
        if (action === ClusterAction.SNAPSHOT) {
          outputs.push({
            type: 'SNAPSHOT',
            index: entry.index,
            shard: this.shard,
            bytes: this.snapshot(entry.index),
          });
        }
        return;
      }
      case EntryKind.SESSION_CLOSE: {
        const sessionId = Array.isArray(body) ? body[0] : (body as { sessionId?: unknown } | null)?.sessionId;
        if (typeof sessionId === 'number') this.sessions.close(sessionId);
        return;
      }
      default:
        return;
    }
  }

  /**
   * Deliver one event to one actor (creating or rehydrating it) under the failure policy. Null on
   * success, with the reply value left in `replyValue` (no result object per input); else the error.
   */
  private deliver(
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
      this.flush(created, outputs);
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
    this.flush(sent, outputs);
    if (wantReply) {
      this.replyValue = sent.reply
        ? sent.reply.value
        : record.type.reply(actor.getSnapshot() as AnyMachineSnapshot);
    }
    this.evictBeyondBound(record);
    return null;
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

  /** Apply a successful transaction's staged changes to the record and emit its outputs. */
  private flush(tx: Transaction, outputs: ShardOutput[]): void {
    const record = tx.record;
    if (tx.timerOps) this.flushTimers(tx, tx.timerOps, outputs);
    if (tx.effectsAdded) {
      record.effects ??= new Map();
      for (const [seq, intent] of tx.effectsAdded) record.effects.set(seq, intent);
    }
    if (tx.outputs) for (const output of tx.outputs) outputs.push(output);
  }

  private flushTimers(tx: Transaction, ops: readonly TimerOp[], outputs: ShardOutput[]): void {
    const record = tx.record;
    for (const op of ops) {
      if ('schedule' in op) {
        const previous = record.timers?.get(op.schedule.xstateId);
        if (previous)
          outputs.push({
            type: 'TIMER_CANCEL',
            index: tx.index,
            timerId: timerId(record.address, previous.seq),
          });
        record.timers ??= new Map();
        record.timers.delete(op.schedule.xstateId);
        record.timers.set(op.schedule.xstateId, op.schedule);
        outputs.push({
          type: 'TIMER_SCHEDULE',
          index: tx.index,
          timerId: timerId(record.address, op.schedule.seq),
          deadline: op.schedule.deadline,
          payload: timerEventPayload(record.address, op.schedule.seq),
        });
      } else {
        const timer = record.timers?.get(op.cancel);
        if (!timer) continue;
        record.timers!.delete(op.cancel);
        if (record.timers!.size === 0) record.timers = null;
        outputs.push({ type: 'TIMER_CANCEL', index: tx.index, timerId: timerId(record.address, timer.seq) });
      }
    }
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
    this.forgetTimersAndEffects(entry, record, outputs);
    const restarted = this.transact(entry, record, null);
    if (!isFailure(restarted)) {
      this.flush(restarted, outputs);
      return;
    }
    // Even the initial state throws: the actor is removed; a later input creates it again.
    this.live.delete(record.address);
    this.records.delete(record.address);
  }

  private actorTypeOf(address: string): ActorType | string {
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

  /** Create the live XState actor for a record, from a persisted snapshot or from the initial state. */
  private instantiate(record: ActorRecord, persisted: unknown): AnyActor {
    const actor = createActor(record.type.machine!, {
      clock: forbiddenClock,
      // The actor's own address, for a machine whose context starts from `input` (ignored on restore).
      input: actorInput(record.address),
      ...(persisted === undefined ? {} : { snapshot: persisted as never }),
    });
    actor.system.scheduler = {
      schedule: (source, target, event, delay, id) =>
        this.schedule(record, actor, source, target, event, delay, id),
      cancel: (_source, id) => this.cancel(record, id),
      cancelAll: () => this.cancelAll(record),
    };
    // Without an error observer XState rethrows asynchronously; the failure policy handles errors instead.
    actor.subscribe({ error: () => {} });
    actor.on('*', (emitted) => this.onEmitted(record, emitted));
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

  private requireTx(record: ActorRecord, what: string): Transaction {
    const tx = this.tx;
    if (!tx || tx.record !== record) {
      throw new Error(`chorus shard: ${record.address} tried to ${what} outside the input being applied`);
    }
    return tx;
  }

  private schedule(
    record: ActorRecord,
    actor: AnyActor,
    source: unknown,
    target: unknown,
    event: EventObject,
    delay: number,
    id: string | undefined,
  ): void {
    const tx = this.requireTx(record, 'schedule a delayed event');
    if (source !== actor || target !== actor) {
      throw new Error(
        `chorus shard: ${record.address}: a delayed event must target the actor itself (after, raise with delay); use tell() for other actors`,
      );
    }
    this.stageTimer(tx, record, id, event, delay);
  }

  /** Stage a timer: seq from the actor's counter, due at the entry's timestamp + delay. */
  private stageTimer(
    tx: Transaction,
    record: ActorRecord,
    id: string | undefined,
    event: EventObject,
    delay: number,
  ): void {
    if (!(Number.isFinite(delay) && delay >= 0)) {
      throw new RangeError(
        `chorus shard: ${record.address}: delay must be a finite number >= 0, got ${delay}`,
      );
    }
    const seq = record.nextSeq++;
    const xstateId = id ?? `#${seq}`;
    // Re-scheduling an id staged in this same input replaces it.
    tx.timerOps ??= [];
    const at = tx.timerOps.findIndex((op) => 'schedule' in op && op.schedule.xstateId === xstateId);
    if (at >= 0) tx.timerOps.splice(at, 1);
    tx.timerOps.push({ schedule: { seq, xstateId, event, deadline: tx.timestamp + delay } });
  }

  private cancel(record: ActorRecord, xstateId: string): void {
    const tx = this.requireTx(record, 'cancel a delayed event');
    const at = tx.timerOps
      ? tx.timerOps.findIndex((op) => 'schedule' in op && op.schedule.xstateId === xstateId)
      : -1;
    if (at >= 0) tx.timerOps!.splice(at, 1);
    if (record.timers?.has(xstateId)) {
      tx.timerOps ??= [];
      tx.timerOps.push({ cancel: xstateId });
    }
  }

  private cancelAll(record: ActorRecord): void {
    const tx = this.tx;
    if (!tx || tx.record !== record) return; // a passivated or replaced actor being dropped: keep its timers
    tx.timerOps = record.timers ? [...record.timers.keys()].map((xstateId) => ({ cancel: xstateId })) : null;
  }

  private onEmitted(record: ActorRecord, emitted: EventObject): void {
    const tx = this.tx;
    if (!tx || tx.record !== record) return;
    switch (emitted.type) {
      case REPLY_EVENT:
        tx.reply = emitted as ReplyEmitted;
        return;
      case TELL_EVENT:
        this.stageTell(tx, record, emitted as TellEmitted);
        return;
      case EFFECT_EVENT:
        this.stageEffect(tx, record, (emitted as EffectEmitted).intent);
        return;
      default:
        return;
    }
  }

  private stageTell(tx: Transaction, record: ActorRecord, tell: TellEmitted): void {
    const from = parseAddress(record.address);
    const to = formatAddress(tell.service ?? from.service, tell.actorType, tell.actorId);
    const seq = record.nextSeq++;
    tx.outputs ??= [];
    tx.outputs.push({
      type: 'SEND',
      index: tx.index,
      messageId: messageId(record.address, seq),
      payload: serviceMessagePayload(to, record.address, seq, tell.event),
    });
  }

  private stageEffect(tx: Transaction, record: ActorRecord, intent: unknown): void {
    const seq = record.nextSeq++;
    tx.effectsAdded ??= [];
    tx.effectsAdded.push([seq, intent]);
    tx.outputs ??= [];
    tx.outputs.push({
      type: 'EFFECT',
      index: tx.index,
      effectId: effectId(record.address, seq),
      address: record.address,
      seq,
      intent,
    });
  }

  // ----- behaviour actor types (see BehaviourTypeOptions in actors/actor-runtime/service.ts) -----

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
    let failure: unknown;
    let failed = false;
    this.tx = tx;
    try {
      this.liveBehaviour(record).apply(event, new StagedContext(this, tx, sessionId));
    } catch (error) {
      failed = true;
      failure = error;
    } finally {
      this.tx = null;
    }
    if (failed) {
      record.nextSeq = seqBefore;
      if (record.type.onError === 'restart') this.restartBehaviour(entry, record, outputs);
      return { code: 'ACTOR_FAILED', message: `${record.address}: ${errorMessage(failure)}` };
    }
    this.flush(tx, outputs);
    if (wantReply) this.replyValue = tx.reply ? tx.reply.value : null;
    this.evictBeyondBound(record);
    return null;
  }

  /** A restart's first step: cancel the actor's pending timers and forget its pending effects. */
  private forgetTimersAndEffects(entry: LogEntry, record: ActorRecord, outputs: ShardOutput[]): void {
    if (record.timers) {
      for (const timer of record.timers.values()) {
        outputs.push({
          type: 'TIMER_CANCEL',
          index: entry.index,
          timerId: timerId(record.address, timer.seq),
        });
      }
    }
    record.timers = null;
    record.effects = null;
  }

  /** 'restart' for a behaviour: cancel its timers, forget its effects, a fresh `create(actorId)`. */
  private restartBehaviour(entry: LogEntry, record: ActorRecord, outputs: ShardOutput[]): void {
    this.forgetTimersAndEffects(entry, record, outputs);
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

  /** Called by StagedContext: stage one of a behaviour's requests in the input's transaction. */
  stageFromBehaviour(
    tx: Transaction,
    request:
      | { readonly kind: 'reply'; readonly value: unknown }
      | {
          readonly kind: 'schedule';
          readonly key: string;
          readonly delayMs: number;
          readonly event: EventObject;
        }
      | { readonly kind: 'cancel'; readonly key: string }
      | { readonly kind: 'tell'; readonly tell: TellEmitted }
      | { readonly kind: 'effect'; readonly intent: unknown },
  ): void {
    if (this.tx !== tx) {
      throw new Error(
        `chorus shard: ${tx.record.address} used its context outside the input being applied (keep no reference to ctx)`,
      );
    }
    switch (request.kind) {
      case 'reply':
        tx.reply = { type: REPLY_EVENT, value: request.value };
        return;
      case 'schedule':
        if (typeof request.key !== 'string' || request.key.length === 0) {
          throw new TypeError(`chorus shard: ${tx.record.address}: a timer key must be a non-empty string`);
        }
        this.stageTimer(tx, tx.record, request.key, request.event, request.delayMs);
        return;
      case 'cancel':
        this.cancel(tx.record, request.key);
        return;
      case 'tell':
        this.stageTell(tx, tx.record, request.tell);
        return;
      case 'effect':
        this.stageEffect(tx, tx.record, request.intent);
        return;
    }
  }

  /** External effects decided but not yet completed, in address then seq order: a new leader performs
   *  them again (their completion is applied once: later completions are ignored). */
  pendingEffects(): { effectId: string; address: string; seq: number; intent: unknown }[] {
    const pending: { effectId: string; address: string; seq: number; intent: unknown }[] = [];
    for (const address of [...this.records.keys()].sort()) {
      const effects = this.records.get(address)!.effects;
      if (!effects) continue;
      for (const [seq, intent] of [...effects].sort((a, b) => a[0] - b[0])) {
        pending.push({ effectId: effectId(address, seq), address, seq, intent });
      }
    }
    return pending;
  }

  /** Pending cluster timers (for rebuilding the timer service after a restart), address then seq order. */
  pendingTimers(): { timerId: string; deadline: number; payload: Uint8Array }[] {
    const pending: { timerId: string; deadline: number; payload: Uint8Array }[] = [];
    for (const address of [...this.records.keys()].sort()) {
      const timers = this.records.get(address)!.timers;
      if (!timers) continue;
      for (const timer of [...timers.values()].sort((a, b) => a.seq - b.seq)) {
        pending.push({
          timerId: timerId(address, timer.seq),
          deadline: timer.deadline,
          payload: timerEventPayload(address, timer.seq),
        });
      }
    }
    return pending;
  }

  /** The persisted XState snapshot of one actor (live or passivated), or undefined if it does not exist. */
  actorState(address: string): unknown {
    const record = this.records.get(address);
    if (!record) return undefined;
    if (record.behaviour) return record.behaviour.snapshot();
    return record.actor ? record.actor.getPersistedSnapshot() : unpack(record.passivated!);
  }

  /**
   * Everything this shard knows, as msgpack bytes in a canonical order (actors by creating entry index,
   * timers and effects by seq, dedup tables by key): two shards with the same state give identical
   * bytes. `records` is always in creating-index order — actors are created in log order and a restore
   * inserts them in that order — so no sort of a million addresses is needed here.
   */
  snapshot(index: number = this.applied): Uint8Array {
    const actors: unknown[] = new Array(this.records.size);
    let at = 0;
    for (const record of this.records.values()) {
      const state = record.actor
        ? pack(record.actor.getPersistedSnapshot())
        : record.behaviour
          ? pack(record.behaviour.snapshot())
          : record.passivated!;
      const timers = record.timers
        ? [...record.timers.values()]
            .sort((a, b) => a.seq - b.seq)
            .map((t) => [t.seq, t.xstateId, t.deadline, t.event])
        : NONE;
      const effects = record.effects ? [...record.effects].sort((a, b) => a[0] - b[0]) : NONE;
      actors[at++] = [record.address, state, record.nextSeq, timers, effects, record.createdAt];
    }
    const sessions = this.sessions.snapshot();
    const senders = [...this.senders].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    return pack([SHARD_SNAPSHOT_VERSION, index, actors, sessions, senders]);
  }

  /**
   * A shard rebuilt from snapshot bytes (every actor passivated, rehydrated on its next input). `keep`
   * selects the actors this shard owns, so a snapshot set can be split across a different shard count.
   */
  static restore(
    bytes: Uint8Array | readonly Uint8Array[],
    options: ShardOptions,
    keep?: (address: string) => boolean,
  ): Shard {
    const shard = new Shard(options);
    const parts = bytes instanceof Uint8Array ? [bytes] : bytes;
    const restored: ActorRecord[] = [];
    let index = -1;
    for (const part of parts) {
      const decoded = unpack(part) as [number, number, unknown[][], unknown[][], [string, number][]];
      if (!Array.isArray(decoded) || decoded[0] !== SHARD_SNAPSHOT_VERSION) {
        throw new Error(
          `Shard.restore: snapshot version ${Array.isArray(decoded) ? decoded[0] : '?'} is not supported (this build reads ${SHARD_SNAPSHOT_VERSION})`,
        );
      }
      const [, at, actors, sessions, senders] = decoded;
      if (index !== -1 && at !== index) {
        throw new Error(
          `Shard.restore: snapshot parts were taken at different log positions (${index} and ${at})`,
        );
      }
      index = at;
      for (const [address, state, nextSeq, timers, effects, createdAt] of actors as [
        string,
        Uint8Array,
        number,
        unknown[][],
        [number, unknown][],
        number,
      ][]) {
        if (keep && !keep(address)) continue;
        const type = shard.actorTypeOf(address);
        if (typeof type === 'string') throw new Error(`Shard.restore: actor ${address}: ${type}`);
        const record: ActorRecord = {
          address,
          type,
          actor: null,
          behaviour: null,
          passivated: state,
          nextSeq,
          timers: null,
          effects: null,
          lastUsed: 0,
          createdAt,
        };
        if (timers.length > 0) {
          record.timers = new Map();
          for (const [seq, xstateId, deadline, event] of timers as [number, string, number, EventObject][]) {
            record.timers.set(xstateId, { seq, xstateId, deadline, event });
          }
        }
        if (effects.length > 0) record.effects = new Map(effects);
        restored.push(record);
      }
      // Dedup tables are merged: a session or sender seen by any part keeps its highest floor or number.
      shard.sessions.restore(sessions as DedupSnapshotRow<SessionReply>[]);
      for (const [from, seq] of senders) shard.senders.set(from, Math.max(seq, shard.senders.get(from) ?? 0));
    }
    // Creating-index order, whichever parts the records came from (see snapshot()).
    if (parts.length > 1) restored.sort((a, b) => a.createdAt - b.createdAt);
    for (const record of restored) shard.records.set(record.address, record);
    shard.applied = Math.max(index, 0);
    return shard;
  }
}
