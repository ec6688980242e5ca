// docs/services.md stays true to the code: every name its examples import exists where they import it
// from (values are looked up on the module, types in its source), and the worked example it names exists.

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { expect } from 'chai';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const doc = readFileSync(join(repoRoot, 'docs', 'services.md'), 'utf8');

/** Where an import in the doc points: the package root is index.ts; relative paths are from examples/. */
const moduleFile = (from: string): string | null => {
  if (from === 'chorus') return join(repoRoot, 'index.ts');
  if (from.startsWith('.')) return join(repoRoot, 'examples', from);
  return null; // xstate, zod: not ours
};

describe('docs/services.md stays true to the code', () => {
  it('every name its examples import is exported where they import it from', async () => {
    const imports = [...doc.matchAll(/^import (type )?\{([^}]+)\} from '([^']+)';$/gm)];
    let checked = 0;
    for (const [, allTypes, names, from] of imports) {
      const file = moduleFile(from);
      if (file === null) continue;
      expect(existsSync(file), `${from} (${file})`).to.equal(true);
      const module = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
      const source = readFileSync(file, 'utf8');
      for (const raw of names
        .split(',')
        .map((n) => n.trim())
        .filter(Boolean)) {
        const isType = allTypes !== undefined || raw.startsWith('type ');
        const name = raw.replace(/^type /, '');
        if (isType) {
          expect(source, `type ${name} from ${from}`).to.match(
            new RegExp(`export (type|interface) ${name}\\b|\\btype ${name}\\b[^;]*[,}]`),
          );
        } else {
          expect(module, `${name} from ${from}`).to.have.property(name);
        }
        checked++;
      }
    }
    expect(checked, 'names checked').to.be.at.least(8);
  });

  it('names the worked example and the spec that runs it, and both exist', () => {
    for (const path of ['examples/bank-service.ts', 'spec/runtime/actors-cluster/bank-service.spec.ts']) {
      expect(doc).to.include(path);
      expect(existsSync(join(repoRoot, path)), path).to.equal(true);
    }
  });
});
