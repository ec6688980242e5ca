// parseRules: a rules document from outside (YAML or JSON text, or a value) is accepted with its
// defaults or refused with every problem named by its path; nothing throws. The published JSON Schema
// (docs/gateway-rules.schema.json) is the zod schema's, written out; the example file parses.
//
//   WRITE_SCHEMA=1 npx mocha spec/actors/gateway-registry/rules-parse.spec.ts   rewrites the schema file
//   npx biome format --write docs/gateway-rules.schema.json                     then lays it out

import { readFileSync, writeFileSync } from 'node:fs';
import { expect } from 'chai';
import { parseRules, RULES_JSON_SCHEMA } from '../../../actors/services/gateway-registry/rules/index.ts';

const problemsOf = (input: unknown): { path: string; message: string }[] => {
  const parsed = parseRules(input);
  if (parsed.ok) throw new Error('expected the document to be refused');
  return parsed.problems;
};

const paths = (input: unknown): string[] => problemsOf(input).map((problem) => problem.path);

describe('gateway rules: parseRules', () => {
  it('fills the defaults of an empty document', () => {
    const parsed = parseRules('');
    expect(parsed.ok).to.equal(true);
    if (!parsed.ok) return;
    expect(parsed.rules.scores).to.deep.equal([{ kind: 'least-loaded', weight: 1 }]);
    expect(parsed.rules.rebalance).to.deep.equal({
      movesPerRound: 10,
      pauseMs: 5000,
      imbalanceThreshold: 0.2,
      settlingMs: 30000,
    });
    expect(parsed.rules.tieBreak).to.equal('hash');
  });

  it('reads JSON text and YAML text to the same document', () => {
    const yaml = parseRules('scores:\n  - kind: spread\n    label: zone\n    weight: 2\n');
    const json = parseRules('{"scores":[{"kind":"spread","label":"zone","weight":2}]}');
    expect(yaml).to.deep.equal(json);
    expect(yaml.ok).to.equal(true);
  });

  const refusals: [name: string, input: unknown, path: string, message: RegExp][] = [
    [
      'a negative weight',
      {
        scores: [
          { kind: 'least-loaded', weight: 1 },
          { kind: 'stickiness', weight: 1 },
          { kind: 'least-loaded', name: 'x', weight: -1 },
        ],
      },
      'scores[2].weight',
      />=0/,
    ],
    [
      'an unknown field',
      { filters: [{ kind: 'capability', colour: 'red' }] },
      'filters[0].colour',
      /not a known field/,
    ],
    ['an unknown kind', { filters: [{ kind: 'magic' }] }, 'filters[0].kind', /capability/],
    ['a missing field', { scores: [{ kind: 'spread', weight: 1 }] }, 'scores[0].label', /expected string/],
    ['a fractional movesPerRound', { rebalance: { movesPerRound: 1.5 } }, 'rebalance.movesPerRound', /int/],
    ['a threshold above 1', { rebalance: { imbalanceThreshold: 2 } }, 'rebalance.imbalanceThreshold', /<=1/],
    [
      'an expression that does not compile',
      { filters: [{ kind: 'expression', name: 'x', expr: 'party.labels[' }] },
      'filters[0].expr',
      /does not compile/,
    ],
    [
      'an unknown attribute',
      { scores: [{ kind: 'expression', name: 'x', weight: 1, expr: 'party.venue == "x"' }] },
      'scores[0].expr',
      /unknown attribute 'venue'/,
    ],
    [
      'a filter that is not a bool',
      { filters: [{ kind: 'expression', name: 'x', expr: 'gateway.name' }] },
      'filters[0].expr',
      /must give a bool, this gives string/,
    ],
    [
      'a score that is not a number',
      { scores: [{ kind: 'expression', name: 'x', weight: 1, expr: 'gateway.labels' }] },
      'scores[0].expr',
      /number or a bool/,
    ],
    [
      'a function that does not exist (no clock)',
      { filters: [{ kind: 'expression', name: 'x', expr: 'now() > 0' }] },
      'filters[0].expr',
      /does not compile/,
    ],
    [
      'a regular expression (no bounded cost)',
      { filters: [{ kind: 'expression', name: 'x', expr: "gateway.name.matches('^(a+)+$')" }] },
      'filters[0].expr',
      /matches\(\) is not allowed/,
    ],
    [
      'comprehensions nested three deep',
      {
        scores: [
          {
            kind: 'expression',
            name: 'x',
            weight: 1,
            expr: 'party.requires.all(a, party.requires.all(b, party.requires.exists(c, a + b == c)))',
          },
        ],
      },
      'scores[0].expr',
      /nest at most 2 deep/,
    ],
    [
      'In without values',
      { filters: [{ kind: 'labels', gateways: { matchExpressions: [{ key: 'zone', operator: 'In' }] } }] },
      'filters[0].gateways.matchExpressions[0].values',
      /at least one value/,
    ],
    [
      'Exists with values',
      {
        filters: [
          {
            kind: 'labels',
            gateways: { matchExpressions: [{ key: 'zone', operator: 'Exists', values: ['a'] }] },
          },
        ],
      },
      'filters[0].gateways.matchExpressions[0].values',
      /no values/,
    ],
    [
      'two scores of one name',
      {
        scores: [
          { kind: 'least-loaded', weight: 1 },
          { kind: 'least-loaded', weight: 2 },
        ],
      },
      'scores[1].name',
      /its own name/,
    ],
    ['text that is not YAML', 'scores: [', '', /not YAML or JSON/],
    ['a list instead of a document', '[1, 2]', '', /expected object/],
    ['text too long', `description: "${'x'.repeat(300_000)}"`, '', /longer than/],
  ];
  for (const [name, input, path, message] of refusals) {
    it(`refuses ${name}, naming ${path === '' ? 'the document' : path}`, () => {
      const problems = problemsOf(input);
      const problem = problems.find((candidate) => candidate.path === path);
      expect(problem, JSON.stringify(problems)).to.not.equal(undefined);
      expect(problem?.message).to.match(message);
    });
  }

  it('names every problem at once', () => {
    expect(
      paths({
        filters: [{ kind: 'expression', name: 'x', expr: 'party.nope' }],
        scores: [{ kind: 'spread', weight: -1, label: 'zone' }],
        rebalance: { pauseMs: -1 },
      }).sort(),
    ).to.deep.equal(['rebalance.pauseMs', 'scores[0].weight']);
    // Expressions are checked once the shape is right: both layers report together when they can.
    expect(
      paths({
        filters: [{ kind: 'expression', name: 'x', expr: 'party.nope' }],
        scores: [{ kind: 'expression', name: 'y', weight: 1, expr: '1 +' }],
      }),
    ).to.deep.equal(['filters[0].expr', 'scores[0].expr']);
  });

  it('never throws on hostile values', () => {
    for (const input of [
      null,
      42,
      'null',
      '~',
      '!!binary AAAA',
      [],
      { filters: 'x' },
      { __proto__: { x: 1 } },
      '&a [*a]',
    ]) {
      expect(() => parseRules(input)).to.not.throw();
    }
  });
});

describe('gateway rules: published schema and example', () => {
  const schemaFile = new URL('../../../docs/gateway-rules.schema.json', import.meta.url);
  const exampleFile = new URL('../../../examples/gateway-rules.yaml', import.meta.url);

  it('docs/gateway-rules.schema.json is the zod schema written out', () => {
    const current = JSON.parse(JSON.stringify(RULES_JSON_SCHEMA)) as unknown;
    if (process.env.WRITE_SCHEMA === '1') writeFileSync(schemaFile, `${JSON.stringify(current, null, 2)}\n`);
    const published = JSON.parse(readFileSync(schemaFile, 'utf8')) as unknown;
    expect(
      published,
      'regenerate: WRITE_SCHEMA=1 npx mocha <this spec>, then biome format --write it',
    ).to.deep.equal(current);
  });

  it('examples/gateway-rules.yaml is a valid rules document', () => {
    const parsed = parseRules(readFileSync(exampleFile, 'utf8'));
    expect(parsed.ok ? [] : parsed.problems).to.deep.equal([]);
  });
});
