// What a service developer programs against. A service declares its actor types (XState machines built
// with `setup`), its command schemas (zod) and how a command finds its actor; registering it with a
// member is one call (`ShardPool.start({ services })` or `new Shard({ services })`). Actors are virtual:
// an actor exists from its first committed input and is addressed by `service/actorType/actorId`.
//
// Inside a machine, an actor talks to the world only through emitted events (`emit(...)` from xstate):
//   emit(() => reply(value))                  the answer to the session command being applied
//   emit(() => tell(actorType, actorId, ev))  a message to another actor (goes through the log first)
//   emit(() => effect(intent))                a side effect outside the cluster, performed by the leader
//   emit(() => notify(sessionId, message))    a message pushed to a client session once the entry commits
// Delays (`after`, delayed `raise`/`sendTo`) become cluster timers automatically.
//
// An actor type may instead be a behaviour (`{ behaviour: { create, restore } }`): a plain object with
// `apply(event, ctx)` and `snapshot()`, which replies, schedules timers, tells and asks for effects
// through `ctx` (see BehaviourContext). Same addresses, log, timers, snapshots and passivation.

import { type Draft, produce } from 'immer';
import {
  type ActionArgs,
  type ActionFunction,
  type AnyEventObject,
  type AnyMachineSnapshot,
  type AnyStateMachine,
  type EventFromLogic,
  type EventObject,
  emit,
  type MachineContext,
} from 'xstate';
import type { z } from 'zod';
import { type ActorAddress, formatAddress, pack, parseAddress, sessionMessagePayload } from './protocol.ts';

export const REPLY_EVENT = 'chorus.reply';
export const TELL_EVENT = 'chorus.tell';
export const EFFECT_EVENT = 'chorus.effect';
export const NOTIFY_EVENT = 'chorus.notify';
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
export interface NotifyEmitted {
  readonly type: typeof NOTIFY_EVENT;
  readonly sessionId: number;
  readonly message: unknown;
}

/**
 * Where an event came from, set by the runtime on every client command (`{ session }`) and actor-to-actor
 * message (`{ actor }`: the sender's address) as the event's `origin` field. It cannot be forged: the
 * runtime overwrites whatever `origin` an event carried. Guard on it to accept a message only from actors.
 */
export type EventOrigin =
  | { readonly session: number }
  | { readonly actor: string }
  /** The runtime, applying the SESSION_CLOSE entry of this session (see ServiceSpec.sessionClosed). */
  | { readonly sessionClosed: number };

/** What every XState actor is started with as `input`: its own address, whole and in parts. */
export interface ActorInput extends ActorAddress {
  readonly address: string;
}

export const actorInput = (address: string): ActorInput => ({ address, ...parseAddress(address) });

/**
 * The events an actor type accepts, from its machine (`typeof accountMachine`) or its event union
 * (`AccountEvent`): what `tell<Target>` checks an event against. Name the event union when a machine
 * tells its own type (a machine cannot name `typeof` itself inside its own definition).
 */
export type EventsOf<Target> = Target extends AnyStateMachine
  ? EventFromLogic<Target>
  : Target extends EventObject
    ? Target
    : never;

/**
 * Emit this to answer the session whose command is being applied (default answer: state and context).
 * `reply<BankReply>(value)` checks the value against the service's reply type.
 */
export const reply = <Value = unknown>(value: NoInfer<Value>): ReplyEmitted => ({ type: REPLY_EVENT, value });

/**
 * Emit this to send `event` to another actor (of this service unless `service` is given). Typed by the
 * target: `tell<typeof accountMachine>('account', id, { type: 'CREDIT', amount })` (or `tell<AccountEvent>`)
 * refuses an event the target does not accept, a missing field or a field it does not have. Untyped,
 * any event with a string `type` goes.
 */
export const tell = <Target extends AnyStateMachine | EventObject = AnyEventObject>(
  actorType: string,
  actorId: string,
  event: NoInfer<EventsOf<Target>>,
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
 * Emit this to push `message` (msgpack-serialisable data) to client session `sessionId` (a command's
 * `event.origin.session`). Only the leader sends it, once the entry that decided it is committed and
 * applied, never during replay: at most once per delivery. A client that lost its connection (a leader
 * change) may have missed it and re-reads its state with a command (what the gateway's SYNC is for).
 */
export const notify = (sessionId: number, message: unknown): NotifyEmitted => ({
  type: NOTIFY_EVENT,
  sessionId,
  message,
});

/** What an actor may emit: a reply, a message to another actor, an external effect, a notification. */
export type Emitted = ReplyEmitted | TellEmitted | EffectEmitted | NotifyEmitted;

/**
 * XState's `emit`, bound to one machine's context and events, for actions written outside `setup()`
 * (where `emit` alone cannot learn the machine's types and the action does not fit the machine):
 *
 *   const emitAccount = emitFor<AccountContext, AccountEvent>();
 *   const refuse = (why: Refusal) => emitAccount(({ context }) => reply({ refused: why, balance: context.balance }));
 */
export const emitFor =
  <TContext extends MachineContext, TEvent extends EventObject>() =>
  (
    expression: (args: ActionArgs<TContext, TEvent, TEvent>) => Emitted,
  ): ActionFunction<TContext, TEvent, TEvent, undefined, never, never, never, never, Emitted> =>
    emit<TContext, TEvent, undefined, TEvent, Emitted>((args) => expression(args));

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

/**
 * What a behaviour actor may do while it applies one input. Everything is staged and kept only if
 * `apply` returns (a throw drops it all): the same transaction an XState actor's emitted events get.
 */
export interface BehaviourContext {
  /** Cluster time of the entry being applied, in ms: the only clock a behaviour may read. */
  readonly timestamp: number;
  /** Log index of the entry being applied. */
  readonly index: number;
  /** The session whose command this is, or 0 (timer expiry, actor-to-actor message, effect completion). */
  readonly sessionId: number;
  /** Answer the session whose command is being applied (default answer: null). */
  reply(value: unknown): void;
  /**
   * Deliver `event` to this actor `delayMs` of cluster time from now, through a cluster timer (its
   * expiry is a log entry; it fires exactly once, across snapshots and restarts). Scheduling a `key`
   * that is pending replaces it.
   */
  schedule(key: string, delayMs: number, event: AnyEventObject): void;
  /** Cancel the pending timer `key` (nothing happens if it already fired or was never scheduled). */
  cancel(key: string): void;
  /** Send `event` to another actor (of this service unless `service` is given), through the log. */
  tell(actorType: string, actorId: string, event: AnyEventObject, service?: string): void;
  /** Ask the leader to perform `intent` outside the cluster; the result comes back as EFFECT_DONE_EVENT. */
  effect(intent: unknown): void;
  /** Push `message` to client session `sessionId` once this entry commits (leader only; see `notify`). */
  notify(sessionId: number, message: unknown): void;
}

/** One live behaviour actor: a plain object that folds its inputs, deterministically. */
export interface ActorBehaviour {
  /** Apply one committed input. No I/O, no wall clock, no Math.random: use `ctx` for all of that. */
  apply(event: AnyEventObject, ctx: BehaviourContext): void;
  /** The whole state as msgpack-able data (taken at snapshots and passivation). */
  snapshot(): unknown;
}

/**
 * An actor type written as a plain object instead of a statechart: for hot, data-heavy actors (an
 * order book) where a fold over a mutable structure is much cheaper than an XState transition.
 *
 * Failure policy: 'restart' replaces the actor with `create(actorId)` and cancels its timers, as for
 * machines. 'keep-state' keeps the object as the throw left it (there is no cheap pre-image of a
 * mutable object): a behaviour must validate before it mutates. Either way the failed input's staged
 * replies, timers, sends and effects are dropped, identically on every member.
 */
export interface BehaviourTypeOptions {
  readonly behaviour: {
    /** A new actor, on its first input. */
    create(actorId: string): ActorBehaviour;
    /** An actor rebuilt from its `snapshot()` data (after passivation or a restart). */
    restore(data: unknown, actorId: string): ActorBehaviour;
  };
  readonly onError?: FailurePolicy;
}

export type BehaviourFactory = BehaviourTypeOptions['behaviour'];

/** Where a command goes: the actor and the event it receives. */
export interface Route {
  readonly actorType: string;
  readonly actorId: string;
  readonly event: EventObject;
}

/**
 * What a service wants told when a client session closes (the client closed it, or it timed out): the
 * events to deliver, in this order, while the SESSION_CLOSE entry is applied — on every member and in
 * every replay alike. Each event arrives with `origin: { sessionClosed: sessionId }`. Pure.
 */
export type SessionClosed = (sessionId: number) => readonly Route[];

type CommandSchemas = Record<string, z.ZodType>;
/** A command is one of the schemas' outputs. */
export type CommandOf<C extends CommandSchemas> = { [K in keyof C]: z.output<C[K]> }[keyof C];

export interface ServiceSpec<C extends CommandSchemas> {
  /** The service's name: part of every actor address, no '/'. */
  readonly name: string;
  /** Actor types by name: a machine, a machine with options, or a behaviour. */
  readonly actors: Readonly<Record<string, AnyStateMachine | ActorTypeOptions | BehaviourTypeOptions>>;
  /** Command schemas keyed by the command's `type` field. */
  readonly commands: C;
  /** How a validated command finds its actor. Pure. */
  readonly route: (command: CommandOf<C>) => Route;
  /** The events a session's close delivers to this service's actors (see SessionClosed). */
  readonly sessionClosed?: SessionClosed;
}

export interface ActorType {
  readonly name: string;
  /** The statechart, or null for a behaviour actor type. */
  readonly machine: AnyStateMachine | null;
  /** The behaviour, or null for a statechart actor type. */
  readonly behaviour: BehaviourFactory | null;
  readonly onError: FailurePolicy;
  /** The default reply of a machine actor (a behaviour replies through its context, default null). */
  readonly reply: (snapshot: AnyMachineSnapshot) => unknown;
}

/** Event types the runtime owns (XState's delays and the actor runtime's own): a command never routes to one. */
export const isReservedEventType = (type: string): boolean =>
  type.startsWith('xstate.') || type.startsWith('chorus.');

/** A command that failed validation or routing, at the client edge (never reaches the log). */
export class CommandError extends Error {
  override readonly name = 'CommandError';
}

/** What a member needs to host a service's actors (any `Service` is one). */
export interface HostedService {
  readonly name: string;
  readonly actorTypes: ReadonlyMap<string, ActorType>;
  readonly sessionClosed?: SessionClosed;
}

export interface Service<C extends CommandSchemas = CommandSchemas> extends HostedService {
  /** Validate `command` against its schema and route it; throws CommandError naming what is wrong. */
  resolve(command: unknown): {
    readonly address: string;
    readonly command: CommandOf<C>;
    readonly route: Route;
  };
  /**
   * What a client sends for `command` (the SESSION_MESSAGE body, `[serviceName, command]`): validated here
   * first, so a bad command throws CommandError before it leaves the client; the leader validates and
   * routes it again (actors/actor-runtime/service-edge.ts).
   */
  commandBody(command: unknown): Uint8Array;
  /** The whole SESSION_MESSAGE payload for a command (consensus header + body), e.g. for tests and sims. */
  commandPayload(
    command: unknown,
    sessionId: number,
    correlationId: number,
    /** The lowest correlation id the client still awaits (default: this one). */
    lowestAwaited?: number,
  ): Uint8Array;
}

const defaultReply = (snapshot: AnyMachineSnapshot): unknown => ({
  state: snapshot.value,
  context: snapshot.context,
});

export const defineService = <C extends CommandSchemas>(spec: ServiceSpec<C>): Service<C> => {
  const actorTypes = new Map<string, ActorType>();
  for (const [name, entry] of Object.entries(spec.actors)) {
    formatAddress(spec.name, name, 'x'); // validates both names
    if ('behaviour' in entry) {
      const { behaviour } = entry;
      if (typeof behaviour?.create !== 'function' || typeof behaviour.restore !== 'function') {
        throw new TypeError(
          `service '${spec.name}': actor type '${name}': behaviour needs create(actorId) and restore(data, actorId) functions`,
        );
      }
      actorTypes.set(name, {
        name,
        machine: null,
        behaviour,
        onError: entry.onError ?? 'keep-state',
        reply: defaultReply,
      });
      continue;
    }
    const options: ActorTypeOptions = 'machine' in entry ? entry : { machine: entry };
    actorTypes.set(name, {
      name,
      machine: options.machine,
      behaviour: null,
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
    const eventType = (route.event as { type?: unknown } | null)?.type;
    if (typeof eventType !== 'string' || isReservedEventType(eventType)) {
      throw new CommandError(
        `service '${spec.name}': route() gave ${type} the event type ${JSON.stringify(eventType)}; ` +
          "a command's event needs a string type, not one reserved to the runtime (xstate.*, chorus.*)",
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
    ...(spec.sessionClosed ? { sessionClosed: spec.sessionClosed } : {}),
    resolve,
    commandBody(command) {
      resolve(command);
      return pack([spec.name, command]);
    },
    commandPayload(command, sessionId, correlationId, lowestAwaited = correlationId) {
      const { address, route } = resolve(command);
      return sessionMessagePayload(address, sessionId, correlationId, route.event, lowestAwaited);
    },
  };
};
