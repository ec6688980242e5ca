// G3 in the simulator: gateways that start minutes apart. The first takes every party; each later one,
// once its settling time is over, gets parties moved to it in rounds — at most the rules' moves per
// round, rounds at least the rules' pause apart — until the fleet is within the imbalance threshold,
// instead of the first keeping them all. Real gateway clients (runtime/sim/sim-gateway.ts) on a calm
// 3-member cluster hosting the `gateways` service, in virtual time.

import { expect } from 'chai';
import type { PartyDefinition } from '../../actors/services/gateway-registry/commands.ts';
import type { RegistrySnapshot } from '../../actors/services/gateway-registry/registry.ts';
import { gatewaysService } from '../../actors/services/gateway-registry/service.ts';
import { ChorusClient } from '../../runtime/client/client.ts';
import { endpointOf } from '../../runtime/sim/client-network.ts';
import type { ClientHost } from '../../runtime/sim/clients.ts';
import type { ActorSimServices } from '../../runtime/sim/services.ts';
import { RemoteSystem, SimGateway } from '../../runtime/sim/sim-gateway.ts';
import { Simulation } from '../../runtime/sim/simulation.ts';

const PARTIES: PartyDefinition[] = Array.from({ length: 12 }, (_, i) => ({
  id: `p${String(i).padStart(2, '0')}`,
  endpoint: `remote-${i}:7000`,
  labels: {},
  requires: [],
}));
const REBALANCE = { movesPerRound: 2, pauseMs: 2000, imbalanceThreshold: 0.2, settlingMs: 5000 };
const APART_MS = 120_000;

describe('sim: gateways started minutes apart', () => {
  it('G3: each gateway started minutes after the last gets a fair share in rounds within the rules’ limits, instead of the first keeping everything', function () {
    this.timeout(120_000);
    // No workload clients: this test runs its own gateways and operator (client numbers 10 and up).
    const sim = new Simulation({ seed: 7, workload: 'gateways' });
    const host: ClientHost = {
      rng: sim.rng,
      memberIds: sim.memberIds,
      now: () => sim.now,
      schedule: (ms, run) => sim.at(sim.now + ms, run),
      transportFor: (client) => sim.clientNetwork.transportFor(client + 10),
    };
    const problems: string[] = [];
    const remote = new RemoteSystem(
      (invariant, detail) => problems.push(`${invariant}: ${detail}`),
      () => sim.now,
    );
    const timing = { leaseMs: 2000, syncEveryMs: 500, commandTimeoutMs: 3000, failRate: 0 };
    const gateways = ['gw-1', 'gw-2', 'gw-3'].map(
      (name, i) =>
        new SimGateway({ name, capabilities: [], capacity: 12, client: i }, host, remote, timing, () => {}),
    );
    const operator = ChorusClient.start({
      endpoints: sim.memberIds.map(endpointOf),
      seed: 99,
      transport: host.transportFor(5),
      commandTimeoutMs: 10_000,
    });
    const answers: unknown[] = [];
    const operate = (command: Record<string, unknown>) =>
      operator.submit(gatewaysService.commandBody(command), (outcome) => answers.push(outcome));
    const registry = (): RegistrySnapshot | undefined => {
      const leader = sim.leader();
      if (leader === null) return undefined;
      const services = sim.member(leader).services as ActorSimServices;
      return services.actorState('gateways/registry/fleet') as RegistrySnapshot | undefined;
    };
    const loads = (): Record<string, number> => {
      const counts: Record<string, number> = {};
      for (const p of registry()?.registry.parties ?? [])
        if (p.state === 'OPEN' && p.assignment.owner)
          counts[p.assignment.owner] = (counts[p.assignment.owner] ?? 0) + 1;
      return counts;
    };
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
