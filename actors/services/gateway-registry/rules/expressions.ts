// Custom filters and scores are CEL expressions (@marcbachmann/cel-js): side-effect free, no loops but
// the list macros over the (bounded) lists they are given, no clock and no randomness (the standard
// environment has no now(); nothing else is registered), so every member evaluates them the same way.
// The variables are the static attributes of a party and a gateway, so a result depends only on
// (party labels and requires, gateway): the planner caches it per distinct pair.

import { Environment, type ParseResult } from '@marcbachmann/cel-js';

/** Structural limits checked at parse time: an expression's cost is bounded by its size. */
const LIMITS = {
  maxAstNodes: 400,
  maxDepth: 32,
  maxListElements: 64,
  maxMapEntries: 64,
  maxCallArguments: 8,
};

const environment = new Environment({ limits: LIMITS, unlistedVariablesAreDyn: false })
  .registerVariable({
    name: 'party',
    schema: { labels: 'map<string, string>', requires: 'list<string>' },
    description: 'The party: its labels and the capabilities it requires',
  })
  .registerVariable({
    name: 'gateway',
    schema: { name: 'string', labels: 'map<string, string>', capabilities: 'list<string>', capacity: 'int' },
    description: 'The gateway: its name, labels, capabilities and capacity',
  });

/** The attributes an expression may read (for the docs and error messages). */
export const EXPRESSION_VARIABLES =
  'party.labels, party.requires, gateway.name, gateway.labels, gateway.capabilities, gateway.capacity';

export type ExpressionUse = 'filter' | 'score';

export interface ExpressionContext {
  readonly party: { readonly labels: Readonly<Record<string, string>>; readonly requires: readonly string[] };
  readonly gateway: {
    readonly name: string;
    readonly labels: Readonly<Record<string, string>>;
    readonly capabilities: readonly string[];
    readonly capacity: bigint;
  };
}

/** What evaluating an expression gave: a value in [0, 1] (a filter's true is 1), or why it failed. */
export type ExpressionResult = { readonly value: number } | { readonly error: string };

export interface CompiledExpression {
  readonly source: string;
  readonly evaluate: (context: ExpressionContext) => ExpressionResult;
}

const firstLine = (error: unknown): string =>
  (error instanceof Error ? error.message : String(error)).split('\n')[0] ?? 'unknown error';

const SCORE_TYPES = new Set(['int', 'uint', 'double', 'bool']);

/** Why the expression cannot be used as a filter (which must give a bool) or a score, or null. */
export const expressionProblem = (source: string, use: ExpressionUse): string | null => {
  let checked: ReturnType<Environment['check']>;
  try {
    checked = environment.check(source);
  } catch (error) {
    return `does not compile: ${firstLine(error)}`;
  }
  if (!checked.valid) {
    const message = firstLine(checked.error);
    const unknown = /^No such key: (.+)$/.exec(message);
    if (unknown) return `reads an unknown attribute '${unknown[1]}' (known: ${EXPRESSION_VARIABLES})`;
    return `does not compile: ${message}`;
  }
  const cost = costProblem(environment.parse(source).ast);
  if (cost !== null) return cost;
  const type = checked.type ?? 'dyn';
  if (use === 'filter' && type !== 'bool' && type !== 'dyn')
    return `a filter must give a bool, this gives ${type}`;
  if (use === 'score' && !SCORE_TYPES.has(type) && type !== 'dyn')
    return `a score must give a number or a bool, this gives ${type}`;
  return null;
};

interface Node {
  readonly op: string;
  readonly args: unknown;
}

const isNode = (value: unknown): value is Node =>
  typeof value === 'object' && value !== null && typeof (value as { op?: unknown }).op === 'string';

const isPartyLabels = (node: unknown): boolean =>
  isNode(node) &&
  node.op === '.' &&
  Array.isArray(node.args) &&
  node.args[1] === 'labels' &&
  isNode(node.args[0]) &&
  node.args[0].op === 'id' &&
  node.args[0].args === 'party';

/** Macros that evaluate their body once per element of a list or map. */
const COMPREHENSIONS = new Set(['all', 'exists', 'exists_one', 'map', 'filter']);
/** Comprehensions inside comprehensions: cost grows as the lists' sizes to this power. */
export const MAX_COMPREHENSION_DEPTH = 2;

/**
 * Why an expression's cost would have no small bound, or null. Every member evaluates it for every
 * (party class, gateway) pair while applying the log, so one slow expression stalls the cluster:
 * regular expressions (matches(): JavaScript's backtracking engine, exponential on some patterns) are
 * refused, and so are comprehensions nested deeper than MAX_COMPREHENSION_DEPTH.
 */
const costProblem = (ast: unknown): string | null => {
  let problem: string | null = null;
  const visit = (value: unknown, depth: number): void => {
    if (problem !== null) return;
    if (Array.isArray(value)) {
      for (const item of value) visit(item, depth);
      return;
    }
    if (!isNode(value)) return;
    const args = Array.isArray(value.args) ? (value.args as unknown[]) : [value.args];
    const name =
      (value.op === 'call' || value.op === 'rcall') && typeof args[0] === 'string' ? args[0] : null;
    if (name === 'matches') {
      problem =
        'matches() is not allowed: a regular expression has no bounded cost (use startsWith, endsWith or contains)';
      return;
    }
    const inner = name !== null && COMPREHENSIONS.has(name) ? depth + 1 : depth;
    if (inner > MAX_COMPREHENSION_DEPTH) {
      problem = `comprehensions (all, exists, exists_one, map, filter) nest at most ${MAX_COMPREHENSION_DEPTH} deep`;
      return;
    }
    for (const arg of args) visit(arg, inner);
  };
  visit(ast, 0);
  return problem;
};

const constantString = (node: unknown): string | null =>
  isNode(node) && node.op === 'value' && typeof node.args === 'string' ? node.args : null;

/**
 * The keys of party.labels an expression reads, or null when it reads the map as a whole (its size,
 * a macro over it, the map or the party passed on): then a result depends on every label. Only
 * `party.labels.KEY`, `party.labels['KEY']` and `'KEY' in party.labels` name a key.
 */
export const partyLabelsRead = (source: string): string[] | null => {
  let program: ParseResult;
  try {
    program = environment.parse(source);
  } catch {
    return null;
  }
  const keys = new Set<string>();
  let whole = false;
  const visit = (value: unknown): void => {
    if (Array.isArray(value)) {
      for (const item of value) visit(item);
      return;
    }
    if (!isNode(value)) return;
    const args = Array.isArray(value.args) ? (value.args as unknown[]) : [value.args];
    for (let index = 0; index < args.length; index++) {
      const arg = args[index];
      if (isNode(arg) && arg.op === 'id' && arg.args === 'party') {
        // party.requires is in every class key; party handed on whole may reach its labels.
        if (!(value.op === '.' && index === 0 && args[1] === 'requires')) whole = true;
        continue;
      }
      if (!isPartyLabels(arg)) {
        visit(arg);
        continue;
      }
      const key =
        value.op === '.' && index === 0 && typeof args[1] === 'string'
          ? args[1]
          : value.op === '[]' && index === 0
            ? constantString(args[1])
            : value.op === 'in' && index === 1
              ? constantString(args[0])
              : null;
      if (key === null) whole = true;
      else keys.add(key);
    }
  };
  visit(program.ast);
  return whole ? null : [...keys].sort();
};

const toValue = (result: unknown, use: ExpressionUse): ExpressionResult => {
  if (typeof result === 'boolean') return { value: result ? 1 : 0 };
  if (use === 'filter') return { error: `gave ${typeof result}, not a bool` };
  const value =
    typeof result === 'bigint' ? Number(result) : typeof result === 'number' ? result : Number.NaN;
  if (Number.isNaN(value)) return { error: `gave ${typeof result}, not a number` };
  return { value: Math.min(1, Math.max(0, value)) };
};

/**
 * Compile an expression. Never throws: one that does not compile evaluates to an error every time
 * (parseRules reports it first, so only a document that skipped parseRules gets there).
 */
export const compileExpression = (source: string, use: ExpressionUse): CompiledExpression => {
  const problem = expressionProblem(source, use);
  if (problem !== null) return { source, evaluate: () => ({ error: problem }) };
  const program: ParseResult = environment.parse(source);
  return {
    source,
    evaluate: (context) => {
      try {
        return toValue(program(context), use);
      } catch (error) {
        return { error: firstLine(error) };
      }
    },
  };
};
