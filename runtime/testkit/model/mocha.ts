// Model-based tests as mocha tests: a `describe` for the model, an `it` per path (named by its steps),
// one for the random walks, and a last one that prints the coverage report and fails if a required part
// was not fully reached. Call it at the top level of a spec file, as you would `describe`.
//
//   describeModel(createModel(counterMachine, { events, table }), {
//     paths: ['shortest', 'simple'], walks: { runs: 50 }, require: ['states', 'transitions'],
//   });

import type { AnyStateMachine } from 'xstate';
import type { CoverageReport } from './coverage.ts';
import type { MachineModel, WalkOptions } from './model.ts';
import type { SimplePathBounds } from './paths.ts';

export interface DescribeModelOptions {
  /** Which path sets get an `it` each (default: shortest). */
  readonly paths?: readonly PathKind[];
  readonly simple?: SimplePathBounds;
  /** Random walks in one `it` (default: none). */
  readonly walks?: WalkOptions;
  /** Parts of the coverage report that must be fully reached (default: none, the report is printed). */
  readonly require?: readonly Exclude<keyof CoverageReport, never>[];
  /** Print the coverage report (default true). */
  readonly report?: boolean;
}

/** shortest: to every vertex; edges: every edge once; simple: bounded simple paths. */
export type PathKind = 'shortest' | 'edges' | 'simple';

interface MochaGlobals {
  describe: (title: string, body: () => void) => void;
  it: (title: string, body: () => void) => void;
}

const mochaGlobals = (): MochaGlobals => {
  const scope = globalThis as unknown as Partial<MochaGlobals>;
  if (typeof scope.describe !== 'function' || typeof scope.it !== 'function') {
    throw new Error('describeModel runs inside mocha (describe and it are not defined)');
  }
  return scope as MochaGlobals;
};

export const describeModel = <M extends AnyStateMachine>(
  model: MachineModel<M>,
  options: DescribeModelOptions = {},
): void => {
  const { describe, it } = mochaGlobals();
  describe(`model '${model.name}'`, () => {
    for (const kind of options.paths ?? ['shortest']) {
      describe(`${kind} paths`, () => {
        const paths =
          kind === 'shortest'
            ? model.shortestPaths()
            : kind === 'edges'
              ? model.edgePaths()
              : model.simplePaths(options.simple);
        for (const path of paths) {
          it(path.name, () => {
            model.check(path.steps);
          });
        }
      });
    }
    if (options.walks) {
      const walks = options.walks;
      it(`random walks (${walks.runs ?? 100} of up to ${walks.maxLength ?? 20} steps)`, () => {
        model.checkRandomWalks(walks);
      });
    }
    it('coverage', () => {
      const report = model.coverage();
      if (options.report !== false) console.log(model.formatCoverage().replace(/^/gm, '      '));
      const missing = (options.require ?? []).flatMap((part) =>
        (report[part]?.never ?? []).map((name) => `${part}: ${name}`),
      );
      if (missing.length > 0)
        throw new Error(`model '${model.name}' never reached:\n  ${missing.join('\n  ')}`);
    });
  });
};
