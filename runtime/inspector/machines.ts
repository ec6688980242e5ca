// The statecharts the inspector draws, as the diagrams' catalogue lists them (diagrams/catalogue.ts:
// Chorus's own by registry name, each service actor type's as `SERVICE.ACTOR_TYPE`), and their SVG from the
// inspector's renderer (diagrams/svg.ts), where every state carries `data-state="<path>"`.

import type { AnyStateMachine } from 'xstate';
import type { HostedService } from '../../actors/actor-runtime/service.ts';
import { clusterMachines, type DiagramMachine, serviceMachines } from './diagrams/catalogue.ts';
import { renderSvg } from './diagrams/svg.ts';
import { HttpError } from './http.ts';

const catalogue = (services: readonly HostedService[]): DiagramMachine[] => [
  ...clusterMachines(),
  ...serviceMachines(services),
];

/** GET /machines: every statechart's id, title and kind (and service). */
export const machineList = (services: readonly HostedService[]) =>
  catalogue(services).map(({ id, title, kind, service }) => ({
    id,
    title,
    kind,
    ...(service === undefined ? {} : { service }),
  }));

/** The catalogue id of a machine (what GET /machines/ID.svg takes), or null when it is not listed. */
export const machineIdOf = (services: readonly HostedService[], machine: AnyStateMachine): string | null =>
  catalogue(services).find((entry) => entry.machine === machine)?.id ?? null;

/** GET /machines/ID.svg */
export const machineSvg = (id: string, services: readonly HostedService[]): Promise<string> => {
  const entries = catalogue(services);
  const entry = entries.find((m) => m.id === id);
  if (!entry)
    throw new HttpError(404, `no machine '${id}' (machines: ${entries.map((m) => m.id).join(', ')})`);
  return renderSvg(entry.machine, entry.id);
};
