// The counter service (examples/counter-service.ts) on a TestCluster: increments pipelined by three
// clients across a leader kill are each counted once on every member, and a reminder (an `after`
// transition, a cluster timer) fires exactly once although the leader that scheduled it is killed.

import { expect } from 'chai';
import * as counters from '../../examples/counter-service.ts';
import { type CounterContext, counterService } from '../../examples/counter-service.ts';
import { TestCluster } from '../../runtime/testkit/cluster/index.ts';

const contextOn = (cluster: TestCluster, member: number, id: string): CounterContext | undefined =>
  (cluster.actorState(member, counterService.name, 'counter', id) as { context?: CounterContext } | undefined)
    ?.context;

describe('examples: the counter service on a TestCluster', function () {
  this.timeout(60_000);

  it('increments from three clients across a leader kill are each counted once on every member', async () => {
    const cluster = new TestCluster({ services: counters, seed: 5 });
    const clients = [0, 1, 2].map(() => cluster.serviceClient(counterService));
    const leader = await cluster.waitForLeader();
    const replies: Promise<unknown>[] = [];
    for (let round = 0; round < 10; round++) {
      for (const client of clients) replies.push(client.command({ type: 'INCREMENT', id: 'visits', by: 1 }));
      if (round === 4) cluster.kill(leader);
      await cluster.advance(cluster.random.int(1, 20));
    }
    const counts = (await cluster.run(Promise.all(replies))) as number[];
    // Every increment was acknowledged once, each with its own count: none lost, none applied twice.
    expect([...counts].sort((a, b) => a - b)).to.deep.equal(Array.from({ length: 30 }, (_, i) => i + 1));
    cluster.restart(leader);
    await cluster.runUntilIdle();
    expect(cluster.leader()).to.not.equal(leader);
    for (const member of cluster.memberIds) expect(contextOn(cluster, member, 'visits')?.count).to.equal(30);
    const report = cluster.verify();
    expect(report.acknowledged).to.equal(30);
  });

  it('a reminder fires exactly once although the leader that scheduled it is killed before it is due', async () => {
    const cluster = new TestCluster({ services: counters, seed: 6 });
    const client = cluster.serviceClient(counterService);
    expect(await cluster.run(client.command({ type: 'REMIND', id: 'tea', afterMs: 500 }))).to.equal(
      'WAITING',
    );
    const leader = cluster.leader();
    cluster.kill(leader);
    await cluster.advance(2000);
    await cluster.runUntilIdle();
    const state = (await cluster.run(client.command({ type: 'GET', id: 'tea' }))) as {
      state: string;
      reminders: number;
    };
    expect(state).to.deep.include({ state: 'IDLE', reminders: 1 });
    for (const member of cluster.memberIds) {
      if (cluster.appliedIndex(member) === null) continue;
      expect(contextOn(cluster, member, 'tea')?.reminders, `member ${member}`).to.equal(1);
    }
    cluster.verify();
  });
});
