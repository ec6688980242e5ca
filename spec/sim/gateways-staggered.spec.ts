// G3 in the simulator: gateways that start minutes apart. The first takes every party; each later one,
// once its settling time is over, gets parties moved to it in rounds — at most the rules' moves per
// round, rounds at least the rules' pause apart — until the fleet is within the imbalance threshold,
// instead of the first keeping them all. Real gateway clients (runtime/sim/sim-gateway.ts) on a calm
// 3-member cluster hosting the `gateways` service, in virtual time.

import { expect } from 'chai';
import { GatewayFleet, parties } from './gateway-fleet.ts';

const PARTIES = parties(12);
const REBALANCE = { movesPerRound: 2, pauseMs: 2000, imbalanceThreshold: 0.2, settlingMs: 5000 };
const APART_MS = 120_000;

describe('sim: gateways started minutes apart', () => {
  it('G3: each gateway started minutes after the last gets a fair share in rounds within the rules’ limits, instead of the first keeping everything', function () {
    this.timeout(120_000);
    const fleet = new GatewayFleet(7, ['gw-1', 'gw-2', 'gw-3'], 12);
    const { sim, gateways, problems, answers } = fleet;
    const registry = () => fleet.registry();
    const loads = () => fleet.loads();
    const operate = (command: Record<string, unknown>) => fleet.operate(command);
    // Owner changes over time, sampled every 50 ms: when each party changed hands.
    const moves: number[] = [];
    let owners = new Map<string, string | null>();
    const sample = (ms: number) => {
      const end = sim.now + ms;
      while (sim.now < end) {
        sim.runFor(50);
        const now = new Map((registry()?.registry.parties ?? []).map((p) => [p.id, p.assignment.owner]));
        for (const [id, owner] of now) {
          const before = owners.get(id);
          if (before && owner && before !== owner) moves.push(sim.now);
        }
        owners = now;
      }
    };

    gateways[0].start();
    sim.runFor(1000);
    operate({ type: 'APPLY_RULES', rules: { rebalance: REBALANCE } });
    operate({ type: 'SET_PARTIES', parties: PARTIES });
    sample(10_000);
    expect(loads(), 'the only gateway holds every party').to.deep.equal({ 'gw-1': 12 });
    const rounds: number[][] = [];
    for (const i of [1, 2]) {
      sample(APART_MS - 10_000);
      const from = moves.length;
      gateways[i].start();
      sample(REBALANCE.settlingMs - 500);
      expect(moves.length, 'nothing moves while the new gateway settles').to.equal(from);
      sample(15_000);
      // Balanced within the threshold: highest minus lowest utilisation (parties / capacity).
      const held = Object.values(loads());
      expect(held, `loads after gateway ${i + 1} started`).to.have.length(i + 1);
      expect(held.reduce((a, b) => a + b)).to.equal(PARTIES.length);
      const imbalance = (Math.max(...held) - Math.min(...held)) / 12;
      expect(imbalance, `imbalance of ${JSON.stringify(loads())}`).to.be.at.most(
        REBALANCE.imbalanceThreshold,
      );
      expect(moves.length - from, 'moves to the new gateway').to.be.greaterThan(REBALANCE.movesPerRound);
      // Moves grouped into rounds (a round's hand-overs complete within a few ms of each other).
      const these = moves.slice(from);
      const grouped: number[][] = [];
      for (const at of these) {
        const last = grouped.at(-1);
        if (last && at - last[0] < REBALANCE.pauseMs / 2) last.push(at);
        else grouped.push([at]);
      }
      rounds.push(...grouped);
    }
    for (const round of rounds)
      expect(round.length, 'moves in one round').to.be.at.most(REBALANCE.movesPerRound);
    for (let r = 1; r < rounds.length; r++)
      expect(rounds[r][0] - rounds[r - 1][0], 'time between rounds').to.be.at.least(REBALANCE.pauseMs - 100);
    expect(problems).to.deep.equal([]);
    expect(sim.checker.violations).to.deep.equal([]);
    expect(answers).to.have.length(2);
  });
});
