// What the driven paths reached of a machine: its states, its transitions (every candidate of every
// event on every state node, `after` and `always` included) and the outcomes of its guards (each guarded
// candidate seen true and seen false), and the rows of the user's table. What was never reached is named.
//
// A live actor reports each event it is about to process (inspection `@xstate.event`, while its snapshot
// is still the one before) and each transition it takes (`@xstate.microstep`). Guard outcomes follow
// XState's order: from each active leaf up through its ancestors, candidates are tried in order until
// one is enabled, so those tried before the chosen one were false, and all were false if none was.

import type {
  AnyMachineSnapshot,
  AnyStateMachine,
  AnyStateNode,
  AnyTransitionDefinition,
  EventObject,
  InspectionEvent,
} from 'xstate';
import { getStateNodes } from 'xstate/graph';
import { activePaths } from './steps.ts';

export interface Reach {
  readonly reached: string[];
  readonly never: string[];
}

export interface CoverageReport {
  readonly states: Reach;
  readonly transitions: Reach;
  /** `TRANSITION: true` and `TRANSITION: false` for every guarded transition. */
  readonly guards: Reach;
  /** `STATE --STEP-->` rows of the expected-transition table, when the model has one. */
  readonly table?: Reach;
}

const nodeName = (node: AnyStateNode): string => (node.path.length === 0 ? '(root)' : node.path.join('.'));

const eventName = (eventType: string): string => {
  const delayed = /^xstate\.after\.(.+?)\.[^.]+(\.[^.]+)*$/.exec(eventType);
  if (delayed) return `after ${delayed[1]}`;
  return eventType === '' ? 'always' : eventType;
};

const guardName = (guard: unknown): string | undefined => {
  if (guard === undefined) return undefined;
  if (typeof guard === 'string') return guard;
  if (typeof guard === 'function') return guard.name || 'inline guard';
  const type = (guard as { type?: unknown }).type;
  return typeof type === 'string' ? type : 'guard';
};

const transitionName = (definition: AnyTransitionDefinition, index: number, siblings: number): string => {
  const guard = guardName(definition.guard);
  const branch = guard ? ` [${guard}]` : siblings > 1 ? ` [#${index + 1}]` : '';
  const targets = definition.target?.map(nodeName).join(',') ?? '(stays)';
  return `${nodeName(definition.source)} --${eventName(definition.eventType)}${branch}--> ${targets}`;
};

const reach = (all: readonly string[], reached: ReadonlySet<string>): Reach => ({
  reached: all.filter((name) => reached.has(name)),
  never: all.filter((name) => !reached.has(name)),
});

export class CoverageTracker {
  private readonly names = new Map<AnyTransitionDefinition, string>();
  private readonly guarded = new Set<AnyTransitionDefinition>();
  private readonly allStates: string[];
  private readonly states = new Set<string>();
  private readonly taken = new Set<string>();
  private readonly outcomes = new Set<string>();
  private readonly rows = new Set<string>();

  constructor(
    private readonly machine: AnyStateMachine,
    private readonly tableRows: readonly string[] = [],
  ) {
    const nodes = [machine.root, ...getStateNodes(machine.root)];
    this.allStates = nodes.filter((node) => node !== machine.root).map(nodeName);
    for (const node of nodes) {
      const candidates: AnyTransitionDefinition[][] = [...node.transitions.values(), node.always ?? []];
      for (const list of candidates) {
        list.forEach((definition, index) => {
          this.names.set(definition, transitionName(definition, index, list.length));
          if (definition.guard !== undefined) this.guarded.add(definition);
        });
      }
    }
  }

  /** Feed the live actor's inspection events here (only those of the actor under test). */
  inspect(event: InspectionEvent, snapshot: AnyMachineSnapshot): void {
    if (event.type === '@xstate.event' && event.event.type !== 'xstate.init')
      this.tryEvent(snapshot, event.event);
    if (event.type === '@xstate.microstep') {
      for (const definition of event._transitions) this.mark(definition);
    }
  }

  reachedState(snapshot: AnyMachineSnapshot): void {
    for (const path of activePaths(snapshot.value)) this.states.add(path);
  }

  reachedRow(row: string): void {
    this.rows.add(row);
  }

  report(): CoverageReport {
    const transitions = [...new Set(this.names.values())];
    const guards = [...this.guarded].flatMap((definition) => {
      const name = this.names.get(definition);
      return [`${name}: true`, `${name}: false`];
    });
    return {
      states: reach(this.allStates, this.states),
      transitions: reach(transitions, this.taken),
      guards: reach(guards, this.outcomes),
      ...(this.tableRows.length > 0 ? { table: reach(this.tableRows, this.rows) } : {}),
    };
  }

  private mark(definition: AnyTransitionDefinition): void {
    const name = this.names.get(definition);
    if (name === undefined) return;
    this.taken.add(name);
    if (this.guarded.has(definition)) this.outcomes.add(`${name}: true`);
  }

  /** Guards tried and found false for `event` in `snapshot`, leaf by leaf, as XState tries them. */
  private tryEvent(snapshot: AnyMachineSnapshot, event: EventObject): void {
    if (snapshot.status !== 'active') return;
    const chosen = new Set(this.machine.getTransitionData(snapshot as never, event as never));
    const active = new Set(activePaths(snapshot.value));
    const leaves = [...active].filter((path) => ![...active].some((other) => other.startsWith(`${path}.`)));
    for (const leaf of leaves) {
      for (let node: AnyStateNode | undefined = this.nodeAt(leaf); node; node = node.parent) {
        const candidates = node.transitions.get(event.type) ?? [];
        const enabled = candidates.findIndex((definition) => chosen.has(definition));
        const tried = enabled === -1 ? candidates : candidates.slice(0, enabled);
        for (const definition of tried) {
          if (this.guarded.has(definition)) this.outcomes.add(`${this.names.get(definition)}: false`);
        }
        if (enabled !== -1) break;
      }
    }
  }

  private nodeAt(path: string): AnyStateNode | undefined {
    let node: AnyStateNode | undefined = this.machine.root;
    for (const key of path.split('.')) node = node?.states[key];
    return node;
  }
}

/** A report as text: counts, then what was never reached. */
export const formatCoverage = (report: CoverageReport): string => {
  const parts: [string, Reach | undefined][] = [
    ['states', report.states],
    ['transitions', report.transitions],
    ['guard outcomes', report.guards],
    ['table rows', report.table],
  ];
  const lines: string[] = [];
  for (const [title, part] of parts) {
    if (!part) continue;
    const total = part.reached.length + part.never.length;
    lines.push(`${title}: ${part.reached.length} of ${total} reached`);
    for (const name of part.never) lines.push(`  never: ${name}`);
  }
  return lines.join('\n');
};
