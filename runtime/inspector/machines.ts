// The statecharts the inspector draws: Chorus's own (machines/index.ts) and every statechart actor type of
// the services a member runs. The SVG comes from the inspector's renderer (runtime/inspector/diagrams/),
// loaded only when a diagram is asked for.

import type { AnyStateMachine } from 'xstate';
import type { HostedService } from '../../actors/actor-runtime/service.ts';
import { machines } from '../../machines/index.ts';
import { HttpError } from './http.ts';

export interface MachineEntry {
  readonly id: string;
  readonly kind: 'cluster' | 'service';
  readonly service?: string;
  readonly actorType?: string;
}

const serviceMachines = (services: readonly HostedService[]) =>
  services.flatMap((service) =>
    [...service.actorTypes.values()]
      .filter((type) => type.machine !== null)
      .map((type) => ({
        service: service.name,
        actorType: type.name,
        machine: type.machine as AnyStateMachine,
      })),
  );

/** GET /machines: Chorus's statecharts by registry name, then the services' by machine id. */
export const machineList = (services: readonly HostedService[]): MachineEntry[] => {
  const list: MachineEntry[] = Object.keys(machines).map((id) => ({ id, kind: 'cluster' as const }));
  const seen = new Set(list.map((m) => m.id));
  for (const { service, actorType, machine } of serviceMachines(services)) {
    if (seen.has(machine.id)) continue;
    seen.add(machine.id);
    list.push({ id: machine.id, kind: 'service', service, actorType });
  }
  return list;
};

export const machineById = (id: string, services: readonly HostedService[]): AnyStateMachine => {
  if (Object.hasOwn(machines, id)) return machines[id as keyof typeof machines];
  const found = serviceMachines(services).find((m) => m.machine.id === id);
  if (!found)
    throw new HttpError(
      404,
      `no machine '${id}' (machines: ${machineList(services)
        .map((m) => m.id)
        .join(', ')})`,
    );
  return found.machine;
};

/** GET /machines/ID.svg, drawn by the inspector's diagram renderer. */
export const machineSvg = async (id: string, services: readonly HostedService[]): Promise<string> => {
  const machine = machineById(id, services);
  const rendererUrl = new URL('./diagrams/svg.ts', import.meta.url).href;
  let renderer: { renderSvg?: (machine: AnyStateMachine, title?: string) => Promise<string> };
  try {
    renderer = await import(rendererUrl);
  } catch (error) {
    throw new HttpError(
      501,
      `the diagram renderer is not available in this build: ${(error as Error).message}`,
    );
  }
  if (typeof renderer.renderSvg !== 'function')
    throw new HttpError(501, 'the diagram renderer is not available in this build (no renderSvg)');
  return renderer.renderSvg(machine, id);
};
