// The rules engine on small fleets: each row a fleet, its parties and rules, and the moves plan()
// must make (party>gateway:reason, in the plan's order), with the budget and the unplaced parties.

import { expect } from 'chai';
import { fnv1a, tieKey } from '../../../actors/services/gateway-registry/rules/fleet.ts';
import {
  explain,
  type GatewayView,
  type PartyView,
  type PlanInput,
  plan,
} from '../../../actors/services/gateway-registry/rules/index.ts';
import { gateway, input, LATER, openOn, party, rules } from './rules-fixtures.ts';

interface Row {
  readonly name: string;
  readonly gateways: readonly GatewayView[];
  readonly parties: readonly PartyView[];
  readonly rules: unknown;
  readonly options?: Partial<PlanInput>;
  readonly moves: readonly string[];
  readonly unplaced?: readonly string[];
  readonly budget?: number;
}

const LEAST = { scores: [{ kind: 'least-loaded', weight: 1 }], tieBreak: 'name' };
const NAME_ONLY = { scores: [], tieBreak: 'name' };

const rows: Row[] = [
  {
    name: 'capability: only a gateway with every required capability',
    gateways: [gateway('a', { capabilities: ['fix'] }), gateway('b', { capabilities: ['fix', 'itch'] })],
    parties: [party('p', { requires: ['itch', 'fix'] })],
    rules: NAME_ONLY,
    moves: ['p>b:unassigned'],
  },
  {
    name: 'labels filter: gold parties on gold gateways only, the rest anywhere',
    gateways: [gateway('a', { labels: { tier: 'std' } }), gateway('b', { labels: { tier: 'gold' } })],
    parties: [party('g', { labels: { tier: 'gold' } }), party('s', { labels: { tier: 'std' } })],
    rules: {
      ...NAME_ONLY,
      filters: [
        {
          kind: 'labels',
          parties: { matchLabels: { tier: 'gold' } },
          gateways: { matchLabels: { tier: 'gold' } },
        },
      ],
    },
    moves: ['g>b:unassigned', 's>a:unassigned'],
  },
  {
    name: 'labels filter, matchExpressions: NotIn holds for a missing label',
    gateways: [
      gateway('a', { labels: { zone: 'z1' } }),
      gateway('b', { labels: { zone: 'z2' } }),
      gateway('c'),
    ],
    parties: [party('p1'), party('p2')],
    rules: {
      ...LEAST,
      filters: [
        {
          kind: 'labels',
          gateways: { matchExpressions: [{ key: 'zone', operator: 'NotIn', values: ['z1'] }] },
        },
      ],
    },
    moves: ['p1>b:unassigned', 'p2>c:unassigned'],
  },
  {
    name: 'capacity: a full gateway takes nothing, even when the tie-break prefers it',
    gateways: [gateway('a', { capacity: 1 }), gateway('b', { capacity: 1 })],
    parties: [party('p1', { owner: 'a' }), party('p2')],
    rules: NAME_ONLY,
    moves: ['p2>b:unassigned'],
  },
  {
    name: 'capacity maxUtilisation: 0.5 of 4 is 2',
    gateways: [gateway('a', { capacity: 4 }), gateway('b', { capacity: 4 })],
    parties: [...openOn('a', 2), party('p')],
    rules: { ...NAME_ONLY, filters: [{ kind: 'capacity', maxUtilisation: 0.5 }] },
    moves: ['p>b:unassigned'],
  },
  {
    name: 'hostile capacities: negative, fractional, not finite or huge take nothing or count as bounded',
    gateways: [
      gateway('a', { capacity: -3 }),
      gateway('b', { capacity: Number.NaN }),
      gateway('c', { capacity: 0.5 }),
      gateway('d', { capacity: 2 ** 40 }),
    ],
    parties: [party('p'), party('q')],
    rules: NAME_ONLY,
    moves: ['p>d:unassigned', 'q>d:unassigned'],
  },
  {
    name: 'least-loaded: the emptiest gateway by utilisation',
    gateways: [gateway('a', { capacity: 10 }), gateway('b', { capacity: 4 })],
    parties: [...openOn('a', 3), ...openOn('b', 1), party('p')],
    rules: { ...LEAST, rebalance: { movesPerRound: 0 } },
    moves: ['p>a:unassigned'], // a: 1 − 4/10 = 0.6; b: 1 − 2/4 = 0.5
  },
  {
    name: 'spread across zones: the zone with the most room, then the tie-break by name',
    gateways: [
      gateway('a', { labels: { zone: 'z1' }, capacity: 2 }),
      gateway('b', { labels: { zone: 'z1' }, capacity: 2 }),
      gateway('c', { labels: { zone: 'z2' }, capacity: 2 }),
    ],
    parties: [...openOn('b', 1), ...openOn('c', 1), party('p')],
    rules: {
      scores: [{ kind: 'spread', label: 'zone', weight: 1 }],
      tieBreak: 'name',
      rebalance: { movesPerRound: 0 },
    },
    moves: ['p>a:unassigned'], // z1: 1 − 2/4; z2: 1 − 2/2
  },
  {
    name: 'affinity: the gateway whose region equals the party’s',
    gateways: [gateway('a', { labels: { region: 'us' } }), gateway('b', { labels: { region: 'eu' } })],
    parties: [party('p', { labels: { region: 'eu' } })],
    rules: { ...NAME_ONLY, scores: [{ kind: 'affinity', partyLabel: 'region', weight: 1 }] },
    moves: ['p>b:unassigned'],
  },
  {
    name: 'affinity between different keys: party venue to gateway serves',
    gateways: [gateway('a', { labels: { serves: 'lse' } }), gateway('b', { labels: { serves: 'cme' } })],
    parties: [party('p', { labels: { venue: 'cme' } })],
    rules: {
      ...NAME_ONLY,
      scores: [{ kind: 'affinity', partyLabel: 'venue', gatewayLabel: 'serves', weight: 1 }],
    },
    moves: ['p>b:unassigned'],
  },
  {
    name: 'anti-affinity: away from the gateway sharing the party’s venue',
    gateways: [gateway('a', { labels: { venue: 'x' } }), gateway('b', { labels: { venue: 'y' } })],
    parties: [party('p', { labels: { venue: 'x' } })],
    rules: { ...NAME_ONLY, scores: [{ kind: 'anti-affinity', partyLabel: 'venue', weight: 1 }] },
    moves: ['p>b:unassigned'],
  },
  {
    name: 'expression filter: only gateways the expression accepts',
    gateways: [gateway('a', { labels: { tier: 'std' } }), gateway('b', { labels: { tier: 'gold' } })],
    parties: [party('p')],
    rules: {
      ...NAME_ONLY,
      filters: [{ kind: 'expression', name: 'gold', expr: "gateway.labels.tier == 'gold'" }],
    },
    moves: ['p>b:unassigned'],
  },
  {
    name: 'expression filter that errs (a missing label) fails the gateway',
    gateways: [gateway('a'), gateway('b', { labels: { region: 'eu' } })],
    parties: [party('p', { labels: { region: 'eu' } })],
    rules: {
      ...NAME_ONLY,
      filters: [{ kind: 'expression', name: 'region', expr: 'party.labels.region == gateway.labels.region' }],
    },
    moves: ['p>b:unassigned'],
  },
  {
    name: 'expression score: weighted against least-loaded',
    gateways: [gateway('a', { capacity: 10 }), gateway('b', { capacity: 40 })],
    parties: [party('p')],
    rules: {
      ...NAME_ONLY,
      scores: [
        { kind: 'least-loaded', weight: 1 },
        { kind: 'expression', name: 'big', weight: 0.5, expr: 'gateway.capacity >= 20 ? 1.0 : 0.0' },
      ],
    },
    moves: ['p>b:unassigned'],
  },
  {
    name: 'owner lost: moves whatever the budget',
    gateways: [gateway('a', { state: 'LOST' }), gateway('b')],
    parties: [...openOn('a', 2)],
    rules: { ...LEAST, rebalance: { movesPerRound: 0 } },
    moves: ['a-0>b:owner-lost', 'a-1>b:owner-lost'],
    budget: 0,
  },
  {
    name: 'owner unknown counts as lost; owner draining moves too',
    gateways: [gateway('a', { state: 'DRAINING' }), gateway('b')],
    parties: [party('p', { owner: 'gone', state: 'OFFERED' }), party('q', { owner: 'a' })],
    rules: { ...LEAST, rebalance: { movesPerRound: 0 } },
    moves: ['p>b:owner-lost', 'q>b:owner-draining'],
  },
  {
    name: 'filter: an owner failing a hard filter (rules changed) gives its party up',
    gateways: [gateway('a', { labels: { zone: 'z1' } }), gateway('b', { labels: { zone: 'z2' } })],
    parties: [party('p', { owner: 'a' })],
    rules: { ...NAME_ONLY, filters: [{ kind: 'labels', gateways: { matchLabels: { zone: 'z2' } } }] },
    moves: ['p>b:filter'],
  },
  {
    name: 'filter: over capacity, the parties with the highest ids move',
    gateways: [gateway('a', { capacity: 2 }), gateway('b')],
    parties: [...openOn('a', 4)],
    rules: { ...LEAST, rebalance: { movesPerRound: 0 } },
    moves: ['a-2>b:filter', 'a-3>b:filter'],
  },
  {
    name: 'in flight: MOVING and CLOSING parties stay and fill their owner',
    gateways: [gateway('a', { capacity: 2 }), gateway('b', { capacity: 2 })],
    parties: [
      party('m', { owner: 'a', state: 'MOVING' }),
      party('c', { owner: 'a', state: 'CLOSING' }),
      party('p'),
    ],
    rules: NAME_ONLY,
    moves: ['p>b:unassigned'],
  },
  {
    name: 'in flight: a MOVING party takes a slot on its target and keeps one on its owner until it lands',
    gateways: [gateway('a', { capacity: 2 }), gateway('b', { capacity: 2 }), gateway('c', { capacity: 2 })],
    parties: [
      party('m1', { owner: 'a', state: 'MOVING', target: 'b' }),
      party('m2', { owner: 'a', state: 'MOVING', target: 'b' }),
      party('p'),
    ],
    rules: LEAST,
    moves: ['p>c:unassigned'], // b would hold 3 of 2 once m1 and m2 land; a still holds both
  },
  {
    name: 'in flight: MOVING parties count as load on their target, so the next round does not move more',
    gateways: [gateway('a'), gateway('b')],
    parties: [
      ...openOn('a', 4),
      ...['m0', 'm1', 'm2', 'm3'].map((id) => party(id, { owner: 'a', state: 'MOVING', target: 'b' })),
    ],
    rules: { ...LEAST, rebalance: { movesPerRound: 10, imbalanceThreshold: 0.1 } },
    moves: [], // 4 and 4 once they land (counted on a, b looked empty and took 4 more)
  },
  {
    name: 'rebalance: a gateway parties are leaving in this round has no room for others until they land',
    gateways: [gateway('a', { capacity: 4 }), gateway('b', { capacity: 4 }), gateway('c', { capacity: 4 })],
    parties: [...openOn('a', 4), ...openOn('b', 4)],
    rules: { ...LEAST, rebalance: { movesPerRound: 10, imbalanceThreshold: 0.1 } },
    moves: ['a-0>c:rebalance', 'a-1>c:rebalance', 'b-0>c:rebalance'], // not b-0>a: a still holds 4
  },
  {
    name: 'unplaced: no gateway can serve the party',
    gateways: [gateway('a'), gateway('b', { state: 'REGISTERING', capabilities: ['fix'] })],
    parties: [party('p', { requires: ['fix'] })],
    rules: NAME_ONLY,
    moves: [],
    unplaced: ['p'],
  },
  {
    name: 'rebalance: from the busiest gateway, at most movesPerRound',
    gateways: [gateway('a'), gateway('b')],
    parties: [...openOn('a', 8)],
    rules: { ...LEAST, rebalance: { movesPerRound: 2, imbalanceThreshold: 0.1 } },
    moves: ['a-0>b:rebalance', 'a-1>b:rebalance'],
    budget: 2,
  },
  {
    name: 'rebalance: stops once the imbalance is under the threshold',
    gateways: [gateway('a'), gateway('b')],
    parties: [...openOn('a', 8)],
    rules: { ...LEAST, rebalance: { movesPerRound: 10, imbalanceThreshold: 0.25 } },
    moves: ['a-0>b:rebalance', 'a-1>b:rebalance', 'a-2>b:rebalance'], // 0.8−0 → 0.5−0.3 = 0.2
    budget: 10,
  },
  {
    name: 'rebalance: nothing while the imbalance is under the threshold',
    gateways: [gateway('a'), gateway('b')],
    parties: [...openOn('a', 3), ...openOn('b', 1)],
    rules: { ...LEAST, rebalance: { imbalanceThreshold: 0.25 } },
    moves: [],
  },
  {
    name: 'rebalance: threshold 0 moves parties to a better score on an evenly loaded fleet',
    gateways: [gateway('a', { labels: { region: 'us' } }), gateway('b', { labels: { region: 'eu' } })],
    parties: [
      party('p', { labels: { region: 'eu' }, owner: 'a' }),
      party('q', { labels: { region: 'us' }, owner: 'b' }),
    ],
    rules: {
      scores: [
        { kind: 'least-loaded', weight: 1 },
        { kind: 'affinity', partyLabel: 'region', weight: 1 },
      ],
      rebalance: { imbalanceThreshold: 0 },
    },
    moves: ['p>b:rebalance', 'q>a:rebalance'],
  },
  {
    name: 'rebalance: the same fleet under a threshold above 0 stays as it is',
    gateways: [gateway('a', { labels: { region: 'us' } }), gateway('b', { labels: { region: 'eu' } })],
    parties: [
      party('p', { labels: { region: 'eu' }, owner: 'a' }),
      party('q', { labels: { region: 'us' }, owner: 'b' }),
    ],
    rules: {
      scores: [
        { kind: 'least-loaded', weight: 1 },
        { kind: 'affinity', partyLabel: 'region', weight: 1 },
      ],
      rebalance: { imbalanceThreshold: 0.05 },
    },
    moves: [],
  },
  {
    name: 'rebalance: stickiness outweighs a small gain',
    gateways: [gateway('a', { capacity: 4 }), gateway('b', { capacity: 4 })],
    parties: [...openOn('a', 3), ...openOn('b', 1)],
    rules: {
      scores: [
        { kind: 'least-loaded', weight: 1 },
        { kind: 'stickiness', weight: 0.3 },
      ],
      rebalance: { imbalanceThreshold: 0.1 },
    },
    moves: [], // a → b gains 1 − 2/4 − (1 − 3/4) = 0.25 < 0.3
  },
  {
    name: 'rebalance: without stickiness the same gain moves one party',
    gateways: [gateway('a', { capacity: 4 }), gateway('b', { capacity: 4 })],
    parties: [...openOn('a', 3), ...openOn('b', 1)],
    rules: { ...LEAST, rebalance: { imbalanceThreshold: 0.1 } },
    moves: ['a-0>b:rebalance'],
  },
  {
    name: 'rebalance: only OPEN parties move (OFFERED ones wait)',
    gateways: [gateway('a'), gateway('b')],
    parties: openOn('a', 4).map((p) => ({ ...p, state: 'OFFERED' as const })),
    rules: { ...LEAST, rebalance: { imbalanceThreshold: 0.1 } },
    moves: [],
  },
  {
    name: 'rebalance: paused since the last round (budget 0); lost owners still move',
    gateways: [gateway('a'), gateway('b'), gateway('c', { state: 'LOST' })],
    parties: [...openOn('a', 8), ...openOn('c', 1)],
    rules: { ...LEAST, rebalance: { pauseMs: 5000, imbalanceThreshold: 0.1 } },
    options: { lastRebalanceAtMs: LATER - 4999 },
    moves: ['c-0>b:owner-lost'],
    budget: 0,
  },
  {
    name: 'settling: a new gateway takes unassigned parties but no rebalance moves',
    gateways: [gateway('a'), gateway('b', { registeredAtMs: LATER - 1000 })],
    parties: [...openOn('a', 8), party('p')],
    rules: { ...LEAST, rebalance: { settlingMs: 5000, imbalanceThreshold: 0.1 } },
    moves: ['p>b:unassigned'],
  },
  {
    name: 'settled: the same gateway past its settling time takes rebalance moves',
    gateways: [gateway('a'), gateway('b', { registeredAtMs: LATER - 5000 })],
    parties: [...openOn('a', 8)],
    rules: { ...LEAST, rebalance: { settlingMs: 5000, movesPerRound: 1, imbalanceThreshold: 0.1 } },
    moves: ['a-0>b:rebalance'],
  },
];

const show = (moves: readonly { party: string; to: string; reason: string }[]): string[] =>
  moves.map((move) => `${move.party}>${move.to}:${move.reason}`);

describe('gateway rules: plan on small fleets', () => {
  for (const row of rows) {
    it(row.name, () => {
      const result = plan(input(row.gateways, row.parties, rules(row.rules), row.options));
      expect(show(result.moves)).to.deep.equal(row.moves);
      expect(result.unplaced).to.deep.equal(row.unplaced ?? []);
      if (row.budget !== undefined) expect(result.rebalanceBudget).to.equal(row.budget);
      expect(result.rebalanceMovesUsed).to.equal(result.moves.filter((m) => m.reason === 'rebalance').length);
    });
  }

  it('tie-break hash: among equal totals, the lowest hash of party id and gateway name', () => {
    const gateways = ['a', 'b', 'c', 'd'].map((name) => gateway(name));
    const parties = Array.from({ length: 12 }, (_, index) => party(`p${index}`));
    const compiled = rules({ scores: [], tieBreak: 'hash' });
    const result = plan(input(gateways, parties, compiled));
    for (const move of result.moves) {
      const expected = [...gateways].sort(
        (x, y) => tieKey(fnv1a(move.party), fnv1a(x.name)) - tieKey(fnv1a(move.party), fnv1a(y.name)),
      )[0];
      expect(move.to, move.party).to.equal(expected.name);
    }
    expect(new Set(result.moves.map((move) => move.to)).size, 'hash spreads ties').to.be.greaterThan(1);
  });

  it('imbalance before and after: highest minus lowest utilisation of settled ACTIVE gateways', () => {
    const result = plan(
      input(
        [gateway('a'), gateway('b'), gateway('c', { state: 'DRAINING' })],
        openOn('a', 6),
        rules({ ...LEAST, rebalance: { imbalanceThreshold: 0 } }),
      ),
    );
    expect(result.imbalanceBefore).to.be.closeTo(0.6, 1e-9);
    expect(result.imbalanceAfter).to.be.closeTo(0, 1e-9);
  });
});

describe('gateway rules: parties told apart by the labels expressions read', () => {
  // Parties equal in the labels the rules read share one evaluation; these expressions read a label
  // in every way CEL allows, and each pair of parties differs only there: p must go to b, q to a.
  const forms: [expression: string, p: Record<string, string>, q: Record<string, string>][] = [
    ["party.labels.venue == 'cme'", { venue: 'cme' }, { venue: 'lse' }],
    ["party.labels['venue'] == 'cme'", { venue: 'cme' }, { venue: 'lse' }],
    ["'venue' in party.labels", { venue: 'lse' }, {}],
    ['has(party.labels.venue)', { venue: 'lse' }, {}],
    ["party.labels.exists(k, k == 'venue')", { venue: 'lse' }, {}],
    ['party.labels.size() > 1', { venue: 'lse', x: '1' }, { x: '1' }],
    ["[party].all(p, 'venue' in p.labels)", { venue: 'lse' }, {}],
    ["party.labels[gateway.labels.key] == 'cme'", { venue: 'cme' }, { venue: 'lse' }],
  ];
  for (const [expression, p, q] of forms) {
    it(expression, () => {
      const document = {
        filters: [{ kind: 'expression', name: 'split', expr: `(${expression}) == (gateway.name == 'b')` }],
        scores: [{ kind: 'affinity', partyLabel: 'x', weight: 1 }],
        tieBreak: 'name',
      };
      const gateways = [
        gateway('a', { labels: { key: 'venue' } }),
        gateway('b', { labels: { key: 'venue' } }),
      ];
      const result = plan(
        input(gateways, [party('p', { labels: p }), party('q', { labels: q })], rules(document)),
      );
      expect(show(result.moves)).to.deep.equal(['p>b:unassigned', 'q>a:unassigned']);
    });
  }
});

describe('gateway rules: explain', () => {
  const fleet = [
    gateway('a', { capabilities: ['fix'], labels: { region: 'eu' }, capacity: 2 }),
    gateway('b', { capabilities: ['fix'], labels: { region: 'us' } }),
    gateway('c', { labels: { region: 'eu' } }),
    gateway('d', { capabilities: ['fix'], labels: { region: 'eu' }, state: 'DRAINING' }),
  ];
  const compiled = rules(`
filters:
  - kind: capability
  - kind: expression
    name: in-region
    expr: party.labels.region == gateway.labels.region
scores:
  - kind: least-loaded
    weight: 2
  - kind: stickiness
    weight: 1
tieBreak: name
`);
  const parties = [
    party('p', { requires: ['fix'], labels: { region: 'eu' }, owner: 'a' }),
    party('x', { labels: { region: 'eu' }, owner: 'a' }),
  ];

  it('names each filter’s verdict with its reason, each score’s contribution, the total and the choice', () => {
    const answer = explain(input(fleet, parties, compiled), 'p');
    expect(answer.chosen).to.equal('a');
    const [a, b, c, d] = answer.gateways;
    expect(a.filters.every((verdict) => verdict.pass)).to.equal(true);
    expect(a.load, 'the party itself left out').to.equal(1);
    expect(a.scores).to.deep.equal([
      { score: 'least-loaded', weight: 2, value: 0, contribution: 0 },
      { score: 'stickiness', weight: 1, value: 1, contribution: 1 },
    ]);
    expect(a.total).to.equal(1);
    expect(b.filters.find((v) => v.filter === 'in-region')).to.deep.equal({
      filter: 'in-region',
      pass: false,
      reason: 'false',
    });
    expect(b.total).to.equal(null);
    expect(c.filters.find((v) => v.filter === 'capability')).to.deep.equal({
      filter: 'capability',
      pass: false,
      reason: 'lacks fix',
    });
    expect(d.filters[0]).to.deep.equal({ filter: 'state', pass: false, reason: 'DRAINING, not ACTIVE' });
  });

  it('an unknown party is answered with a problem, not a throw', () => {
    expect(explain(input(fleet, parties, compiled), 'nobody').problem).to.equal('no such party');
  });
});
