// parseRules: a rules document (YAML or JSON text, or an already parsed value) to a validated
// RulesDocument, or every problem at once, each named with its path (`scores[2].weight`). The text
// comes from outside the cluster: nothing here throws, and nothing is evaluated.

import { parse as parseYaml } from 'yaml';
import { expressionProblem } from './expressions.ts';
import { type RulesDocument, RulesSchema, type Selector } from './schema.ts';
import type { ParseResult } from './types.ts';

/** Largest rules text accepted (characters). */
export const MAX_RULES_TEXT = 256 * 1024;

type Problem = { path: string; message: string };

/** `['scores', 2, 'weight']` → `scores[2].weight`. */
export const formatPath = (path: readonly PropertyKey[]): string =>
  path.reduce<string>((text, key) => {
    if (typeof key === 'number') return `${text}[${key}]`;
    const name = String(key);
    return text === '' ? name : `${text}.${name}`;
  }, '');

const readText = (text: string): { ok: true; value: unknown } | { ok: false; problem: Problem } => {
  if (text.length > MAX_RULES_TEXT) {
    return { ok: false, problem: { path: '', message: `longer than ${MAX_RULES_TEXT} characters` } };
  }
  try {
    return { ok: true, value: parseYaml(text, { maxAliasCount: 16, uniqueKeys: true }) };
  } catch (error) {
    const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
    return { ok: false, problem: { path: '', message: `not YAML or JSON: ${message}` } };
  }
};

const selectorProblems = (selector: Selector | undefined, at: string): Problem[] => {
  const problems: Problem[] = [];
  selector?.matchExpressions?.forEach((row, index) => {
    const path = `${at}.matchExpressions[${index}].values`;
    const wantsValues = row.operator === 'In' || row.operator === 'NotIn';
    if (wantsValues && (row.values === undefined || row.values.length === 0)) {
      problems.push({ path, message: `${row.operator} needs at least one value` });
    }
    if (!wantsValues && row.values !== undefined) {
      problems.push({ path, message: `${row.operator} takes no values` });
    }
  });
  return problems;
};

/** The name a filter or score goes by: its own, or its kind. */
export const ruleName = (rule: { readonly kind: string; readonly name?: string | undefined }): string =>
  rule.name ?? rule.kind;

const duplicateNames = (
  rules: readonly { kind: string; name?: string | undefined }[],
  list: string,
): Problem[] => {
  const seen = new Set<string>();
  const problems: Problem[] = [];
  rules.forEach((rule, index) => {
    const name = ruleName(rule);
    if (seen.has(name)) {
      problems.push({
        path: `${list}[${index}].name`,
        message: `a second ${list === 'filters' ? 'filter' : 'score'} named '${name}': give each its own name`,
      });
    }
    seen.add(name);
  });
  return problems;
};

/** The problems zod cannot see: selectors, names, and expressions that do not compile. */
const documentProblems = (rules: RulesDocument): Problem[] => {
  const problems: Problem[] = [];
  rules.filters.forEach((filter, index) => {
    if (filter.kind === 'labels') {
      problems.push(...selectorProblems(filter.parties, `filters[${index}].parties`));
      problems.push(...selectorProblems(filter.gateways, `filters[${index}].gateways`));
    }
    if (filter.kind === 'expression') {
      const problem = expressionProblem(filter.expr, 'filter');
      if (problem !== null) problems.push({ path: `filters[${index}].expr`, message: problem });
    }
  });
  rules.scores.forEach((score, index) => {
    if (score.kind === 'expression') {
      const problem = expressionProblem(score.expr, 'score');
      if (problem !== null) problems.push({ path: `scores[${index}].expr`, message: problem });
    }
  });
  problems.push(...duplicateNames(rules.filters, 'filters'), ...duplicateNames(rules.scores, 'scores'));
  return problems;
};

/** Validate a rules document: YAML or JSON text, or a value already parsed. Never throws. */
export const parseRules = (input: string | unknown): ParseResult => {
  let value = input;
  if (typeof input === 'string') {
    const read = readText(input);
    if (!read.ok) return { ok: false, problems: [read.problem] };
    value = read.value;
  }
  const parsed = RulesSchema.safeParse(value ?? {});
  if (!parsed.success) {
    const problems = parsed.error.issues.flatMap((issue): Problem[] => {
      const at = formatPath(issue.path);
      if (issue.code === 'unrecognized_keys') {
        return issue.keys.map((key) => ({
          path: formatPath([...issue.path, key]),
          message: 'not a known field',
        }));
      }
      return [{ path: at, message: issue.message }];
    });
    return { ok: false, problems };
  }
  const problems = documentProblems(parsed.data);
  return problems.length === 0 ? { ok: true, rules: parsed.data } : { ok: false, problems };
};
