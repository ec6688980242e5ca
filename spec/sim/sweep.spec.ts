// The seeded sweep: random faults chosen by each seed, invariants after every step, liveness after
// the heal, and a linearizable client history. `npx chorus sim --seeds 2000` runs the long version.

import { expect } from 'chai';
import {
  type FaultKind,
  formatSweepReport,
  livenessBoundMs,
  replayCommand,
  runSeed,
  runSweep,
} from '../../runtime/sim/index.ts';
import { checkKvHistory } from '../../runtime/sim/kv-history.ts';
import { startCluster } from './helpers.ts';

/**
 * Wall time one seed may take in these specs: a seed costs about 0.3 s of CPU (1,500 to 3,000 client
 * commands through the real client, consensus module and services), several times that on a loaded
 * 2-core machine; a 5-member seed about twice as much.
 */
const SEED_WALL_MS = 5000;

describe('sim: seeded sweep', () => {
  it('60 seeds of 3 members with random faults: 0 violations, linearizable', async function () {
    this.timeout(60 * SEED_WALL_MS);
    const report = await runSweep({ seeds: 60, startSeed: 1000 });
    expect(report.failures, JSON.stringify(report.failures[0])).to.deep.equal([]);
    expect(report.violations).to.equal(0);
    expect(report.linearizable).to.equal(true);
    expect(report.faultsInjected).to.be.greaterThan(200);
    expect(report.elections).to.be.greaterThan(60);
  });

  it('20 seeds of 5 members with random faults: 0 violations, linearizable', async function () {
    this.timeout(20 * 2 * SEED_WALL_MS);
    const report = await runSweep({ seeds: 20, startSeed: 2000, members: 5 });
    expect(report.failures, JSON.stringify(report.failures[0])).to.deep.equal([]);
    expect(report.violations).to.equal(0);
    expect(report.linearizable).to.equal(true);
  });

  it('30 seeds drawing only the faults aimed at the subtler consensus rules: each kind strikes; 0 violations, linearizable, recovery within the bound', async function () {
    this.timeout(30 * SEED_WALL_MS);
    const kinds: FaultKind[] = [
      'crash-leaders-in-a-row',
      'crash-in-ballot',
      'overwritten-tail',
      'late-messages',
      'transfer-leadership',
      'connection-loss',
      'suspend',
      'disk-stall',
      'partition-with-clients',
      'late-client-resends',
    ];
    const report = await runSweep({ seeds: 30, startSeed: 3000, faultKinds: kinds });
    expect(report.failures, JSON.stringify(report.failures[0])).to.deep.equal([]);
    expect(report.linearizable).to.equal(true);
    for (const kind of kinds) expect(report.faultKinds[kind] ?? 0, kind).to.be.greaterThan(0);
    expect(report.slowestRecoveryMs).to.be.a('number').and.at.most(livenessBoundMs());
  });

  it('a lost member directory is outside what Raft tolerates: the sweep shows committed entries lost (so the default plan leaves it out)', async () => {
    const report = await runSweep({ seeds: 10, startSeed: 1, faultKinds: ['lost-directory'] });
    expect(report.faultKinds['lost-directory']).to.be.greaterThan(0);
    const seen = new Set(report.failures.flatMap((f) => f.violations.map((v) => v.invariant)));
    expect([...seen]).to.include('COMMITTED_ENTRY_LOST');
    const plain = await runSweep({ seeds: 5, startSeed: 1 });
    expect(plain.faultKinds['lost-directory'] ?? 0).to.equal(0);
  });

  it('an exception anywhere in a seed is a violation with its replay line, and the sweep goes on', async () => {
    // A plan with no fault kinds to draw from throws inside the seed (Random.pick of nothing).
    const report = await runSweep({ seeds: 2, startSeed: 40, faultKinds: [] });
    expect(report.failures.map((f) => f.seed)).to.deep.equal([40, 41]);
    expect(report.failures[0].violations[0].invariant).to.equal('EXCEPTION');
    expect(report.failures[0].violations[0].detail).to.include('no items to pick from');
    expect(report.failures[1].replay).to.equal('npx chorus sim --seed 41');
  });

  it('a seed past its step budget is reported BUDGET_EXCEEDED instead of running on', () => {
    const report = runSeed(40, { maxSteps: 2000 });
    expect(report.violations.map((v) => v.invariant)).to.deep.equal(['BUDGET_EXCEEDED']);
    expect(report.violations[0].detail).to.include('more than 2000 steps');
    expect(report.replay).to.equal('npx chorus sim --seed 40');
  });

  it('one seed reproduces a run exactly', () => {
    const a = runSeed(77);
    const b = runSeed(77);
    expect(a).to.deep.equal(b);
    expect(runSeed(78).steps).to.not.equal(a.steps);
  });

  it('a failing seed reports the command that replays it', async () => {
    const report = await runSweep({ seeds: 3, startSeed: 5, faultyRules: { commitWithoutQuorum: true } });
    expect(report.violations).to.be.greaterThan(0);
    expect(report.firstFailingSeed).to.equal(5);
    expect(report.replay).to.equal('npx chorus sim --seed 5');
    expect(replayCommand(9, { members: 5 })).to.equal('npx chorus sim --seed 9 --members 5');
    expect(formatSweepReport(report))
      .to.include('seed 5 FAILED: COMMIT_WITHOUT_QUORUM')
      .and.include('replay: npx chorus sim --seed 5');
  });

  it('the end-of-run check rejects a history that is not linearizable (a read of a value never written)', () => {
    const { sim } = startCluster({ seed: 31 });
    sim.runFor(1000);
    sim.closeHistory();
    expect(checkKvHistory(sim.history).linearizable).to.equal(true);
    const read = sim.history.findIndex((op) => op.input.op === 'get' && op.ret !== null);
    expect(read).to.be.at.least(0);
    const tampered = sim.history.map((op, i) =>
      i === read ? { ...op, output: { value: 'never-written' } } : op,
    );
    expect(checkKvHistory(tampered).linearizable).to.equal(false);
  });

  it('rejects a bad sweep request with a message naming the field', async () => {
    let error: unknown;
    try {
      await runSweep({ seeds: 0 });
    } catch (e) {
      error = e;
    }
    expect(String(error)).to.match(/seeds must be a whole number/);
  });
});
