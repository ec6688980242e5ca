// Where balancing stops: explain with moves under way (a MOVING party counts on its target and keeps a
// slot on its owner), and the point where stickiness outweighs least-loaded, worked out in
// docs/gateways.md ("What a plan does").

import { expect } from 'chai';
import { explain, plan } from '../../../actors/services/gateway-registry/rules/index.ts';
import { gateway, input, openOn, party, rules } from './rules-fixtures.ts';

describe('gateway rules: where balancing stops', () => {
  it('explain counts MOVING parties on their target, with a slot kept on their owner until they land', () => {
    const pair = [gateway('a', { capacity: 2 }), gateway('b', { capacity: 3 })];
    const moving = ['m1', 'm2'].map((id) => party(id, { owner: 'a', state: 'MOVING', target: 'b' }));
    const least = rules({ scores: [{ kind: 'least-loaded', weight: 1 }] });
    const fleet = input(pair, [...moving, party('p')], least);
    const loads = explain(fleet, 'm1').gateways.map((g) => [g.gateway, g.load]);
    expect(loads, 'm1 itself left out of b').to.deep.equal([
      ['a', 0],
      ['b', 1],
    ]);
    const [a] = explain(fleet, 'p').gateways;
    expect(a.filters.at(-1)).to.deep.equal({
      filter: 'capacity',
      pass: false,
      reason: 'holds 0 of 2, and 2 moving away until closed',
    });
  });

  it('least-loaded 1, stickiness 0.1, capacity 150: loads 110/94/96 stay above a threshold of 0.1; 0.11 or stickiness 0.09 meets it', () => {
    const gateways = ['a', 'b', 'c'].map((name) => gateway(name, { capacity: 150 }));
    const parties = [...openOn('a', 110), ...openOn('b', 94), ...openOn('c', 96)];
    const planWith = (stickiness: number, imbalanceThreshold: number) =>
      plan(
        input(
          gateways,
          parties,
          rules({
            scores: [
              { kind: 'least-loaded', weight: 1 },
              { kind: 'stickiness', weight: stickiness },
            ],
            rebalance: { movesPerRound: 100, pauseMs: 200, imbalanceThreshold, settlingMs: 0 },
          }),
        ),
      );
    const stuck = planWith(0.1, 0.1);
    expect(stuck.moves).to.deep.equal([]);
    expect(stuck.imbalanceAfter).to.be.closeTo(16 / 150, 1e-9); // 1/150 + 0.1/1, above 0.1
    expect(planWith(0.1, 0.11).imbalanceAfter).to.be.below(0.11);
    const looser = planWith(0.09, 0.1);
    expect(looser.moves.map((m) => `${m.from}>${m.to}`)).to.deep.equal(['a>b']);
    expect(looser.imbalanceAfter).to.be.closeTo(14 / 150, 1e-9);
  });
});
