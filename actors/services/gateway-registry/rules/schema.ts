// The rules document's schema (zod): hard filters, weighted scores, the tie-break and the rebalance
// limits. The JSON Schema published for editors (docs/gateway-rules.schema.json) is generated from it.

import { z } from 'zod';

const LABEL_KEY = z.string().min(1).max(253);
const LABEL_VALUE = z.string().max(253);

/** A Kubernetes-style label selector: every matchLabels pair and every matchExpressions row must hold. */
export const SelectorSchema = z
  .strictObject({
    matchLabels: z.record(LABEL_KEY, LABEL_VALUE).optional(),
    matchExpressions: z
      .array(
        z.strictObject({
          key: LABEL_KEY,
          operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']),
          values: z.array(LABEL_VALUE).optional(),
        }),
      )
      .optional(),
  })
  .describe('A label selector: matchLabels (key: value, all must match) and matchExpressions');

const NAME = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'a name is lower-case letters, digits and dashes (at most 63)');
const EXPR = z.string().min(1).max(2000).describe('A CEL expression over party and gateway');
const WEIGHT = z.number().min(0).max(1000).describe('How much the score counts: total = Σ weight × value');

export const FilterSchema = z.discriminatedUnion('kind', [
  z
    .strictObject({ kind: z.literal('capability'), name: NAME.optional() })
    .describe('The gateway has every capability the party requires (always applied, listed or not)'),
  z
    .strictObject({
      kind: z.literal('capacity'),
      name: NAME.optional(),
      maxUtilisation: z.number().gt(0).max(1).optional(),
    })
    .describe('The gateway holds fewer parties than capacity × maxUtilisation (default 1; always applied)'),
  z
    .strictObject({
      kind: z.literal('labels'),
      name: NAME.optional(),
      parties: SelectorSchema.optional(),
      gateways: SelectorSchema,
    })
    .describe('Parties matching `parties` (all when absent) go only to gateways matching `gateways`'),
  z
    .strictObject({ kind: z.literal('expression'), name: NAME, expr: EXPR })
    .describe('A custom filter: a CEL expression that must be true'),
]);

export const ScoreSchema = z.discriminatedUnion('kind', [
  z
    .strictObject({ kind: z.literal('least-loaded'), name: NAME.optional(), weight: WEIGHT })
    .describe('1 − (load + 1) / capacity: prefers the emptiest gateway'),
  z
    .strictObject({ kind: z.literal('spread'), name: NAME.optional(), weight: WEIGHT, label: LABEL_KEY })
    .describe('1 − (load + 1) / capacity of all gateways sharing this gateway’s value of `label`'),
  z
    .strictObject({ kind: z.literal('stickiness'), name: NAME.optional(), weight: WEIGHT })
    .describe('1 on the party’s current owner: how much better another gateway must be to move'),
  z
    .strictObject({
      kind: z.literal('affinity'),
      name: NAME.optional(),
      weight: WEIGHT,
      partyLabel: LABEL_KEY,
      gatewayLabel: LABEL_KEY.optional(),
    })
    .describe('1 when the party’s partyLabel equals the gateway’s gatewayLabel (default: the same key)'),
  z
    .strictObject({
      kind: z.literal('anti-affinity'),
      name: NAME.optional(),
      weight: WEIGHT,
      partyLabel: LABEL_KEY,
      gatewayLabel: LABEL_KEY.optional(),
    })
    .describe('1 when the party’s partyLabel differs from the gateway’s gatewayLabel (or either is unset)'),
  z
    .strictObject({ kind: z.literal('expression'), name: NAME, weight: WEIGHT, expr: EXPR })
    .describe('A custom score: a CEL expression giving a number (clamped to [0, 1]) or a bool (1 or 0)'),
]);

export const RebalanceSchema = z
  .strictObject({
    movesPerRound: z.int().min(0).max(100_000).default(10).describe('Rebalance moves one plan may make'),
    pauseMs: z
      .int()
      .min(0)
      .max(86_400_000)
      .default(5_000)
      .describe('Cluster time between rebalancing rounds'),
    imbalanceThreshold: z
      .number()
      .min(0)
      .max(1)
      .default(0.2)
      .describe(
        'Rebalance only while highest − lowest utilisation of settled gateways exceeds this (0: always)',
      ),
    settlingMs: z
      .int()
      .min(0)
      .max(86_400_000)
      .default(30_000)
      .describe(
        'A newly registered gateway takes no rebalance moves (and is left out of the imbalance) this long',
      ),
  })
  .describe('Limits on moves made only to balance load (unassigned parties and lost owners are not limited)');

export const RulesSchema = z
  .strictObject({
    version: z.literal(1).default(1).describe('The document format (1)'),
    description: z.string().max(2000).optional(),
    filters: z.array(FilterSchema).max(64).default([]),
    scores: z
      .array(ScoreSchema)
      .max(64)
      .default([{ kind: 'least-loaded', weight: 1 }]),
    tieBreak: z
      .enum(['name', 'hash'])
      .default('hash')
      .describe(
        'Among equal totals: the lowest gateway name, or the lowest hash of party id and gateway name',
      ),
    rebalance: RebalanceSchema.default({
      movesPerRound: 10,
      pauseMs: 5_000,
      imbalanceThreshold: 0.2,
      settlingMs: 30_000,
    }),
  })
  .describe('Chorus gateway balancing rules');

export type RulesDocument = z.output<typeof RulesSchema>;
export type RulesInput = z.input<typeof RulesSchema>;
export type FilterRule = z.output<typeof FilterSchema>;
export type ScoreRule = z.output<typeof ScoreSchema>;
export type Selector = z.output<typeof SelectorSchema>;
