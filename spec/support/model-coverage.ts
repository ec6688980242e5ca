// Model-based coverage for statecharts, with xstate/graph. Two views of one idea:
// - `coverModel`: for machines without input, enumerate every reachable state and every enabled
//   transition (guards included), to compare with the table a spec declares, and replay each edge along
//   the shortest path to its source with the pure `transition()`.
// - `exploreCoverage`: for machines with input and context, explore with given events and report which
//   states and which defined transitions (each candidate of each event, guards included) were reached,
//   so a transition that can never fire fails the spec; `shortestPaths` gives paths to replay.

import {
  type AnyMachineSnapshot,
  type AnyStateMachine,
  type EventFromLogic,
  type InputFrom,
  initialTransition,
  type SnapshotFrom,
  transition,
} from 'xstate';
import { createTestModel, getAdjacencyMap, getShortestPaths } from 'xstate/graph';

export interface Edge {
  readonly from: string;
  readonly event: string;
  readonly to: string;
}

export interface EdgeCoverage {
  readonly states: string[];
  readonly edges: Edge[];
  /** Edges whose replay (shortest path to the source, then the event) did not land on `to`. */
  readonly replayFailures: string[];
}

const stateName = (snapshot: { value: unknown }): string => String(snapshot.value);

export function coverModel<M extends AnyStateMachine>(
  machine: M,
  events: readonly EventFromLogic<M>[],
  label: (event: EventFromLogic<M>) => string = (event) => event.type,
): EdgeCoverage {
  const model = createTestModel(machine, { events: [...events] });
  const pathTo = new Map<string, EventFromLogic<M>[]>();
  // Shortest paths come de-duplicated (a path that prefixes another is dropped): every prefix of a
  // path is itself a shortest path to the state it ends in.
  for (const path of model.getShortestPaths()) {
    const events: EventFromLogic<M>[] = [];
    for (const step of path.steps) {
      if (step.event.type !== 'xstate.init') events.push(step.event as EventFromLogic<M>);
      const value = stateName(step.state);
      const known = pathTo.get(value);
      if (!known || known.length > events.length) pathTo.set(value, [...events]);
    }
  }
  const adjacency = getAdjacencyMap(machine, { events: [...events] });
  const edges: Edge[] = [];
  const seen = new Set<string>();
  const replayFailures: string[] = [];
  for (const { state } of Object.values(adjacency)) {
    const from = stateName(state);
    // biome-ignore lint/suspicious/noExplicitAny: snapshot types of a generic machine
    if ((state as any).status === 'done') continue; // a final state takes no events
    for (const event of events) {
      // biome-ignore lint/suspicious/noExplicitAny: snapshot types of a generic machine
      if (!(state as any).can(event)) continue;
      const to = stateName(transition(machine, state, event)[0]);
      const key = `${from}|${label(event)}`;
      if (seen.has(key)) continue;
      seen.add(key);
      edges.push({ from, event: label(event), to });
      // biome-ignore lint/suspicious/noExplicitAny: these machines take no input
      let snapshot = (initialTransition as any)(machine)[0];
      for (const step of pathTo.get(from) ?? []) snapshot = transition(machine, snapshot, step)[0];
      const landed = stateName(transition(machine, snapshot, event)[0]);
      if (stateName(snapshot) !== from || landed !== to) replayFailures.push(`${key} -> ${landed}`);
    }
  }
  return { states: [...pathTo.keys()].sort(), edges, replayFailures };
}

/** Edges as sorted `FROM --EVENT--> TO` lines, for readable deep-equal failures. */
export const edgeLines = (edges: readonly Edge[]): string[] =>
  edges.map((e) => `${e.from} --${e.event}--> ${e.to}`).sort();

type Snapshot<M extends AnyStateMachine> = SnapshotFrom<M>;
type Event<M extends AnyStateMachine> = EventFromLogic<M>;

export interface ExploreOptions<M extends AnyStateMachine> {
  readonly input: InputFrom<M>;
  /** Events to try in every state (a function may derive them from the state, e.g. due times). */
  readonly events: readonly Event<M>[] | ((snapshot: Snapshot<M>) => readonly Event<M>[]);
  /** What makes two snapshots the same vertex. Default: the state value and the whole context. */
  readonly serializeState?: (snapshot: Snapshot<M>) => string;
}

export interface Coverage {
  readonly states: ReadonlySet<string>;
  /** Every transition the machine defines, as `STATE:EVENT#candidate`. */
  readonly defined: ReadonlySet<string>;
  readonly taken: ReadonlySet<string>;
}

const transitionKey = (source: string, eventType: string, candidate: number): string =>
  `${source}:${eventType}#${candidate}`;

/** Every transition a flat machine defines on its top-level states. */
export const definedTransitions = (machine: AnyStateMachine): Set<string> => {
  const keys = new Set<string>();
  for (const node of Object.values(machine.root.states)) {
    for (const [eventType, candidates] of node.transitions) {
      candidates.forEach((_, index) => {
        keys.add(transitionKey(node.key, eventType, index));
      });
    }
  }
  return keys;
};

const traversal = <M extends AnyStateMachine>(options: ExploreOptions<M>) => ({
  input: options.input,
  events: options.events as never,
  ...(options.serializeState
    ? { serializeState: (snapshot: Snapshot<M>) => options.serializeState?.(snapshot) ?? '' }
    : {}),
});

/** Explore the machine and report which states and transitions the exploration reached. */
export const exploreCoverage = <M extends AnyStateMachine>(
  machine: M,
  options: ExploreOptions<M>,
): Coverage => {
  const adjacency = getAdjacencyMap(machine, traversal(options) as never) as unknown as Record<
    string,
    { state: AnyMachineSnapshot; transitions: Record<string, { event: Event<M> }> }
  >;
  const states = new Set<string>();
  const taken = new Set<string>();
  for (const { state, transitions } of Object.values(adjacency)) {
    states.add(String(state.value));
    for (const { event } of Object.values(transitions)) {
      for (const chosen of machine.getTransitionData(state as never, event)) {
        const candidates = chosen.source.transitions.get(chosen.eventType) ?? [];
        taken.add(transitionKey(chosen.source.key, chosen.eventType, candidates.indexOf(chosen)));
      }
    }
  }
  return { states, defined: definedTransitions(machine), taken };
};

/** One shortest path to every distinct vertex, to replay against an implementation. */
export const shortestPaths = <M extends AnyStateMachine>(machine: M, options: ExploreOptions<M>) =>
  getShortestPaths(machine, traversal(options) as never) as Array<{
    state: Snapshot<M>;
    steps: Array<{ event: Event<M>; state: Snapshot<M> }>;
  }>;
