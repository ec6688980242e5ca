// The layout rules of DESIGN.md, read from the sources' static imports (type-only imports count: they
// couple too). Imports point one way — machines ← actors ← runtime, persistence ← runtime — the client
// library reaches no server module, and the CLI loads benchmarks only when asked to run one.

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { AdminKind } from '../runtime/wire/admin-frames.ts';
import { ClientKind } from '../runtime/wire/client-frames.ts';
import { PeerKind } from '../runtime/wire/peer-frames.ts';
import { TransportKind } from '../runtime/wire/transport.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

const sourcesUnder = (folder: string): string[] =>
  readdirSync(join(root, folder)).flatMap((name) => {
    const path = join(folder, name);
    if (statSync(join(root, path)).isDirectory()) return sourcesUnder(path);
    return path.endsWith('.ts') ? [path] : [];
  });

// `import ... from '...'`, `export ... from '...'` and `import '...'`, relative only; never `import('...')`.
const STATIC_IMPORT = /^\s*(?:import|export)\b[^'"();]*?(?:\bfrom\s*)?['"](\.{1,2}\/[^'"]+)['"]/gm;

/** The repository paths a source file imports statically. */
const staticImports = (source: string, text: string): string[] =>
  [...text.matchAll(STATIC_IMPORT)].map((match) => relative(root, resolve(root, dirname(source), match[1])));

const importsOf = (file: string): string[] => staticImports(file, readFileSync(join(root, file), 'utf8'));

/** Every module a file reaches through static imports, itself included. */
const reach = (start: string): Set<string> => {
  const seen = new Set<string>();
  const queue = [start];
  while (queue.length > 0) {
    const file = queue.pop() as string;
    if (seen.has(file)) continue;
    seen.add(file);
    queue.push(...importsOf(file));
  }
  return seen;
};

const violations = (folder: string, allowed: readonly string[]): string[] =>
  sourcesUnder(folder).flatMap((file) =>
    importsOf(file)
      .filter((target) => !allowed.some((prefix) => target.startsWith(prefix)))
      .map((target) => `${file} imports ${target}`),
  );

/** Server modules the client library must not reach. */
const SERVER_MODULES = [
  'runtime/member',
  'runtime/config.ts',
  'runtime/peer-network.ts',
  'runtime/actor-runtime/',
  'persistence/',
  'actors/consensus/',
  'actors/sessions/session-manager.ts',
];

describe('layout', () => {
  it('reads static imports, not dynamic ones, relative to the importing file', () => {
    const text = [
      "import { a } from '../actors/log/log-entry.ts';",
      "import type {\n  B,\n} from './wire/client-frames.ts';",
      "export { c } from './client/client.ts';",
      "import './side-effect.ts';",
      "const lazy = await import('../benchmarks/run.ts');",
    ].join('\n');
    expect(staticImports('runtime/cli.ts', text)).to.deep.equal([
      'actors/log/log-entry.ts',
      'runtime/wire/client-frames.ts',
      'runtime/client/client.ts',
      'runtime/side-effect.ts',
    ]);
  });

  it('machines/ imports nothing outside machines/', () => {
    expect(violations('machines', ['machines/'])).to.deep.equal([]);
  });

  it('actors/ imports only machines/ and actors/ (no runtime, no persistence)', () => {
    expect(violations('actors', ['machines/', 'actors/'])).to.deep.equal([]);
  });

  it('gateway/ (the gateway process, a cluster client) imports runtime/ and machines/ only, not actors/', () => {
    expect(violations('gateway', ['gateway/', 'runtime/', 'machines/'])).to.deep.equal([]);
  });

  it('persistence/ imports no runtime module', () => {
    expect(violations('persistence', ['persistence/', 'machines/', 'actors/'])).to.deep.equal([]);
  });

  it('shipped code imports nothing from spec/ or benchmarks/ (test oracles such as the reference matcher stay with the tests)', () => {
    const shipped = ['machines', 'actors', 'runtime', 'persistence', 'examples'].flatMap(sourcesUnder);
    const reached = shipped.concat('index.ts').flatMap((file) =>
      importsOf(file)
        .filter((target) => target.startsWith('spec/') || target.startsWith('benchmarks/'))
        .map((target) => `${file} imports ${target}`),
    );
    expect(reached).to.deep.equal([]);
  });

  it('the client library reaches no server module', () => {
    const reached = [
      ...sourcesUnder('runtime/client').reduce((all, file) => {
        for (const module of reach(file)) all.add(module);
        return all;
      }, new Set<string>()),
    ];
    expect(
      reached.filter((module) => SERVER_MODULES.some((prefix) => module.startsWith(prefix))),
    ).to.deep.equal([]);
  });

  it('every frame kind is declared under runtime/wire/, each number once', () => {
    const declaredElsewhere = ['actors', 'runtime', 'persistence', 'benchmarks']
      .flatMap(sourcesUnder)
      .filter((file) => !file.startsWith('runtime/wire/'))
      .filter((file) => /^export const \w*Kind = \{/m.test(readFileSync(join(root, file), 'utf8')))
      .filter((file) => file !== 'actors/log/log-entry.ts'); // EntryKind: log entries, not frames
    expect(declaredElsewhere).to.deep.equal([]);
    const kinds = [TransportKind, PeerKind, ClientKind, AdminKind].flatMap((kind) => Object.values(kind));
    expect(new Set(kinds).size).to.equal(kinds.length);
  });

  it('the CLI and the configuration load no wire codec at run time (so --help and config check start without msgpack)', () => {
    // What Node loads: static imports less the type-only ones, which are erased.
    const loaded = (start: string): Set<string> => {
      const seen = new Set<string>();
      const queue = [start];
      while (queue.length > 0) {
        const file = queue.pop() as string;
        if (seen.has(file)) continue;
        seen.add(file);
        const text = readFileSync(join(root, file), 'utf8').replace(
          /^\s*(?:import|export) type\b[^;]*;/gm,
          '',
        );
        queue.push(...staticImports(file, text));
      }
      return seen;
    };
    const reached = [...loaded('runtime/cli.ts'), ...loaded('runtime/config.ts')];
    expect(reached.filter((module) => module.startsWith('runtime/wire/frame-codec'))).to.deep.equal([]);
  });

  it('the CLI loads benchmarks/ only when a benchmark runs (no static import)', () => {
    expect([...reach('runtime/cli.ts')].filter((module) => module.startsWith('benchmarks/'))).to.deep.equal(
      [],
    );
  });
});
