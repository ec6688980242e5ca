import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { pack } from '../../../actors/actor-runtime/protocol.ts';
import { ShardSet } from '../../../actors/actor-runtime/shard-set.ts';
import { EntryKind, type LogEntry } from '../../../actors/log/log-entry.ts';
import {
  CONSENSUS_MODULE_SERVICE_ID,
  type MemberStore,
  openMemberStore,
} from '../../../persistence/index.ts';
import {
  ACTOR_RUNTIME_SERVICE_ID,
  ActorRuntime,
  SnapshotPolicy,
} from '../../../runtime/actor-runtime/actor-runtime.ts';
import { decodeActorSnapshot } from '../../../runtime/actor-runtime/actor-service-host.ts';
import { LogBuilder, services } from '../../actors/actor-runtime/fixtures.ts';

const SERVICES_MODULE = new URL('../../actors/actor-runtime/fixtures.ts', import.meta.url);
const A = 'demo/counter/a';
const CONSENSUS_STATE = pack({ term: 1, sessions: [] });

/** One member: its store, its actor runtime, and a leader loop that commits what it appends. */
class Member {
  constructor(
    readonly store: MemberStore,
    public actors: ActorRuntime,
    readonly log: LogBuilder,
  ) {}

  /** Append the builder's new entries durably, apply them, then append and apply what falls due. */
  async commit(): Promise<void> {
    for (let round = 0; round < 20; round++) {
      const fresh = this.log.since(this.store.log.lastIndex);
      if (fresh.length === 0) return;
      await this.store.log.append(fresh);
      await this.actors.apply(fresh);
      for (const due of this.actors.dueEntries(this.log.time)) this.log.raw(due.kind, due.payload, 0);
    }
  }
}

const count = async (actors: ActorRuntime, address: string, field: 'count' | 'fired' | 'pings') =>
  ((await actors.pool.actorState(address)) as { context: Record<string, number> }).context[field];

describe('ActorRuntime (worker shards on a durable store)', function () {
  this.timeout(30_000);
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'chorus-actor-runtime-'));
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('an `after` timer fires exactly once across a snapshot, a restart and a leader change; the log is compacted', async () => {
    const log = new LogBuilder();
    let store = await openMemberStore(dir);
    let member = new Member(
      store,
      await ActorRuntime.open({ store, shards: 1, servicesModule: SERVICES_MODULE }),
      log,
    );
    try {
      log.command({ type: 'INC', id: 'a', by: 5 });
      log.command({ type: 'ARM', id: 'a' });
      log.command({ type: 'NOTIFY', id: 'b', to: 'a' });
      await member.commit();
      expect(member.actors.timers.list().map((t) => t.timerId)).to.deep.equal([`${A}#1`]);
      const set = await member.actors.snapshot({ consensus: CONSENSUS_STATE, purge: true });
      expect(set.snapshots.map((s) => s.serviceId)).to.deep.equal([
        CONSENSUS_MODULE_SERVICE_ID,
        ACTOR_RUNTIME_SERVICE_ID,
      ]);
      expect(store.log.firstIndex).to.equal(set.logIndex + 1);
      log.command({ type: 'INC', id: 'a', by: 1 });
      await member.commit();
    } finally {
      await member.actors.close();
      await store.close();
    }

    // Restart on 2 shards: snapshot + replay; the pending timer is still there, as state.
    store = await openMemberStore(dir);
    member = new Member(
      store,
      await ActorRuntime.open({ store, shards: 2, servicesModule: SERVICES_MODULE }),
      log,
    );
    try {
      expect(member.actors.report).to.deep.include({ snapshotIndex: 4, replayed: 1 });
      expect(member.actors.report.consensus).to.deep.equal(CONSENSUS_STATE);
      expect(member.actors.timers.list().map((t) => t.timerId)).to.deep.equal([`${A}#1`]);
      expect(await count(member.actors, A, 'count')).to.equal(6);
      expect(await count(member.actors, A, 'pings')).to.equal(1);

      // The deadline passes: this member (now leader) appends the expiry...
      log.time += 1000;
      const due = member.actors.dueEntries(log.time);
      expect(due.map((d) => d.kind)).to.deep.equal([EntryKind.TIMER_EVENT]);
      for (const d of due) log.raw(d.kind, d.payload, 0);
      // ...and a leader change before it is applied makes the next leader append it again.
      await member.actors.takeOverAsLeader();
      for (const d of member.actors.dueEntries(log.time)) log.raw(d.kind, d.payload, 0);
      expect(log.entries.filter((e) => e.kind === EntryKind.TIMER_EVENT)).to.have.length(2);
      await member.commit();
      expect(await count(member.actors, A, 'fired')).to.equal(1);
      expect(member.actors.timers.size).to.equal(0);

      // Same state as a fresh in-process replay of the whole log.
      const reference = new ShardSet(1, { services });
      reference.apply(log.entries);
      expect(await member.actors.pool.actorState(A)).to.deep.equal(reference.actorState(A));
    } finally {
      await member.actors.close();
      await store.close();
    }
  });

  it('start-up falls back past an actor snapshot it cannot read to the set before it', async () => {
    const log = new LogBuilder();
    const store = await openMemberStore(dir);
    const member = new Member(
      store,
      await ActorRuntime.open({ store, shards: 1, servicesModule: SERVICES_MODULE }),
      log,
    );
    let reopened: ActorRuntime | undefined;
    try {
      log.command({ type: 'INC', id: 'a', by: 2 });
      await member.commit();
      const good = await member.actors.snapshot({ consensus: CONSENSUS_STATE });
      log.command({ type: 'INC', id: 'a', by: 3 });
      await member.commit();
      // A newer set whose actor snapshot is from an unknown format (checksums fine, content unreadable).
      const at = { logIndex: 2, term: 1, timestamp: log.entries[1].timestamp };
      const bad = await store.snapshots.save({ ...at, serviceId: ACTOR_RUNTIME_SERVICE_ID }, pack([99]));
      const cm = await store.snapshots.save(
        { ...at, serviceId: CONSENSUS_MODULE_SERVICE_ID },
        CONSENSUS_STATE,
      );
      await store.recordingLog.appendSnapshotSet({
        ...at,
        snapshots: [
          { serviceId: CONSENSUS_MODULE_SERVICE_ID, snapshotId: cm.snapshotId },
          { serviceId: ACTOR_RUNTIME_SERVICE_ID, snapshotId: bad.snapshotId },
        ],
      });
      await member.actors.close();
      reopened = await ActorRuntime.open({ store, shards: 1, servicesModule: SERVICES_MODULE });
      expect(reopened.report.snapshotIndex).to.equal(good.logIndex);
      expect(reopened.report.replayed).to.equal(1);
      expect(reopened.report.skipped.join('\n')).to.match(/snapshot set at 2: .*version 99/);
      expect(await count(reopened, A, 'count')).to.equal(5);
      expect(store.recordingLog.latestValidSnapshotSet()?.logIndex).to.equal(good.logIndex);
    } finally {
      await reopened?.close();
      await member.actors.close();
      await store.close();
    }
  });

  it('snapshot bytes carry shards, timers and outbox; the policy triggers by entries or bytes', () => {
    const policy = new SnapshotPolicy({ entries: 3, bytes: 1000 });
    const entry = (size: number): LogEntry => ({
      index: 1,
      term: 1,
      timestamp: 0,
      kind: EntryKind.SESSION_MESSAGE,
      payload: new Uint8Array(size),
    });
    expect(policy.record([entry(10), entry(10)])).to.equal(false);
    expect(policy.record([entry(10)])).to.equal(true);
    expect(policy.record([entry(999)])).to.equal(false);
    expect(policy.record([entry(1)])).to.equal(true);
    expect(() => new SnapshotPolicy({ entries: 0 })).to.throw(/entries must be a positive integer/);
    expect(() => decodeActorSnapshot(pack([2]))).to.throw(/version 2 is not supported/);
  });
});
