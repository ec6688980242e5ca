// One actor's input as a small transaction: what the actor asks for while it handles one committed entry
// (timer changes, actor-to-actor sends, external effects, its reply) is staged here and applied to its
// record only if the transition succeeds; a throwing transition leaves the record as it was. Pure data and
// functions over it: the actor host (actor-host.ts) opens and closes transactions.

import type { AnyActor, EventObject } from 'xstate';
import type { LogEntry } from '../log/log-entry.ts';
import {
  effectId,
  formatAddress,
  messageId,
  parseAddress,
  type ReplyError,
  type ShardOutput,
  serviceMessagePayload,
  timerEventPayload,
  timerId,
} from './protocol.ts';
import {
  type ActorBehaviour,
  type ActorType,
  type BehaviourContext,
  EFFECT_EVENT,
  type EffectEmitted,
  NOTIFY_EVENT,
  type NotifyEmitted,
  REPLY_EVENT,
  type ReplyEmitted,
  TELL_EVENT,
  type TellEmitted,
} from './service.ts';

export interface TimerRecord {
  readonly seq: number;
  /** XState's id for the delayed event (for `after`: `xstate.after.<delay>.<stateId>`). */
  readonly xstateId: string;
  readonly event: EventObject;
  readonly deadline: number;
}

export interface ActorRecord {
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
  /** The host's input counter when this actor last got an input (for least-recently-used passivation). */
  lastUsed: number;
  /** Index of the entry that created the actor: unique, and the order of the host's records (see snapshot). */
  readonly createdAt: number;
}

type TimerOp = { readonly schedule: TimerRecord } | { readonly cancel: string };

/** What one input staged; kept only if the actor's transition succeeds. Lists are allocated on first
 *  use: most inputs stage nothing but their reply. */
export interface Transaction {
  readonly record: ActorRecord;
  readonly index: number;
  readonly timestamp: number;
  timerOps: TimerOp[] | null;
  outputs: ShardOutput[] | null;
  effectsAdded: [number, unknown][] | null;
  reply: ReplyEmitted | null;
}

export const isFailure = (result: Transaction | ReplyError): result is ReplyError => 'code' in result;

export const errorMessage = (error: unknown): string =>
  error instanceof Error ? `${error.name}: ${error.message}` : `thrown value: ${String(error)}`;

/** What one committed entry's delivery to one actor stages, before it is kept or rolled back. */
export const newTransaction = (entry: LogEntry, record: ActorRecord): Transaction => ({
  record,
  index: entry.index,
  timestamp: entry.timestamp,
  timerOps: null,
  outputs: null,
  effectsAdded: null,
  reply: null,
});

/** The record of an actor about to be created by its first committed input. */
export const newRecord = (address: string, type: ActorType, createdAt: number): ActorRecord => ({
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

/** Stage a timer: seq from the actor's counter, due at the entry's timestamp + delay. */
export const stageTimer = (
  tx: Transaction,
  id: string | undefined,
  event: EventObject,
  delay: number,
): void => {
  const record = tx.record;
  if (!(Number.isFinite(delay) && delay >= 0)) {
    throw new RangeError(`chorus shard: ${record.address}: delay must be a finite number >= 0, got ${delay}`);
  }
  const seq = record.nextSeq++;
  const xstateId = id ?? `#${seq}`;
  // Re-scheduling an id staged in this same input replaces it.
  tx.timerOps ??= [];
  const at = tx.timerOps.findIndex((op) => 'schedule' in op && op.schedule.xstateId === xstateId);
  if (at >= 0) tx.timerOps.splice(at, 1);
  tx.timerOps.push({ schedule: { seq, xstateId, event, deadline: tx.timestamp + delay } });
};

/** Stage the cancellation of a timer: one staged in this input is dropped, a pending one cancelled. */
export const stageCancel = (tx: Transaction, xstateId: string): void => {
  const at = tx.timerOps
    ? tx.timerOps.findIndex((op) => 'schedule' in op && op.schedule.xstateId === xstateId)
    : -1;
  if (at >= 0) tx.timerOps!.splice(at, 1);
  if (tx.record.timers?.has(xstateId)) {
    tx.timerOps ??= [];
    tx.timerOps.push({ cancel: xstateId });
  }
};

/** Stage the cancellation of every pending timer of the actor (XState's cancelAll, when it stops). */
export const stageCancelAll = (tx: Transaction): void => {
  const timers = tx.record.timers;
  tx.timerOps = timers ? [...timers.keys()].map((xstateId) => ({ cancel: xstateId })) : null;
};

export const stageTell = (tx: Transaction, tell: TellEmitted): void => {
  const record = tx.record;
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
};

export const stageEffect = (tx: Transaction, intent: unknown): void => {
  const record = tx.record;
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
};

/** A message for a client session: a NOTIFY output, kept only if the transition succeeds. */
export const stageNotify = (tx: Transaction, sessionId: number, message: unknown): void => {
  if (!(Number.isSafeInteger(sessionId) && sessionId > 0)) {
    throw new RangeError(`chorus shard: ${tx.record.address}: notify needs a session id (got ${sessionId})`);
  }
  tx.outputs ??= [];
  tx.outputs.push({ type: 'NOTIFY', index: tx.index, sessionId, message });
};

/** An event an XState actor emitted (`emit`): a reply, a tell, an effect or a notification is staged; others ignored. */
export const stageEmitted = (tx: Transaction, emitted: EventObject): void => {
  switch (emitted.type) {
    case REPLY_EVENT:
      tx.reply = emitted as ReplyEmitted;
      return;
    case TELL_EVENT:
      stageTell(tx, emitted as TellEmitted);
      return;
    case EFFECT_EVENT:
      stageEffect(tx, (emitted as EffectEmitted).intent);
      return;
    case NOTIFY_EVENT: {
      const { sessionId, message } = emitted as NotifyEmitted;
      stageNotify(tx, sessionId, message);
      return;
    }
    default:
      return;
  }
};

/** Apply a successful transaction's staged changes to the record and emit its outputs. */
export const commit = (tx: Transaction, outputs: ShardOutput[]): void => {
  const record = tx.record;
  if (tx.timerOps) commitTimers(tx, outputs);
  if (tx.effectsAdded) {
    record.effects ??= new Map();
    for (const [seq, intent] of tx.effectsAdded) record.effects.set(seq, intent);
  }
  if (tx.outputs) for (const output of tx.outputs) outputs.push(output);
};

const commitTimers = (tx: Transaction, outputs: ShardOutput[]): void => {
  const record = tx.record;
  for (const op of tx.timerOps!) {
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
};

/** A restart's first step: cancel the actor's pending timers and forget its pending effects. */
export const forgetTimersAndEffects = (
  entry: LogEntry,
  record: ActorRecord,
  outputs: ShardOutput[],
): void => {
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
};

/**
 * A behaviour's view of the input being applied: every request is staged in that input's transaction.
 * The host closes it once the input is applied; a behaviour that kept a reference and uses it later is
 * refused (its request would land in some other input).
 */
export class StagedContext implements BehaviourContext {
  readonly timestamp: number;
  readonly index: number;
  private open = true;

  constructor(
    private readonly tx: Transaction,
    readonly sessionId: number,
  ) {
    this.timestamp = tx.timestamp;
    this.index = tx.index;
  }

  close(): void {
    this.open = false;
  }

  reply(value: unknown): void {
    this.staging().reply = { type: REPLY_EVENT, value };
  }

  schedule(key: string, delayMs: number, event: EventObject): void {
    const tx = this.staging();
    if (typeof key !== 'string' || key.length === 0) {
      throw new TypeError(`chorus shard: ${tx.record.address}: a timer key must be a non-empty string`);
    }
    stageTimer(tx, key, event, delayMs);
  }

  cancel(key: string): void {
    stageCancel(this.staging(), key);
  }

  tell(actorType: string, actorId: string, event: EventObject, service?: string): void {
    stageTell(this.staging(), {
      type: TELL_EVENT,
      actorType,
      actorId,
      event,
      ...(service === undefined ? {} : { service }),
    });
  }

  effect(intent: unknown): void {
    stageEffect(this.staging(), intent);
  }

  notify(sessionId: number, message: unknown): void {
    stageNotify(this.staging(), sessionId, message);
  }

  private staging(): Transaction {
    if (!this.open) {
      throw new Error(
        `chorus shard: ${this.tx.record.address} used its context outside the input being applied (keep no reference to ctx)`,
      );
    }
    return this.tx;
  }
}
