// The gateway balancing-rules engine: parse and validate a rules document, compile its expressions,
// plan the moves for a fleet, explain one party's choice. Pure and deterministic (every member computes
// the same plan from the same input); the registry service calls it while applying log entries.

export { compileRules } from './compile.ts';
export { explain } from './explain.ts';
export { EXPRESSION_VARIABLES } from './expressions.ts';
export { RULES_JSON_SCHEMA } from './json-schema.ts';
export { formatPath, MAX_RULES_TEXT, parseRules } from './parse.ts';
export { plan } from './planner.ts';
export type { FilterRule, RulesDocument, RulesInput, ScoreRule, Selector } from './schema.ts';
export { RulesSchema } from './schema.ts';
export type {
  CompiledRules,
  FilterVerdict,
  GatewayExplanation,
  GatewayState,
  GatewayView,
  Move,
  MoveReason,
  ParseResult,
  PartyExplanation,
  PartyState,
  PartyView,
  Plan,
  PlanInput,
  ScoreContribution,
} from './types.ts';
