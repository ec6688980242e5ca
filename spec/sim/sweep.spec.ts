// The seeded sweep: random faults chosen by each seed, invariants after every step, liveness after
// the heal, and a linearizable client history. `npx chorus sim --seeds 2000` runs the long version.

import { expect } from 'chai';
import { formatSweepReport, replayCommand, runSeed, runSweep } from '../../runtime/sim/index.ts';
import { checkKvHistory } from '../../runtime/sim/linearizability.ts';
import { startCluster } from './helpers.ts';

describe('sim: seeded sweep', () => {
  it('60 seeds of 3 members with random faults: 0 violations, linearizable', async () => {
    const report = await runSweep({ seeds: 60, startSeed: 1000 });
    expect(report.failures, JSON.stringify(report.failures[0])).to.deep.equal([]);
    expect(report.violations).to.equal(0);
    expect(report.linearizable).to.equal(true);
    expect(report.faultsInjected).to.be.greaterThan(200);
    expect(report.elections).to.be.greaterThan(60);
  });

  it('20 seeds of 5 members with random faults: 0 violations, linearizable', async () => {
    const report = await runSweep({ seeds: 20, startSeed: 2000, members: 5 });
    expect(report.failures, JSON.stringify(report.failures[0])).to.deep.equal([]);
    expect(report.violations).to.equal(0);
    expect(report.linearizable).to.equal(true);
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
