// The checkers can fail: each test breaks one safety rule in the core (a test-only knob) and shows
// the simulator catches it, then runs the very same scripted scenario with the rule intact and shows
// it passes.

import { expect } from 'chai';
import type { FaultyRules } from '../../actors/consensus/types.ts';
import type { SeedReport } from '../../runtime/sim/index.ts';
import { healAndFinish, startCluster } from './helpers.ts';

const invariants = (report: SeedReport): string[] => [...new Set(report.violations.map((v) => v.invariant))];

/** The leader is cut off from the other members (clients still reach it) for `ms`. */
const isolatedLeader = (seed: number, ms: number, faultyRules?: FaultyRules): SeedReport => {
  const { sim, leader } = startCluster({ seed, faultyRules });
  sim.isolate(leader);
  sim.runFor(ms);
  return healAndFinish(sim);
};

/**
 * Two ballots in one term reach the same voter, with a crash in between: the voter records a vote
 * for one candidate, crashes before the vote is durable (slow fsync), restarts, and is asked again
 * in the same term by another candidate.
 */
const voteThenCrash = (
  seed: number,
  faultyRules?: FaultyRules,
): { report: SeedReport; voter: number | null } => {
  const { sim, leader } = startCluster({ seed, faultyRules });
  const ids = sim.memberIds;
  const [a, v, b] = [leader, ...ids.filter((id) => id !== leader)];
  sim.partition(ids.map((id) => [id])); // nobody can win: the leader steps down
  sim.runFor(1200);
  for (const id of ids) sim.setDiskLatency(id, 100);
  sim.unblock(a, v);
  sim.unblock(v, a);
  const baseTerm = Math.max(...ids.map((id) => sim.node(id)?.term ?? 0));
  let voter: number | null = null;
  sim.afterStep = () => {
    if (voter !== null) return;
    for (const id of [a, v]) {
      const node = sim.node(id);
      if (node && node.term > baseTerm && node.vote !== null && node.vote !== id) {
        // Crash at the moment the vote is recorded in memory; reconnect the voter to b only.
        voter = id;
        const other = id === a ? v : a;
        sim.crash(id);
        sim.block(id, other);
        sim.block(other, id);
        sim.unblock(id, b);
        sim.unblock(b, id);
        sim.restart(id);
        return;
      }
    }
  };
  sim.runFor(1500);
  sim.afterStep = null;
  for (const id of ids) sim.setDiskLatency(id, 0);
  sim.runFor(2000);
  return { report: healAndFinish(sim), voter };
};

describe('sim: broken rules are caught', () => {
  it('commit without a quorum: an isolated leader that commits alone is flagged (COMMIT_WITHOUT_QUORUM)', () => {
    const broken = isolatedLeader(3, 1500, { commitWithoutQuorum: true });
    expect(invariants(broken)).to.include('COMMIT_WITHOUT_QUORUM');
    const sound = isolatedLeader(3, 1500);
    expect(sound.violations).to.deep.equal([]);
    expect(sound.linearizable).to.equal(true);
  });

  it('a vote before the term is durable: the voter votes twice in one term and two leaders are flagged (ELECTION_SAFETY)', () => {
    const broken = voteThenCrash(1, { voteBeforeDurable: true });
    expect(broken.voter, 'the scenario crashed a voter').to.not.equal(null);
    expect(invariants(broken.report)).to.include('ELECTION_SAFETY');
    const sound = voteThenCrash(1);
    expect(sound.voter).to.not.equal(null);
    expect(sound.report.violations).to.deep.equal([]);
    expect(sound.report.linearizable).to.equal(true);
  });

  it('a leader that never steps down: an isolated leader outliving the new one is flagged (STALE_LEADER)', () => {
    const broken = isolatedLeader(5, 2500, { leaderNeverStepsDown: true });
    expect(invariants(broken)).to.include('STALE_LEADER');
    const sound = isolatedLeader(5, 2500);
    expect(sound.violations).to.deep.equal([]);
    expect(sound.linearizable).to.equal(true);
  });
});
