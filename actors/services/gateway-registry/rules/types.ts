// The balancing-rules engine's views and answers: what the registry service hands the planner (a
// gateway, a party, the compiled rules, cluster time) and what it gets back (moves, explanations).
// Pure data; the planner reads it and never keeps it.

import type { GatewayState } from '../../../../machines/gateway-lifecycle.ts';
import type { PartyState } from '../../../../machines/party-assignment.ts';
import type { RulesDocument } from './schema.ts';

// The states are the statecharts' own (machines/): one name per concept.
export type { GatewayState, PartyState };

export interface GatewayView {
  /** Unique in the fleet (the registry keys gateways by name). */
  readonly name: string;
  readonly capabilities: readonly string[];
  readonly labels: Readonly<Record<string, string>>;
  /** Parties it may hold at once. */
  readonly capacity: number;
  readonly state: GatewayState;
  /** Cluster time of its registration (for the settling time). */
  readonly registeredAtMs: number;
}

export interface PartyView {
  /** Unique among the parties. */
  readonly id: string;
  readonly labels: Readonly<Record<string, string>>;
  /** Capabilities a gateway must have to serve it. */
  readonly requires: readonly string[];
  /** Gateway currently holding or being offered the party. */
  readonly owner: string | null;
  readonly state: PartyState;
  /** Where a MOVING party goes once its owner has let go (absent or null otherwise). */
  readonly target?: string | null;
}

/** The rules once compiled: expressions parsed and checked, defaults filled in. Opaque to callers. */
export interface CompiledRules {
  readonly document: RulesDocument;
  /** Internal: built by compileRules. */
  readonly compiled: unknown;
}

export interface PlanInput {
  readonly gateways: readonly GatewayView[];
  readonly parties: readonly PartyView[];
  readonly rules: CompiledRules;
  /** Cluster time (the timestamp of the log entry being applied). */
  readonly nowMs: number;
  /** Cluster time of the last plan that made rebalance moves, null if none yet. */
  readonly lastRebalanceAtMs: number | null;
}

/**
 * Why a party moves. unassigned, owner-lost (its owner is LOST or unknown), owner-draining and
 * filter (its owner no longer passes a hard filter, or holds more than its capacity) are not limited
 * by the rebalance budget; rebalance moves are.
 */
export type MoveReason = 'unassigned' | 'owner-lost' | 'owner-draining' | 'filter' | 'rebalance';

export interface Move {
  readonly party: string;
  readonly from: string | null;
  readonly to: string;
  readonly reason: MoveReason;
}

export interface Plan {
  /** In the order they were decided: forced moves by party id, then rebalance moves. */
  readonly moves: Move[];
  readonly rebalanceMovesUsed: number;
  /** Rebalance moves this round may make: movesPerRound, or 0 while the pause between rounds runs. */
  readonly rebalanceBudget: number;
  /** Highest minus lowest utilisation (parties / capacity) of the settled ACTIVE gateways. */
  readonly imbalanceBefore: number;
  readonly imbalanceAfter: number;
  /** Parties that need a gateway and for which no gateway passes every hard filter (ids, sorted). */
  readonly unplaced: string[];
}

export interface FilterVerdict {
  /** The filter's name: its kind, or the name given in the rules. */
  readonly filter: string;
  readonly pass: boolean;
  /** Why it failed (absent when it passed). */
  readonly reason?: string;
}

export interface ScoreContribution {
  readonly score: string;
  readonly weight: number;
  /** The score's value in [0, 1] before weighting. */
  readonly value: number;
  /** weight × value. */
  readonly contribution: number;
  /** Why an expression score counted 0 (it failed to evaluate for this pair). */
  readonly error?: string;
}

export interface GatewayExplanation {
  readonly gateway: string;
  readonly state: GatewayState;
  /** Parties it holds, not counting this one. */
  readonly load: number;
  readonly capacity: number;
  readonly filters: FilterVerdict[];
  /** Empty when a filter failed (scores are computed for eligible gateways only). */
  readonly scores: ScoreContribution[];
  readonly total: number | null;
  readonly eligible: boolean;
  readonly chosen: boolean;
}

export interface PartyExplanation {
  readonly party: string;
  readonly owner: string | null;
  /** The gateway the scores pick for it now (null when none is eligible). */
  readonly chosen: string | null;
  /** Why the tie-break decided, when more than one gateway had the best total. */
  readonly tieBreak: string | null;
  /** One per gateway, sorted by name. */
  readonly gateways: GatewayExplanation[];
  /** Set when the party id is unknown. */
  readonly problem?: string;
}

export type ParseResult =
  | { readonly ok: true; readonly rules: RulesDocument }
  | { readonly ok: false; readonly problems: { readonly path: string; readonly message: string }[] };
