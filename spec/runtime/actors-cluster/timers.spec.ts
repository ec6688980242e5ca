// The actor runtime inside real member processes: the example counter service (examples/counter-service.ts)
// on a 3-member LocalCluster, its `after` reminder as a cluster timer, through snapshots, SIGKILLs and
// leader changes; a throwing actor's outcome on every member; live state against a replay of each
// member's own snapshot + log.

import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { counterService } from '../../../examples/counter-service.ts';
import { ServiceReplyError, serviceClient } from '../../../runtime/actor-runtime/service-client.ts';
import { adminRequest } from '../../../runtime/admin.ts';
import type { ChorusClient } from '../../../runtime/client/client.ts';
import { eventually } from '../../support/ports.ts';
import { connectClient, replayEachMember, TestCluster } from '../cluster/support.ts';

const SERVICES = fileURLToPath(new URL('../../../examples/counter-service.ts', import.meta.url));
const OVERRIDES = { services: SERVICES, workerShards: 2 };

interface CounterView {
  state: string;
  count: number;
  reminders: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('actor services in member processes', function () {
  this.timeout(60_000);
  let cluster: TestCluster | null = null;
  let client: ChorusClient | null = null;

  afterEach(async () => {
    await client?.close().catch(() => {});
    client = null;
    await cluster?.close();
    cluster = null;
  });

  const start = async () => {
    cluster = await TestCluster.start({ overrides: OVERRIDES });
    await cluster.whole();
    client = await connectClient(cluster);
    const counters = serviceClient(client, counterService);
    const get = async (id: string) => (await counters.command({ type: 'GET', id })) as CounterView;
    return { cluster, counters, get };
  };

  it('N2 timers: an actor with an `after` delay fires exactly once across a snapshot, a restart and a leader change', async () => {
    const { cluster, counters, get } = await start();
    expect(await counters.command({ type: 'INCREMENT', id: 'a', by: 3 })).to.equal(3);
    const remindSentAt = performance.now();
    expect(await counters.command({ type: 'REMIND', id: 'a', afterMs: 2500 })).to.equal('WAITING');

    // A snapshot on every member while the timer is pending (the leader's first; each follower's once it
    // has applied as far): the restarts below recover the timer from it.
    const first = cluster.cluster.leader() as number;
    const snapshot = async (id: number) =>
      (
        (await adminRequest(cluster.cluster.memberDir(id), { command: 'snapshot' })) as {
          snapshotIndex: number;
        }
      ).snapshotIndex;
    const leaderIndex = await snapshot(first);
    expect(leaderIndex, 'leader snapshot index').to.be.above(0);
    for (const view of cluster.cluster.views) {
      if (view.id === first) continue;
      await eventually(
        async () => (await snapshot(view.id)) >= leaderIndex,
        `member ${view.id} snapshot`,
        5000,
        50,
      );
    }

    // SIGKILL the leader while the timer is pending; a new leader takes the timer over.
    await cluster.cluster.kill(first);
    await cluster.newLeader(first, performance.now());
    cluster.restart(first);

    // It fires once, never before its deadline.
    let view = await get('a');
    while (view.reminders === 0) {
      expect(performance.now() - remindSentAt, 'time waited for the reminder').to.be.below(15_000);
      await sleep(100);
      view = await get('a');
    }
    expect(performance.now() - remindSentAt, 'the reminder fired before its delay').to.be.at.least(2500);
    expect(view).to.deep.equal({ state: 'IDLE', count: 3, reminders: 1 });

    // A second, long reminder; another leader change re-appends every pending timer expiry, and a stale
    // expiry of the first timer must not fire the second one.
    expect(await counters.command({ type: 'REMIND', id: 'a', afterMs: 600_000 })).to.equal('WAITING');
    await cluster.whole();
    const second = cluster.cluster.leader() as number;
    await cluster.cluster.kill(second);
    await cluster.newLeader(second, performance.now());
    await sleep(300); // a few leader ticks: time for any wrongly due expiry to be appended and applied
    expect(await get('a')).to.deep.equal({ state: 'WAITING', count: 3, reminders: 1 });

    // N5: every member SIGKILLed at once restarts from its own snapshot + log to the same state.
    for (const v of cluster.cluster.views) await cluster.cluster.kill(v.id);
    await cluster.whole();
    expect(await get('a')).to.deep.equal({ state: 'WAITING', count: 3, reminders: 1 });
    expect(await counters.command({ type: 'CANCEL_REMINDER', id: 'a' })).to.equal('IDLE');
  });

  it('R4: a throwing actor gets the same outcome on every member, and each member replays its log to the live state', async () => {
    const { cluster, counters, get } = await start();
    expect(await counters.command({ type: 'INCREMENT', id: 'b', by: 7 })).to.equal(7);
    const failed = await counters.send({ type: 'BOOM', id: 'b' });
    expect(failed.ok).to.equal(false);
    expect(failed.ok ? null : failed.error.code).to.equal('ACTOR_FAILED');
    let thrown: unknown = null;
    await counters.command({ type: 'BOOM', id: 'b' }).catch((error: unknown) => {
      thrown = error;
    });
    expect(thrown).to.be.instanceOf(ServiceReplyError);
    expect(await counters.command({ type: 'INCREMENT', id: 'b', by: 1 })).to.equal(8);
    expect(await counters.command({ type: 'REMIND', id: 'b', afterMs: 600_000 })).to.equal('WAITING');
    expect(await counters.command({ type: 'INCREMENT', id: 'c', by: 2 })).to.equal(2);
    const live = { b: await get('b'), c: await get('c') };
    expect(live.b).to.deep.equal({ state: 'WAITING', count: 8, reminders: 0 });

    // Every member leads in turn (O6 leadership transfer) and answers from its own state.
    const asked = new Set<number>([cluster.cluster.leader() as number]);
    for (const target of cluster.cluster.views.map((v) => v.id)) {
      if (asked.has(target)) continue;
      const leader = cluster.cluster.leader() as number;
      await adminRequest(cluster.cluster.memberDir(leader), { command: 'transfer-leadership', to: target });
      await cluster.cluster.until(() => cluster.cluster.leader() === target, `member ${target} leading`);
      asked.add(target);
      expect({ b: await get('b'), c: await get('c') }, `state on member ${target}`).to.deep.equal(live);
    }

    // Stop everything; replay each member's own log (no snapshot was taken: the whole log) on one shard
    // instead of two, and compare with what the live members answered.
    await replayEachMember(cluster, SERVICES, async (runtime, member) => {
      for (const id of ['b', 'c'] as const) {
        const state = (await runtime.pool.actorState(`counters/counter/${id}`)) as {
          value: string;
          context: { count: number; reminders: number };
        };
        expect(
          { state: state.value, count: state.context.count, reminders: state.context.reminders },
          `member ${member} replayed ${id}`,
        ).to.deep.equal(live[id]);
      }
      expect(runtime.timers.size, `member ${member} pending timers after replay`).to.equal(1);
    });
  });

  it('O1: a services module that does not load is refused before start, naming the field', async () => {
    const { resolveClusterConfig } = await import('../../../runtime/config.ts');
    const { Member } = await import('../../../runtime/member.ts');
    const pino = (await import('pino')).default;
    const config = resolveClusterConfig({
      members: [{ id: 0, host: '127.0.0.1', clientPort: 1, peerPort: 2 }],
      dir: '/nonexistent/chorus-never-created',
      services: './no-such-services-module.ts',
    });
    const refused = await Member.start({ config, memberId: 0, logger: pino({ level: 'silent' }) }).then(
      () => null,
      (error: Error) => error,
    );
    expect(refused?.name).to.equal('ConfigError');
    expect(refused?.message).to.match(/services: cannot load .*no-such-services-module\.ts/);
    const empty = resolveClusterConfig({
      ...config,
      services: fileURLToPath(new URL('./fixtures/no-services.ts', import.meta.url)),
    });
    const noServices = await Member.start({
      config: empty,
      memberId: 0,
      logger: pino({ level: 'silent' }),
    }).then(
      () => null,
      (error: Error) => error,
    );
    expect(noServices?.message).to.match(/services: .* exports no services/);
  });
});
