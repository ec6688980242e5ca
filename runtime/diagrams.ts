// Diagrams generated from the statecharts themselves, so the docs cannot drift from the code.
//
// `renderMermaid(machine)` walks an XState machine's state nodes (machine.root and its descendants)
// and prints a Mermaid `stateDiagram-v2`: initial and final states, nested (and parallel) states,
// every transition with its event, guard and transition actions, `after` delays, eventless
// (`always`) transitions, and transitions defined on the root (which apply in every state) drawn
// from an "any state" pseudo-state. `writeDiagrams(dir)` writes one page per registered machine
// (docs/diagrams/NAME.md); `staleDiagrams(dir)` says which pages no longer match the machines.

import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { AnyStateMachine } from 'xstate';
import { type MachineName, machineInfo, machineNames, machines } from '../machines/index.ts';

/** The subset of xstate's StateNode this module reads (xstate does not export the class type). */
interface Node {
  readonly key: string;
  readonly parent?: Node;
  readonly path: readonly string[];
  readonly type: 'atomic' | 'compound' | 'parallel' | 'final' | 'history';
  readonly states: Readonly<Record<string, Node>>;
  readonly transitions: ReadonlyMap<string, readonly Transition[]>;
  readonly always?: readonly Transition[];
  readonly after: readonly (Transition & { readonly delay: string | number })[];
  readonly initial?: { readonly target?: readonly Node[] };
  /** The definition as written: its `entry` lacks the actions xstate adds to schedule `after` timers. */
  readonly config: { readonly entry?: unknown };
  readonly description?: string;
}

interface Transition {
  readonly eventType: string;
  readonly target?: readonly Node[];
  readonly guard?: unknown;
  readonly actions: readonly unknown[];
}

/** The repository's docs/diagrams folder, where the generated pages are kept. */
export const defaultDiagramsDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'docs', 'diagrams');

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
const nodeId = (node: Node): string => {
  const id = node.path.map((key) => key.replace(/[^A-Za-z0-9_]/g, '_')).join('__');
  return MERMAID_KEYWORD.test(id) ? `S_${id}` : id;
};

/** Characters Mermaid reads as syntax inside a label are replaced, so no label breaks the diagram. */
const safeLabel = (text: string): string =>
  text
    .replace(/[;#{}:"]/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();

/** A guard's name: `name`, `{ type: name }`, or xstate's `and(...)`, `or(...)`, `not(...)` helpers. */
const guardName = (guard: unknown): string => {
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

const actionNames = (actions: readonly unknown[]): string[] =>
  actions.map(actionName).filter((name): name is string => name !== null);

/** What triggers a transition, as a reader says it: the event, `after DELAY`, or `always`. */
const triggerLabel = (node: Node, transition: Transition): string => {
  const delayed = node.after.find((t) => t.eventType === transition.eventType);
  if (delayed)
    return typeof delayed.delay === 'number' ? `after ${delayed.delay} ms` : `after ${delayed.delay}`;
  return transition.eventType || 'always';
};

const transitionLabel = (node: Node, transition: Transition): string => {
  let label = triggerLabel(node, transition);
  if (transition.guard !== undefined) label += ` [${guardName(transition.guard)}]`;
  const actions = actionNames(transition.actions);
  if (actions.length > 0) label += ` / ${actions.join(', ')}`;
  if (!transition.target || transition.target.length === 0) label += ' (internal)';
  return safeLabel(label);
};

/** Every transition a node defines (event, delayed and eventless), in definition order. */
const transitionsOf = (node: Node): Transition[] => [
  ...[...node.transitions.values()].flat(),
  ...(node.always ?? []),
];

/** One arrow per target of each transition `node` defines (a targetless one loops back to `source`). */
const edges = (node: Node, source: string): { target: Node | null; line: string }[] =>
  transitionsOf(node).flatMap((transition) => {
    const label = transitionLabel(node, transition);
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
  body(node: Node, indent: string): string[] {
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
  state(node: Node, indent: string): string[] {
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
  const root = machine.root as unknown as Node;
  const writer = new MermaidWriter();
  const lines = ['stateDiagram-v2', ...writer.body(root, '  '), ...writer.topLevelEdges];
  const anyStateEdges = edges(root, ANY_STATE).map(({ line }) => `  ${line}`);
  if (anyStateEdges.length > 0) {
    // Transitions on the root apply whatever the current state is.
    lines.push(`  state "any state" as ${ANY_STATE}`, ...anyStateEdges);
  }
  return `${lines.join('\n')}\n`;
};

/** Every state node below the root, depth first in definition order. */
const stateNodes = (machine: AnyStateMachine): { path: string; node: Node }[] => {
  const out: { path: string; node: Node }[] = [];
  const walk = (node: Node): void => {
    for (const child of Object.values(node.states)) {
      out.push({ path: child.path.join('.'), node: child });
      walk(child);
    }
  };
  walk(machine.root as unknown as Node);
  return out;
};

const tableCell = (text: string): string => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** The Markdown page for one registered machine: title, summary, the diagram and a table of states. */
export const renderDiagramPage = (name: MachineName): string => {
  const machine = machines[name] as AnyStateMachine;
  const info = machineInfo[name];
  const root = machine.root as unknown as Node;
  const initialIds = new Set((root.initial?.target ?? []).map((node) => node.path.join('.')));
  const rows = stateNodes(machine).map(({ path, node }) => {
    const marks = [
      ...(initialIds.has(path) ? ['initial'] : []),
      ...(node.type === 'final' ? ['final'] : []),
      ...(node.type === 'parallel' ? ['parallel'] : []),
    ];
    const state = `\`${path}\`${marks.length > 0 ? ` (${marks.join(', ')})` : ''}`;
    const written = node.config.entry;
    const entry = actionNames(written === undefined ? [] : Array.isArray(written) ? written : [written])
      .map((action) => `\`${action}\``)
      .join(', ');
    const meaning = node.description ?? info.states[path] ?? '';
    return `| ${state} | ${entry} | ${tableCell(meaning)} |`;
  });
  return [
    `# ${info.title} statechart`,
    '',
    `<!-- Generated from machines/${name}.ts by runtime/diagrams.ts. Do not edit: change the machine or machines/index.ts, then run: node --import tsx runtime/diagrams.ts -->`,
    '',
    info.summary,
    '',
    `Source: [machines/${name}.ts](../../machines/${name}.ts). Arrows read \`EVENT [guard] / actions\`; ` +
      '`after X` is a delayed transition; `(internal)` means the state does not change.',
    '',
    '```mermaid',
    renderMermaid(machine).trimEnd(),
    '```',
    '',
    '| state | entry actions | meaning |',
    '| --- | --- | --- |',
    ...rows,
    '',
  ].join('\n');
};

const pagePath = (dir: string, name: MachineName): string => join(dir, `${name}.md`);

/** Write docs/diagrams/NAME.md for every registered machine; returns the paths written. */
export const writeDiagrams = (dir: string = defaultDiagramsDir): string[] => {
  mkdirSync(dir, { recursive: true });
  return machineNames().map((name) => {
    const path = pagePath(dir, name);
    writeFileSync(path, renderDiagramPage(name));
    return path;
  });
};

/**
 * The pages in `dir` that do not match the machines: missing, out of date, or left over from a
 * machine that is no longer registered (any `.md` but README.md). Empty means the docs are true to
 * the code.
 */
export const staleDiagrams = (dir: string = defaultDiagramsDir): string[] => {
  const stale = machineNames()
    .filter((name) => {
      const path = pagePath(dir, name);
      return !existsSync(path) || readFileSync(path, 'utf8') !== renderDiagramPage(name);
    })
    .map((name) => pagePath(dir, name));
  const registered = new Set<string>(machineNames());
  const leftovers = existsSync(dir)
    ? readdirSync(dir)
        .filter(
          (file) => file.endsWith('.md') && file !== 'README.md' && !registered.has(basename(file, '.md')),
        )
        .map((file) => join(dir, file))
    : [];
  return [...stale, ...leftovers];
};

/**
 * `npx chorus diagrams [--check]` and `node --import tsx runtime/diagrams.ts [--check] [DIR]`: regenerate
 * the pages, or list the stale ones and say how to fix them (exit 1; for CI) or that all are up to date.
 */
export const diagramsCommand = (
  options: { check?: boolean; dir?: string },
  print: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
): number => {
  const dir = options.dir ?? defaultDiagramsDir;
  if (options.check) {
    const stale = staleDiagrams(dir);
    for (const path of stale) print(`stale: ${path}`);
    if (stale.length > 0) {
      print('regenerate with: npx chorus diagrams');
      return 1;
    }
    print(`${machineNames().length} diagram pages in ${dir} are up to date`);
    return 0;
  }
  for (const path of writeDiagrams(dir)) print(`wrote ${path}`);
  return 0;
};

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  process.exitCode = diagramsCommand({
    check: args.includes('--check'),
    dir: args.find((arg) => !arg.startsWith('--')),
  });
}
