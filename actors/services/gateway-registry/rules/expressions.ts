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
  const type = checked.type ?? 'dyn';
  if (use === 'filter' && type !== 'bool' && type !== 'dyn')
    return `a filter must give a bool, this gives ${type}`;
  if (use === 'score' && !SCORE_TYPES.has(type) && type !== 'dyn')
    return `a score must give a number or a bool, this gives ${type}`;
  return null;
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
