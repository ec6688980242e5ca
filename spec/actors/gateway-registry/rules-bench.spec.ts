// bench gateways-plan's measurement on a small fleet: it runs, places every party in the unassigned
// case, re-homes the lost gateway's parties, and reports the figures bench gateways reads.

import { expect } from 'chai';
import { benchFleet, benchParties, measurePlanTime } from '../../../benchmarks/gateways-plan.ts';

describe('gateway rules: the plan-time benchmark', () => {
  it('measures both cases with and without expressions on a small fleet', () => {
    const figures = measurePlanTime({ parties: 300, gateways: 14, samples: 2, warmup: 0 });
    const unassigned = figures.unassigned as { moves: number; unplaced: number; ratioCpuMedian: number };
    const lost = figures.gatewayLost as { moves: number; unplaced: number };
    expect(unassigned.moves + unassigned.unplaced).to.equal(300);
    expect(unassigned.unplaced).to.equal(0);
    expect(lost.moves, 'the lost gateway held parties').to.be.greaterThan(0);
    expect(lost.unplaced).to.equal(0);
    expect(unassigned.ratioCpuMedian).to.be.a('number');
  });

  it('builds the fleet and parties it says: 60 party classes, distinct names and ids', () => {
    const parties = benchParties(10_000);
    const classes = new Set(
      parties.map((p) => `${p.labels.region}/${p.labels.venue}/${p.labels.tier}/${p.requires.join()}`),
    );
    expect(classes.size).to.equal(60);
    expect(new Set(parties.map((p) => p.id)).size).to.equal(10_000);
    expect(new Set(benchFleet(50).map((g) => g.name)).size).to.equal(50);
  });
});
