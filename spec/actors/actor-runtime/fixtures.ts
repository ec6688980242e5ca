// A small service used by the actor-runtime specs (and loaded by pool workers through `services`).
import { assign, emit, setup } from 'xstate';
import { z } from 'zod';
import {
  type ClusterAction,
  clusterActionPayload,
  effectDonePayload,
  type ShardOutput,
} from '../../../actors/actor-runtime/protocol.ts';
import { defineService, effect, reply, tell } from '../../../actors/actor-runtime/service.ts';
import type { ShardSet } from '../../../actors/actor-runtime/shard-set.ts';
import { ClusterTimers } from '../../../actors/consensus/cluster-timers.ts';
import { EntryKind, type LogEntry } from '../../../actors/log/log-entry.ts';

type CounterEvent =
  | { type: 'INC'; by: number }
  | { type: 'FAIL' }
  | { type: 'ARM' }
  | { type: 'DISARM' }
  | { type: 'PING' }
  | { type: 'NOTIFY'; to: string }
  | { type: 'CALL_OUT' }
  | { type: 'GET' }
  | { type: 'SPIN'; rounds: number }
  | { type: 'chorus.effect.done'; effectId: string; result: unknown };

/** A counter with a 1-second `after` timer (ARMED → IDLE), a throwing event, a tell and an effect. */
export const counterMachine = setup({
  types: {
    context: {} as { count: number; pings: number; fired: number; done: number },
    events: {} as CounterEvent,
  },
}).createMachine({
  id: 'counter',
  context: { count: 0, pings: 0, fired: 0, done: 0 },
  initial: 'IDLE',
  states: {
    IDLE: { on: { ARM: 'ARMED' } },
    ARMED: {
      after: { 1000: { target: 'IDLE', actions: assign({ fired: ({ context }) => context.fired + 1 }) } },
      on: { DISARM: 'IDLE' },
    },
  },
  on: {
    INC: { actions: assign({ count: ({ context, event }) => context.count + event.by }) },
    FAIL: {
      actions: [
        assign({ count: () => -999 }),
        () => {
          throw new Error('FAIL always throws');
        },
      ],
    },
    PING: { actions: assign({ pings: ({ context }) => context.pings + 1 }) },
    NOTIFY: { actions: emit(({ event }) => tell('counter', event.to, { type: 'PING' })) },
    CALL_OUT: { actions: emit(({ context }) => effect({ kind: 'http', count: context.count })) },
    GET: { actions: emit(({ context }) => reply(context.count)) },
    // Deterministic slow work (a fixed amount of arithmetic), for the R4 event-loop test.
    SPIN: {
      actions: assign({
        count: ({ context, event }) => {
          let x = context.count;
          for (let i = 0; i < event.rounds; i++) x = (Math.imul(x, 1103515245) + 12345) | 0;
          return context.count + (x === 0.5 ? 1 : 0);
        },
      }),
    },
    'chorus.effect.done': { actions: assign({ done: ({ context }) => context.done + 1 }) },
  },
});

const id = z.string().min(1);
export const counterService = defineService({
  name: 'demo',
  actors: {
    counter: counterMachine,
    fragile: { machine: counterMachine, onError: 'restart' },
  },
  commands: {
    INC: z.object({ type: z.literal('INC'), id, by: z.number().int() }),
    FAIL: z.object({ type: z.literal('FAIL'), id, fragile: z.boolean().optional() }),
    ARM: z.object({ type: z.literal('ARM'), id }),
    DISARM: z.object({ type: z.literal('DISARM'), id }),
    NOTIFY: z.object({ type: z.literal('NOTIFY'), id, to: id }),
    CALL_OUT: z.object({ type: z.literal('CALL_OUT'), id }),
    GET: z.object({ type: z.literal('GET'), id }),
    SPIN: z.object({ type: z.literal('SPIN'), id, rounds: z.number().int().nonnegative() }),
  },
  route: (command) => {
    const { id: actorId, ...rest } = command;
    const fragile = command.type === 'FAIL' && command.fragile === true;
    return { actorType: fragile ? 'fragile' : 'counter', actorId, event: rest as CounterEvent };
  },
});

export const services = [counterService];

/** Builds log entries with consecutive indexes and a cluster clock that only moves forward. */
export class LogBuilder {
  readonly entries: LogEntry[] = [];
  constructor(
    public index = 0,
    public time = 1_000_000,
    public term = 1,
  ) {}

  private add(kind: LogEntry['kind'], payload: Uint8Array, advanceMs = 1): LogEntry {
    this.time += advanceMs;
    const entry: LogEntry = { index: ++this.index, term: this.term, timestamp: this.time, kind, payload };
    this.entries.push(entry);
    return entry;
  }

  command(
    command: unknown,
    sessionId = 1,
    correlationId = this.index + 1,
    advanceMs = 1,
    lowestAwaited = 0,
  ): LogEntry {
    return this.add(
      EntryKind.SESSION_MESSAGE,
      counterService.commandPayload(command, sessionId, correlationId, lowestAwaited),
      advanceMs,
    );
  }

  raw(kind: LogEntry['kind'], payload: Uint8Array, advanceMs = 1): LogEntry {
    return this.add(kind, payload, advanceMs);
  }

  action(action: ClusterAction): LogEntry {
    return this.add(EntryKind.CLUSTER_ACTION, clusterActionPayload(action));
  }

  /** Entries added since `from` (an index). */
  since(from: number): LogEntry[] {
    return this.entries.filter((e) => e.index > from);
  }
}

/**
 * A leader in miniature, for specs: applies committed entries to the shards, keeps the cluster timer
 * service, and appends what the outputs ask for (due timers, actor-to-actor sends, effect completions),
 * exactly as the consensus module will.
 */
export class LeaderSim {
  readonly outputs: ShardOutput[] = [];
  private appliedTo = 0;

  constructor(
    readonly log: LogBuilder,
    public shards: ShardSet,
    readonly timers = new ClusterTimers(),
  ) {
    this.appliedTo = shards.lastApplied;
  }

  /** Apply every log entry not applied yet; then append follow-ups until nothing new is produced. */
  settle(options: { effectResult?: (intent: unknown) => unknown } = {}): void {
    for (let round = 0; round < 100; round++) {
      const fresh = this.log.since(this.appliedTo);
      if (fresh.length === 0) return;
      this.applyEntries(fresh);
      for (const output of this.outputs.splice(0)) {
        if (output.type === 'SEND') this.log.raw(EntryKind.SERVICE_MESSAGE, output.payload);
        if (output.type === 'EFFECT') {
          const result = options.effectResult ? options.effectResult(output.intent) : { ok: true };
          this.log.raw(EntryKind.SERVICE_MESSAGE, effectDonePayload(output.address, output.seq, result));
        }
      }
      this.fireDue();
    }
    throw new Error('LeaderSim.settle: outputs kept producing entries for 100 rounds');
  }

  applyEntries(entries: readonly LogEntry[]): ShardOutput[] {
    const out = this.shards.apply(entries);
    for (const entry of entries)
      if (entry.kind === EntryKind.TIMER_EVENT) this.timers.onTimerEvent(entry.payload);
    this.timers.applyOutputs(out);
    this.outputs.push(...out);
    this.appliedTo = entries[entries.length - 1]?.index ?? this.appliedTo;
    return out;
  }

  /** Append a TIMER_EVENT for every timer due at the log's cluster time. */
  fireDue(): number {
    const due = this.timers.expire(this.log.time);
    for (const timer of due) this.log.raw(EntryKind.TIMER_EVENT, timer.payload, 0);
    return due.length;
  }

  /** Move cluster time forward (an idle period) and fire what became due. */
  advance(ms: number): void {
    this.log.time += ms;
    this.fireDue();
  }
}
