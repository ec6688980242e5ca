// The gateway balancing-rules engine: parse and validate a rules document, compile its expressions,
// plan the moves for a fleet, explain one party's choice. Pure and deterministic (every member computes
// the same plan from the same input); the registry service calls it while applying log entries.

export type { FilterRule, RulesDocument, RulesInput, ScoreRule, Selector } from './schema.ts';
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
