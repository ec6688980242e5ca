// docs/runbook.md stays true to the code: one row for every failure id of the project's failure cases,
// and every test a row cites exists, by file and name.

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Every failure id in FAILURE-CASES.md, by group. */
const FAILURE_IDS = Object.entries({ N: 7, P: 6, D: 5, C: 6, O: 7, R: 5, G: 4 }).flatMap(([group, count]) =>
  Array.from({ length: count }, (_, i) => `${group}${i + 1}`),
);

describe('runbook (docs/runbook.md) stays true to the specs', () => {
  const runbook = readFileSync(join(repoRoot, 'docs', 'runbook.md'), 'utf8');

  it('has exactly one row for every failure id, each with what you see, what to do and a test', () => {
    const rows = runbook.split('\n').filter((line) => /^\| [A-Z]\d \|/.test(line));
    const ids = rows.map((line) => line.split('|')[1].trim());
    expect(ids.slice().sort()).to.deep.equal(FAILURE_IDS.slice().sort());
    for (const row of rows) {
      const cells = row.split(/(?<!\\)\|/).slice(1, -1);
      expect(cells, row.slice(0, 40)).to.have.length(5);
      for (const cell of cells) expect(cell.trim(), row.slice(0, 40)).not.to.equal('');
    }
  });

  it('every test it cites exists, by file and title (rename a test: update its runbook row)', () => {
    const citation =
      /`(spec\/[^`]+\.spec\.ts)`((?:\s*"[^"]+",?(?: and the other [^;|]*| \(and the other [^)]*\))?)+)/g;
    let cited = 0;
    for (const [, file, names] of runbook.matchAll(citation)) {
      const path = join(repoRoot, file);
      expect(existsSync(path), `docs/runbook.md cites ${file}, which does not exist`).to.equal(true);
      const titles = testTitles(readFileSync(path, 'utf8'));
      for (const [, name] of names.matchAll(/"([^"]+)"/g)) {
        cited++;
        // A name cut short with "…" or "..." is matched by the part before it.
        const known = name
          .split('…')[0]
          .replace(/\s*\.\.\.$/, '')
          .trim();
        expect(
          titles.some((title) => title.includes(known)),
          `docs/runbook.md cites "${name}" in ${file}, which has no test of that title`,
        ).to.equal(true);
      }
    }
    // Every quoted name in a row's tests cell belongs to a citation checked above: none slipped through.
    // The Security section's table has one column fewer (refusal, what you see, what to do, test).
    const security = runbook.slice(runbook.indexOf('\n## Security'), runbook.indexOf('\n## Procedures'));
    const securityRows = security.split('\n').filter((line) => /^\| [a-z]/.test(line));
    const quoted = [
      ...runbook
        .split('\n')
        .filter((line) => /^\| [A-Z]\d \|/.test(line))
        .map((line) => line.split(/(?<!\\)\|/).slice(1, -1)[4] ?? ''),
      ...securityRows.map((line) => line.split(/(?<!\\)\|/).slice(1, -1)[3] ?? ''),
    ].reduce((n, cell) => n + (cell.match(/"[^"]+"/g)?.length ?? 0), 0);
    expect(cited).to.equal(quoted);
    expect(cited).to.be.greaterThan(40);
  });
});

/** The titles of a spec file's tests (`it('…')`, quotes of any kind), not its comments. */
const testTitles = (source: string): string[] =>
  [...source.matchAll(/\bit\(\s*(['"`])((?:\\.|(?!\1)[^\\])*)\1/g)].map(([, , title]) =>
    title.replace(/\\(['"`])/g, '$1'),
  );
