// The built-in `gateways` service: the gateway registry (registry.ts) as an actor service. Every command
// goes to its one actor, `gateways/registry/fleet`; every client session's close is told to it too (it
// ignores sessions no gateway registered from). Commands and answers are in commands.ts.

import { defineService } from '../../actor-runtime/service.ts';
import { GATEWAYS_SERVICE, type GatewayCommand, gatewayCommands } from './commands.ts';
import { REGISTRY_ACTOR, Registry, type RegistrySnapshot } from './registry.ts';

export const gatewaysService = defineService({
  name: GATEWAYS_SERVICE,
  actors: {
    [REGISTRY_ACTOR.actorType]: {
      behaviour: {
        create: () => new Registry(),
        restore: (data) => Registry.restore(data as RegistrySnapshot),
      },
    },
  },
  commands: gatewayCommands,
  route: (command: GatewayCommand) => ({ ...REGISTRY_ACTOR, event: command }),
  sessionClosed: () => [{ ...REGISTRY_ACTOR, event: { type: 'SESSION_CLOSED' } }],
});

/** As a services module (`"services": "./actors/services/gateway-registry/service.ts"`). */
export const services = [gatewaysService];
