// The gateway workload in the simulator (runtime/sim/gateways.ts): the `gateways` service on the
// members' shards, three gateway processes as real clients, the cluster's faults plus gateway kills and
// cuts, a party-list change and a rules change mid-run. After every step no party has two live
// connections; once the faults heal every party is held by one live gateway that can serve it. A
// registry that hands a moving party over before its old owner let go, planted in a scratch copy, is
// caught by the same seeds.

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import type { RegistrySnapshot } from '../../actors/services/gateway-registry/registry.ts';
import { GatewayWorkload } from '../../runtime/sim/gateways.ts';
import { runSeed } from '../../runtime/sim/index.ts';
import { removeScratch, scratchCopy } from '../../runtime/sim/mutate/scratch.ts';
import type { ActorSimServices } from '../../runtime/sim/services.ts';
import { Simulation } from '../../runtime/sim/simulation.ts';

const SEEDS = [1, 2, 3, 4, 5, 6];

/** The planted bug: a MOVE offers the party to its target at once, while the old owner still holds it. */
const MOVE_WITHOUT_CLOSE = {
  file: 'machines/party-assignment.ts',
  find: "MOVE: { target: 'MOVING', actions: ['setTarget', closeOwner] },",
  replace: "MOVE: { target: 'OFFERED', actions: [closeOwner, 'setTarget', 'handOver', openOwner] },",
};

describe('sim: gateway workload', () => {
  it('G1, G4: across cluster faults, gateway kills and cuts, a party-list and a rules change, never two live connections for a party, and after the heal every party is held by one live gateway that can serve it', function () {
    this.timeout(120_000);
    for (const seed of SEEDS) {
      const report = runSeed(seed, { workload: 'gateways' });
      expect(report.violations, report.replay).to.deep.equal([]);
      expect(report.workload).to.equal('gateways');
      expect(report.completedOperations, `seed ${seed}: commands answered`).to.be.greaterThan(20);
    }
    // The workload does what it says: connections move between gateways under the faults, and the
    // rules change reached every member (whose service states the checker compares at equal index).
    const sim = new Simulation({ seed: SEEDS[0], workload: 'gateways' });
    sim.startClients();
    sim.runUntil(9000);
    const workload = sim.workload as GatewayWorkload;
    expect(workload).to.be.instanceOf(GatewayWorkload);
    expect(workload.remote.connectionsOpened, 'connections opened in one run').to.be.greaterThan(6);
    for (const id of sim.memberIds) {
      const services = sim.member(id).services as ActorSimServices;
      const registry = services.actorState('gateways/registry/fleet') as RegistrySnapshot;
      expect(registry.rulesVersion, `rules version on member ${id}`).to.equal(1);
    }
    expect(sim.checker.violations).to.deep.equal([]);
  });

  it('a registry that offers a moving party before its old owner let go, planted in a scratch copy, is caught (TWO_LIVE_CONNECTIONS)', async function () {
    this.timeout(120_000);
    const scratch = scratchCopy();
    try {
      const path = join(scratch, MOVE_WITHOUT_CLOSE.file);
      const source = readFileSync(path, 'utf8');
      expect(source.split(MOVE_WITHOUT_CLOSE.find).length - 1, 'the planted line matches twice').to.equal(2);
      writeFileSync(path, source.replaceAll(MOVE_WITHOUT_CLOSE.find, MOVE_WITHOUT_CLOSE.replace));
      const mutant = (await import(
        join(scratch, 'runtime/sim/index.ts')
      )) as typeof import('../../runtime/sim/index.ts');
      const caught = SEEDS.find((seed) =>
        mutant
          .runSeed(seed, { workload: 'gateways' })
          .violations.some((v) => v.invariant === 'TWO_LIVE_CONNECTIONS'),
      );
      expect(caught, `one of seeds ${SEEDS.join(', ')} catches the planted bug`).to.not.equal(undefined);
    } finally {
      removeScratch(scratch);
    }
  });
});
