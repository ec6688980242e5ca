// G2 in the simulator: a gateway process is killed. Its session is left open (nothing closed it), so the
// cluster declares the gateway LOST when the session times out; from that moment its parties are open
// at the other gateways within a second, and at no moment does a party have two live connections.

import { expect } from 'chai';
import { GatewayFleet, parties } from './gateway-fleet.ts';

const SESSION_TIMEOUT_MS = 4000; // the simulator's default

describe('sim: a gateway lost', () => {
  it('G2: a killed gateway is declared lost at its session timeout, and its parties are open at other gateways within a second of that', function () {
    this.timeout(60_000);
    const fleet = new GatewayFleet(11, ['gw-1', 'gw-2', 'gw-3'], 12);
    const { sim, gateways } = fleet;
    for (const gateway of gateways) gateway.start();
    sim.runFor(500);
    fleet.operate({ type: 'SET_PARTIES', parties: parties(12) });
    sim.runFor(3000);
    const before = fleet.loads();
    expect(
      Object.values(before).reduce((a, b) => a + b, 0),
      'every party open',
    ).to.equal(12);
    const victim = gateways.reduce((a, b) => (b.held.size > a.held.size ? b : a));
    const held = [...victim.held.keys()];
    expect(held.length, 'parties the victim holds').to.be.greaterThan(0);
    const killedAt = sim.now;
    victim.kill();
    let lostAt: number | null = null;
    let movedAt: number | null = null;
    const settled = () => {
      const registry = fleet.registry();
      if (!registry) return false;
      const state = registry.registry.gateways.find((g) => g.name === victim.spec.name)?.state;
      if (lostAt === null && state === 'LOST') lostAt = sim.now;
      return held.every((id) => {
        const party = registry.registry.parties.find((p) => p.id === id);
        const holders = [...(fleet.remote.live.get(id) ?? new Map())];
        return (
          party?.state === 'OPEN' &&
          party.assignment.owner !== victim.spec.name &&
          holders.length === 1 &&
          holders[0][0] === party.assignment.owner
        );
      });
    };
    while (!settled() && sim.now < killedAt + 3 * SESSION_TIMEOUT_MS) sim.runFor(10);
    movedAt = sim.now;
    expect(lostAt, 'declared lost').to.not.equal(null);
    const lostAfter = (lostAt as unknown as number) - killedAt;
    // Members' clocks run within 5% of the simulator's; the last activity may precede the kill by a keepalive.
    expect(lostAfter, 'ms from the kill to LOST').to.be.within(
      SESSION_TIMEOUT_MS * 0.5,
      SESSION_TIMEOUT_MS * 1.1 + 500,
    );
    expect(
      movedAt - (lostAt as unknown as number),
      'ms from LOST to every party open elsewhere',
    ).to.be.at.most(1000);
    expect(fleet.problems, 'never two live connections').to.deep.equal([]);
    expect(sim.checker.violations).to.deep.equal([]);
  });
});
