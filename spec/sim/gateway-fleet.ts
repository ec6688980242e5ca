// A gateway fleet scripted by a sim spec: a calm simulated cluster hosting the `gateways` service (no
// workload clients), gateway processes (runtime/sim/sim-gateway.ts) the spec starts and kills, an
// operator client, and reads of the registry as the leader holds it.

import type { PartyDefinition } from '../../actors/services/gateway-registry/commands.ts';
import type { RegistrySnapshot } from '../../actors/services/gateway-registry/registry.ts';
import { gatewaysService } from '../../actors/services/gateway-registry/service.ts';
import { DEFAULT_LIVENESS_MS } from '../../gateway/stand-in.ts';
import { ChorusClient, type CommandOutcome } from '../../runtime/client/client.ts';
import { endpointOf } from '../../runtime/sim/client-network.ts';
import type { ClientHost } from '../../runtime/sim/clients.ts';
import type { ActorSimServices } from '../../runtime/sim/services.ts';
import { RemoteSystem, SimGateway, type SimGatewaySettings } from '../../runtime/sim/sim-gateway.ts';
import { Simulation } from '../../runtime/sim/simulation.ts';

export const parties = (count: number): PartyDefinition[] =>
  Array.from({ length: count }, (_, i) => ({
    id: `p${String(i).padStart(2, '0')}`,
    endpoint: `remote-${i}:7000`,
    labels: {},
    requires: [],
  }));

/** The simulator's default session timeout. */
export const SIM_SESSION_TIMEOUT_MS = 4000;

export class GatewayFleet {
  readonly sim: Simulation;
  readonly remote: RemoteSystem;
  readonly gateways: SimGateway[];
  /** Broken rules the remote system saw. */
  readonly problems: string[] = [];
  readonly answers: CommandOutcome[] = [];
  private readonly operator: ChorusClient;

  constructor(
    seed: number,
    names: readonly string[],
    capacity: number,
    settings: Partial<SimGatewaySettings> = {},
  ) {
    const sim = new Simulation({ seed, workload: 'gateways' });
    this.sim = sim;
    // Client numbers 10 and up: the workload's own clients (never started) keep theirs.
    const host: ClientHost = {
      rng: sim.rng,
      memberIds: sim.memberIds,
      now: () => sim.now,
      schedule: (ms, run) => sim.at(sim.now + ms, run),
      transportFor: (client) => sim.clientNetwork.transportFor(client + 10),
    };
    this.remote = new RemoteSystem(
      (invariant, detail) => this.problems.push(`${invariant}: ${detail}`),
      () => sim.now,
      DEFAULT_LIVENESS_MS,
    );
    const gatewaySettings = { sessionTimeoutMs: SIM_SESSION_TIMEOUT_MS, failRate: 0, ...settings };
    this.gateways = names.map(
      (name, client) =>
        new SimGateway(
          { name, capabilities: [], capacity, client },
          host,
          this.remote,
          gatewaySettings,
          () => {},
        ),
    );
    this.operator = ChorusClient.start({
      endpoints: sim.memberIds.map(endpointOf),
      seed: seed + 1,
      transport: host.transportFor(names.length),
      commandTimeoutMs: 10_000,
    });
  }

  /** An operator command (answered into `answers`). */
  operate(command: Record<string, unknown>): void {
    this.operator.submit(gatewaysService.commandBody(command), (outcome) => this.answers.push(outcome));
  }

  /** The registry as the leader holds it now. */
  registry(): RegistrySnapshot | undefined {
    const leader = this.sim.leader();
    if (leader === null) return undefined;
    const services = this.sim.member(leader).services as ActorSimServices;
    return services.actorState('gateways/registry/fleet') as RegistrySnapshot | undefined;
  }

  /** Parties OPEN per owner. */
  loads(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const p of this.registry()?.registry.parties ?? [])
      if (p.state === 'OPEN' && p.assignment.owner)
        counts[p.assignment.owner] = (counts[p.assignment.owner] ?? 0) + 1;
    return counts;
  }
}
