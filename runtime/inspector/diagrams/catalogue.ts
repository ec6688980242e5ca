// Which statecharts there are to draw: Chorus's own (the registry in machines/index.ts) and, given a
// services module, every actor type of its services that is an XState machine (`SERVICE.ACTOR_TYPE`).
// `chorus diagrams` and the inspector's `/machines` read the same list.

import type { AnyStateMachine } from 'xstate';
import type { HostedService } from '../../../actors/actor-runtime/service.ts';
import { machineInfo, machineNames, machines } from '../../../machines/index.ts';

export interface DiagramMachine {
  /** `election`, `client-session`, ... for Chorus's own; `SERVICE.ACTOR_TYPE` for a service's actor type. */
  readonly id: string;
  readonly title: string;
  readonly kind: 'cluster' | 'service';
  readonly service?: string;
  readonly machine: AnyStateMachine;
}

/** Chorus's own statecharts, in the registry's order. */
export const clusterMachines = (): DiagramMachine[] =>
  machineNames().map((name) => ({
    id: name,
    title: machineInfo[name].title,
    kind: 'cluster' as const,
    machine: machines[name] as AnyStateMachine,
  }));

/** Every actor type of the services that is a machine (behaviour-only actor types have no chart). */
export const serviceMachines = (services: readonly HostedService[]): DiagramMachine[] =>
  services.flatMap((service) =>
    [...service.actorTypes.values()].flatMap((actorType) =>
      actorType.machine === null
        ? []
        : [
            {
              id: `${service.name}.${actorType.name}`,
              title: `${service.name} ${actorType.name}`,
              kind: 'service' as const,
              service: service.name,
              machine: actorType.machine as AnyStateMachine,
            },
          ],
    ),
  );
