// The gateway workload (`chorus sim --workload gateways`): the members host the `gateways` service
// (actors/services/gateway-registry) on the actor runtime's shards; three simulated gateway processes
// (sim-gateway.ts: the production gateway, gateway/gateway.ts, on the simulated network and clock) hold the
// parties' connections at one simulated remote system; an operator client loads the party list, changes it
// once and applies a rules change through the log mid-run (members' service states are compared at equal
// applied index, so the rules are applied identically everywhere: G4). Besides the cluster's faults
// (leader kills, partitions, pauses...), the workload kills a gateway process and restarts it, cuts one off
// from every member for a while, and freezes one as SIGSTOP does — each sometimes past the session timeout.
// The gateways run with their default settings, close on disconnect included.
//
// What must hold:
// - after every step, no party has two live connections (RemoteSystem checks each open:
//   TWO_LIVE_CONNECTIONS);
// - once the faults have healed (and any session a killed gateway left behind has timed out), every
//   party on the list is OPEN in the registry, owned by a live ACTIVE gateway that has the capabilities
//   it requires, and that gateway alone holds its connection, at the registry's epoch
//   (GATEWAYS_NOT_CONVERGED).

import { unpack } from 'msgpackr';
import type { HostedService } from '../../actors/actor-runtime/service.ts';
import type { PartyDefinition } from '../../actors/services/gateway-registry/commands.ts';
import type { RegistrySnapshot } from '../../actors/services/gateway-registry/registry.ts';
import { gatewaysService } from '../../actors/services/gateway-registry/service.ts';
import { DEFAULT_LIVENESS_MS } from '../../gateway/stand-in.ts';
import type { ChorusClient } from '../client/client.ts';
import { type Answered, type ClientHost, startClients, type Workload } from './clients.ts';
import { ActorSimServices } from './services.ts';
import { type GatewayProblem, RemoteSystem, SimGateway } from './sim-gateway.ts';
import type { Simulation } from './simulation.ts';

/** What the members host for the gateway workload. */
export const GATEWAY_SIM_SERVICES: readonly HostedService[] = [gatewaysService];

const REGISTRY_ADDRESS = 'gateways/registry/fleet';

const PARTIES: PartyDefinition[] = Array.from({ length: 6 }, (_, i) => ({
  id: `p${i}`,
  endpoint: `remote-${i}:7000`,
  labels: { desk: i % 2 === 0 ? 'rates' : 'fx' },
  requires: i % 3 === 0 ? ['fix'] : [],
}));
/** The list after the operator's change: one party gone, one new. */
const PARTIES_CHANGED: PartyDefinition[] = [
  ...PARTIES.slice(1),
  { id: 'p6', endpoint: 'remote-6:7000', labels: { desk: 'fx' }, requires: ['fix'] },
];
const RULES_CHANGE = {
  scores: [
    { kind: 'least-loaded', weight: 1 },
    { kind: 'stickiness', weight: 0.1 },
  ],
  tieBreak: 'name',
  rebalance: { movesPerRound: 1, pauseMs: 500, imbalanceThreshold: 0.2, settlingMs: 1000 },
};

/** Gateway faults strike between these virtual times (a cut may last longer: the final check heals it). */
const FAULTS_FROM_MS = 600;
const FAULTS_UNTIL_MS = 4500;

export interface GatewayWorkloadOptions {
  readonly sessionTimeoutMs: number;
  readonly commandTimeoutMs: number;
}

export class GatewayWorkload implements Workload {
  issued = 0;
  completed = 0;
  readonly answered: Answered[] = [];
  readonly remote: RemoteSystem;
  readonly gateways: SimGateway[];
  private readonly operator: ChorusClient;
  private partiesNow: PartyDefinition[] = PARTIES;
  /** Every gateway frozen for the simulator's end-of-run checks. */
  private quiet = false;
  private closed = false;

  readonly options: GatewayWorkloadOptions;

  constructor(
    private readonly host: ClientHost,
    sessionTimeoutMs: number,
    commandTimeoutMs: number,
    problem: GatewayProblem,
  ) {
    this.options = { sessionTimeoutMs, commandTimeoutMs };
    const options = this.options;
    this.remote = new RemoteSystem(problem, () => host.now(), DEFAULT_LIVENESS_MS);
    const settings = { sessionTimeoutMs: options.sessionTimeoutMs, failRate: 0.05 };
    const record = (call: number, ret: number) => {
      if (this.closed) return;
      this.issued++;
      this.completed++;
      this.answered.push({ call, ret });
    };
    const specs = [
      { name: 'gw-a', capabilities: ['fix'], capacity: 6 },
      { name: 'gw-b', capabilities: ['fix', 'rest'], capacity: 6 },
      { name: 'gw-c', capabilities: ['rest'], capacity: 6 },
    ];
    this.gateways = specs.map(
      (spec, client) => new SimGateway({ ...spec, client }, host, this.remote, settings, record),
    );
    [this.operator] = startClients(
      { ...host, transportFor: (client) => host.transportFor(client + specs.length) },
      { count: 1, commandTimeoutMs: options.commandTimeoutMs, maxInFlight: 1 },
    );
  }

  start(): void {
    const rng = this.host.rng;
    for (const gateway of this.gateways) this.host.schedule(rng.int(0, 300), () => gateway.start());
    this.operate({ type: 'SET_PARTIES', parties: PARTIES }, rng.int(0, 200));
    this.operate({ type: 'APPLY_RULES', rules: RULES_CHANGE }, rng.int(1500, 3500));
    this.host.schedule(rng.int(2000, 4000), () => {
      this.partiesNow = PARTIES_CHANGED;
      this.operate({ type: 'SET_PARTIES', parties: PARTIES_CHANGED }, 0);
    });
    // The gateway holding the most is killed and restarted; later the one then holding the most is cut
    // off from every member, sometimes past the session timeout (its parties then move, so it must have
    // let go before).
    const busiest = (): SimGateway | undefined =>
      this.gateways
        .filter((g) => g.alive && !g.isCut && !g.isFrozen)
        .reduce<SimGateway | undefined>(
          (best, g) => (best && best.held.size >= g.held.size ? best : g),
          undefined,
        );
    const killAt = rng.int(FAULTS_FROM_MS, 3000);
    const restartAt = rng.int(killAt + 100, FAULTS_UNTIL_MS);
    this.host.schedule(killAt, () => {
      const killed = busiest();
      if (!killed) return;
      killed.kill();
      this.host.schedule(restartAt - killAt, () => killed.start());
    });
    // Strike the busiest gateway at a random time, and undo it after a while: sometimes past the session
    // timeout, when its parties move and it must have let go first.
    const { sessionTimeoutMs } = this.options;
    const strike = (leastMs: number, start: (g: SimGateway) => void, end: (g: SimGateway) => void) => {
      const at = rng.int(FAULTS_FROM_MS, 3000);
      const lasts = rng.chance(0.5)
        ? rng.int(leastMs, sessionTimeoutMs)
        : rng.int(sessionTimeoutMs, 2 * sessionTimeoutMs);
      this.host.schedule(at, () => {
        const struck = busiest();
        if (!struck) return;
        start(struck);
        this.host.schedule(lasts, () => end(struck));
      });
    };
    // Cut off from every member (no FIN, no RST).
    strike(
      200,
      (g) => g.setCut(true),
      (g) => g.setCut(false),
    );
    // SIGSTOP, then SIGCONT (unless the run went quiet meanwhile: every gateway stays frozen then). On waking
    // it must close what it no longer owns before anything else; the remote end has ended its connections.
    strike(
      100,
      (g) => g.setFrozen(true),
      (g) => this.quiet || g.setFrozen(false),
    );
  }

  /** Send an operator command after `delay`, again until it is answered (the party list must get there). */
  private operate(command: Record<string, unknown>, delay: number): void {
    this.host.schedule(delay, () => {
      if (command.type === 'SET_PARTIES' && command.parties !== this.partiesNow) return; // superseded
      if (this.closed) return;
      if (this.quiet) return this.operate(command, 200); // nothing goes out while the run is quiet
      const call = this.host.now();
      this.operator.submit(gatewaysService.commandBody(command), (outcome) => {
        const ok = 'reply' in outcome && (unpack(outcome.reply) as { ok: boolean }).ok;
        if (!ok) return this.operate(command, 200);
        if (this.closed) return;
        this.issued++;
        this.completed++;
        this.answered.push({ call, ret: this.host.now() });
      });
    });
  }

  /** Quiet (inactive): every gateway process is frozen, so none sends anything; active again: thawed. */
  setActive(active: boolean): void {
    this.quiet = !active;
    for (const gateway of this.gateways) gateway.setFrozen(!active);
  }

  close(): void {
    this.closed = true;
    this.setActive(false);
  }

  /** Why the fleet is not settled as it must be once faults healed (null: it is). */
  unsettled(sim: Simulation): string | null {
    const leader = sim.leader();
    if (leader === null) return 'no leader';
    const services = sim.member(leader).services;
    if (!(services instanceof ActorSimServices)) return 'the members do not run the actor services';
    const state = services.actorState(REGISTRY_ADDRESS) as RegistrySnapshot | undefined;
    if (!state) return 'no registry yet';
    const gateways = new Map(state.registry.gateways.map((g) => [g.name, g]));
    const parties = new Map(state.registry.parties.map((p) => [p.id, p]));
    for (const definition of this.partiesNow) {
      const party = parties.get(definition.id);
      if (!party) return `party ${definition.id} is not in the registry`;
      const owner = party.assignment.owner === null ? undefined : gateways.get(party.assignment.owner);
      if (party.state !== 'OPEN' || !owner)
        return `party ${party.id} is ${party.state} (owner ${party.assignment.owner})`;
      const process = this.gateways.find((g) => g.spec.name === owner.name);
      if (owner.state !== 'ACTIVE' || !process?.alive)
        return `party ${party.id}: owner ${owner.name} is ${owner.state}`;
      const missing = definition.requires.filter((c) => !owner.capabilities.includes(c));
      if (missing.length > 0) return `party ${party.id}: owner ${owner.name} lacks ${missing.join(', ')}`;
      const holders = [...this.remote.holders(party.id)];
      if (holders.length !== 1 || holders[0][0] !== owner.name || holders[0][1] !== party.assignment.epoch) {
        return `party ${party.id}: owned by ${owner.name} at epoch ${party.assignment.epoch}, live connections ${JSON.stringify(holders)}`;
      }
    }
    return null;
  }
}

/**
 * G1 once the faults healed: every gateway process runs again, and within a session timeout (a killed
 * process's old session must time out before its name registers again) plus a few seconds, the fleet
 * settles as it must. Then the gateways go quiet for the simulator's own end-of-run checks.
 */
export const checkGatewaysSettled = (sim: Simulation, workload: GatewayWorkload): void => {
  workload.setActive(true);
  for (const gateway of workload.gateways) {
    if (!gateway.alive) gateway.start();
    gateway.setCut(false);
    gateway.setFrozen(false);
  }
  const deadline = sim.now + workload.options.sessionTimeoutMs + 4000;
  let why = workload.unsettled(sim);
  while (why !== null && sim.now < deadline) {
    sim.runFor(50);
    why = workload.unsettled(sim);
  }
  if (why !== null) sim.checker.fail('GATEWAYS_NOT_CONVERGED', -1, why);
  // Quiet again, as before the check: what the gateways sent last is applied everywhere.
  workload.setActive(false);
  sim.runFor(1000);
};
