import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import {
  ClusterAction,
  pack,
  type ShardOutput,
  sessionMessagePayload,
} from '../../../actors/actor-runtime/protocol.ts';
import {
  type ActorBehaviour,
  type BehaviourContext,
  defineService,
} from '../../../actors/actor-runtime/service.ts';
import {
  encodeShardSetSnapshot,
  ShardSet,
  type ShardSetSnapshot,
} from '../../../actors/actor-runtime/shard-set.ts';
import { ClusterTimers, timerIdOfPayload } from '../../../actors/consensus/cluster-timers.ts';
import { EntryKind, type LogEntry } from '../../../actors/log/log-entry.ts';
import { BOOK_ACTOR_TYPE, defineOrdersService } from '../../../actors/order-book/service.ts';
import { Random } from '../../../machines/random.ts';
import { openMemberStore } from '../../../persistence/index.ts';
import { ActorRuntime } from '../../../runtime/actor-runtime/actor-runtime.ts';
import { LeaderSim, LogBuilder } from '../actor-runtime/fixtures.ts';
import { bookAddress, OrderFlow, ordersService, services } from './fixtures.ts';

const ACME = bookAddress('ACME');
const GLOBX = bookAddress('GLOBX');
const SERVICES_MODULE = new URL('./fixtures.ts', import.meta.url);

/** A leader in miniature that also keeps every output it applied, in log order. */
class RecordingLeader extends LeaderSim {
  readonly all: ShardOutput[] = [];

  override applyEntries(entries: readonly LogEntry[]): ShardOutput[] {
    const out = super.applyEntries(entries);
    for (const output of out) this.all.push(output);
    return out;
  }
}

/** Append one flow step to the log the way the consensus module would, and apply what it leads to. */
const play = (leader: LeaderSim, log: LogBuilder, step: ReturnType<OrderFlow['next']>): void => {
  if (step.kind === 'idle') {
    leader.advance(step.ms);
  } else {
    log.raw(
      EntryKind.SESSION_MESSAGE,
      ordersService.commandPayload(step.command, step.sessionId, step.correlationId),
      step.advanceMs,
    );
    leader.fireDue();
  }
  leader.settle();
};

interface LiveRun {
  readonly log: LogBuilder;
  readonly leader: RecordingLeader;
  readonly live: ShardSet;
  /** Snapshots of the live shards taken along the way (ascending index). */
  readonly snapshots: ShardSetSnapshot[];
}

/**
 * The uninterrupted run: `steps` flow steps on 2 in-process shards. After the given steps a CLUSTER_ACTION
 * SNAPSHOT entry is committed, as an operator or the snapshot policy would: every shard answers with its
 * SNAPSHOT output, and those bytes are the snapshot set a restarting member loads.
 */
const runLive = (seed: number, steps: number, snapshotAfter: ReadonlySet<number>): LiveRun => {
  const log = new LogBuilder();
  const live = new ShardSet(2, { services });
  const leader = new RecordingLeader(log, live);
  const flow = new OrderFlow(seed);
  const snapshots: ShardSetSnapshot[] = [];
  for (let step = 0; step < steps; step++) {
    play(leader, log, flow.next());
    if (snapshotAfter.has(step)) {
      const entry = log.action(ClusterAction.SNAPSHOT);
      leader.settle();
      const parts = leader.all.filter(
        (o): o is Extract<ShardOutput, { type: 'SNAPSHOT' }> =>
          o.type === 'SNAPSHOT' && o.index === entry.index,
      );
      expect(parts.map((p) => p.shard)).to.deep.equal([0, 1]);
      snapshots.push({ index: entry.index, shards: parts.map((p) => p.bytes) });
    }
  }
  return { log, leader, live, snapshots };
};

/** Apply `entries` in random-sized batches (a follower gets them however replication delivered them). */
const applyInBatches = (shards: ShardSet, entries: readonly LogEntry[], rng: Random): ShardOutput[] => {
  const outputs: ShardOutput[] = [];
  for (let at = 0; at < entries.length; ) {
    const size = rng.int(1, 64);
    for (const output of shards.apply(entries.slice(at, at + size))) outputs.push(output);
    at += size;
  }
  return outputs;
};

const expectSameBytes = (actual: unknown, expected: unknown, what: string): void => {
  const a = Buffer.from(pack(actual));
  const b = Buffer.from(pack(expected));
  if (!a.equals(b)) expect(actual, what).to.deep.equal(expected); // shows where they differ
  expect(a.equals(b), `${what}: msgpack bytes differ`).to.equal(true);
};

const outputsAfter = (outputs: readonly ShardOutput[], index: number): ShardOutput[] =>
  outputs.filter((o) => o.index > index);

describe('order books through the actor runtime', function () {
  this.timeout(20_000);

  it('replay equals live — random order flow, restarts from random snapshots + the rest of the log give byte-identical books and execution reports', () => {
    for (let seed = 1; seed <= 6; seed++) {
      const rng = new Random(1000 + seed);
      const steps = 400;
      const cuts = new Set([rng.int(20, 190), rng.int(200, 390)]);
      const { log, leader, live, snapshots } = runLive(seed, steps, cuts);
      const finalBytes = encodeShardSetSnapshot(live.snapshot());
      const reports = leader.all.filter((o) => o.type === 'REPLY');
      expect(reports.length, `seed ${seed}: replies`).to.be.greaterThan(300);
      const trades = reports
        .flatMap((r) => (Array.isArray(r.value) ? r.value : []))
        .filter((o: { type: string }) => o.type === 'TRADE');
      expect(trades.length, `seed ${seed}: the flow must trade`).to.be.greaterThan(10);
      expect(
        log.entries.some((e) => e.kind === EntryKind.TIMER_EVENT),
        `seed ${seed}: timers fired`,
      ).to.equal(true);

      // A fresh replay of the whole log, from nothing.
      const fresh = new ShardSet(2, { services });
      expectSameBytes(
        applyInBatches(fresh, log.entries, rng),
        leader.all,
        `seed ${seed}: full replay outputs`,
      );
      expect(Buffer.from(encodeShardSetSnapshot(fresh.snapshot())).equals(finalBytes)).to.equal(true);

      // Restart from the first snapshot, run to the second cut, snapshot the restarted shards, restart
      // again from that, and run to the end. For two seeds the restarted member keeps one book live
      // (maxLiveActors 1): the other is passivated to bytes and rehydrated whenever the instrument changes.
      const [first, second] = snapshots;
      let restarted = ShardSet.restore(first, 2, { services, maxLiveActors: seed <= 2 ? 1 : 10_000 });
      const toSecond = log.entries.filter((e) => e.index > first.index && e.index <= second.index);
      const firstLeg = applyInBatches(restarted, toSecond, rng);
      expectSameBytes(
        firstLeg,
        leader.all.filter((o) => o.index > first.index && o.index <= second.index),
        `seed ${seed}: outputs after restart 1`,
      );
      const retaken = restarted.snapshot();
      expect(Buffer.from(encodeShardSetSnapshot(retaken)).equals(encodeShardSetSnapshot(second))).to.equal(
        true,
      );
      restarted = ShardSet.restore(retaken, 2, { services });
      const secondLeg = applyInBatches(
        restarted,
        log.entries.filter((e) => e.index > second.index),
        rng,
      );
      expectSameBytes(
        secondLeg,
        outputsAfter(leader.all, second.index),
        `seed ${seed}: outputs after restart 2`,
      );
      expect(Buffer.from(encodeShardSetSnapshot(restarted.snapshot())).equals(finalBytes)).to.equal(true);

      // A member restarting on a different shard count computes the same books and reports.
      const resharded = ShardSet.restore(first, 1, { services });
      const rest = applyInBatches(
        resharded,
        log.entries.filter((e) => e.index > first.index),
        rng,
      );
      // (Snapshot outputs differ by construction: one blob per shard.)
      const notSnapshot = (o: ShardOutput) => o.type !== 'SNAPSHOT';
      expectSameBytes(
        rest.filter(notSnapshot),
        outputsAfter(leader.all, first.index).filter(notSnapshot),
        `seed ${seed}: outputs on 1 shard`,
      );
      for (const address of [ACME, GLOBX]) {
        expectSameBytes(resharded.actorState(address), live.actorState(address), `seed ${seed}: ${address}`);
      }
    }
  });

  it('C2: a retried command is answered with the first answer; a resent clientOrderId gets the original reports, marked duplicate', () => {
    const log = new LogBuilder();
    const leader = new RecordingLeader(log, new ShardSet(1, { services }));
    const send = (command: Record<string, unknown>, correlationId: number) => {
      log.raw(EntryKind.SESSION_MESSAGE, ordersService.commandPayload(command, 7, correlationId));
      leader.settle();
      const reply = leader.all[leader.all.length - 1];
      expect(reply.type).to.equal('REPLY');
      return reply as Extract<ShardOutput, { type: 'REPLY' }>;
    };
    send({ type: 'OPEN_AUCTION', instrument: 'ACME' }, 1);
    send({ type: 'UNCROSS', instrument: 'ACME' }, 2);
    const order = {
      type: 'NEW_ORDER',
      instrument: 'ACME',
      account: 'acct-a',
      clientOrderId: 'o-1',
      side: 'BUY',
      price: 1_000,
      quantity: 5,
    };
    const first = send(order, 3);
    const retried = send(order, 3); // the same correlation id: a transport retry
    expect(retried.duplicate).to.equal(true);
    expect(retried.value).to.deep.equal(first.value);
    const resent = send(order, 4); // a new correlation id, the same request: the book's idempotency
    const reports = (resent.value as { type: string; duplicate: boolean; execType: string }[]).filter(
      (o) => o.type === 'EXECUTION_REPORT',
    );
    expect(reports.map((r) => [r.execType, r.duplicate])).to.deep.equal([['NEW', true]]);
    const state = leader.shards.actorState(ACME) as { book: { bids: unknown[] } };
    expect(state.book.bids).to.have.length(1);
  });

  it('the opening-auction timer fires exactly once across a snapshot and restore, also when its expiry is appended twice', () => {
    const log = new LogBuilder();
    const live = new ShardSet(2, { services });
    const leader = new RecordingLeader(log, live);
    const command = (c: Record<string, unknown>, correlationId: number) => {
      log.raw(EntryKind.SESSION_MESSAGE, ordersService.commandPayload(c, 3, correlationId));
      leader.settle();
    };
    command({ type: 'OPEN_AUCTION', instrument: 'ACME' }, 1);
    const base = { type: 'NEW_ORDER', instrument: 'ACME', quantity: 10 };
    command({ ...base, account: 'acct-a', clientOrderId: 'b1', side: 'BUY', price: 1_002 }, 2);
    command({ ...base, account: 'acct-b', clientOrderId: 's1', side: 'SELL', price: 998 }, 3);
    const scheduled = leader.all.filter((o) => o.type === 'TIMER_SCHEDULE');
    expect(scheduled).to.have.length(1);

    // Snapshot (shards and the leader's timer service), restart from it.
    const snapshot = live.snapshot();
    const timers = ClusterTimers.restore(leader.timers.snapshot());
    const restarted = new RecordingLeader(log, ShardSet.restore(snapshot, 2, { services }), timers);
    expect(restarted.timers.list().map((t) => t.timerId)).to.deep.equal([`${ACME}#1`]);

    // The auction period passes on the restarted member: its expiry is appended and applied...
    restarted.advance(4_000);
    restarted.settle();
    const expiry = log.entries.filter((e) => e.kind === EntryKind.TIMER_EVENT);
    expect(expiry).to.have.length(1);
    const afterFire = restarted.shards.actorState(ACME) as {
      phase: { value: string };
      book: { bids: unknown[]; asks: unknown[]; nextTradeId: number };
    };
    expect(afterFire.phase.value).to.equal('CONTINUOUS');
    expect(afterFire.book.nextTradeId).to.equal(2); // one uncross trade
    expect([afterFire.book.bids.length, afterFire.book.asks.length]).to.deep.equal([0, 0]);

    // ...and a new leader appending the same expiry again changes nothing and outputs nothing.
    const bytes = pack(afterFire);
    const before = restarted.all.length;
    log.raw(EntryKind.TIMER_EVENT, expiry[0].payload, 0);
    restarted.settle();
    expect(restarted.all.length).to.equal(before);
    expect(Buffer.from(pack(restarted.shards.actorState(ACME))).equals(Buffer.from(bytes))).to.equal(true);
    expect(restarted.timers.size).to.equal(0);

    // The member that never restarted applies the same log to the same book.
    leader.settle();
    expectSameBytes(live.actorState(ACME), afterFire, 'live book');
  });

  it('a circuit-breaker halt resumes through its halt timer and re-opening auction exactly once after a restore', () => {
    const log = new LogBuilder();
    const leader = new RecordingLeader(log, new ShardSet(1, { services }));
    let correlation = 0;
    const command = (c: Record<string, unknown>) => {
      log.raw(EntryKind.SESSION_MESSAGE, ordersService.commandPayload(c, 5, ++correlation));
      leader.settle();
    };
    const base = { type: 'NEW_ORDER', instrument: 'ACME', quantity: 5 };
    command({ type: 'OPEN_AUCTION', instrument: 'ACME' });
    command({ type: 'UNCROSS', instrument: 'ACME' });
    command({ ...base, account: 'acct-a', clientOrderId: 'a1', side: 'SELL', price: 1_000 });
    command({ ...base, account: 'acct-b', clientOrderId: 'b1', side: 'BUY', price: 1_000 }); // trades at 1000
    command({ ...base, account: 'acct-a', clientOrderId: 'a2', side: 'SELL', price: 1_010 });
    command({ ...base, account: 'acct-b', clientOrderId: 'b2', side: 'BUY', price: 1_010 }); // outside ±5: halt
    const phase = (l: LeaderSim) => (l.shards.actorState(ACME) as { phase: { value: string } }).phase.value;
    expect(phase(leader)).to.equal('HALTED');

    const restarted = new RecordingLeader(
      log,
      ShardSet.restore(leader.shards.snapshot(), 1, { services }),
      ClusterTimers.restore(leader.timers.snapshot()),
    );
    restarted.advance(15_000); // the halt
    restarted.settle();
    expect(phase(restarted)).to.equal('OPENING_AUCTION');
    restarted.advance(4_000); // the re-opening auction
    restarted.settle();
    expect(phase(restarted)).to.equal('CONTINUOUS');
    const expiries = log.entries.filter((e) => e.kind === EntryKind.TIMER_EVENT);
    expect(expiries).to.have.length(2);
    // Both expiries appended again (a leader change mid-way): nothing more happens.
    for (const e of expiries) log.raw(EntryKind.TIMER_EVENT, e.payload, 0);
    const state = pack(restarted.shards.actorState(ACME));
    restarted.settle();
    expect(Buffer.from(pack(restarted.shards.actorState(ACME))).equals(Buffer.from(state))).to.equal(true);
    leader.settle();
    expectSameBytes(leader.shards.actorState(ACME), restarted.shards.actorState(ACME), 'live book');
  });

  it("replyWith 'own-reports' answers the requester with its own reports only; 'all-outputs' with every output", () => {
    const replies = (replyWith: 'own-reports' | 'all-outputs') => {
      const svc = defineOrdersService({ instruments: { ACME: {} }, replyWith });
      const shards = new ShardSet(1, { services: [svc] });
      const log = new LogBuilder();
      const send = (command: Record<string, unknown>, sessionId: number, correlationId: number) =>
        log.raw(EntryKind.SESSION_MESSAGE, svc.commandPayload(command, sessionId, correlationId));
      const order = { type: 'NEW_ORDER', instrument: 'ACME', quantity: 4, price: 100 };
      send({ type: 'OPEN_AUCTION', instrument: 'ACME' }, 1, 1);
      send({ type: 'UNCROSS', instrument: 'ACME' }, 1, 2);
      send({ ...order, account: 'maker', clientOrderId: 'm1', side: 'SELL' }, 2, 1);
      send({ ...order, account: 'taker', clientOrderId: 't1', side: 'BUY' }, 3, 1);
      const last = shards.apply(log.entries).filter((o) => o.type === 'REPLY');
      return (last[last.length - 1].value as { type: string; sessionId?: number; execType?: string }[]).map(
        (o) => [o.type, o.sessionId ?? null, o.execType ?? null],
      );
    };
    expect(replies('own-reports')).to.deep.equal([
      ['EXECUTION_REPORT', 3, 'NEW'],
      ['EXECUTION_REPORT', 3, 'TRADE'],
    ]);
    const all = replies('all-outputs');
    expect(all).to.deep.include.members([
      ['TRADE', null, null],
      ['EXECUTION_REPORT', 2, 'TRADE'],
      ['EXECUTION_REPORT', 3, 'TRADE'],
      ['DEPTH', null, null],
    ]);
  });

  it('the orders service refuses unknown instruments and bad settings at the edge, naming the fix', () => {
    expect(() =>
      ordersService.resolve({
        type: 'NEW_ORDER',
        instrument: 'NOPE',
        account: 'a',
        clientOrderId: 'c',
        side: 'BUY',
        price: 1,
        quantity: 1,
      }),
    ).to.throw(/instrument.*ACME.*GLOBX|ACME.*GLOBX/);
    expect(() => ordersService.resolve({ type: 'TIMER', timerId: 1 })).to.throw(/TIMER.*unknown/);
    expect(() => defineOrdersService({ instruments: { X: { minPrice: 10, maxPrice: 5 } } })).to.throw(
      /instrument 'X'.*minPrice/,
    );
    expect(() => defineOrdersService({ instruments: {} })).to.throw(/at least one instrument/);
    const { address } = ordersService.resolve({ type: 'HALT', instrument: 'GLOBX' });
    expect(address).to.equal(`orders/${BOOK_ACTOR_TYPE}/GLOBX`);
  });

  it('worker shards on a durable LMDB log — snapshot, purge, restart and replay give the same books as the in-process run', async () => {
    const { log, live } = runLive(77, 300, new Set());
    const dir = await mkdtemp(join(tmpdir(), 'chorus-orders-runtime-'));
    try {
      const cut = log.entries[Math.floor(log.entries.length / 2)].index;
      let store = await openMemberStore(dir);
      let runtime = await ActorRuntime.open({ store, shards: 2, servicesModule: SERVICES_MODULE });
      try {
        const head = log.entries.filter((e) => e.index <= cut);
        await store.log.append(head);
        for (let at = 0; at < head.length; at += 100) await runtime.apply(head.slice(at, at + 100));
        await runtime.snapshot({ consensus: pack({ term: 1 }), purge: true });
        await store.log.append(log.entries.filter((e) => e.index > cut));
      } finally {
        await runtime.close();
        await store.close();
      }
      store = await openMemberStore(dir);
      runtime = await ActorRuntime.open({ store, shards: 2, servicesModule: SERVICES_MODULE });
      try {
        expect(runtime.report.snapshotIndex).to.equal(cut);
        expect(runtime.report.replayed).to.equal(log.entries.length - cut);
        for (const address of [ACME, GLOBX]) {
          expectSameBytes(await runtime.pool.actorState(address), live.actorState(address), address);
        }
        // Every timer the live leader has pending is pending here too.
        const pending = runtime.timers.list().map((t) => [t.timerId, t.deadline]);
        const expected = live.shards.flatMap((s) => s.pendingTimers()).map((t) => [t.timerId, t.deadline]);
        expect(pending).to.include.deep.members(expected);
        // A timer listed here beyond those has already fired in the log (ActorServiceHost applies a batch's
        // TIMER_EVENT entries before the same batch's TIMER_SCHEDULE outputs, so a timer scheduled and
        // fired within one replay batch stays listed). Its expiry appended again must change nothing.
        const livePending = new Set(expected.map(([id]) => id));
        const stale = runtime
          .dueEntries(Number.MAX_SAFE_INTEGER)
          .filter((d) => d.kind === EntryKind.TIMER_EVENT && !livePending.has(timerIdOfPayload(d.payload)));
        const last = log.entries[log.entries.length - 1];
        const again: LogEntry[] = stale.map((d, i) => ({
          index: last.index + 1 + i,
          term: last.term,
          timestamp: last.timestamp,
          kind: d.kind,
          payload: d.payload,
        }));
        const outputs = await runtime.apply(again);
        expect(outputs).to.deep.equal([]);
        for (const address of [ACME, GLOBX]) {
          expectSameBytes(await runtime.pool.actorState(address), live.actorState(address), address);
        }
      } finally {
        await runtime.close();
        await store.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('behaviour actors in the actor runtime', () => {
  /** A tiny behaviour: counts, throws on FAIL after mutating, arms a timer, tells, asks for an effect. */
  class Tally implements ActorBehaviour {
    constructor(
      public count = 0,
      public fired = 0,
    ) {}

    apply(event: { type: string; by?: number }, ctx: BehaviourContext): void {
      switch (event.type) {
        case 'ADD':
          this.count += event.by ?? 1;
          ctx.reply(this.count);
          return;
        case 'ARM':
          ctx.schedule('alarm', 1_000, { type: 'RING' });
          return;
        case 'DISARM':
          ctx.cancel('alarm');
          return;
        case 'RING':
          this.fired++;
          return;
        case 'FAIL':
          ctx.schedule('never', 10, { type: 'RING' });
          ctx.tell('tally', 'other', { type: 'ADD', by: 1 });
          throw new Error('FAIL always throws');
        default:
          throw new Error(`unknown ${event.type}`);
      }
    }

    snapshot(): unknown {
      return [this.count, this.fired];
    }
  }
  const make = (onError: 'keep-state' | 'restart') =>
    defineService({
      name: 'tally',
      actors: {
        tally: {
          behaviour: {
            create: () => new Tally(),
            restore: (data) => new Tally(...(data as [number, number])),
          },
          onError,
        },
      },
      commands: {},
      route: () => ({ actorType: 'tally', actorId: 'x', event: { type: 'NONE' } }),
    });
  const TALLY = 'tally/tally/t';
  const command = (log: LogBuilder, event: Record<string, unknown>, correlationId: number) =>
    log.raw(EntryKind.SESSION_MESSAGE, sessionMessagePayload(TALLY, 9, correlationId, event));

  it('R4: a throwing behaviour is rejected with ACTOR_FAILED and its staged timers and sends are dropped, identically on every member', () => {
    for (const policy of ['keep-state', 'restart'] as const) {
      const svc = make(policy);
      const log = new LogBuilder();
      const entry = (event: Record<string, unknown>, correlationId: number) =>
        command(log, event, correlationId);
      entry({ type: 'ADD', by: 5 }, 1);
      entry({ type: 'ARM' }, 2);
      entry({ type: 'FAIL' }, 3);
      entry({ type: 'ADD', by: 1 }, 4);
      const a = new ShardSet(1, { services: [svc] });
      const b = new ShardSet(1, { services: [svc], maxLiveActors: 1 });
      const out = a.apply(log.entries);
      expectSameBytes(b.apply(log.entries), out, `${policy}: members agree`);
      const replies = out.filter((o) => o.type === 'REPLY');
      expect(replies.map((r) => r.ok)).to.deep.equal([true, true, false, true]);
      expect(replies[2].error?.code).to.equal('ACTOR_FAILED');
      expect(out.filter((o) => o.type === 'SEND')).to.have.length(0);
      const scheduled = out.filter((o) => o.type === 'TIMER_SCHEDULE');
      expect(scheduled).to.have.length(1); // ARM's; FAIL's 'never' was dropped
      if (policy === 'keep-state') {
        expect(replies[3].value).to.equal(6);
        expect(out.filter((o) => o.type === 'TIMER_CANCEL')).to.have.length(0);
      } else {
        expect(replies[3].value).to.equal(1); // restarted from create(): count 0, then +1
        expect(out.filter((o) => o.type === 'TIMER_CANCEL')).to.have.length(1); // ARM's timer
      }
    }
  });

  it('a behaviour timer fires once across passivation and a snapshot restore; a cancelled one never does', () => {
    const svc = make('keep-state');
    const log = new LogBuilder();
    const leader = new LeaderSim(log, new ShardSet(1, { services: [svc], maxLiveActors: 1 }));
    let correlation = 0;
    const send = (event: Record<string, unknown>) => {
      command(log, event, ++correlation);
      leader.settle();
    };
    send({ type: 'ARM' });
    send({ type: 'ADD', by: 1 });
    const restored = new LeaderSim(
      log,
      ShardSet.restore(leader.shards.snapshot(), 1, { services: [svc], maxLiveActors: 1 }),
      ClusterTimers.restore(leader.timers.snapshot()),
    );
    restored.advance(1_000);
    restored.settle();
    const expiry = log.entries.filter((e) => e.kind === EntryKind.TIMER_EVENT);
    expect(expiry).to.have.length(1);
    log.raw(EntryKind.TIMER_EVENT, expiry[0].payload, 0);
    restored.settle();
    expect(restored.shards.actorState(TALLY)).to.deep.equal([1, 1]);
    command(log, { type: 'ARM' }, ++correlation);
    command(log, { type: 'DISARM' }, ++correlation);
    restored.settle();
    restored.advance(5_000);
    restored.settle();
    expect(restored.shards.actorState(TALLY)).to.deep.equal([1, 1]);
    expect(restored.timers.size).to.equal(0);
  });

  it('a behaviour that keeps its context and uses it in a later input is refused; the stale request stages nothing', () => {
    let kept: BehaviourContext | null = null;
    const svc = defineService({
      name: 'keeper',
      actors: {
        keeper: {
          behaviour: {
            create: () => ({
              apply(event: { type: string }, ctx: BehaviourContext) {
                if (event.type === 'KEEP') kept = ctx;
                else kept!.tell('keeper', 'other', { type: 'LEAK' });
                ctx.reply(event.type);
              },
              snapshot: () => null,
            }),
            restore: () => {
              throw new Error('never passivated here');
            },
          },
        },
      },
      commands: {},
      route: () => ({ actorType: 'keeper', actorId: 'k', event: { type: 'NONE' } }),
    });
    const log = new LogBuilder();
    log.raw(EntryKind.SESSION_MESSAGE, sessionMessagePayload('keeper/keeper/k', 9, 1, { type: 'KEEP' }));
    log.raw(EntryKind.SESSION_MESSAGE, sessionMessagePayload('keeper/keeper/k', 9, 2, { type: 'USE' }));
    const out = new ShardSet(1, { services: [svc] }).apply(log.entries);
    const replies = out.filter((o) => o.type === 'REPLY');
    expect(replies.map((r) => r.ok)).to.deep.equal([true, false]);
    expect(replies[1].error?.code).to.equal('ACTOR_FAILED');
    expect(replies[1].error?.message).to.match(/used its context outside the input being applied/);
    expect(out.filter((o) => o.type === 'SEND')).to.have.length(0);
  });
});
