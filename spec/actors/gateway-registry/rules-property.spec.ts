// Properties of plan() over random fleets, parties and rules (fresh seed each run; a failure prints
// how to replay it): the same input in any order gives the same plan; every move lands on an ACTIVE
// gateway that passes every hard filter (checked here by an independent oracle, not the planner's
// code) and has room; no party is left unplaced while a gateway could take it; forced moves happen
// exactly for the parties that need them and rebalance moves stay within the budget; and applying
// plan after plan reaches a fixed point, with the imbalance under the threshold when nothing but
// integrality and stickiness stands in the way.

import { expect } from 'chai';
import fc from 'fast-check';
import {
  compileRules,
  type GatewayView,
  type PartyView,
  type Plan,
  type PlanInput,
  parseRules,
  plan,
} from '../../../actors/services/gateway-registry/rules/index.ts';
import { checkProperty } from '../../support/property.ts';
import { rules } from './rules-fixtures.ts';

const CAPABILITIES = ['fix', 'itch', 'ws'];
const NOW = 100_000;

const labelsOf = (entries: [string, string | null][]): Record<string, string> =>
  Object.fromEntries(entries.filter((entry): entry is [string, string] => entry[1] !== null));

const gatewayArb = (name: string): fc.Arbitrary<GatewayView> =>
  fc
    .record({
      capabilities: fc.subarray(CAPABILITIES),
      zone: fc.constantFrom('z1', 'z2', 'z3', null),
      tier: fc.constantFrom('gold', 'std', null),
      region: fc.constantFrom('eu', 'us', null),
      blocked: fc.constantFrom('yes', null, null, null),
      capacity: fc.integer({ min: 0, max: 12 }),
      state: fc.constantFrom('ACTIVE', 'ACTIVE', 'ACTIVE', 'ACTIVE', 'REGISTERING', 'DRAINING', 'LOST'),
      registeredAtMs: fc.integer({ min: 0, max: NOW }),
    })
    .map((g) => ({
      name,
      capabilities: g.capabilities,
      labels: labelsOf([
        ['zone', g.zone],
        ['tier', g.tier],
        ['region', g.region],
        ['blocked', g.blocked],
      ]),
      capacity: g.capacity,
      state: g.state as GatewayView['state'],
      registeredAtMs: g.registeredAtMs,
    }));

const partyArb = (id: string, owners: readonly string[]): fc.Arbitrary<PartyView> =>
  fc
    .record({
      requires: fc.subarray(CAPABILITIES, { maxLength: 2 }),
      tier: fc.constantFrom('gold', 'std', null),
      region: fc.constantFrom('eu', 'us', null),
      venue: fc.constantFrom('lse', 'cme', null),
      owner: fc.option(fc.constantFrom(...owners, 'ghost'), { freq: 3 }),
      state: fc.constantFrom('OPEN', 'OPEN', 'OPEN', 'OFFERED', 'MOVING', 'CLOSING'),
      target: fc.option(fc.constantFrom(...owners), { freq: 4 }),
    })
    .map((p) => ({
      id,
      labels: labelsOf([
        ['tier', p.tier],
        ['region', p.region],
        ['venue', p.venue],
      ]),
      requires: p.requires,
      owner: p.owner,
      state: (p.owner === null ? 'UNASSIGNED' : p.state) as PartyView['state'],
      // Where a MOVING party lands (the registry gives every MOVING party one; a few here lack it).
      target: p.owner !== null && p.state === 'MOVING' ? p.target : null,
    }));

const GOLD_ON_GOLD = {
  kind: 'labels',
  name: 'gold-on-gold',
  parties: { matchLabels: { tier: 'gold' } },
  gateways: { matchLabels: { tier: 'gold' } },
};
const NOT_BLOCKED = { kind: 'expression', name: 'not-blocked', expr: "!('blocked' in gateway.labels)" };
const CME_ON_GOLD = {
  kind: 'expression',
  name: 'cme-on-gold',
  expr: "!('venue' in party.labels) || party.labels.venue != 'cme' || ('tier' in gateway.labels && gateway.labels.tier == 'gold')",
};

const weight = fc.double({ min: 0, max: 3, noNaN: true });
const scoreArb = fc.oneof(
  weight.map((w) => ({ kind: 'least-loaded', weight: w })),
  weight.map((w) => ({ kind: 'spread', label: 'zone', weight: w })),
  weight.map((w) => ({ kind: 'stickiness', weight: w })),
  weight.map((w) => ({ kind: 'affinity', partyLabel: 'region', weight: w })),
  weight.map((w) => ({ kind: 'anti-affinity', partyLabel: 'venue', weight: w })),
  weight.map((w) => ({ kind: 'expression', weight: w, expr: "gateway.labels.tier == 'gold' ? 1.0 : 0.25" })),
);

const documentArb = fc.record({
  filters: fc
    .record({
      gold: fc.boolean(),
      blocked: fc.boolean(),
      cme: fc.boolean(),
      maxUtilisation: fc.option(fc.constantFrom(0.5, 0.8, 1)),
    })
    .map((f) => [
      ...(f.gold ? [GOLD_ON_GOLD] : []),
      ...(f.blocked ? [NOT_BLOCKED] : []),
      ...(f.cme ? [CME_ON_GOLD] : []),
      ...(f.maxUtilisation === null ? [] : [{ kind: 'capacity', maxUtilisation: f.maxUtilisation }]),
    ]),
  scores: fc
    .array(scoreArb, { maxLength: 5 })
    .map((scores) => scores.map((s, i) => ({ ...s, name: `s${i}` }))),
  tieBreak: fc.constantFrom('name', 'hash'),
  rebalance: fc.record({
    movesPerRound: fc.integer({ min: 0, max: 6 }),
    pauseMs: fc.integer({ min: 0, max: 10_000 }),
    imbalanceThreshold: fc.double({ min: 0, max: 0.6, noNaN: true }),
    settlingMs: fc.integer({ min: 0, max: NOW }),
  }),
});

type Document = typeof documentArb extends fc.Arbitrary<infer T> ? T : never;

const scenarioArb = fc
  .record({ gatewayCount: fc.integer({ min: 1, max: 7 }), partyCount: fc.integer({ min: 0, max: 50 }) })
  .chain(({ gatewayCount, partyCount }) => {
    const names = Array.from({ length: gatewayCount }, (_, i) => `gw-${String.fromCharCode(97 + i)}`);
    return fc.record({
      gateways: fc.tuple(...names.map(gatewayArb)),
      parties: fc.tuple(...Array.from({ length: partyCount }, (_, i) => partyArb(`p${i}`, names))),
      document: documentArb,
      lastRebalanceAtMs: fc.option(fc.integer({ min: NOW - 10_000, max: NOW })),
      order: fc.array(fc.nat(), {
        minLength: gatewayCount + partyCount,
        maxLength: gatewayCount + partyCount,
      }),
    });
  });

type Scenario = typeof scenarioArb extends fc.Arbitrary<infer T> ? T : never;

const inputOf = (scenario: Scenario): PlanInput => ({
  gateways: scenario.gateways,
  parties: scenario.parties,
  rules: rules(scenario.document),
  nowMs: NOW,
  lastRebalanceAtMs: scenario.lastRebalanceAtMs,
});

/** The same lists in another order, given by random keys. */
const reorder = <T>(items: readonly T[], keys: readonly number[]): T[] =>
  items
    .map((item, index) => ({ item, key: keys[index] ?? 0, index }))
    .sort((a, b) => a.key - b.key || b.index - a.index)
    .map(({ item }) => item);

// The oracle: the hard filters as the document states them, written out independently.
const capacityOf = (g: GatewayView, document: Document): number => {
  const capacity = document.filters.find((f) => f.kind === 'capacity') as
    | { maxUtilisation?: number }
    | undefined;
  return Math.floor(g.capacity * (capacity?.maxUtilisation ?? 1) + 1e-9);
};
const passesFilters = (p: PartyView, g: GatewayView, document: Document): boolean => {
  if (!p.requires.every((c) => g.capabilities.includes(c))) return false;
  const names = new Set(document.filters.map((f) => (f as { name?: string }).name));
  if (names.has('gold-on-gold') && p.labels.tier === 'gold' && g.labels.tier !== 'gold') return false;
  if (names.has('not-blocked') && g.labels.blocked !== undefined) return false;
  if (names.has('cme-on-gold') && p.labels.venue === 'cme' && g.labels.tier !== 'gold') return false;
  return true;
};

/** Owners after the plan's moves. */
const ownersAfter = (parties: readonly PartyView[], result: Plan): Map<string, string | null> => {
  const owners = new Map(parties.map((p) => [p.id, p.owner]));
  for (const move of result.moves) owners.set(move.party, move.to);
  return owners;
};

describe('gateway rules: plan properties', () => {
  it('is deterministic: the same input in any order gives the same plan', () => {
    checkProperty(
      fc.property(scenarioArb, (scenario) => {
        const input = inputOf(scenario);
        const first = plan(input);
        expect(plan(input)).to.deep.equal(first);
        const shuffled = {
          ...input,
          gateways: reorder(input.gateways, scenario.order),
          parties: reorder(input.parties, scenario.order.slice(input.gateways.length)),
        };
        expect(plan(shuffled)).to.deep.equal(first);
      }),
      { numRuns: 100 },
    );
  });

  it('a parsed document, stored as JSON (as a snapshot keeps it) and parsed again, is itself and plans alike', () => {
    checkProperty(
      fc.property(scenarioArb, (scenario) => {
        const first = parseRules(scenario.document);
        if (!first.ok) throw new Error(JSON.stringify(first.problems));
        const again = parseRules(JSON.parse(JSON.stringify(first.rules)));
        expect(again).to.deep.equal(first);
        if (!again.ok) return;
        const input = inputOf(scenario);
        expect(plan({ ...input, rules: compileRules(again.rules) })).to.deep.equal(plan(input));
      }),
      { numRuns: 50 },
    );
  });

  it('respects every hard filter and capacity, leaves no party unplaced that fits, keeps the budget', () => {
    checkProperty(
      fc.property(scenarioArb, (scenario) => {
        const input = inputOf(scenario);
        const { document } = scenario;
        const result = plan(input);
        const byName = new Map(input.gateways.map((g) => [g.name, g]));
        const owners = ownersAfter(input.parties, result);
        // Slots each gateway holds or awaits after the plan: its parties (in flight ones too), the MOVING
        // parties on their way to it, and those this plan moves away (open there until their close).
        const load = new Map<string, number>();
        const take = (name: string) => load.set(name, (load.get(name) ?? 0) + 1);
        for (const owner of owners.values()) if (owner !== null) take(owner);
        for (const p of input.parties) {
          const owner = p.owner === null ? undefined : byName.get(p.owner);
          if (p.state === 'MOVING' && p.target && owner && owner.state !== 'LOST' && p.target !== p.owner)
            take(p.target);
        }
        for (const move of result.moves) if (move.from !== null) take(move.from);
        const moved = new Set<string>();
        for (const move of result.moves) {
          expect(moved.has(move.party), `${move.party} moves once`).to.equal(false);
          moved.add(move.party);
          const target = byName.get(move.to);
          const party = input.parties.find((p) => p.id === move.party);
          expect(target?.state, `${move.party} to ${move.to}`).to.equal('ACTIVE');
          if (target === undefined || party === undefined)
            throw new Error('move names an unknown party or gateway');
          expect(
            passesFilters(party, target, document),
            `${move.party} passes the filters on ${move.to}`,
          ).to.equal(true);
          expect(load.get(move.to), `${move.to} within capacity`).to.be.at.most(capacityOf(target, document));
          const owner = party.owner === null ? undefined : byName.get(party.owner);
          const expected =
            party.owner === null
              ? 'unassigned'
              : owner === undefined || owner.state === 'LOST'
                ? 'owner-lost'
                : party.state === 'MOVING' || party.state === 'CLOSING'
                  ? 'none (in flight)'
                  : owner.state === 'DRAINING'
                    ? 'owner-draining'
                    : !passesFilters(party, owner, document)
                      ? 'filter'
                      : ['filter', 'rebalance'];
          if (Array.isArray(expected)) expect(expected).to.include(move.reason);
          else expect(move.reason).to.equal(expected);
          if (move.reason === 'rebalance') {
            expect(party.state).to.equal('OPEN');
            expect(target.registeredAtMs, 'a settled target').to.be.at.most(
              NOW - document.rebalance.settlingMs,
            );
          }
        }
        withinBudget(result);
        const paused =
          input.lastRebalanceAtMs !== null && NOW - input.lastRebalanceAtMs < document.rebalance.pauseMs;
        expect(result.rebalanceBudget).to.equal(paused ? 0 : document.rebalance.movesPerRound);
        // A party that needs a gateway and is unplaced: no ACTIVE gateway passing its filters had room
        // (a party moved away still holds its slot until it has closed).
        for (const id of result.unplaced) {
          const party = input.parties.find((p) => p.id === id);
          if (party === undefined) throw new Error(`unplaced names an unknown party ${id}`);
          for (const g of input.gateways) {
            if (g.state !== 'ACTIVE' || !passesFilters(party, g, document)) continue;
            const room = capacityOf(g, document) - (load.get(g.name) ?? 0);
            expect(room, `${id} unplaced while ${g.name} has room`).to.be.at.most(0);
          }
        }
      }),
      { numRuns: 200 },
    );
  });

  it('relieves a pile-up with movesPerRound moves at most, as many as even it out', () => {
    const pileArb = fc.record({
      pile: fc.integer({ min: 2, max: 40 }),
      empties: fc.integer({ min: 1, max: 5 }),
      movesPerRound: fc.integer({ min: 0, max: 8 }),
      tieBreak: fc.constantFrom('name', 'hash'),
    });
    checkProperty(
      fc.property(pileArb, ({ pile, empties, movesPerRound, tieBreak }) => {
        const gateways = Array.from({ length: empties + 1 }, (_, i) => ({
          name: `gw-${i}`,
          capabilities: [],
          labels: {},
          capacity: 40,
          state: 'ACTIVE' as const,
          registeredAtMs: 0,
        }));
        const parties = Array.from({ length: pile }, (_, i) => ({
          id: `p${i}`,
          labels: {},
          requires: [],
          owner: 'gw-0',
          state: 'OPEN' as const,
        }));
        const document = { tieBreak, rebalance: { movesPerRound, imbalanceThreshold: 0, settlingMs: 0 } };
        const result = plan({
          gateways,
          parties,
          rules: rules(document),
          nowMs: NOW,
          lastRebalanceAtMs: null,
        });
        withinBudget(result);
        expect(result.moves.length).to.equal(Math.min(movesPerRound, pile - Math.ceil(pile / (empties + 1))));
      }),
      { numRuns: 100 },
    );
  });

  it('converges: plan after plan reaches a fixed point', () => {
    checkProperty(
      fc.property(scenarioArb, (scenario) => {
        const input = inputOf(scenario);
        const rounds = converge(input, 400);
        expect(rounds, 'a plan with no moves within 400 rounds').to.be.below(400);
      }),
      { numRuns: 100 },
    );
  });

  it('converges under the threshold when only integrality and stickiness stand in the way', () => {
    const fleetArb = fc.record({
      capacities: fc.array(fc.integer({ min: 1, max: 12 }), { minLength: 2, maxLength: 6 }),
      fill: fc.double({ min: 0, max: 1, noNaN: true }),
      where: fc.array(fc.oneof(fc.constant(0), fc.nat()), { maxLength: 72 }), // half of them piled on gw-0
      leastLoaded: fc.double({ min: 0.5, max: 2, noNaN: true }),
      stickiness: fc.double({ min: 0, max: 0.5, noNaN: true }),
      threshold: fc.double({ min: 0, max: 0.5, noNaN: true }),
      movesPerRound: fc.integer({ min: 1, max: 5 }),
    });
    checkProperty(
      fc.property(fleetArb, (f) => {
        const gateways = f.capacities.map((capacity, i) => ({
          name: `gw-${i}`,
          capabilities: [],
          labels: {},
          capacity,
          state: 'ACTIVE' as const,
          registeredAtMs: 0,
        }));
        const total = f.capacities.reduce((a, b) => a + b, 0);
        const count = Math.min(f.where.length, Math.floor(total * f.fill));
        // Piled up where the draw says (within capacity), as after gateways started minutes apart.
        const room = [...f.capacities];
        const parties: PartyView[] = [];
        for (let i = 0; i < count; i++) {
          let at = f.where[i] % gateways.length;
          while (room[at] === 0) at = (at + 1) % gateways.length;
          room[at]--;
          parties.push({ id: `p${i}`, labels: {}, requires: [], owner: `gw-${at}`, state: 'OPEN' });
        }
        const document = {
          scores: [
            { kind: 'least-loaded', weight: f.leastLoaded },
            { kind: 'stickiness', weight: f.stickiness },
          ],
          rebalance: {
            movesPerRound: f.movesPerRound,
            pauseMs: 1000,
            imbalanceThreshold: f.threshold,
            settlingMs: 0,
          },
        };
        const input: PlanInput = {
          gateways,
          parties,
          rules: rules(document),
          nowMs: NOW,
          lastRebalanceAtMs: null,
        };
        const last: { input?: PlanInput } = {};
        const rounds = converge(input, 2000, last);
        expect(rounds).to.be.below(2000);
        const final = plan(last.input ?? input);
        const bound =
          Math.max(f.threshold, 1 / Math.min(...f.capacities) + f.stickiness / f.leastLoaded) + 1e-9;
        expect(final.imbalanceAfter, `imbalance at the fixed point (bound ${bound})`).to.be.at.most(bound);
      }),
      { numRuns: 150 },
    );
  });
});

/** Rebalance moves (counted from the moves themselves) within the round's budget. */
function withinBudget(result: Plan): void {
  const rebalanceMoves = result.moves.filter((move) => move.reason === 'rebalance').length;
  expect(result.rebalanceMovesUsed).to.equal(rebalanceMoves);
  expect(rebalanceMoves, 'rebalance moves within the budget').to.be.at.most(result.rebalanceBudget);
}

/** Apply plans (moved parties open on their target at once) until one makes no move; the rounds taken. */
function converge(start: PlanInput, limit: number, last: { input?: PlanInput } = {}): number {
  let input = start;
  const pauseMs = (start.rules.document.rebalance as { pauseMs: number }).pauseMs;
  for (let round = 0; round < limit; round++) {
    const result = plan(input);
    withinBudget(result);
    last.input = input;
    if (result.moves.length === 0) return round;
    const owners = ownersAfter(input.parties, result);
    const movedNow = new Set(result.moves.map((m) => m.party));
    input = {
      ...input,
      parties: input.parties.map((p) =>
        movedNow.has(p.id) ? { ...p, owner: owners.get(p.id) ?? null, state: 'OPEN' as const } : p,
      ),
      nowMs: input.nowMs + pauseMs,
      lastRebalanceAtMs: result.rebalanceMovesUsed > 0 ? input.nowMs : input.lastRebalanceAtMs,
    };
  }
  return limit;
}
