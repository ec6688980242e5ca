// The machine as xstate/graph explores it, with time in it. XState's pure `transition()` returns a delayed
// `raise` (what an `after` schedules) as an action instead of running it, so this logic keeps those
// timers beside the machine's snapshot, in simulated time: a `wait(ms)` step advances the time and fires
// every timer that falls due, in due order, as the live actor's SimulatedClock does. In a state with a
// pending timer the exploration is offered one more step: wait until the next timer is due.

import {
  type ActorLogic,
  type AnyMachineSnapshot,
  type AnyStateMachine,
  type EventObject,
  initialTransition,
  transition,
} from 'xstate';
import { isWait, type Step, stateName, stepLabel, wait } from './steps.ts';

export interface Timer {
  /** The id XState gave the delayed event (the `after` event's type, or the `raise`'s id). */
  readonly id: string;
  readonly event: EventObject;
  /** When it falls due, in ms of simulated time. */
  readonly due: number;
  /** Order of scheduling, to break ties between timers due at the same time. */
  readonly order: number;
}

export interface TimedSnapshot {
  readonly machine: AnyMachineSnapshot;
  readonly now: number;
  readonly timers: readonly Timer[];
  readonly scheduled: number;
}

/** The events a model offers in a state: a list, or a function of the machine's snapshot. */
export type EventSource<E extends EventObject> =
  | readonly Step<E>[]
  | ((snapshot: AnyMachineSnapshot) => readonly Step<E>[]);

/** Runs one transition of the exploration (the determinism check's `run`; by default just runs it). */
export type Stepper = <T>(where: string, body: () => T) => T;

const direct: Stepper = (_where, body) => body();

/** How many timers may fire in one wait before the machine counts as looping on zero delays. */
const MAX_FIRINGS_PER_WAIT = 10_000;

interface ActionLike {
  readonly type: string;
  readonly params?: unknown;
}

const schedule = (
  timers: Timer[],
  actions: readonly ActionLike[],
  now: number,
  scheduled: number,
): number => {
  let order = scheduled;
  for (const action of actions) {
    const params = (action.params ?? {}) as {
      delay?: number;
      id?: string;
      event?: EventObject;
      sendId?: string;
    };
    if (action.type === 'xstate.raise' && typeof params.delay === 'number' && params.event) {
      timers.push({ id: params.id ?? `raise#${order}`, event: params.event, due: now + params.delay, order });
      order++;
    } else if (action.type === 'xstate.cancel' && typeof params.sendId === 'string') {
      // As the live scheduler does: a cancel clears the latest timer under that id.
      for (let index = timers.length - 1; index >= 0; index--) {
        if (timers[index]?.id === params.sendId) {
          timers.splice(index, 1);
          break;
        }
      }
    }
  }
  return order;
};

const byDue = (a: Timer, b: Timer): number => a.due - b.due || a.order - b.order;

/** The next snapshot after one step (an event, or time passing). */
export const timedTransition = (
  machine: AnyStateMachine,
  snapshot: TimedSnapshot,
  step: EventObject,
  stepper: Stepper = direct,
): TimedSnapshot => {
  const timers = [...snapshot.timers];
  let { machine: current, scheduled } = snapshot;
  const take = (event: EventObject) =>
    stepper(`in ${stateName(current.value)} on ${stepLabel(event)}`, () =>
      transition(machine, current, event as never),
    );
  if (!isWait(step)) {
    const [next, actions] = take(step);
    scheduled = schedule(timers, actions, snapshot.now, scheduled);
    return { machine: next, now: snapshot.now, timers, scheduled };
  }
  const now = snapshot.now + step.ms;
  for (let fired = 0; ; fired++) {
    timers.sort(byDue);
    const due = timers[0];
    if (due === undefined || due.due > now || current.status !== 'active') break;
    if (fired >= MAX_FIRINGS_PER_WAIT) {
      throw new Error(
        `${MAX_FIRINGS_PER_WAIT} timers fired in one wait of ${step.ms} ms: a zero-delay loop?`,
      );
    }
    timers.shift();
    const [next, actions] = take(due.event);
    current = next;
    scheduled = schedule(timers, actions, now, scheduled);
  }
  return { machine: current, now, timers, scheduled };
};

export const initialTimedSnapshot = (
  machine: AnyStateMachine,
  input: unknown,
  stepper: Stepper = direct,
): TimedSnapshot => {
  const [first, actions] = stepper('while starting', () => initialTransition(machine, input as never));
  const timers: Timer[] = [];
  const scheduled = schedule(timers, actions, 0, 0);
  return { machine: first, now: 0, timers, scheduled };
};

/** The steps offered in a snapshot: the model's events, and a wait until the next timer if one is pending. */
export const stepsIn = <E extends EventObject>(
  events: EventSource<E>,
  snapshot: TimedSnapshot,
): Step<E>[] => {
  if (snapshot.machine.status !== 'active') return [];
  const offered = typeof events === 'function' ? [...events(snapshot.machine)] : [...events];
  const next = snapshot.timers.reduce(
    (soonest, timer) => Math.min(soonest, timer.due),
    Number.POSITIVE_INFINITY,
  );
  if (Number.isFinite(next) && !offered.some((step) => isWait(step) && step.ms === next - snapshot.now)) {
    offered.push(wait(next - snapshot.now));
  }
  return offered;
};

/** A vertex of the graph: the machine's state (by the user's serializer) and the timers, relative to now. */
export const serializeTimed =
  (serializeMachine: (snapshot: AnyMachineSnapshot) => string) =>
  (snapshot: TimedSnapshot): string => {
    const timers = [...snapshot.timers]
      .sort(byDue)
      .map((timer) => `${timer.event.type}+${timer.due - snapshot.now}`)
      .join(',');
    return `${serializeMachine(snapshot.machine)}|${timers}`;
  };

export const defaultSerialize = (snapshot: AnyMachineSnapshot): string =>
  `${stateName(snapshot.value)} ${JSON.stringify(snapshot.context)} ${snapshot.status}`;

/** The machine with its timers as actor logic, for xstate/graph's traversals. */
export const timedLogic = (
  machine: AnyStateMachine,
  stepper: Stepper = direct,
): ActorLogic<
  TimedSnapshot & { status: 'active'; output: undefined; error: undefined },
  EventObject,
  unknown
> =>
  ({
    config: machine,
    transition: (snapshot: TimedSnapshot, event: EventObject) =>
      timedTransition(machine, snapshot, event, stepper),
    getInitialSnapshot: (_scope: unknown, input: unknown) => initialTimedSnapshot(machine, input, stepper),
    getPersistedSnapshot: (snapshot: TimedSnapshot) => snapshot,
  }) as never;
