// A statechart as a graph, read from the machine definition itself: its state nodes (with parents,
// initial and final states) and its transitions (events, guards, `after` delays, eventless ones,
// those defined on the root). Both renderers read it: Mermaid (mermaid.ts) and SVG (svg.ts).

import type { AnyStateMachine } from 'xstate';

/** The subset of xstate's StateNode the renderers read (xstate does not export the class type). */
export interface StateNodeView {
  readonly key: string;
  readonly parent?: StateNodeView;
  readonly path: readonly string[];
  readonly type: 'atomic' | 'compound' | 'parallel' | 'final' | 'history';
  readonly states: Readonly<Record<string, StateNodeView>>;
  readonly transitions: ReadonlyMap<string, readonly TransitionView[]>;
  readonly always?: readonly TransitionView[];
  readonly after: readonly (TransitionView & { readonly delay: string | number })[];
  readonly initial?: { readonly target?: readonly StateNodeView[] };
  /** The definition as written: its `entry` lacks the actions xstate adds to schedule `after` timers. */
  readonly config: { readonly entry?: unknown };
  readonly description?: string;
}

export interface TransitionView {
  readonly eventType: string;
  readonly target?: readonly StateNodeView[];
  readonly guard?: unknown;
  readonly actions: readonly unknown[];
}

export const rootOf = (machine: AnyStateMachine): StateNodeView => machine.root as unknown as StateNodeView;

/** A guard's name: `name`, `{ type: name }`, or xstate's `and(...)`, `or(...)`, `not(...)` helpers. */
export const guardName = (guard: unknown): string => {
  if (typeof guard === 'string') return guard;
  if (typeof guard === 'function') {
    const nested = (guard as { guards?: unknown[] }).guards;
    if (Array.isArray(nested)) return `${guard.name}(${nested.map(guardName).join(', ')})`;
    return guard.name || 'inline guard';
  }
  if (guard && typeof guard === 'object' && 'type' in guard) return String(guard.type);
  return 'guard';
};

/** An action's name; inline functions without a name are left out (they have nothing to show). */
const actionName = (action: unknown): string | null => {
  if (typeof action === 'string') return action;
  if (typeof action === 'function') {
    const type = (action as { type?: unknown }).type;
    return action.name || (typeof type === 'string' ? type : null);
  }
  if (action && typeof action === 'object' && 'type' in action) return String(action.type);
  return null;
};

export const actionNames = (actions: readonly unknown[]): string[] =>
  actions.map(actionName).filter((name): name is string => name !== null);

/** What triggers a transition, as a reader says it: the event, `after DELAY`, or `always`. */
export const triggerLabel = (node: StateNodeView, transition: TransitionView): string => {
  const delayed = node.after.find((t) => t.eventType === transition.eventType);
  if (delayed)
    return typeof delayed.delay === 'number' ? `after ${delayed.delay} ms` : `after ${delayed.delay}`;
  return transition.eventType || 'always';
};

/** `TRIGGER [guard] / actions (internal)`: the whole of a transition, as the diagrams print it. */
export const transitionLabel = (node: StateNodeView, transition: TransitionView): string => {
  let label = triggerLabel(node, transition);
  if (transition.guard !== undefined) label += ` [${guardName(transition.guard)}]`;
  const actions = actionNames(transition.actions);
  if (actions.length > 0) label += ` / ${actions.join(', ')}`;
  if (!transition.target || transition.target.length === 0) label += ' (internal)';
  return label;
};

/** Every transition a node defines (event, delayed and eventless), in definition order. */
export const transitionsOf = (node: StateNodeView): TransitionView[] => [
  ...[...node.transitions.values()].flat(),
  ...(node.always ?? []),
];

/** Every state node below the root, depth first in definition order, with its dotted path. */
export const stateNodes = (machine: AnyStateMachine): { path: string; node: StateNodeView }[] => {
  const out: { path: string; node: StateNodeView }[] = [];
  const walk = (node: StateNodeView): void => {
    for (const child of Object.values(node.states)) {
      out.push({ path: child.path.join('.'), node: child });
      walk(child);
    }
  };
  walk(rootOf(machine));
  return out;
};

/** One state of the graph; `path` is the dotted path (`BALLOT.CANVASS`), '' for the root. */
export interface GraphState {
  readonly path: string;
  readonly key: string;
  readonly parent: string;
  readonly type: StateNodeView['type'];
  /** The parent enters this state first. */
  readonly initial: boolean;
  /** Transitions that leave the state unchanged (targetless), as labels: drawn inside the state. */
  readonly internal: readonly string[];
}

/** One arrow: from a state (or '', the `any state` pseudo-state: a transition on the root) to a state. */
export interface GraphTransition {
  readonly source: string;
  readonly target: string;
  /** `TRIGGER [guard]`: what the arrow shows. */
  readonly label: string;
  /** The whole transition, with its actions (shown as the arrow's tooltip). */
  readonly detail: string;
  readonly delayed: boolean;
  readonly guarded: boolean;
}

export interface MachineGraph {
  readonly id: string;
  readonly states: readonly GraphState[];
  readonly transitions: readonly GraphTransition[];
}

/** The machine's graph: every state node and one arrow per target of every targeted transition. */
export const machineGraph = (machine: AnyStateMachine): MachineGraph => {
  const root = rootOf(machine);
  const states: GraphState[] = [];
  const transitions: GraphTransition[] = [];
  const visit = (node: StateNodeView, initial: boolean): void => {
    const source = node.path.join('.');
    const internal: string[] = [];
    const own = states.length;
    if (node !== root) {
      states.push({
        path: source,
        key: node.key,
        parent: node.path.slice(0, -1).join('.'),
        type: node.type,
        initial,
        internal,
      });
    }
    for (const transition of transitionsOf(node)) {
      const detail = transitionLabel(node, transition);
      if (!transition.target || transition.target.length === 0) {
        internal.push(detail.replace(/ \(internal\)$/, ''));
        continue;
      }
      let label = triggerLabel(node, transition);
      if (transition.guard !== undefined) label += ` [${guardName(transition.guard)}]`;
      for (const target of transition.target) {
        transitions.push({
          source,
          target: target.path.join('.'),
          label,
          detail,
          delayed: node.after.some((t) => t.eventType === transition.eventType),
          guarded: transition.guard !== undefined,
        });
      }
    }
    if (node === root && (internal.length > 0 || transitions.some((t) => t.source === ''))) {
      states.splice(own, 0, { path: '', key: 'any state', parent: '', type: 'atomic', initial, internal });
    }
    const initials = new Set((node.initial?.target ?? []).map((child) => child.key));
    for (const child of Object.values(node.states)) visit(child, initials.has(child.key));
  };
  visit(root, false);
  return { id: machine.id, states, transitions };
};
