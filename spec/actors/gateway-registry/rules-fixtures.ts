// Small builders for the rules engine's specs: gateways, parties, rules from YAML or an object.

import {
  type CompiledRules,
  compileRules,
  type GatewayView,
  type PartyView,
  type PlanInput,
  parseRules,
} from '../../../actors/services/gateway-registry/rules/index.ts';

export const gateway = (name: string, options: Partial<GatewayView> = {}): GatewayView => ({
  name,
  capabilities: [],
  labels: {},
  capacity: 10,
  state: 'ACTIVE',
  registeredAtMs: 0,
  ...options,
});

export const party = (id: string, options: Partial<PartyView> = {}): PartyView => ({
  id,
  labels: {},
  requires: [],
  owner: null,
  state: options.owner === undefined || options.owner === null ? 'UNASSIGNED' : 'OPEN',
  ...options,
});

/** Parties `prefix-0..n-1` OPEN on a gateway. */
export const openOn = (owner: string, count: number, prefix = owner): PartyView[] =>
  Array.from({ length: count }, (_, index) => party(`${prefix}-${index}`, { owner, state: 'OPEN' }));

/** Compiled rules from a document (YAML text or a value); throws with the problems if it is refused. */
export const rules = (document: unknown): CompiledRules => {
  const parsed = parseRules(document);
  if (!parsed.ok) throw new Error(`rules refused: ${JSON.stringify(parsed.problems)}`);
  return compileRules(parsed.rules);
};

/** Cluster time well past the default settling time and pause. */
export const LATER = 1_000_000;

export const input = (
  gateways: readonly GatewayView[],
  parties: readonly PartyView[],
  compiled: CompiledRules,
  options: Partial<PlanInput> = {},
): PlanInput => ({ gateways, parties, rules: compiled, nowMs: LATER, lastRebalanceAtMs: null, ...options });
