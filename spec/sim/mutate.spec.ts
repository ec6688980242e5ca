// The mutation runner's patches: each must find its target in the consensus module exactly once,
// wherever a refactor moved it and however it is indented, and a target that is gone must fail loudly
// rather than leave a mutation that changes nothing.

import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { MUTATIONS, type Mutation } from '../../runtime/sim/mutate/mutations.ts';
import { applyMutation, patchesOf, patchProblem } from '../../runtime/sim/mutate/scratch.ts';

const mutation = (find: string, replace: string, more?: Mutation['more']): Mutation => ({
  id: 'test',
  rule: 'test',
  kind: 'safety',
  find,
  replace,
  more,
});

/** A throwaway tree with consensus source files of the given contents. */
const tree = (files: Record<string, string>): string => {
  const root = mkdtempSync(join(tmpdir(), 'chorus-mutate-spec-'));
  mkdirSync(join(root, 'actors/consensus/nested'), { recursive: true });
  for (const [name, text] of Object.entries(files)) writeFileSync(join(root, 'actors/consensus', name), text);
  return root;
};

describe('mutate: locating a rule in the consensus module', () => {
  it("every mutation's patches are found exactly once in today's consensus module", () => {
    const problems = MUTATIONS.flatMap((m) => {
      const problem = patchProblem(m);
      return problem === null ? [] : [`${m.id}: ${problem}`];
    });
    expect(problems).to.deep.equal([]);
    expect(MUTATIONS.filter((m) => m.kind === 'safety').length).to.be.greaterThan(10);
  });

  it('finds a target moved to another file and re-indented, and patches only that text', () => {
    const root = tree({
      'a.ts': 'const x = 1;\n',
      'nested/b.ts':
        'class B {\n  f() {\n      if (this.flushed >= index)\n        this.flushed = index - 1;\n  }\n}\n',
    });
    try {
      const m = mutation('if (this.flushed >= index) this.flushed = index - 1;', '/* gone */');
      expect(patchProblem(m, root)).to.equal(null);
      const undo = applyMutation(root, m);
      expect(readFileSync(join(root, 'actors/consensus/nested/b.ts'), 'utf8')).to.equal(
        'class B {\n  f() {\n      /* gone */\n  }\n}\n',
      );
      undo();
      expect(readFileSync(join(root, 'actors/consensus/nested/b.ts'), 'utf8')).to.contain('index - 1;');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('a target that is gone, or found twice, fails loudly and patches nothing', () => {
    const root = tree({ 'a.ts': 'return matches[0];\n', 'b.ts': 'return matches[0];\nother();\n' });
    try {
      const missing = mutation('return matches[this.quorum - 1];', 'return 0;');
      expect(patchProblem(missing, root)).to.match(/^target not found/);
      expect(() => applyMutation(root, missing)).to.throw(/target not found/);
      const twice = mutation('return matches[0];', 'return 1;');
      expect(patchProblem(twice, root)).to.match(/^target found 2 times \(actors\/consensus\/a\.ts/);
      // A mutation whose second patch is gone applies neither.
      const half = mutation('other();', 'nothing();', [{ find: 'not in the tree', replace: '' }]);
      expect(patchesOf(half)).to.have.length(2);
      expect(() => applyMutation(root, half)).to.throw(/target not found/);
      expect(readFileSync(join(root, 'actors/consensus/b.ts'), 'utf8')).to.contain('other();');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
