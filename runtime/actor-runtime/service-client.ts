// Sending actor-service commands from a client. The service validates and routes a command where it is
// sent (a bad one never leaves the client), the client library delivers it to the leader (resending
// across failovers; a retry is answered with the first reply), and the member answers with the reply
// ActorServiceHost encodes: `{ ok: true, value }` or `{ ok: false, error: { code, message } }`.
//
//   const counters = serviceClient(client, counterService);
//   const count = await counters.command({ type: 'INCREMENT', id: 'visits', by: 1 });

import type { z } from 'zod';
import { type ReplyError, unpack } from '../../actors/actor-runtime/protocol.ts';
import type { Service } from '../../actors/actor-runtime/service.ts';
import type { ChorusClient } from '../client/client.ts';

/** A service reply as it arrives (see encodeReply in actor-service-host.ts). */
export type ServiceReply =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly error: ReplyError };

/** The actor refused the command (ACTOR_FAILED, UNKNOWN_ACTOR_TYPE, BAD_EVENT, WINDOW_FULL): it was not applied. */
export class ServiceReplyError extends Error {
  override readonly name = 'ServiceReplyError';
  constructor(readonly error: ReplyError) {
    super(`${error.code}: ${error.message}`);
  }

  get code(): ReplyError['code'] {
    return this.error.code;
  }
}

/** Decode a reply payload; throws naming what is wrong if it is not a service reply. */
export const decodeServiceReply = (payload: Uint8Array): ServiceReply => {
  const reply = unpack(payload) as Partial<{ ok: unknown; value: unknown; error: ReplyError }> | null;
  if (reply && reply.ok === true) return { ok: true, value: reply.value };
  if (reply && reply.ok === false && typeof reply.error?.code === 'string') {
    return { ok: false, error: reply.error };
  }
  throw new TypeError(
    'decodeServiceReply: the reply is not { ok, value | error }: is the cluster running actor services (the `services` configuration field)?',
  );
};

type Schemas = Record<string, z.ZodType>;
/** A command as the client writes it (before schema defaults are filled in). */
export type CommandInput<C extends Schemas> = { [K in keyof C]: z.input<C[K]> }[keyof C];

export interface ServiceClient<C extends Schemas> {
  readonly service: Service<C>;
  /** Send a command; the reply's value, or a ServiceReplyError when the actor refused it. */
  command(command: CommandInput<C>, options?: { timeoutMs?: number }): Promise<unknown>;
  /** Send a command; the reply as it came (ok or not). */
  send(command: CommandInput<C>, options?: { timeoutMs?: number }): Promise<ServiceReply>;
}

/** Commands for `service` over `client`. Validation and routing errors (CommandError) throw before sending. */
export const serviceClient = <C extends Schemas>(
  client: ChorusClient,
  service: Service<C>,
): ServiceClient<C> => {
  const send = async (
    command: CommandInput<C>,
    options: { timeoutMs?: number } = {},
  ): Promise<ServiceReply> => decodeServiceReply(await client.send(service.commandBody(command), options));
  return {
    service,
    send,
    async command(command, options) {
      const reply = await send(command, options);
      if (!reply.ok) throw new ServiceReplyError(reply.error);
      return reply.value;
    },
  };
};
