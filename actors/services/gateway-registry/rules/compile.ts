// compileRules: a validated rules document to what the planner runs — the static filters (capability,
// label selectors, expressions) and static scores (affinity, anti-affinity, expressions), whose
// results depend only on the party's labels and requires and on the gateway, and the dynamic scores
// (least loaded, spread, stickiness), which depend on where the other parties are.

import {
  type CompiledExpression,
  compileExpression,
  type ExpressionContext,
  partyLabelsRead,
} from './expressions.ts';
import { ruleName } from './parse.ts';
import type { RulesDocument, Selector } from './schema.ts';
import type { CompiledRules, GatewayView } from './types.ts';

/** The attributes of a party a static rule may read. */
export interface PartyAttributes {
  readonly labels: Readonly<Record<string, string>>;
  readonly requires: readonly string[];
}

export type StaticFilter =
  | { readonly kind: 'capability'; readonly name: string }
  | {
      readonly kind: 'labels';
      readonly name: string;
      readonly parties?: Selector;
      readonly gateways: Selector;
    }
  | { readonly kind: 'expression'; readonly name: string; readonly expr: CompiledExpression };

export type StaticScore =
  | {
      readonly kind: 'affinity' | 'anti-affinity';
      readonly name: string;
      readonly weight: number;
      readonly partyLabel: string;
      readonly gatewayLabel: string;
    }
  | {
      readonly kind: 'expression';
      readonly name: string;
      readonly weight: number;
      readonly expr: CompiledExpression;
    };

export type DynamicScore =
  | { readonly kind: 'least-loaded' | 'stickiness'; readonly name: string; readonly weight: number }
  | { readonly kind: 'spread'; readonly name: string; readonly weight: number; readonly label: string };

export interface RulesProgram {
  /** In the document's order; the capability filter first when the document does not list it. */
  readonly filters: readonly StaticFilter[];
  readonly capacityName: string;
  /** A gateway takes parties while it holds fewer than floor(capacity × maxUtilisation). */
  readonly maxUtilisation: number;
  readonly staticScores: readonly StaticScore[];
  readonly dynamicScores: readonly DynamicScore[];
  /** In the document's order, for explain. */
  readonly scoreOrder: readonly string[];
  readonly tieBreak: 'name' | 'hash';
  readonly rebalance: RulesDocument['rebalance'];
  /**
   * The party labels the static rules read (sorted), or null when an expression reads them all:
   * parties equal in these labels and in requires are one class to the planner.
   */
  readonly partyLabelKeys: readonly string[] | null;
}

const selectorKeys = (selector: Selector | undefined): string[] => [
  ...Object.keys(selector?.matchLabels ?? {}),
  ...(selector?.matchExpressions ?? []).map((row) => row.key),
];

/** The party labels a document's static rules read, or null for all of them. */
const partyLabelKeys = (document: RulesDocument): string[] | null => {
  const keys = new Set<string>();
  for (const rule of [...document.filters, ...document.scores]) {
    let read: string[] | null = [];
    if (rule.kind === 'labels') read = selectorKeys(rule.parties);
    else if (rule.kind === 'affinity' || rule.kind === 'anti-affinity') read = [rule.partyLabel];
    else if (rule.kind === 'expression') read = partyLabelsRead(rule.expr);
    if (read === null) return null;
    for (const key of read) keys.add(key);
  }
  return [...keys].sort();
};

/** The program inside compiled rules (built by compileRules only). */
export const programOf = (rules: CompiledRules): RulesProgram => rules.compiled as RulesProgram;

/** Compile a validated document. Never throws (an expression that does not compile always errs). */
export const compileRules = (document: RulesDocument): CompiledRules => {
  const filters: StaticFilter[] = [];
  let capacityName = 'capacity';
  let maxUtilisation = 1;
  for (const filter of document.filters) {
    const name = ruleName(filter);
    if (filter.kind === 'capacity') {
      capacityName = name;
      maxUtilisation = filter.maxUtilisation ?? 1;
    } else if (filter.kind === 'capability') filters.push({ kind: 'capability', name });
    else if (filter.kind === 'labels') {
      filters.push({
        kind: 'labels',
        name,
        gateways: filter.gateways,
        ...(filter.parties === undefined ? {} : { parties: filter.parties }),
      });
    } else filters.push({ kind: 'expression', name, expr: compileExpression(filter.expr, 'filter') });
  }
  if (!filters.some((filter) => filter.kind === 'capability'))
    filters.unshift({ kind: 'capability', name: 'capability' });
  const staticScores: StaticScore[] = [];
  const dynamicScores: DynamicScore[] = [];
  for (const score of document.scores) {
    const name = ruleName(score);
    const weight = score.weight;
    if (score.kind === 'affinity' || score.kind === 'anti-affinity') {
      const gatewayLabel = score.gatewayLabel ?? score.partyLabel;
      staticScores.push({ kind: score.kind, name, weight, partyLabel: score.partyLabel, gatewayLabel });
    } else if (score.kind === 'expression') {
      staticScores.push({ kind: 'expression', name, weight, expr: compileExpression(score.expr, 'score') });
    } else if (score.kind === 'spread')
      dynamicScores.push({ kind: 'spread', name, weight, label: score.label });
    else dynamicScores.push({ kind: score.kind, name, weight });
  }
  const program: RulesProgram = {
    filters,
    capacityName,
    maxUtilisation,
    staticScores,
    dynamicScores,
    scoreOrder: document.scores.map(ruleName),
    tieBreak: document.tieBreak,
    rebalance: document.rebalance,
    partyLabelKeys: partyLabelKeys(document),
  };
  return { document, compiled: program };
};

/** Whether labels match a selector (Kubernetes semantics: NotIn and DoesNotExist hold for a missing key). */
export const matchesSelector = (selector: Selector, labels: Readonly<Record<string, string>>): boolean => {
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    if (!Object.hasOwn(labels, key) || labels[key] !== value) return false;
  }
  for (const row of selector.matchExpressions ?? []) {
    const present = Object.hasOwn(labels, row.key);
    const value = present ? labels[row.key] : undefined;
    const listed = value !== undefined && (row.values ?? []).includes(value);
    if (row.operator === 'In' && !listed) return false;
    if (row.operator === 'NotIn' && listed) return false;
    if (row.operator === 'Exists' && !present) return false;
    if (row.operator === 'DoesNotExist' && present) return false;
  }
  return true;
};

/** A gateway as an expression sees it (built once per gateway per plan). */
export const gatewayContext = (gateway: GatewayView): ExpressionContext['gateway'] => ({
  name: gateway.name,
  labels: gateway.labels,
  capabilities: gateway.capabilities,
  capacity: BigInt(Number.isSafeInteger(gateway.capacity) ? gateway.capacity : 0),
});

export interface Verdict {
  readonly pass: boolean;
  readonly reason?: string;
}

const PASS: Verdict = { pass: true };

/** One static filter's verdict for a party on a gateway. */
export const filterVerdict = (
  filter: StaticFilter,
  party: PartyAttributes,
  gateway: GatewayView,
  context: ExpressionContext['gateway'],
): Verdict => {
  if (filter.kind === 'capability') {
    const missing = party.requires.filter((capability) => !gateway.capabilities.includes(capability));
    return missing.length === 0 ? PASS : { pass: false, reason: `lacks ${missing.join(', ')}` };
  }
  if (filter.kind === 'labels') {
    if (filter.parties !== undefined && !matchesSelector(filter.parties, party.labels)) return PASS;
    return matchesSelector(filter.gateways, gateway.labels)
      ? PASS
      : { pass: false, reason: 'gateway labels do not match the selector' };
  }
  const result = filter.expr.evaluate({ party, gateway: context });
  if ('error' in result) return { pass: false, reason: `error: ${result.error}` };
  return result.value === 1 ? PASS : { pass: false, reason: 'false' };
};

/** One static score's value in [0, 1] for a party on a gateway (an expression's error counts 0). */
export const staticScoreValue = (
  score: StaticScore,
  party: PartyAttributes,
  gateway: GatewayView,
  context: ExpressionContext['gateway'],
): { readonly value: number; readonly error?: string } => {
  if (score.kind === 'expression') {
    const result = score.expr.evaluate({ party, gateway: context });
    return 'error' in result ? { value: 0, error: result.error } : result;
  }
  const partyValue = Object.hasOwn(party.labels, score.partyLabel)
    ? party.labels[score.partyLabel]
    : undefined;
  const gatewayValue = Object.hasOwn(gateway.labels, score.gatewayLabel)
    ? gateway.labels[score.gatewayLabel]
    : undefined;
  const same = partyValue !== undefined && partyValue === gatewayValue;
  return { value: (score.kind === 'affinity') === same ? 1 : 0 };
};
