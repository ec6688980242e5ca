// What a service developer programs against. A service declares its actor types (XState machines built
// with `setup`), its command schemas (zod) and how a command finds its actor; registering it with a
// member is one call (`ShardPool.start({ services })` or `new Shard({ services })`). Actors are virtual:
// an actor exists from its first committed input and is addressed by `service/actorType/actorId`.
//
// Inside a machine, an actor talks to the world only through emitted events (`emit(...)` from xstate):
//   emit(() => reply(value))                  the answer to the session command being applied
//   emit(() => tell(actorType, actorId, ev))  a message to another actor (goes through the log first)
//   emit(() => effect(intent))                a side effect outside the cluster, performed by the leader
// Delays (`after`, delayed `raise`/`sendTo`) become cluster timers automatically.

import { type Draft, produce } from 'immer';
import type { AnyMachineSnapshot, AnyStateMachine, EventObject } from 'xstate';
import type { z } from 'zod';
import { commandBody, formatAddress, sessionMessagePayload } from './shard/protocol.ts';

export const REPLY_EVENT = 'chorus.reply';
export const TELL_EVENT = 'chorus.tell';
export const EFFECT_EVENT = 'chorus.effect';
/** The event an actor receives when the leader reports an effect finished: `{ type, effectId, result }`. */
export const EFFECT_DONE_EVENT = 'chorus.effect.done';

export interface ReplyEmitted {
  readonly type: typeof REPLY_EVENT;
  readonly value: unknown;
}
export interface TellEmitted {
  readonly type: typeof TELL_EVENT;
  readonly service?: string;
  readonly actorType: string;
  readonly actorId: string;
  readonly event: EventObject;
}
export interface EffectEmitted {
  readonly type: typeof EFFECT_EVENT;
  readonly intent: unknown;
}

/** Emit this to answer the session whose command is being applied (default answer: state and context). */
export const reply = (value: unknown): ReplyEmitted => ({ type: REPLY_EVENT, value });

/** Emit this to send `event` to another actor (of this service unless `service` is given). */
export const tell = (
  actorType: string,
  actorId: string,
  event: EventObject,
  service?: string,
): TellEmitted => ({
  type: TELL_EVENT,
  actorType,
  actorId,
  event,
  ...(service === undefined ? {} : { service }),
});

/** Emit this to ask the leader to perform `intent` outside the cluster; the result comes back as an
 *  EFFECT_DONE_EVENT. `intent` must be msgpack-serialisable data. */
export const effect = (intent: unknown): EffectEmitted => ({ type: EFFECT_EVENT, intent });

/**
 * An immer recipe as an XState assigner: `assign(update<Ctx, Ev>((draft, event) => { draft.n += 1 }))`.
 * Clearer than spreading nested context by hand; it costs more per event than a plain assign (see
 * `npx chorus bench actors`, `immerVsAssign`), so keep plain assign on the hottest flat updates.
 */
export const update =
  <TContext extends object, TEvent extends EventObject>(
    recipe: (draft: Draft<TContext>, event: TEvent) => void,
  ) =>
  ({ context, event }: { context: TContext; event: TEvent }): TContext =>
    produce(context, (draft) => {
      recipe(draft, event);
    });

/** What happens to an actor whose transition throws. Both are identical on every member. */
export type FailurePolicy =
  /** Reject the input with an ACTOR_FAILED reply; the actor keeps its last good state (default). */
  | 'keep-state'
  /** Reject the input; the actor restarts from its machine's initial state, its timers cancelled. */
  | 'restart';

export interface ActorTypeOptions {
  readonly machine: AnyStateMachine;
  readonly onError?: FailurePolicy;
  /** The default reply when the machine emits none. Defaults to `{ state, context }`. */
  readonly reply?: (snapshot: AnyMachineSnapshot) => unknown;
}

/** Where a command goes: the actor and the event it receives. */
export interface Route {
  readonly actorType: string;
  readonly actorId: string;
  readonly event: EventObject;
}

type CommandSchemas = Record<string, z.ZodType>;
/** A command is one of the schemas' outputs. */
export type CommandOf<C extends CommandSchemas> = { [K in keyof C]: z.output<C[K]> }[keyof C];

export interface ServiceSpec<C extends CommandSchemas> {
  /** The service's name: part of every actor address, no '/'. */
  readonly name: string;
  /** Actor types by name: a machine, or a machine with options. */
  readonly actors: Readonly<Record<string, AnyStateMachine | ActorTypeOptions>>;
  /** Command schemas keyed by the command's `type` field. */
  readonly commands: C;
  /** How a validated command finds its actor. Pure. */
  readonly route: (command: CommandOf<C>) => Route;
}

export interface ActorType {
  readonly name: string;
  readonly machine: AnyStateMachine;
  readonly onError: FailurePolicy;
  readonly reply: (snapshot: AnyMachineSnapshot) => unknown;
}

/** A command that failed validation or routing, at the client edge (never reaches the log). */
export class CommandError extends Error {
  override readonly name = 'CommandError';
}

/** What a member needs to host a service's actors (any `Service` is one). */
export interface HostedService {
  readonly name: string;
  readonly actorTypes: ReadonlyMap<string, ActorType>;
}

export interface Service<C extends CommandSchemas = CommandSchemas> extends HostedService {
  /** Validate `command` against its schema and route it; throws CommandError naming what is wrong. */
  resolve(command: unknown): {
    readonly address: string;
    readonly command: CommandOf<C>;
    readonly route: Route;
  };
  /** What a client sends for `command` (the SESSION_MESSAGE body): validated, routed, encoded. */
  commandBody(command: unknown): Uint8Array;
  /** The whole SESSION_MESSAGE payload for a command (consensus header + body), e.g. for tests and sims. */
  commandPayload(command: unknown, sessionId: number, correlationId: number): Uint8Array;
}

const defaultReply = (snapshot: AnyMachineSnapshot): unknown => ({
  state: snapshot.value,
  context: snapshot.context,
});

export const defineService = <C extends CommandSchemas>(spec: ServiceSpec<C>): Service<C> => {
  const actorTypes = new Map<string, ActorType>();
  for (const [name, entry] of Object.entries(spec.actors)) {
    const options: ActorTypeOptions = 'machine' in entry ? entry : { machine: entry };
    formatAddress(spec.name, name, 'x'); // validates both names
    actorTypes.set(name, {
      name,
      machine: options.machine,
      onError: options.onError ?? 'keep-state',
      reply: options.reply ?? defaultReply,
    });
  }
  if (actorTypes.size === 0) throw new TypeError(`service '${spec.name}': declare at least one actor type`);
  const commandTypes = Object.keys(spec.commands);

  const resolve: Service<C>['resolve'] = (command) => {
    const type = (command as { type?: unknown } | null)?.type;
    if (typeof type !== 'string' || !Object.hasOwn(spec.commands, type)) {
      throw new CommandError(
        `service '${spec.name}': command type ${JSON.stringify(type)} is unknown; send one of ${commandTypes.join(', ')}`,
      );
    }
    const parsed = spec.commands[type].safeParse(command);
    if (!parsed.success) {
      const issues = parsed.error.issues
        .map((i) => `${i.path.join('.') || '(command)'}: ${i.message}`)
        .join('; ');
      throw new CommandError(`service '${spec.name}': command ${type} is invalid — ${issues}`);
    }
    const valid = parsed.data as CommandOf<C>;
    const route = spec.route(valid);
    if (!actorTypes.has(route.actorType)) {
      throw new CommandError(
        `service '${spec.name}': route() sent ${type} to actor type '${route.actorType}', which the service does not declare`,
      );
    }
    if (typeof route.actorId !== 'string' || route.actorId.length === 0) {
      throw new CommandError(
        `service '${spec.name}': route() gave ${type} an empty actorId; give every actor an id`,
      );
    }
    return { address: formatAddress(spec.name, route.actorType, route.actorId), command: valid, route };
  };

  return {
    name: spec.name,
    actorTypes,
    resolve,
    commandBody(command) {
      const { address, route } = resolve(command);
      return commandBody(address, route.event);
    },
    commandPayload(command, sessionId, correlationId) {
      const { address, route } = resolve(command);
      return sessionMessagePayload(address, sessionId, correlationId, route.event);
    },
  };
};
