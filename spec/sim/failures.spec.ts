// Failure cases from FAILURE-CASES.md, each driven as a scripted fault on a seeded simulation, each
// asserting its own property, and each ending with the heal phase and the full set of checks
// (invariants after every step, convergence, durability, linearizable client history).

import { expect } from 'chai';
import type { SeedReport } from '../../runtime/sim/index.ts';
import { CALM_NETWORK, type Simulation } from '../../runtime/sim/simulation.ts';
import {
  completedBetween,
  healAndFinish,
  leaderElectionsSince,
  maxCommit,
  runUntilLeader,
  startCluster,
} from './helpers.ts';

const expectClean = (report: SeedReport): void => {
  expect(report.violations, JSON.stringify(report.violations.slice(0, 3))).to.deep.equal([]);
  expect(report.linearizable, report.explanation).to.equal(true);
};

const followersOf = (sim: Simulation, leader: number): number[] =>
  sim.memberIds.filter((id) => id !== leader);

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
};

describe('sim: failure cases', () => {
  it('N1: one follower crashes — no pause, no election; on restart it catches up from snapshot + log', () => {
    const { sim, leader } = startCluster({ seed: 11 });
    const follower = followersOf(sim, leader)[0];
    sim.crash(follower);
    const crashedAt = sim.now;
    const commitBefore = maxCommit(sim);
    sim.runFor(2000);
    expect(leaderElectionsSince(sim, crashedAt)).to.have.length(0);
    expect(maxCommit(sim)).to.be.greaterThan(commitBefore + 50);
    const leaderNode = sim.node(leader);
    expect(leaderNode?.snapshotIndex, 'the leader purged its log behind a snapshot').to.be.greaterThan(
      commitBefore,
    );
    sim.restart(follower);
    sim.runFor(1500);
    const node = sim.node(follower);
    expect(node?.snapshotIndex, 'the follower installed a snapshot').to.be.greaterThan(commitBefore);
    expect(node?.commitIndex).to.be.at.least(maxCommit(sim) - 20);
    expectClean(healAndFinish(sim));
  });

  it('N2: the leader crashes — a new leader within about a second; clients find it; nothing acknowledged is lost', () => {
    const { sim, leader } = startCluster({ seed: 12 });
    sim.crash(leader);
    const crashedAt = sim.now;
    const next = runUntilLeader(sim, 3000, leader);
    expect(next).to.not.equal(null);
    const failover = sim.now - crashedAt;
    // heartbeat timeout (500) + canvass deadline (200) + nomination delay (< 200) + a ballot.
    expect(failover).to.be.lessThan(1200);
    sim.runFor(1000);
    expect(completedBetween(sim, crashedAt + failover, sim.now).length).to.be.greaterThan(10);
    sim.restart(leader);
    expectClean(healAndFinish(sim));
  });

  it('N3: a minority (2 of 5) crashes — no election, commits continue', () => {
    const { sim, leader } = startCluster({ seed: 13, members: 5 });
    const [f1, f2] = followersOf(sim, leader);
    sim.crash(f1);
    sim.crash(f2);
    const at = sim.now;
    const before = maxCommit(sim);
    sim.runFor(2000);
    expect(leaderElectionsSince(sim, at)).to.have.length(0);
    expect(sim.leader()).to.equal(leader);
    expect(maxCommit(sim)).to.be.greaterThan(before + 50);
    expectClean(healAndFinish(sim));
  });

  it('N4: a majority (3 of 5) crashes — nothing commits, writes fail closed; restarting resumes with every committed entry', () => {
    const { sim, leader } = startCluster({ seed: 14, members: 5 });
    const victims = [leader, ...followersOf(sim, leader).slice(0, 2)];
    for (const id of victims) sim.crash(id);
    sim.runFor(300);
    const frozenAt = sim.now;
    const frozen = maxCommit(sim);
    sim.runFor(2500);
    expect(maxCommit(sim), 'no commit without a quorum').to.equal(frozen);
    expect(completedBetween(sim, frozenAt, sim.now), 'no client write was acknowledged').to.have.length(0);
    expect(sim.leader(), 'no leader among the survivors').to.equal(null);
    for (const id of victims) sim.restart(id);
    expect(runUntilLeader(sim, 3000)).to.not.equal(null);
    sim.runFor(500);
    expect(maxCommit(sim)).to.be.greaterThan(frozen);
    expectClean(healAndFinish(sim));
  });

  it('N5: every member is killed at once — each restarts from its own snapshot + log; every acknowledged entry is there', () => {
    const { sim } = startCluster({ seed: 15 });
    sim.runFor(1500);
    const committed = sim.checker.committedMax;
    for (const id of sim.memberIds) sim.crash(id);
    sim.runFor(100);
    for (const id of sim.memberIds) sim.restart(id);
    expect(runUntilLeader(sim, 3000)).to.not.equal(null);
    sim.runFor(500);
    expect(maxCommit(sim)).to.be.greaterThan(committed);
    const leaderNode = sim.node(sim.leader() as number);
    for (let i = (leaderNode?.snapshotIndex ?? 0) + 1; i <= committed; i++) {
      const want = sim.checker.committedEntry(i);
      if (want) expect(leaderNode?.entryAt(i)?.term, `entry ${i}`).to.equal(want.term);
    }
    expectClean(healAndFinish(sim));
  });

  it('P1: an isolated leader steps down and the majority elects; no conflicting commit', () => {
    const { sim, leader } = startCluster({ seed: 16 });
    const oldTerm = sim.node(leader)?.term ?? 0;
    sim.isolate(leader);
    const cutAt = sim.now;
    // Acknowledgements already on the wire at the cut still land and may commit what they cover.
    sim.runFor(CALM_NETWORK.maxDelayMs);
    const oldCommit = sim.node(leader)?.commitIndex ?? 0;
    sim.runFor(1500);
    const stepDown = sim.roleEvents.find((e) => e.member === leader && e.time > cutAt && e.to === 'FOLLOWER');
    expect(stepDown, 'the isolated leader stepped down').to.not.equal(undefined);
    expect((stepDown?.time ?? 0) - cutAt).to.be.lessThan(700);
    expect(sim.node(leader)?.commitIndex, 'the isolated leader committed nothing more').to.equal(oldCommit);
    const next = sim.leader();
    expect(next).to.not.equal(null);
    expect(next).to.not.equal(leader);
    expect(sim.node(next as number)?.term).to.be.greaterThan(oldTerm);
    expectClean(healAndFinish(sim));
  });

  it('P2: one follower is cut off — no pause; it catches up when healed', () => {
    const { sim, leader } = startCluster({ seed: 17 });
    const follower = followersOf(sim, leader)[0];
    sim.isolate(follower);
    const at = sim.now;
    const before = maxCommit(sim);
    sim.runFor(2000);
    expect(sim.leader()).to.equal(leader);
    expect(leaderElectionsSince(sim, at)).to.have.length(0);
    expect(maxCommit(sim)).to.be.greaterThan(before + 50);
    sim.healNetwork();
    sim.runFor(1500);
    expect(sim.node(follower)?.commitIndex).to.be.at.least(maxCommit(sim) - 20);
    expect(sim.node(follower)?.leaderId).to.equal(sim.leader());
    expectClean(healAndFinish(sim));
  });

  it('P3: a split with no majority — nothing commits; everything resumes when healed', () => {
    const { sim } = startCluster({ seed: 18, members: 5 });
    sim.partition([[1, 2], [3, 4], [5]]);
    sim.runFor(700);
    const frozen = maxCommit(sim);
    const frozenAt = sim.now;
    sim.runFor(2500);
    expect(maxCommit(sim)).to.equal(frozen);
    expect(sim.leader()).to.equal(null);
    expect(completedBetween(sim, frozenAt, sim.now)).to.have.length(0);
    sim.healNetwork();
    expect(runUntilLeader(sim, 3000)).to.not.equal(null);
    sim.runFor(500);
    expect(maxCommit(sim)).to.be.greaterThan(frozen);
    expectClean(healAndFinish(sim));
  });

  it('P4: flapping links — a member that cannot win does not disturb the healthy leader (canvass as pre-vote)', () => {
    const { sim, leader } = startCluster({ seed: 19 });
    const term = sim.node(leader)?.term;
    const flapper = followersOf(sim, leader)[0];
    const from = sim.now;
    // Cut the flapper off the leader for 150-900 ms at a time (often past the heartbeat timeout).
    for (let i = 0; i < 8; i++) {
      sim.block(leader, flapper);
      sim.block(flapper, leader);
      sim.runFor(sim.rng.int(150, 900));
      sim.unblock(leader, flapper);
      sim.unblock(flapper, leader);
      sim.runFor(sim.rng.int(50, 200));
    }
    const canvasses = sim.electionEvents.filter(
      (e) => e.member === flapper && e.to === 'CANVASS' && e.time > from,
    );
    expect(canvasses.length, 'the flapper lost the leader and canvassed').to.be.greaterThan(0);
    expect(sim.electionEvents.some((e) => e.time > from && e.to === 'CANDIDATE_BALLOT')).to.equal(false);
    expect(leaderElectionsSince(sim, from)).to.have.length(0);
    expect(sim.leader()).to.equal(leader);
    expect(sim.node(leader)?.term).to.equal(term);
    expectClean(healAndFinish(sim));
  });

  it('P5: high latency between members — commits slow down; no false elections under the timeouts', () => {
    const calm = startCluster({ seed: 20 });
    calm.sim.runFor(2000);
    const calmLatency = median(
      completedBetween(calm.sim, 500, calm.sim.now).map((op) => (op.ret as number) - op.call),
    );

    const { sim } = startCluster({ seed: 20 });
    const from = sim.now;
    sim.network = { dropRate: 0, dupRate: 0, minDelayMs: 60, maxDelayMs: 140 };
    sim.runFor(3000);
    const slow = completedBetween(sim, from + 500, sim.now);
    expect(slow.length).to.be.greaterThan(10);
    expect(median(slow.map((op) => (op.ret as number) - op.call))).to.be.greaterThan(calmLatency * 5);
    expect(leaderElectionsSince(sim, from)).to.have.length(0);
    expectClean(healAndFinish(sim));
  });

  it('P6: messages dropped, duplicated and reordered — safety holds; progress resumes once delivery does', () => {
    const { sim } = startCluster({ seed: 21, members: 5 });
    sim.network = { dropRate: 0.25, dupRate: 0.15, minDelayMs: 0.5, maxDelayMs: 40 };
    sim.runFor(4000);
    const report = healAndFinish(sim);
    expectClean(report);
    expect(report.completedOperations).to.be.greaterThan(50);
  });

  it('O5: clocks skewed by up to an hour and ±10% in rate — safety unaffected, no spurious elections', () => {
    const { sim, leader } = startCluster({ seed: 22, members: 5, clockRateSkew: 0.1 });
    const from = sim.now;
    sim.runFor(4000);
    expect(leaderElectionsSince(sim, from)).to.have.length(0);
    expect(sim.leader()).to.equal(leader);
    // The skew is real: members' clocks are minutes apart (log timestamps are the leader's clock).
    const offsets = sim.memberIds.map((id) => sim.member(id).clockOffset);
    expect(Math.max(...offsets) - Math.min(...offsets)).to.be.greaterThan(60_000);
    expectClean(healAndFinish(sim));
  });

  it('R3: the leader stalls (GC pause, SIGSTOP) — followers elect; on resume the old leader steps down; no split brain', () => {
    const { sim, leader } = startCluster({ seed: 23 });
    sim.pause(leader);
    const pausedAt = sim.now;
    const next = runUntilLeader(sim, 3000, leader);
    expect(next).to.not.equal(null);
    sim.runFor(800);
    const commitBefore = sim.node(leader)?.commitIndex;
    sim.resume(leader);
    const resumedAt = sim.now;
    sim.runFor(200);
    const stepDown = sim.roleEvents.find(
      (e) => e.member === leader && e.time >= resumedAt && e.to === 'FOLLOWER',
    );
    expect(stepDown, 'the resumed leader stepped down').to.not.equal(undefined);
    expect(
      sim.roleEvents.some((e) => e.member === leader && e.to === 'LEADER' && e.time > pausedAt),
    ).to.equal(false);
    expect(sim.node(leader)?.commitIndex).to.be.at.least(commitBefore ?? 0);
    expectClean(healAndFinish(sim));
  });

  it('C3: input lost when the leader dies before commit — clients resend to the new leader; applied once', () => {
    const { sim, leader } = startCluster({ seed: 25 });
    // The followers still receive the leader's entries, but the leader never hears back: nothing commits.
    for (const id of followersOf(sim, leader)) sim.block(id, leader);
    sim.runFor(300);
    const crashedAt = sim.now;
    const pending = sim.history.filter((op) => op.call < crashedAt && op.ret === null);
    expect(pending.length, 'operations in flight at the crash').to.be.greaterThan(0);
    sim.crash(leader);
    sim.healNetwork();
    expect(runUntilLeader(sim, 3000, leader)).to.not.equal(null);
    sim.runFor(1000);
    const resolved = pending.filter((op) => op.ret !== null);
    expect(resolved.length, 'in-flight operations answered by the new leader').to.be.greaterThan(0);
    expect(
      sim.duplicateReplies,
      'retries of entries already in the log were answered from the dedup table',
    ).to.be.greaterThan(0);
    sim.restart(leader);
    expectClean(healAndFinish(sim));
  });

  it('O6: leadership transfer — the chosen follower leads at once; nothing acknowledged is lost', () => {
    const { sim, leader } = startCluster({ seed: 24 });
    const target = followersOf(sim, leader)[1];
    const at = sim.now;
    sim.input(leader, { type: 'TRANSFER_LEADERSHIP', to: target });
    expect(runUntilLeader(sim, 1000, leader)).to.equal(target);
    expect(sim.now - at).to.be.lessThan(200);
    expectClean(healAndFinish(sim));
  });
});
