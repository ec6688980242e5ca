// Paths through a machine, to drive a live actor along: the shortest path to every vertex (xstate/graph),
// simple paths (no vertex twice) with bounds on length and count, and random walks whose choices
// fast-check draws and shrinks. A vertex is the machine's state as the model serializes it, plus its
// pending timers.

import fc from 'fast-check';
import type { AnyStateMachine, EventObject } from 'xstate';
import { getAdjacencyMap, getShortestPaths } from 'xstate/graph';
import { isWait, type Step, stepLabel } from './steps.ts';
import {
  type EventSource,
  initialTimedSnapshot,
  type Stepper,
  stepsIn,
  type TimedSnapshot,
  timedLogic,
  timedTransition,
} from './timed-logic.ts';

export interface Exploration<E extends EventObject> {
  readonly machine: AnyStateMachine;
  readonly input: unknown;
  readonly events: EventSource<E>;
  readonly serialize: (snapshot: TimedSnapshot) => string;
  /** Stop exploring past a vertex for which this holds (it is still a target). */
  readonly stopWhen?: ((snapshot: TimedSnapshot) => boolean) | undefined;
  /** At most this many vertices are expanded; more is an error naming the bound. */
  readonly limit: number;
  /** Runs each transition of the exploration (the determinism check). */
  readonly stepper?: Stepper | undefined;
}

/** A path to drive: its steps, and a name that says where it goes. */
export interface ModelPath<E extends EventObject> {
  readonly name: string;
  readonly steps: readonly Step<E>[];
}

/** A path's steps in a line; a step repeated in a row is written once with a count (`400 ms pass ×3`). */
const pathName = (steps: readonly EventObject[]): string => {
  if (steps.length === 0) return '(the initial state)';
  const runs: { label: string; times: number }[] = [];
  for (const label of steps.map(stepLabel)) {
    const last = runs.at(-1);
    if (last?.label === label) last.times++;
    else runs.push({ label, times: 1 });
  }
  return runs.map(({ label, times }) => (times === 1 ? label : `${label} ×${times}`)).join(', ');
};

const traversal = <E extends EventObject>(exploration: Exploration<E>) => ({
  input: exploration.input,
  events: (snapshot: TimedSnapshot) => stepsIn(exploration.events, snapshot),
  serializeState: exploration.serialize,
  serializeEvent: (event: EventObject) => (isWait(event) ? `wait ${event.ms}` : JSON.stringify(event)),
  limit: exploration.limit,
  ...(exploration.stopWhen ? { stopWhen: exploration.stopWhen } : {}),
});

const explore = <E extends EventObject>(exploration: Exploration<E>) => {
  try {
    return getAdjacencyMap(
      timedLogic(exploration.machine, exploration.stepper),
      traversal(exploration) as never,
    );
  } catch (error) {
    if (error instanceof Error && error.message === 'Traversal limit exceeded') {
      throw new Error(
        `the model has more than ${exploration.limit} vertices: bound it (events, serializeState, stopWhen) or raise limit`,
      );
    }
    throw error;
  }
};

/** Drop every path that is a prefix of another: driving the longer one checks the shorter's steps. */
const maximal = <E extends EventObject>(paths: ModelPath<E>[]): ModelPath<E>[] => {
  const keys = paths.map((path) => path.steps.map((step) => `${JSON.stringify(step)}\n`).join(''));
  return paths.filter(
    (_, index) =>
      !keys.some(
        (other, at) =>
          at !== index && other.length > (keys[index]?.length ?? 0) && other.startsWith(keys[index] ?? ''),
      ),
  );
};

const unique = <E extends EventObject>(paths: ModelPath<E>[]): ModelPath<E>[] => {
  const seen = new Set<string>();
  return paths.filter((path) => {
    const key = JSON.stringify(path.steps);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
};

const shortestTo = <E extends EventObject>(exploration: Exploration<E>): Map<string, Step<E>[]> => {
  explore(exploration); // names the bound if the model is too big, before xstate/graph's own message
  const paths = getShortestPaths(
    timedLogic(exploration.machine, exploration.stepper),
    traversal(exploration) as never,
  );
  const found = new Map<string, Step<E>[]>();
  for (const path of paths) {
    const steps = path.steps
      .map((step) => step.event as Step<E>)
      .filter((step) => step.type !== 'xstate.init');
    found.set(exploration.serialize(path.state as unknown as TimedSnapshot), steps);
  }
  return found;
};

const named = <E extends EventObject>(steps: Step<E>[]): ModelPath<E> => ({ name: pathName(steps), steps });

/** One shortest path to every vertex; paths that prefix another are left out. */
export const shortestPaths = <E extends EventObject>(exploration: Exploration<E>): ModelPath<E>[] =>
  maximal(unique([...shortestTo(exploration).values()].map(named)));

/**
 * Every edge of the graph once: the shortest path to its vertex, then its step. Shortest paths reach
 * every vertex but not every edge (a step that leaves the vertex as it was is on no shortest path).
 */
export const edgePaths = <E extends EventObject>(exploration: Exploration<E>): ModelPath<E>[] => {
  const to = shortestTo(exploration);
  const adjacency = explore(exploration) as unknown as Record<
    string,
    { transitions: Record<string, { event: Step<E> }> }
  >;
  const found: ModelPath<E>[] = [];
  for (const [vertex, { transitions }] of Object.entries(adjacency)) {
    const prefix = to.get(vertex);
    if (prefix === undefined) continue;
    for (const { event } of Object.values(transitions)) found.push(named([...prefix, event]));
  }
  return maximal(unique(found));
};

export interface SimplePathBounds {
  /** Longest path, in steps (default 8). */
  readonly maxLength?: number;
  /** Most paths returned (default 200), in depth-first order. */
  readonly maxPaths?: number;
}

/** Maximal simple paths (no vertex twice), depth first, within the bounds. */
export const simplePaths = <E extends EventObject>(
  exploration: Exploration<E>,
  bounds: SimplePathBounds = {},
): ModelPath<E>[] => {
  const maxLength = bounds.maxLength ?? 8;
  const maxPaths = bounds.maxPaths ?? 200;
  const adjacency = explore(exploration) as unknown as Record<
    string,
    { state: TimedSnapshot; transitions: Record<string, { event: Step<E>; state: TimedSnapshot }> }
  >;
  const found: ModelPath<E>[] = [];
  const onPath = new Set<string>();
  const steps: Step<E>[] = [];
  const visit = (vertex: string): void => {
    if (found.length >= maxPaths) return;
    onPath.add(vertex);
    let extended = false;
    if (steps.length < maxLength) {
      for (const { event, state } of Object.values(adjacency[vertex]?.transitions ?? {})) {
        const next = exploration.serialize(state);
        if (onPath.has(next) || found.length >= maxPaths) continue;
        extended = true;
        steps.push(event);
        visit(next);
        steps.pop();
      }
    }
    if (!extended && found.length < maxPaths) found.push({ name: pathName(steps), steps: [...steps] });
    onPath.delete(vertex);
  };
  visit(
    exploration.serialize(initialTimedSnapshot(exploration.machine, exploration.input, exploration.stepper)),
  );
  return found;
};

/** Steps chosen by a list of indices: at each step, index modulo the steps offered there. */
export const walk = <E extends EventObject>(
  exploration: Exploration<E>,
  choices: readonly number[],
): Step<E>[] => {
  let snapshot = initialTimedSnapshot(exploration.machine, exploration.input, exploration.stepper);
  const steps: Step<E>[] = [];
  for (const choice of choices) {
    const offered = stepsIn(exploration.events, snapshot);
    const step = offered[choice % Math.max(offered.length, 1)];
    if (step === undefined) break;
    steps.push(step);
    snapshot = timedTransition(exploration.machine, snapshot, step, exploration.stepper);
  }
  return steps;
};

/** fast-check's choices for a random walk of up to `maxLength` steps (shrinking: fewer, earlier choices). */
export const walkChoices = (maxLength: number): fc.Arbitrary<number[]> =>
  fc.array(fc.nat({ max: 0xffff }), { minLength: 1, maxLength });

export { pathName };
