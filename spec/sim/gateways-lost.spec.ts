// G2 in the simulator: a gateway process is killed; its sockets close with it. With the gateways' default
// settings the leader that saw its connection close ends its session after closeOnDisconnectMs; with that
// turned off the session is left to time out. Either way the cluster then declares the gateway LOST, its
// parties are open at the other gateways within a second of that, and at no moment does a party have two
// live connections.

import { expect } from 'chai';
import { DEFAULT_CLOSE_ON_DISCONNECT_MS } from '../../gateway/config.ts';
import { GatewayFleet, parties, SIM_SESSION_TIMEOUT_MS } from './gateway-fleet.ts';

const killed = (closeOnDisconnectMs: number | null, lostWithin: [number, number]) =>
  function (this: Mocha.Context) {
    this.timeout(60_000);
    const fleet = new GatewayFleet(11, ['gw-1', 'gw-2', 'gw-3'], 12, { closeOnDisconnectMs });
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
        const holders = [...fleet.remote.holders(id)];
        return (
          party?.state === 'OPEN' &&
          party.assignment.owner !== victim.spec.name &&
          holders.length === 1 &&
          holders[0][0] === party.assignment.owner
        );
      });
    };
    while (!settled() && sim.now < killedAt + 3 * SIM_SESSION_TIMEOUT_MS) sim.runFor(10);
    movedAt = sim.now;
    expect(lostAt, 'declared lost').to.not.equal(null);
    const lostAfter = (lostAt as unknown as number) - killedAt;
    expect(lostAfter, 'ms from the kill to LOST').to.be.within(...lostWithin);
    expect(
      movedAt - (lostAt as unknown as number),
      'ms from LOST to every party open elsewhere',
    ).to.be.at.most(1000);
    expect(fleet.problems, 'never two live connections').to.deep.equal([]);
    expect(sim.checker.violations).to.deep.equal([]);
  };

describe('sim: a gateway lost', () => {
  // Members' clocks run within 5% of the simulator's; a commit and a tick of the leader come on top.
  it(
    'G2: a killed gateway is declared lost closeOnDisconnectMs after the leader saw its connection close (default settings), its parties open at other gateways within a second of that',
    killed(DEFAULT_CLOSE_ON_DISCONNECT_MS, [
      DEFAULT_CLOSE_ON_DISCONNECT_MS * 0.9,
      DEFAULT_CLOSE_ON_DISCONNECT_MS * 1.1 + 200,
    ]),
  );
  // The last activity may precede the kill by a keepalive.
  it(
    'G2: with close on disconnect off, a killed gateway is declared lost at its session timeout, its parties open at other gateways within a second of that',
    killed(null, [SIM_SESSION_TIMEOUT_MS * 0.5, SIM_SESSION_TIMEOUT_MS * 1.1 + 500]),
  );
});
