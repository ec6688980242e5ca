// Mermaid output of a statechart: a `stateDiagram-v2` generated from the machine definition, for the
// Markdown pages in docs/diagrams (GitHub draws them) and `chorus diagrams --format mermaid`. It walks
// the state nodes (machine.root and its descendants) and prints initial and final states, nested (and
// parallel) states, every transition with its event, guard and transition actions, `after` delays,
// eventless (`always`) transitions, and transitions defined on the root (which apply in every state)
// drawn from an "any state" pseudo-state.

import type { AnyStateMachine } from 'xstate';
import {
  rootOf,
  type StateNodeView,
  type TransitionView,
  transitionLabel,
  transitionsOf,
} from './machine-graph.ts';

/** Pseudo-state id for transitions on the root (lower case, so it cannot clash with a state). */
const ANY_STATE = 'any_state';

/**
 * Words Mermaid's state-diagram lexer reads as keywords (case-insensitive) at the start of a line:
 * `note X`, `class X`, `state X`, `scale N`, `classDef X`, and `default` anywhere in an id.
 */
const MERMAID_KEYWORD = /^(note|class|classdef|scale|state)$|^default/i;

/**
 * Mermaid id of a state node: its path joined with `__` (top-level states keep their own name).
 * Characters Mermaid ids cannot hold become `_`, and an id that reads as a keyword gets a prefix; the
 * state's real name is then shown through `state "NAME" as ID`.
 */
const nodeId = (node: StateNodeView): string => {
  const id = node.path.map((key) => key.replace(/[^A-Za-z0-9_]/g, '_')).join('__');
  return MERMAID_KEYWORD.test(id) ? `S_${id}` : id;
};

/** Characters Mermaid reads as syntax inside a label are replaced, so no label breaks the diagram. */
const safeLabel = (text: string): string =>
  text
    .replace(/[;#{}:"]/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();

const mermaidLabel = (node: StateNodeView, transition: TransitionView): string =>
  safeLabel(transitionLabel(node, transition));

/** One arrow per target of each transition `node` defines (a targetless one loops back to `source`). */
const edges = (node: StateNodeView, source: string): { target: StateNodeView | null; line: string }[] =>
  transitionsOf(node).flatMap((transition) => {
    const label = mermaidLabel(node, transition);
    const targets = transition.target && transition.target.length > 0 ? transition.target : [null];
    return targets.map((target) => ({
      target,
      line: `${source} --> ${target ? nodeId(target) : source} : ${label}`,
    }));
  });

/**
 * Renders nested blocks. Mermaid places a state in the block where it is first mentioned, so an arrow
 * stays inside a block only when it joins two children of that block; any other arrow (into or out of
 * another composite state) is written at the top level, after every block has declared its states.
 */
class MermaidWriter {
  readonly topLevelEdges: string[] = [];

  /** The body of a compound or parallel node: its children, their edges, initial and final markers. */
  body(node: StateNodeView, indent: string): string[] {
    const lines: string[] = [];
    const children = Object.values(node.states);
    if (node.type === 'parallel') {
      // Each region is a composite state; Mermaid separates concurrent regions with `--`.
      children.forEach((region, index) => {
        if (index > 0) lines.push(`${indent}--`);
        lines.push(...this.state(region, indent));
      });
      return lines;
    }
    for (const initial of node.initial?.target ?? []) lines.push(`${indent}[*] --> ${nodeId(initial)}`);
    for (const child of children) lines.push(...this.state(child, indent));
    for (const child of children) {
      for (const { target, line } of edges(child, nodeId(child))) {
        if (target === null || target.parent === node) lines.push(`${indent}${line}`);
        else this.topLevelEdges.push(`  ${line}`);
      }
      if (child.type === 'final') lines.push(`${indent}${nodeId(child)} --> [*]`);
    }
    return lines;
  }

  /** How one state is declared: a composite state opens a block; a simple one only if its id differs. */
  state(node: StateNodeView, indent: string): string[] {
    const id = nodeId(node);
    const label = (node.type === 'history' ? `${node.key} (history)` : node.key).replace(/"/g, "'");
    const named = id === label ? id : `"${label}" as ${id}`;
    if (Object.keys(node.states).length > 0) {
      return [`${indent}state ${named} {`, ...this.body(node, `${indent}  `), `${indent}}`];
    }
    return id === label ? [] : [`${indent}state ${named}`];
  }
}

/** A Mermaid `stateDiagram-v2` for an XState machine, generated from its definition. */
export const renderMermaid = (machine: AnyStateMachine): string => {
  const root = rootOf(machine);
  const writer = new MermaidWriter();
  const lines = ['stateDiagram-v2', ...writer.body(root, '  '), ...writer.topLevelEdges];
  const anyStateEdges = edges(root, ANY_STATE).map(({ line }) => `  ${line}`);
  if (anyStateEdges.length > 0) {
    // Transitions on the root apply whatever the current state is.
    lines.push(`  state "any state" as ${ANY_STATE}`, ...anyStateEdges);
  }
  return `${lines.join('\n')}\n`;
};
