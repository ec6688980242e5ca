// TestCluster (runtime/testkit/cluster/): the simulated cluster a user tests their services on. Its
// clients are real ChorusClients, its faults reach the simulator, one seed replays a run exactly, and
// each free check reports what it guards: a service whose state is not a fold of the log
// (REPLAY_DIFFERS), an edge refusal is not counted as applied, and a sweep names the seed of a failure.

import { expect } from 'chai';
import { pack } from 'msgpackr';
import { assign, emit, setup } from 'xstate';
import { z } from 'zod';
import { defineService, reply } from '../../actors/actor-runtime/service.ts';
import * as counters from '../../examples/counter-service.ts';
import { counterService } from '../../examples/counter-service.ts';
import { sweepSeeds, TestCluster, TestClusterFailure } from '../../runtime/testkit/cluster/index.ts';
import { NondeterminismError } from '../../runtime/testkit/index.ts';

const count = (cluster: TestCluster, member: number, id: string): number | undefined =>
  (
    cluster.actorState(member, counterService.name, 'counter', id) as
      | { context?: { count: number } }
      | undefined
  )?.context?.count;

/** A run's observable trace: every reply with the virtual time it arrived, and where the run ended. */
const faultyRun = async (seed: number): Promise<unknown[]> => {
  const cluster = new TestCluster({ services: counters, seed });
  const client = cluster.serviceClient(counterService, { commandTimeoutMs: 3000 });
  cluster.faults({ forMs: 3000, intensity: 0.8 });
  const trace: unknown[] = [];
  const pending: Promise<void>[] = [];
  for (let i = 0; i < 40; i++) {
    pending.push(
      client.command({ type: 'INCREMENT', id: 'n', by: 1 }).then(
        (value) => void trace.push([i, value, cluster.now]),
        (error: Error) => void trace.push([i, error.name, cluster.now]),
      ),
    );
    await cluster.advance(cluster.random.int(10, 120));
  }
  await cluster.run(Promise.all(pending));
  cluster.heal();
  await cluster.runUntilIdle();
  const report = cluster.verify();
  return [...trace, cluster.now, cluster.sim.steps, report.faultsInjected, report.elections];
};

describe('testkit: TestCluster', function () {
  this.timeout(60_000);

  it("runs a services module: a serviceClient's commands are applied once on every member and every check passes", async () => {
    const cluster = new TestCluster({ services: counters, seed: 1 });
    const clients = [0, 1, 2].map(() => cluster.serviceClient(counterService));
    const replies = clients.flatMap((client) =>
      Array.from({ length: 5 }, () => client.command({ type: 'INCREMENT', id: 'a', by: 2 })),
    );
    await cluster.run(Promise.all(replies));
    await cluster.runUntilIdle();
    for (const member of cluster.memberIds)
      expect(count(cluster, member, 'a'), `member ${member}`).to.equal(30);
    const report = cluster.verify();
    expect(report).to.deep.include({ ok: true, commands: 15, acknowledged: 15, seed: 1 });
    // Closing the clients closes their sessions through the log; every check still holds after.
    const before = cluster.sim.checker.committedMax;
    await cluster.close();
    await cluster.runUntilIdle();
    expect(cluster.sim.checker.committedMax).to.equal(before + 3);
    cluster.verify();
  });

  it('one seed replays a faulty run exactly (every reply at the same virtual time); another seed runs otherwise', async () => {
    const first = await faultyRun(3);
    expect(first.length).to.be.greaterThan(40);
    expect(await faultyRun(3)).to.deep.equal(first);
    expect(await faultyRun(4)).to.not.deep.equal(first);
  });

  it('isolating the leader: the others elect a new leader, commands go on; healed, the old leader follows', async () => {
    const cluster = new TestCluster({ services: counters, seed: 2 });
    const client = cluster.serviceClient(counterService);
    await cluster.run(client.command({ type: 'INCREMENT', id: 'a', by: 1 }));
    const old = cluster.leader() as number;
    const oldTerm = cluster.sim.node(old)?.term as number;
    cluster.isolate(old);
    expect(await cluster.run(client.command({ type: 'INCREMENT', id: 'a', by: 1 }))).to.equal(2);
    const next = cluster.leader() as number;
    expect(next).to.not.equal(old);
    expect(cluster.sim.node(next)?.term).to.be.greaterThan(oldTerm);
    cluster.heal();
    await cluster.runUntilIdle();
    expect(cluster.sim.node(old)?.role).to.equal('FOLLOWER');
    expect(count(cluster, old, 'a')).to.equal(2);
    cluster.verify();
  });

  it('a partition of 5 members into 2 and 3: only the majority side commits; healed, all agree', async () => {
    const cluster = new TestCluster({ services: counters, seed: 8, members: 5 });
    const client = cluster.serviceClient(counterService);
    await cluster.run(client.command({ type: 'INCREMENT', id: 'a', by: 1 }));
    const leader = cluster.leader() as number;
    const minority = [leader, cluster.memberIds.find((m) => m !== leader) as number];
    cluster.partition(
      minority,
      cluster.memberIds.filter((m) => !minority.includes(m)),
    );
    expect(await cluster.run(client.command({ type: 'INCREMENT', id: 'a', by: 1 }))).to.equal(2);
    expect(minority).to.not.include(cluster.leader());
    for (const member of minority)
      expect(count(cluster, member, 'a'), `minority member ${member}`).to.equal(1);
    cluster.heal();
    await cluster.runUntilIdle();
    for (const member of cluster.memberIds) expect(count(cluster, member, 'a')).to.equal(2);
    cluster.verify();
  });

  it('a paused follower applies nothing until resumed, then catches up', async () => {
    const cluster = new TestCluster({ services: counters, seed: 3 });
    const client = cluster.serviceClient(counterService);
    await cluster.run(client.command({ type: 'INCREMENT', id: 'a', by: 1 }));
    const follower = cluster.memberIds.find((m) => m !== cluster.leader()) as number;
    cluster.pause(follower);
    const before = cluster.appliedIndex(follower);
    for (let i = 0; i < 5; i++) await cluster.run(client.command({ type: 'INCREMENT', id: 'a', by: 1 }));
    expect(cluster.appliedIndex(follower)).to.equal(before);
    cluster.resume(follower);
    await cluster.runUntilIdle();
    expect(count(cluster, follower, 'a')).to.equal(6);
    cluster.verify();
  });

  it('delay slows every round trip; drop of every peer message stops commits until it ends', async () => {
    const cluster = new TestCluster({ services: counters, seed: 4 });
    const client = cluster.serviceClient(counterService);
    await cluster.run(client.command({ type: 'INCREMENT', id: 'a', by: 1 }));
    const calmStart = cluster.now;
    await cluster.run(client.command({ type: 'INCREMENT', id: 'a', by: 1 }));
    const calm = cluster.now - calmStart;
    cluster.delay(40);
    const slowStart = cluster.now;
    await cluster.run(client.command({ type: 'INCREMENT', id: 'a', by: 1 }));
    // Client to leader, leader to a follower, its acknowledgement, and the reply: four trips of 40 ms.
    expect(cluster.now - slowStart).to.be.at.least(160);
    expect(calm).to.be.below(160);
    cluster.delay(0.5, 3);
    // Below the heartbeat timeout: no election, and no commit.
    const lost = cluster.sim.timeouts.heartbeatTimeoutMs / 2;
    cluster.drop(1);
    const stuck = client.command({ type: 'INCREMENT', id: 'a', by: 1 });
    await cluster.advance(lost);
    expect(count(cluster, cluster.leader() as number, 'a')).to.equal(3);
    cluster.drop(0);
    expect(await cluster.run(stuck)).to.equal(4);
    cluster.verify();
  });

  it("followers' clocks skewed (fast, an hour ahead): cluster time follows the leader's clock and never goes back", async () => {
    const cluster = new TestCluster({ services: counters, seed: 6, clockSkew: 0.05 });
    const client = cluster.serviceClient(counterService);
    await cluster.run(client.command({ type: 'INCREMENT', id: 'a', by: 1 }));
    const leader = cluster.leader() as number;
    const followers = cluster.memberIds.filter((m) => m !== leader);
    for (const follower of followers) {
      const before = cluster.sim.member(follower).localNow();
      cluster.skewClock(follower, { rate: 1.5, jumpMs: 3_600_000 });
      expect(cluster.sim.member(follower).localNow() - before).to.be.closeTo(3_600_000, 1);
    }
    for (let i = 0; i < 3; i++) await cluster.run(client.command({ type: 'INCREMENT', id: 'a', by: 1 }));
    // Whichever follower leads next stamps entries an hour later than the killed leader did.
    cluster.kill(leader);
    for (let i = 0; i < 3; i++) await cluster.run(client.command({ type: 'INCREMENT', id: 'a', by: 1 }));
    await cluster.runUntilIdle();
    const stamps: number[] = [];
    for (let i = 1; i <= cluster.sim.checker.committedMax; i++)
      stamps.push(cluster.sim.checker.committedEntry(i)?.timestamp as number);
    expect(stamps).to.deep.equal([...stamps].sort((a, b) => a - b));
    expect(stamps[stamps.length - 1] - stamps[0]).to.be.greaterThan(3_000_000);
    expect(() => cluster.skewClock(leader, { jumpMs: -1 })).to.throw(RangeError, /jumpMs >= 0/);
    cluster.verify();
  });

  it('replay equals live: a service whose state is not a fold of the log is reported REPLAY_DIFFERS, naming the seed', async () => {
    // Planted: the actor stamps each increment with a counter kept outside the log, shared by every
    // member in this process (as a module-level variable, a cache or a clock would be).
    let outside = 0;
    const leaky = setup({ types: { context: {} as { count: number; stamp: number } } }).createMachine({
      context: { count: 0, stamp: 0 },
      on: {
        INCREMENT: {
          actions: [
            assign({ count: ({ context }) => context.count + 1, stamp: () => ++outside }),
            emit(({ context }) => reply(context.count)),
          ],
        },
      },
    });
    const service = defineService({
      name: 'leaky',
      actors: { counter: leaky },
      commands: { INCREMENT: z.object({ type: z.literal('INCREMENT'), id: z.string() }) },
      route: ({ id }) => ({ actorType: 'counter', actorId: id, event: { type: 'INCREMENT' } }),
    });
    const cluster = new TestCluster({ services: [service], seed: 9 });
    const client = cluster.serviceClient(service);
    for (let i = 0; i < 3; i++) await cluster.run(client.command({ type: 'INCREMENT', id: 'x' }));
    await cluster.runUntilIdle();
    const report = cluster.check();
    expect(report.ok).to.equal(false);
    expect(report.violations.map((v) => v.invariant)).to.include('REPLAY_DIFFERS');
    expect(() => cluster.verify()).to.throw(TestClusterFailure, /seed 9 .*\n.*REPLAY_DIFFERS/);
  });

  it('a machine that reads the clock in an action fails the run at once with a NondeterminismError naming the action and the seed', async () => {
    const clocked = setup({
      types: { context: {} as { at: number } },
      actions: { stamp: assign({ at: () => Date.now() }) },
    }).createMachine({
      context: { at: 0 },
      on: { STAMP: { actions: ['stamp', emit(({ context }) => reply(context.at))] } },
    });
    const service = defineService({
      name: 'clocked',
      actors: { stamp: clocked },
      commands: { STAMP: z.object({ type: z.literal('STAMP'), id: z.string() }) },
      route: ({ id }) => ({ actorType: 'stamp', actorId: id, event: { type: 'STAMP' } }),
    });
    const cluster = new TestCluster({ services: [service], seed: 14 });
    const stamped = cluster.serviceClient(service).command({ type: 'STAMP', id: 'x' });
    let failure: Error | null = null;
    await cluster.run(stamped).catch((error: Error) => {
      failure = error;
    });
    expect(failure).to.be.instanceOf(NondeterminismError);
    expect((failure as unknown as Error).message).to.match(
      /^action 'stamp' read Date\.now\(\) on member \d applying entries \d+\.\.\d+ \(TestCluster seed 14\)/,
    );
    // Switched off, the same run goes on (and what the clock put in the state is the replay checks' to judge).
    const unchecked = new TestCluster({ services: [service], seed: 14, checkDeterminism: false });
    expect(await unchecked.run(unchecked.serviceClient(service).command({ type: 'STAMP', id: 'x' }))).to.be.a(
      'number',
    );
  });

  it('two clusters driving at once leave the clock, randomness and timers as they found them', async () => {
    const globals = () => [Date, Math.random, performance.now, setTimeout, setImmediate];
    const before = globals();
    const a = new TestCluster({ services: counters, seed: 21 });
    const b = new TestCluster({ services: counters, seed: 22 });
    // a's driving starts first and ends first; b's goes on after it.
    const first = a.run(a.serviceClient(counterService).command({ type: 'INCREMENT', id: 'a', by: 1 }));
    const second = b.advance(1000);
    await Promise.all([first, second]);
    const after = globals();
    for (let i = 0; i < before.length; i++)
      expect(after[i] === before[i], `global ${i} restored`).to.equal(true);
  });

  it('a command refused at the service edge is answered but not counted as applied', async () => {
    const cluster = new TestCluster({ services: counters, seed: 10 });
    const client = cluster.client();
    // No counter id: the service's schema refuses it on the leader, before the log.
    const refused = await cluster.run(client.send(pack([counterService.name, { type: 'INCREMENT', by: 1 }])));
    expect(refused.length).to.be.greaterThan(0);
    await cluster.run(client.send(counterService.commandBody({ type: 'INCREMENT', id: 'a', by: 1 })));
    await cluster.runUntilIdle();
    expect(cluster.verify()).to.deep.include({ commands: 2, acknowledged: 1 });
  });

  it("sweepSeeds: a scenario's failure names its seed; CHORUS_SEED runs that seed alone", async () => {
    const seen: number[] = [];
    const failing = sweepSeeds({ services: counters, seeds: 5, firstSeed: 30 }, async (cluster) => {
      seen.push(cluster.seed);
      await cluster.run(cluster.serviceClient(counterService).command({ type: 'INCREMENT', id: 'a', by: 1 }));
      expect(cluster.seed, 'planted: seed 32 fails').to.not.equal(32);
    });
    let message = '';
    await failing.catch((error: Error) => {
      message = error.message;
    });
    expect(message).to.include('TestCluster seed 32 (CHORUS_SEED=32 replays it)');
    expect(seen).to.deep.equal([30, 31, 32]);
    const saved = process.env.CHORUS_SEED;
    process.env.CHORUS_SEED = '32';
    try {
      seen.length = 0;
      await sweepSeeds({ services: counters, seeds: 5, firstSeed: 30 }, async (cluster) => {
        seen.push(cluster.seed);
      });
      expect(seen).to.deep.equal([32]);
    } finally {
      if (saved === undefined) delete process.env.CHORUS_SEED;
      else process.env.CHORUS_SEED = saved;
    }
  });
});
