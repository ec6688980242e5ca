import { expect } from 'chai';
import { EntryKind } from '../../../actors/log/log-entry.ts';
import { ActorServiceHost } from '../../../runtime/actor-runtime/actor-service-host.ts';
import type { LeaderContext, ProposedEntry } from '../../../runtime/service-host.ts';
import { LogBuilder } from '../../actors/actor-runtime/fixtures.ts';

const SERVICES_MODULE = new URL('../../actors/actor-runtime/fixtures.ts', import.meta.url);
const A = 'demo/counter/a';

/** A member's leadership in miniature: records what the service proposes; can refuse or end. */
class FakeLeadership implements LeaderContext {
  readonly proposed: ProposedEntry[] = [];
  refuse = false;
  active = true;

  propose(entries: readonly ProposedEntry[]): number {
    if (this.refuse || !this.active) return 0;
    this.proposed.push(...entries);
    return entries.length;
  }

  take(): ProposedEntry[] {
    return this.proposed.splice(0);
  }
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('ActorServiceHost leader duties (lead, tick, effects)', function () {
  this.timeout(20_000);
  const hosts: ActorServiceHost[] = [];
  after(async () => {
    await Promise.all(hosts.map((host) => host.close()));
  });

  const open = async (performed: string[]) => {
    const host = await ActorServiceHost.open({
      shards: 2,
      servicesModule: SERVICES_MODULE,
      performEffect: (intent, { effectId }) => {
        performed.push(effectId);
        return { echoed: intent };
      },
    });
    hosts.push(host);
    await host.restore(null);
    return host;
  };

  it('performs nothing before lead (replay, followers); on lead takes over effects, sends and timers, once each', async () => {
    const performed: string[] = [];
    const host = await open(performed);
    const log = new LogBuilder();
    log.command({ type: 'INC', id: 'a', by: 2 });
    log.command({ type: 'ARM', id: 'a' }); // a 1000 ms `after`
    log.command({ type: 'CALL_OUT', id: 'a' }); // an external effect
    log.command({ type: 'NOTIFY', id: 'a', to: 'b' }); // an actor-to-actor send
    await host.apply(log.entries);
    host.tick(log.time + 5000); // not leading: nothing is appended
    await settle();
    expect(performed, 'effects performed while not leading').to.deep.equal([]);
    const pending = (await host.pool.pendingEffects()).map((e) => e.effectId);
    expect(pending).to.have.length(1);

    const leader = new FakeLeadership();
    await host.lead(leader);
    await settle();
    expect(performed).to.deep.equal(pending);
    // The effect's result, then the send; the timer is not due yet.
    host.tick(log.time);
    const first = leader.take();
    expect(first.map((e) => e.kind)).to.deep.equal([EntryKind.SERVICE_MESSAGE, EntryKind.SERVICE_MESSAGE]);
    host.tick(log.time);
    expect(leader.take(), 'nothing appended twice in one leadership').to.deep.equal([]);

    // Refused while due (suspended, transferring): offered again once proposals are taken.
    leader.refuse = true;
    host.tick(log.time + 1000);
    leader.refuse = false;
    host.tick(log.time + 1000);
    // The due timer (and, since a refusal resets every in-flight mark, the send again: a duplicate that is
    // applied once).
    const timers = leader.take();
    expect(timers.filter((e) => e.kind === EntryKind.TIMER_EVENT)).to.have.length(1);

    // Commit what the leader appended: the timer fires once, the effect completes once, b is pinged once.
    for (const entry of [...first, ...timers]) log.raw(entry.kind, entry.payload);
    await host.apply(log.since(4));
    const a = (await host.pool.actorState(A)) as { value: string; context: Record<string, number> };
    expect(a.value).to.equal('IDLE');
    expect(a.context).to.deep.include({ count: 2, fired: 1, done: 1 });
    const b = (await host.pool.actorState('demo/counter/b')) as { context: Record<string, number> };
    expect(b.context.pings).to.equal(1);
    expect(host.timers.size).to.equal(0);
    expect(host.outbox.size).to.equal(0);

    // An effect decided while leading is performed as it is applied; after the leadership ends, none is.
    log.command({ type: 'CALL_OUT', id: 'a' });
    await host.apply(log.since(log.index - 1));
    await settle();
    expect(performed).to.have.length(2);
    expect(new Set(performed).size, 'a new effect, not the first again').to.equal(2);
    leader.active = false;
    log.command({ type: 'CALL_OUT', id: 'a' });
    await host.apply(log.since(log.index - 1));
    host.tick(log.time + 10_000);
    await settle();
    expect(performed, 'effects performed after the leadership ended').to.have.length(2);
  });

  it('completes an effect with NO_EFFECT_HANDLER when the services module has no performEffect', async () => {
    const host = await ActorServiceHost.open({ shards: 1, servicesModule: SERVICES_MODULE });
    hosts.push(host);
    await host.restore(null);
    const log = new LogBuilder();
    log.command({ type: 'CALL_OUT', id: 'a' });
    await host.apply(log.entries);
    const leader = new FakeLeadership();
    await host.lead(leader);
    await settle();
    const [done] = leader.take();
    expect(done.kind).to.equal(EntryKind.SERVICE_MESSAGE);
    log.raw(done.kind, done.payload);
    await host.apply(log.since(1));
    expect(await host.pool.pendingEffects()).to.deep.equal([]);
  });

  it('a timer scheduled and fired within one batch of committed entries leaves nothing pending (replay)', async () => {
    const log = new LogBuilder();
    log.command({ type: 'ARM', id: 'a' }); // a 1000 ms `after`
    const live = await open([]);
    await live.apply(log.entries);
    const [due] = live.timers.expire(log.time + 1000);
    expect(due, 'the armed timer').to.not.equal(undefined);
    log.raw(EntryKind.TIMER_EVENT, due.payload, 1000);
    // Replay: the schedule and its expiry arrive in the same batch.
    const replayed = await open([]);
    await replayed.apply(log.entries);
    expect(replayed.timers.nextDeadline(), 'no timer left pending after its expiry').to.equal(undefined);
  });

  it('O1: open refuses a module that does not load, naming the services field', async () => {
    const error = await ActorServiceHost.open({
      shards: 1,
      servicesModule: new URL('./no-such-services.ts', import.meta.url),
    }).then(
      () => null,
      (e: Error) => e,
    );
    expect(error?.name).to.equal('ConfigError');
    expect(error?.message).to.match(/services: cannot load .*no-such-services\.ts/);
  });
});
