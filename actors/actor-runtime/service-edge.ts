// The service edge, on the leader: what a client's SESSION_MESSAGE body must be before it may enter the
// log. A client sends `[serviceName, command]`; the leader runs the service's own zod schema and route
// (the client library ran them too, for early errors, but a raw client need not have), refuses event
// types reserved to the runtime, and appends the routed body `[address, event]` that the shards apply.
// A client can therefore only cause the events its service's commands route to: never an `xstate.*` or
// `chorus.*` event, never an actor-to-actor message (those are SERVICE_MESSAGE entries the runtime
// appends). Pure: the same body gets the same answer on every member.

import { commandBody, type ReplyError, unpack } from './protocol.ts';
import { CommandError, type Service } from './service.ts';

export type Admission =
  | { readonly ok: true; readonly body: Uint8Array }
  | { readonly ok: false; readonly error: ReplyError };

const refuse = (message: string): Admission => ({ ok: false, error: { code: 'BAD_COMMAND', message } });

/** True when a service has what the edge needs (a `resolve`): any `defineService` result does. */
export const isResolvableService = (service: unknown): service is Service =>
  typeof (service as Service | null)?.resolve === 'function';

/** Validate and route a client's command body (`[serviceName, command]`), or say why not. */
export const admitCommand = (services: ReadonlyMap<string, Service>, request: Uint8Array): Admission => {
  let decoded: unknown;
  try {
    decoded = unpack(request);
  } catch {
    return refuse('the command body is not msgpack: send [serviceName, command] (serviceClient does)');
  }
  if (!Array.isArray(decoded) || decoded.length !== 2 || typeof decoded[0] !== 'string') {
    return refuse(
      'the command body must be a msgpack array [serviceName, command] (serviceClient sends that)',
    );
  }
  const [name, command] = decoded as [string, unknown];
  const service = services.get(name);
  if (!service) {
    return refuse(`no service '${name}' runs on this cluster; services: ${[...services.keys()].join(', ')}`);
  }
  try {
    const { address, route } = service.resolve(command);
    return { ok: true, body: commandBody(address, route.event) };
  } catch (error) {
    if (error instanceof CommandError) return refuse(error.message);
    // The service's own route() threw: a bug in the service, refused the same way everywhere.
    return refuse(
      `service '${name}': route() threw ${error instanceof Error ? error.message : String(error)}`,
    );
  }
};
