// The checkers can fail: each test breaks one safety rule in the core (a test-only knob, a network
// that rewrites what a broken member would send, or the mutation runner's patch in a scratch copy) and
// shows the simulator catches it, then runs the very same scenario with the rule intact and shows it
// passes.

import { join } from 'node:path';
import { expect } from 'chai';
import { pack, unpack } from 'msgpackr';
import { encodeSnapshotParts, snapshotParts } from '../../actors/consensus/snapshot-parts.ts';
import type { FaultyRules, InstallSnapshot } from '../../actors/consensus/types.ts';
import { livenessBoundMs, runSeed, type SeedOptions, type SeedReport } from '../../runtime/sim/index.ts';
import {
  applyMutation,
  mutationNamed,
  removeScratch,
  scratchCopy,
} from '../../runtime/sim/mutate/scratch.ts';
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

/** A follower cut off while the leader snapshots past it, then healed: it catches up by INSTALL_SNAPSHOT. */
const followerInstallsSnapshot = (
  seed: number,
  tamper?: (message: InstallSnapshot) => InstallSnapshot,
): { report: SeedReport; installs: number } => {
  let installs = 0;
  const { sim, leader } = startCluster({
    seed,
    snapshotEvery: 30,
    tamper: (_from, _to, message) => {
      if (message.type !== 'INSTALL_SNAPSHOT') return message;
      installs++;
      return tamper ? tamper(message) : message;
    },
  });
  const follower = sim.memberIds.find((id) => id !== leader) as number;
  sim.isolate(follower);
  sim.runFor(1500);
  sim.healNetwork();
  sim.runFor(1000);
  return { report: healAndFinish(sim), installs };
};

/** Run the sweep's seeds from `from` with a rule broken (in a scratch copy) until `invariant` shows. */
const firstSeedCatching = async (
  mutation: string,
  invariant: string,
  options: SeedOptions,
  from: number,
  limit: number,
): Promise<number | null> => {
  const scratch = scratchCopy();
  try {
    applyMutation(scratch, mutationNamed(mutation));
    const mutant = (await import(
      join(scratch, 'runtime/sim/index.ts')
    )) as typeof import('../../runtime/sim/index.ts');
    for (let seed = from; seed < from + limit; seed++) {
      if (mutant.runSeed(seed, options).violations.some((v) => v.invariant === invariant)) return seed;
    }
    return null;
  } finally {
    removeScratch(scratch);
  }
};

describe('sim: broken rules are caught by the new invariants', () => {
  it('a candidate counting a late vote of an older term leads without a quorum of its own term (LEADER_WITHOUT_QUORUM)', async function () {
    // Up to 200 seeds of the mutant (seed 25 catches it today), each a few seconds on a loaded machine.
    this.timeout(200 * 5000);
    const options: SeedOptions = { faultKinds: ['crash-in-ballot', 'late-messages'] };
    const seed = await firstSeedCatching(
      'count-votes-of-older-terms',
      'LEADER_WITHOUT_QUORUM',
      options,
      1,
      200,
    );
    expect(seed, 'a seed of the sweep catches the broken rule').to.not.equal(null);
    const sound = runSeed(seed as number, options);
    expect(sound.violations).to.deep.equal([]);
    expect(sound.linearizable).to.equal(true);
  });

  it('a snapshot image that is not the state it names: the installing member diverges (SERVICE_STATE_DIVERGED)', () => {
    const wrongState = (message: InstallSnapshot): InstallSnapshot => {
      const { module, service } = snapshotParts(message.data);
      const [applied, data, sessions] = unpack(service as Uint8Array) as [
        number,
        [string, string][],
        unknown[],
      ];
      const wrong = pack([applied, [...data, ['x', 'never-written']], sessions]);
      return { ...message, data: encodeSnapshotParts({ module, service: wrong }) };
    };
    const broken = followerInstallsSnapshot(4, wrongState);
    expect(broken.installs).to.be.greaterThan(0);
    expect(invariants(broken.report)).to.include('SERVICE_STATE_DIVERGED');
    expect(invariants(broken.report)).to.not.include('LOG_MATCHING');
    const sound = followerInstallsSnapshot(4);
    expect(sound.installs).to.be.greaterThan(0);
    expect(sound.report.violations).to.deep.equal([]);
    expect(sound.report.linearizable).to.equal(true);
  });

  it("a snapshot that names another term than its entry's is flagged (SNAPSHOT_TERM)", () => {
    const broken = followerInstallsSnapshot(4, (message) => ({
      ...message,
      snapshotTerm: message.snapshotTerm + 1,
    }));
    expect(broken.installs).to.be.greaterThan(0);
    expect(invariants(broken.report)).to.include('SNAPSHOT_TERM');
    const sound = followerInstallsSnapshot(4);
    expect(sound.report.violations).to.deep.equal([]);
  });

  it('votes that never arrive after the heal: no leader within the recovery bound (SLOW_RECOVERY)', () => {
    const run = (dropVotes: boolean): SeedReport => {
      let dropping = false;
      const { sim, leader } = startCluster({
        seed: 6,
        tamper: (_from, _to, message) => (dropping && message.type === 'VOTE' ? null : message),
      });
      dropping = dropVotes;
      sim.crash(leader);
      sim.runFor(500);
      return healAndFinish(sim, 3000);
    };
    const broken = run(true);
    expect(invariants(broken)).to.include('SLOW_RECOVERY');
    const sound = run(false);
    expect(sound.violations).to.deep.equal([]);
    expect(sound.leaderAfterHealMs).to.be.at.most(livenessBoundMs());
  });
});

describe('sim: an overwritten tail catches broken flush marks and stale acknowledgements', () => {
  // The sweep's own seeds, drawing only the 'overwritten-tail' sequence: the first seed that flags the
  // broken rule (in a scratch copy) must run clean on the intact tree.
  const caughtThenSound = async (mutation: string): Promise<void> => {
    const options: SeedOptions = { faultKinds: ['overwritten-tail'] };
    const seed = await firstSeedCatching(mutation, 'COMMIT_WITHOUT_QUORUM', options, 1, 80);
    expect(seed, 'a seed of the sweep catches the broken rule').to.not.equal(null);
    const sound = runSeed(seed as number, options);
    expect(sound.violations).to.deep.equal([]);
    expect(sound.linearizable).to.equal(true);
  };

  it('a leader that takes append responses of an older term counts a follower for entries it does not hold (COMMIT_WITHOUT_QUORUM)', async function () {
    this.timeout(120_000);
    await caughtThenSound('accept-append-responses-of-older-terms');
  });

  it('appends in flight when a truncation is issued count past it once flushed (COMMIT_WITHOUT_QUORUM)', async function () {
    this.timeout(120_000);
    await caughtThenSound('pending-flush-kept-on-truncate');
  });

  it('a snapshot install that discards the log keeps the old flush mark (COMMIT_WITHOUT_QUORUM)', async function () {
    this.timeout(120_000);
    await caughtThenSound('flush-mark-kept-on-install');
  });
});
