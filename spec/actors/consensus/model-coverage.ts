// Model-based coverage for a statechart with `xstate/graph`: enumerate every reachable state and
// every enabled transition (guards included), compare them with the table the spec declares, and
// replay each transition along the shortest path to its source state with the pure `transition()`.

import { type AnyStateMachine, type EventFromLogic, initialTransition, transition } from 'xstate';
import { createTestModel, getAdjacencyMap } from 'xstate/graph';

export interface Edge {
  readonly from: string;
  readonly event: string;
  readonly to: string;
}

export interface Coverage {
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
): Coverage {
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
