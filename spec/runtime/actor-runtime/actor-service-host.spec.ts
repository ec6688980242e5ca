import { expect } from 'chai';
import { type ShardOutput, unpack } from '../../../actors/actor-runtime/protocol.ts';
import { EntryKind } from '../../../actors/log/log-entry.ts';
import { ActorServiceHost, decodeActorSnapshot } from '../../../runtime/actor-runtime/actor-service-host.ts';
import type { ServiceHost } from '../../../runtime/service-host.ts';
import { LogBuilder } from '../../actors/actor-runtime/fixtures.ts';

const SERVICES_MODULE = new URL('../../actors/actor-runtime/fixtures.ts', import.meta.url);
const A = 'demo/counter/a';

describe('ActorServiceHost (the actor runtime as a member ServiceHost)', function () {
  this.timeout(20_000);
  const hosts: ActorServiceHost[] = [];
  after(async () => {
    await Promise.all(hosts.map((host) => host.close()));
  });

  it('answers sessions, reports effects, and restores from its own snapshot with timers and outbox', async () => {
    const effects: Extract<ShardOutput, { type: 'EFFECT' }>[] = [];
    const host = new ActorServiceHost({
      shards: 2,
      servicesModule: SERVICES_MODULE,
      onEffect: (e) => effects.push(e),
    });
    hosts.push(host);
    const asServiceHost: ServiceHost = host;
    await asServiceHost.restore(null);
    const log = new LogBuilder();
    log.command({ type: 'INC', id: 'a', by: 4 }, 5, 1);
    log.command({ type: 'FAIL', id: 'a' }, 5, 2);
    log.command({ type: 'GET', id: 'a' }, 5, 3);
    log.command({ type: 'ARM', id: 'a' }, 5, 4);
    log.command({ type: 'CALL_OUT', id: 'a' }, 5, 5);
    log.command({ type: 'NOTIFY', id: 'a', to: 'b' }, 5, 6);
    const replies = await asServiceHost.apply(log.entries);
    expect(replies.map((r) => [r.sessionId, r.correlationId])).to.deep.equal(
      [1, 2, 3, 4, 5, 6].map((c) => [5, c]),
    );
    expect(unpack(replies[1].payload)).to.deep.include({ ok: false });
    expect(unpack(replies[2].payload)).to.deep.equal({ ok: true, value: 4 });
    expect(effects.map((e) => e.effectId)).to.deep.equal([`${A}!2`]);
    expect(host.timers.size).to.equal(1);
    expect(host.outbox.size).to.equal(1);

    const bytes = await asServiceHost.snapshot();
    expect(decodeActorSnapshot(bytes).shards.index).to.equal(6);
    const restored = new ActorServiceHost({ shards: 1, servicesModule: SERVICES_MODULE });
    hosts.push(restored);
    await restored.restore(bytes);
    expect(await restored.pool.actorState(A)).to.deep.equal(await host.pool.actorState(A));
    expect(restored.timers.list()).to.deep.equal(host.timers.list());
    // A new leader: the pending send and the pending effect are handed over again.
    const pending = await restored.takeOverAsLeader();
    expect(pending.map((p) => p.effectId)).to.deep.equal([`${A}!2`]);
    const due = restored.dueEntries(log.time);
    expect(due.map((d) => d.kind)).to.deep.equal([EntryKind.SERVICE_MESSAGE]);
  });
});
