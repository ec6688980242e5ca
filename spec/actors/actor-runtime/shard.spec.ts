import { expect } from 'chai';
import fc from 'fast-check';
import {
  effectDonePayload,
  fnv1a,
  pack,
  type ShardOutput,
  sessionMessagePayload,
  shardOfAddress,
  shardOfEntry,
} from '../../../actors/actor-runtime/protocol.ts';
import { CommandError } from '../../../actors/actor-runtime/service.ts';
import { Shard } from '../../../actors/actor-runtime/shard.ts';
import {
  decodeShardSetSnapshot,
  encodeShardSetSnapshot,
  restoreLatestValid,
  ShardSet,
} from '../../../actors/actor-runtime/shard-set.ts';
import { EntryKind } from '../../../actors/log/log-entry.ts';
import { encodeSessionMessage } from '../../../actors/log/session-message.ts';
import { Random } from '../../../machines/random.ts';
import { checkProperty } from '../../support/property.ts';
import { counterService, LeaderSim, LogBuilder, services } from './fixtures.ts';

const A = 'demo/counter/a';
const replies = (outputs: readonly ShardOutput[]) => outputs.filter((o) => o.type === 'REPLY');

/** Shard-count independent canonical bytes of the shards' whole state. */
const canonical = (set: ShardSet): Uint8Array =>
  ShardSet.restore(set.snapshot(), 1, { services }).snapshot().shards[0];

describe('actor service definition', () => {
  it('validates commands with zod and names what is wrong', () => {
    expect(() => counterService.commandPayload({ type: 'INC', id: 'a', by: 'x' }, 1, 1)).to.throw(
      CommandError,
      /by/,
    );
    expect(() => counterService.commandPayload({ type: 'NOPE' }, 1, 1)).to.throw(
      CommandError,
      /unknown.*INC/,
    );
    expect(() => counterService.commandPayload({ type: 'INC', id: '', by: 1 }, 1, 1)).to.throw(
      CommandError,
      /id/,
    );
  });

  it('routes a command to its actor address', () => {
    expect(counterService.resolve({ type: 'INC', id: 'x/y', by: 1 }).address).to.equal('demo/counter/x/y');
    expect(counterService.resolve({ type: 'FAIL', id: 'q', fragile: true }).address).to.equal(
      'demo/fragile/q',
    );
  });
});

describe('shard routing', () => {
  it('hashes the address bytes inside the payload exactly like the address string (fnv1a % N)', () => {
    expect(fnv1a('')).to.equal(0x811c9dc5);
    expect(fnv1a('a')).to.equal(0xe40c292c);
    checkProperty(
      fc.property(
        fc.string({ minLength: 1, maxLength: 300, unit: 'grapheme' }),
        fc.integer({ min: 1, max: 7 }),
        (id, n) => {
          const address = `demo/counter/${id}`;
          const entry = {
            index: 1,
            term: 1,
            timestamp: 0,
            kind: EntryKind.SESSION_MESSAGE,
            payload: sessionMessagePayload(address, 1, 1, { type: 'X' }),
          };
          expect(shardOfEntry(entry, n)).to.equal(shardOfAddress(address, n));
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('Shard', () => {
  it('creates actors on first input, replies with their state, and skips entries already applied', () => {
    const log = new LogBuilder();
    log.command({ type: 'INC', id: 'a', by: 2 });
    log.command({ type: 'INC', id: 'a', by: 3 });
    log.command({ type: 'GET', id: 'a' });
    const shard = new Shard({ services });
    const out = replies(shard.apply(log.entries));
    expect(out.map((r) => r.type === 'REPLY' && r.value)).to.deep.equal([
      { state: 'IDLE', context: { count: 2, pings: 0, fired: 0, done: 0 } },
      { state: 'IDLE', context: { count: 5, pings: 0, fired: 0, done: 0 } },
      5,
    ]);
    expect(shard.apply(log.entries)).to.deep.equal([]);
    expect(shard.actorCount).to.equal(1);
  });

  it('a retried correlation id is applied once and answered with the same result', () => {
    const log = new LogBuilder();
    log.command({ type: 'INC', id: 'a', by: 2 }, 7, 100);
    log.command({ type: 'INC', id: 'a', by: 2 }, 7, 100);
    const shard = new Shard({ services });
    const [first, retry] = replies(shard.apply(log.entries));
    expect(retry).to.deep.include({
      ok: true,
      duplicate: true,
      value: first.type === 'REPLY' && first.value,
    });
    expect((shard.actorState(A) as { context: { count: number } }).context.count).to.equal(2);
  });

  it('applies a command that reached the log after a newer one of its session, and answers both resends', () => {
    // Seen with BUSY resends: correlation 73 at one index, 72 later. A high-water mark dropped 72 as
    // "already applied"; the table keeps every reply at or above the client's lowest awaited id.
    const log = new LogBuilder();
    log.command({ type: 'INC', id: 'a', by: 1 }, 7, 73, 1, 72);
    log.command({ type: 'INC', id: 'a', by: 10 }, 7, 72, 1, 72);
    log.command({ type: 'INC', id: 'a', by: 10 }, 7, 72, 1, 72);
    log.command({ type: 'INC', id: 'a', by: 1 }, 7, 73, 1, 72);
    const shard = new Shard({ services });
    const [r73, r72, again72, again73] = replies(shard.apply(log.entries));
    expect([r73.ok, r72.ok, again72.duplicate, again73.duplicate]).to.deep.equal([true, true, true, true]);
    expect(again72).to.deep.include({ value: r72.type === 'REPLY' && r72.value });
    expect((shard.actorState(A) as { context: { count: number } }).context.count).to.equal(11);
  });

  it('a stale copy below the session’s lowest awaited id is never applied and answers OUTCOME_UNKNOWN', () => {
    const log = new LogBuilder();
    log.command({ type: 'INC', id: 'a', by: 1 }, 7, 1, 1, 1);
    log.command({ type: 'INC', id: 'a', by: 1 }, 7, 2, 1, 2);
    log.command({ type: 'INC', id: 'a', by: 1 }, 7, 1, 1, 1);
    const shard = new Shard({ services });
    const [, , stale] = replies(shard.apply(log.entries));
    expect(stale).to.deep.include({ ok: false });
    expect(stale.type === 'REPLY' && stale.error?.code).to.equal('OUTCOME_UNKNOWN');
    expect((shard.actorState(A) as { context: { count: number } }).context.count).to.equal(2);
  });

  it('R4: a throwing actor is rejected with ACTOR_FAILED and keeps its last good state, identically on two members', () => {
    const log = new LogBuilder();
    log.command({ type: 'INC', id: 'a', by: 5 });
    log.command({ type: 'ARM', id: 'a' });
    log.command({ type: 'FAIL', id: 'a' });
    log.command({ type: 'INC', id: 'a', by: 1 });
    const one = new Shard({ services });
    const two = new Shard({ services, maxLiveActors: 1 });
    const outOne = one.apply(log.entries);
    const outTwo = two.apply(log.entries);
    expect(pack(outOne)).to.deep.equal(pack(outTwo));
    expect(one.snapshot()).to.deep.equal(two.snapshot());
    const failed = replies(outOne)[2];
    expect(failed).to.deep.include({ ok: false });
    expect(failed.type === 'REPLY' && failed.error?.code).to.equal('ACTOR_FAILED');
    expect(one.actorState(A)).to.deep.include({
      value: 'ARMED',
      context: { count: 6, pings: 0, fired: 0, done: 0 },
    });
    // The timer armed before the failure is still pending (the failed input changed nothing).
    expect(one.pendingTimers().map((t) => t.timerId)).to.deep.equal([`${A}#1`]);
  });

  it("R4: the 'restart' policy restarts a throwing actor from its initial state and cancels its timers", () => {
    const log = new LogBuilder();
    const payload = (event: unknown) => sessionMessagePayload('demo/fragile/f', 1, log.index + 1, event);
    log.raw(EntryKind.SESSION_MESSAGE, payload({ type: 'INC', by: 4 }));
    log.raw(EntryKind.SESSION_MESSAGE, payload({ type: 'ARM' }));
    log.raw(EntryKind.SESSION_MESSAGE, payload({ type: 'FAIL' }));
    const shard = new Shard({ services });
    const out = shard.apply(log.entries);
    expect(
      out.filter((o) => o.type === 'TIMER_CANCEL').map((o) => o.type === 'TIMER_CANCEL' && o.timerId),
    ).to.deep.equal(['demo/fragile/f#1']);
    expect(shard.actorState('demo/fragile/f')).to.deep.include({
      value: 'IDLE',
      context: { count: 0, pings: 0, fired: 0, done: 0 },
    });
    expect(shard.pendingTimers()).to.deep.equal([]);
  });

  it('R1: live actors are bounded; idle ones are passivated and rehydrated with the same state', () => {
    const log = new LogBuilder();
    const rng = new Random(7);
    for (let i = 0; i < 400; i++) {
      const id = `a${rng.int(0, 39)}`;
      if (rng.chance(0.1)) log.command({ type: 'ARM', id });
      else log.command({ type: 'INC', id, by: rng.int(1, 9) });
      if (rng.chance(0.05)) log.time += 1500;
    }
    const bounded = new ShardSet(1, { services, maxLiveActors: 3 });
    const unbounded = new ShardSet(1, { services, maxLiveActors: 1000 });
    const simBounded = new LeaderSim(log, bounded);
    simBounded.settle();
    const outUnbounded = unbounded.apply(log.entries);
    expect(bounded.shards[0].liveActorCount).to.be.at.most(3);
    expect(bounded.shards[0].actorCount).to.equal(40);
    expect(pack(outUnbounded)).to.deep.equal(
      pack(new ShardSet(1, { services, maxLiveActors: 3 }).apply(log.entries)),
    );
    expect(bounded.snapshot().shards[0]).to.deep.equal(unbounded.snapshot().shards[0]);
  });

  it('sends actor-to-actor messages through the log and applies a resent one once', () => {
    const log = new LogBuilder();
    log.command({ type: 'NOTIFY', id: 'a', to: 'b' });
    const set = new ShardSet(2, { services });
    const send = set.apply(log.entries).find((o) => o.type === 'SEND');
    expect(send).to.deep.include({ messageId: `${A}>1` });
    if (send?.type !== 'SEND') throw new Error('no SEND output');
    log.raw(EntryKind.SERVICE_MESSAGE, send.payload);
    log.raw(EntryKind.SERVICE_MESSAGE, send.payload); // a new leader resending it
    set.apply(log.since(1));
    expect(set.actorState('demo/counter/b')).to.deep.include({
      context: { count: 0, pings: 1, fired: 0, done: 0 },
    });
  });

  it('keeps external effects pending until their completion is applied, once', () => {
    const log = new LogBuilder();
    log.command({ type: 'INC', id: 'a', by: 3 });
    log.command({ type: 'CALL_OUT', id: 'a' });
    const set = new ShardSet(1, { services });
    const effect = set.apply(log.entries).find((o) => o.type === 'EFFECT');
    expect(effect).to.deep.include({ effectId: `${A}!1`, intent: { kind: 'http', count: 3 } });
    expect(set.shards[0].pendingEffects().map((e) => e.effectId)).to.deep.equal([`${A}!1`]);
    // A restored member (a new leader) still knows the effect is pending, and would perform it again.
    const restored = ShardSet.restore(set.snapshot(), 1, { services });
    expect(restored.shards[0].pendingEffects().map((e) => e.effectId)).to.deep.equal([`${A}!1`]);
    log.raw(EntryKind.SERVICE_MESSAGE, effectDonePayload(A, 1, { status: 200 }));
    log.raw(EntryKind.SERVICE_MESSAGE, effectDonePayload(A, 1, { status: 200 }));
    set.apply(log.since(2));
    expect(set.shards[0].pendingEffects()).to.deep.equal([]);
    expect(set.actorState(A)).to.deep.include({ context: { count: 3, pings: 0, fired: 0, done: 1 } });
  });

  it('answers unknown actor types with UNKNOWN_ACTOR_TYPE and creates nothing', () => {
    const log = new LogBuilder();
    log.raw(EntryKind.SESSION_MESSAGE, sessionMessagePayload('demo/nope/a', 1, 1, { type: 'INC', by: 1 }));
    const shard = new Shard({ services });
    const [reply] = replies(shard.apply(log.entries));
    expect(reply.type === 'REPLY' && reply.error?.code).to.equal('UNKNOWN_ACTOR_TYPE');
    expect(shard.actorCount).to.equal(0);
  });

  it('answers a malformed command body with BAD_EVENT and skips other malformed entries, changing nothing', () => {
    const log = new LogBuilder();
    log.raw(EntryKind.SESSION_MESSAGE, encodeSessionMessage(3, 9, 0, pack({ not: 'an array' })));
    log.raw(EntryKind.TIMER_EVENT, pack(['demo/counter/a']));
    log.raw(EntryKind.SERVICE_MESSAGE, Uint8Array.of(0xc1));
    const set = new ShardSet(2, { services });
    const out = set.apply(log.entries);
    expect(out).to.have.length(1);
    expect(out[0]).to.deep.include({ type: 'REPLY', sessionId: 3, correlationId: 9, ok: false });
    expect(out[0].type === 'REPLY' && out[0].error?.code).to.equal('BAD_EVENT');
    expect(set.lastApplied).to.equal(3);
    expect(set.shards.map((s) => s.actorCount)).to.deep.equal([0, 0]);
  });

  it('snapshots on a CLUSTER_ACTION entry, and start-up falls back past an invalid snapshot', () => {
    const log = new LogBuilder();
    log.command({ type: 'INC', id: 'a', by: 1 });
    log.action('SNAPSHOT');
    const set = new ShardSet(2, { services });
    const shots = set.apply(log.entries).filter((o) => o.type === 'SNAPSHOT');
    expect(shots.map((s) => s.type === 'SNAPSHOT' && [s.index, s.shard])).to.deep.equal([
      [2, 0],
      [2, 1],
    ]);
    const good = encodeShardSetSnapshot(set.snapshot());
    const bad = Uint8Array.from(good);
    bad[0] = 0xc1; // never valid msgpack
    const start = restoreLatestValid([bad, good], 2, { services });
    expect(start.used).to.equal(1);
    expect(start.rejected).to.have.length(1);
    expect(start.index).to.equal(2);
    expect(canonical(start.set)).to.deep.equal(canonical(set));
    expect(decodeShardSetSnapshot(good).shards).to.have.length(2);
  });
});

describe('replay equals live (property)', () => {
  it('every member’s actor state equals a fresh replay of snapshot plus log, across snapshots and restarts', function () {
    this.timeout(30_000);
    const op = fc.oneof(
      fc.record({
        t: fc.constant('INC' as const),
        id: fc.integer({ min: 0, max: 11 }),
        by: fc.integer({ min: -5, max: 50 }),
      }),
      fc.record({
        t: fc.constantFrom('ARM' as const, 'DISARM' as const, 'FAIL' as const, 'CALL_OUT' as const),
        id: fc.integer({ min: 0, max: 11 }),
      }),
      fc.record({
        t: fc.constant('NOTIFY' as const),
        id: fc.integer({ min: 0, max: 11 }),
        to: fc.integer({ min: 0, max: 11 }),
      }),
      fc.record({ t: fc.constant('WAIT' as const), ms: fc.integer({ min: 1, max: 1500 }) }),
      fc.record({ t: fc.constant('SNAPSHOT' as const) }),
    );
    checkProperty(
      fc.property(
        fc.array(op, { minLength: 1, maxLength: 60 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 3 }),
        fc.array(fc.integer({ min: 1, max: 12 }), { minLength: 1, maxLength: 8 }),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 8 }),
        (ops, leaderShards, followerShards, chunks, restarts) => {
          // The leader applies as the log grows and appends timers, sends and effect completions.
          const log = new LogBuilder();
          const leader = new LeaderSim(log, new ShardSet(leaderShards, { services, maxLiveActors: 4 }));
          for (const o of ops) {
            if (o.t === 'WAIT') leader.advance(o.ms);
            else if (o.t === 'SNAPSHOT') log.action('SNAPSHOT');
            else if (o.t === 'NOTIFY') log.command({ type: 'NOTIFY', id: `a${o.id}`, to: `a${o.to}` });
            else if (o.t === 'INC') log.command({ type: 'INC', id: `a${o.id}`, by: o.by });
            else log.command({ type: o.t, id: `a${o.id}` });
            leader.settle();
          }
          leader.advance(2000);
          leader.settle();

          // A follower applies the same log in uneven batches, snapshots and restarts from its snapshot.
          let follower = new ShardSet(followerShards, { services, maxLiveActors: 2 });
          let lastSnapshot = encodeShardSetSnapshot(follower.snapshot());
          let at = 0;
          let step = 0;
          while (at < log.entries.length) {
            const size = chunks[step % chunks.length];
            follower.apply(log.entries.slice(at, at + size));
            at = Math.min(log.entries.length, at + size);
            lastSnapshot = encodeShardSetSnapshot(follower.snapshot());
            if (restarts[step % restarts.length]) {
              const restart = restoreLatestValid([lastSnapshot], followerShards, {
                services,
                maxLiveActors: 2,
              });
              follower = restart.set;
              at = log.entries.findIndex((e) => e.index > restart.index);
              if (at < 0) at = log.entries.length;
            }
            step++;
          }
          const fresh = new ShardSet(1, { services });
          fresh.apply(log.entries);
          const fromSnapshot = ShardSet.restore(decodeShardSetSnapshot(lastSnapshot), 2, { services });
          fromSnapshot.apply(log.entries.filter((e) => e.index > decodeShardSetSnapshot(lastSnapshot).index));
          const expected = canonical(fresh);
          expect(canonical(leader.shards)).to.deep.equal(expected);
          expect(canonical(follower)).to.deep.equal(expected);
          expect(canonical(fromSnapshot)).to.deep.equal(expected);
          // Nothing is left pending after the final settle: every timer fired (exactly once).
          expect(leader.timers.size).to.equal(0);
        },
      ),
      { numRuns: 100 },
    );
  });
});
