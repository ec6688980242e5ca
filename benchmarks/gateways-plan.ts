// Gateway rules: plan time for 10,000 parties × 50 gateways, with rules that use custom CEL
// expressions (a filter and a score) against the same rules without them (the baseline), measured
// interleaved in one run. Two cases: every party unassigned (the first plan, or a rules change that
// moves everything) and a gateway lost with the rest placed. `chorus bench gateways` calls
// measurePlanTime() for its plan half; `chorus bench gateways-plan` runs it alone.

import { performance } from 'node:perf_hooks';
import {
  type CompiledRules,
  compileRules,
  type GatewayView,
  type PartyView,
  type PlanInput,
  parseRules,
  plan,
} from '../actors/services/gateway-registry/rules/index.ts';
import type { BenchOptions, BenchResult } from './harness.ts';
import { percentile, round } from './harness.ts';

export const describe =
  'plan() wall and CPU time (median, p99) for 10,000 parties × 50 gateways: all unassigned, and one gateway lost with the rest placed; rules with a CEL filter and a CEL score against the same rules without them (baseline), interleaved in one run';

const BASE_RULES = {
  filters: [
    { kind: 'capability' },
    { kind: 'capacity', maxUtilisation: 0.95 },
    {
      kind: 'labels',
      name: 'gold-on-gold',
      parties: { matchLabels: { tier: 'gold' } },
      gateways: { matchLabels: { tier: 'gold' } },
    },
  ],
  scores: [
    { kind: 'least-loaded', weight: 2 },
    { kind: 'spread', label: 'zone', weight: 1 },
    { kind: 'affinity', partyLabel: 'region', weight: 1.5 },
    { kind: 'stickiness', weight: 0.2 },
  ],
  rebalance: { movesPerRound: 50, pauseMs: 5000, imbalanceThreshold: 0.2, settlingMs: 30000 },
};

const EXPRESSION_RULES = {
  ...BASE_RULES,
  filters: [
    ...BASE_RULES.filters,
    {
      kind: 'expression',
      name: 'venue-allowed',
      expr: "!('deny-venue' in gateway.labels) || gateway.labels['deny-venue'] != party.labels.venue",
    },
  ],
  scores: [
    ...BASE_RULES.scores,
    {
      kind: 'expression',
      name: 'big-gateways',
      weight: 0.5,
      expr: "gateway.capacity >= 250 ? 1.0 : double(gateway.capacity) / 250.0 + (party.labels.tier == 'gold' ? 0.1 : 0.0)",
    },
  ],
};

const compiled = (document: unknown): CompiledRules => {
  const parsed = parseRules(document);
  if (!parsed.ok) throw new Error(`benchmark rules refused: ${JSON.stringify(parsed.problems)}`);
  return compileRules(parsed.rules);
};

/** 50 gateways over 3 regions and 5 zones, one in 7 gold, one in 5 denying a venue; capacity 240-330. */
export const benchFleet = (gatewayCount = 50): GatewayView[] =>
  Array.from({ length: gatewayCount }, (_, g) => ({
    name: `gw-${String(g).padStart(3, '0')}`,
    capabilities: g % 10 === 9 ? ['fix'] : ['fix', 'itch'],
    labels: {
      region: ['eu', 'us', 'ap'][g % 3],
      zone: `z${g % 5}`,
      tier: g % 7 === 0 ? 'gold' : 'std',
      ...(g % 5 === 0 ? { 'deny-venue': `v${g % 20}` } : {}),
    },
    capacity: 240 + (g % 4) * 30,
    state: 'ACTIVE',
    registeredAtMs: 0,
  }));

/** Parties over 3 regions and 20 venues, one in 10 gold, one in 4 needing itch: 60 classes (id mod 60). */
export const benchParties = (partyCount = 10_000): PartyView[] =>
  Array.from({ length: partyCount }, (_, p) => ({
    id: `party-${String(p).padStart(5, '0')}`,
    labels: { region: ['eu', 'us', 'ap'][p % 3], venue: `v${p % 20}`, tier: p % 10 === 0 ? 'gold' : 'std' },
    requires: p % 4 === 0 ? ['fix', 'itch'] : ['fix'],
    owner: null,
    state: 'UNASSIGNED',
  }));

interface Sample {
  readonly wallMs: number;
  readonly cpuMs: number;
}

const sample = (input: PlanInput): Sample => {
  const cpu = process.cpuUsage();
  const start = performance.now();
  plan(input);
  const wallMs = performance.now() - start;
  const used = process.cpuUsage(cpu);
  return { wallMs, cpuMs: (used.user + used.system) / 1000 };
};

const medianAndP99 = (values: readonly number[]): [median: number, p99: number] => [
  round(percentile(values, 50)),
  round(percentile(values, 99)),
];

const summary = (samples: readonly Sample[]) => {
  const [wallMedianMs, wallP99Ms] = medianAndP99(samples.map((s) => s.wallMs));
  const [cpuMedianMs, cpuP99Ms] = medianAndP99(samples.map((s) => s.cpuMs));
  return { wallMedianMs, wallP99Ms, cpuMedianMs, cpuP99Ms };
};

export interface PlanTimeOptions {
  readonly parties?: number;
  readonly gateways?: number;
  readonly samples?: number;
  readonly warmup?: number;
}

/** Plan time with and without custom expressions, both cases; ratios are expressions ÷ baseline medians. */
export const measurePlanTime = (options: PlanTimeOptions = {}) => {
  const partyCount = options.parties ?? 10_000;
  const gatewayCount = options.gateways ?? 50;
  const samples = options.samples ?? 40;
  const warmup = options.warmup ?? 5;
  const gateways = benchFleet(gatewayCount);
  const parties = benchParties(partyCount);
  const withExpressions = compiled(EXPRESSION_RULES);
  const baseline = compiled(BASE_RULES);
  const unassigned = (rules: CompiledRules): PlanInput => ({
    gateways,
    parties,
    rules,
    nowMs: 1_000_000,
    lastRebalanceAtMs: null,
  });
  // The lost-gateway case: everyone placed by the first plan, then the busiest gateway is LOST.
  const placedBy = (rules: CompiledRules): PlanInput => {
    const first = plan(unassigned(rules));
    const owners = new Map(first.moves.map((move) => [move.party, move.to]));
    const lost = gateways[0].name;
    return {
      ...unassigned(rules),
      gateways: gateways.map((g) => (g.name === lost ? { ...g, state: 'LOST' as const } : g)),
      parties: parties.map((p) => ({ ...p, owner: owners.get(p.id) ?? null, state: 'OPEN' as const })),
    };
  };
  const cases = {
    unassigned: { expressions: unassigned(withExpressions), baseline: unassigned(baseline) },
    gatewayLost: { expressions: placedBy(withExpressions), baseline: placedBy(baseline) },
  };
  const firstPlanMs = round(sample(cases.unassigned.expressions).wallMs);
  const result: Record<string, unknown> = {
    parties: partyCount,
    gateways: gatewayCount,
    samples,
    firstPlanMs,
  };
  for (const [name, inputs] of Object.entries(cases)) {
    const runs = { expressions: [] as Sample[], baseline: [] as Sample[] };
    for (let i = 0; i < warmup + samples; i++) {
      const expressions = sample(inputs.expressions);
      const base = sample(inputs.baseline);
      if (i >= warmup) {
        runs.expressions.push(expressions);
        runs.baseline.push(base);
      }
    }
    const moved = plan(inputs.expressions);
    const withSummary = summary(runs.expressions);
    const baseSummary = summary(runs.baseline);
    result[name] = {
      moves: moved.moves.length,
      unplaced: moved.unplaced.length,
      expressions: withSummary,
      baseline: baseSummary,
      ratioCpuMedian: round(withSummary.cpuMedianMs / baseSummary.cpuMedianMs),
    };
  }
  return result;
};

export const run = async (options: BenchOptions): Promise<BenchResult> => {
  const figures = measurePlanTime({
    ...(typeof options.parties === 'number' ? { parties: options.parties } : {}),
    ...(typeof options.samples === 'number' ? { samples: options.samples } : {}),
  });
  const unassigned = figures.unassigned as {
    expressions: { cpuMedianMs: number; cpuP99Ms: number };
    ratioCpuMedian: number;
  };
  return {
    benchmark: 'gateways-plan',
    measured: describe,
    goalMs: 50,
    planCpuMedianMs: unassigned.expressions.cpuMedianMs,
    planCpuP99Ms: unassigned.expressions.cpuP99Ms,
    expressionsOverBaseline: unassigned.ratioCpuMedian,
    ...figures,
  };
};
