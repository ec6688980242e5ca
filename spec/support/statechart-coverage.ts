// Model-based coverage for a statechart: explore it with xstate/graph and report which states and
// which transitions (each candidate of each event of each state, guards included) the exploration
// reached. A spec asserts nothing is left unreached, so a transition that can never fire, or an
// event list that forgets a case, fails the test.

import type { AnyMachineSnapshot, AnyStateMachine, EventFromLogic, InputFrom, SnapshotFrom } from 'xstate';
import { getAdjacencyMap, getShortestPaths } from 'xstate/graph';

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
