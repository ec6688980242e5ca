// `npm run mutate`: does the simulator's sweep catch a broken consensus rule? Each mutation in
// ./mutations.ts breaks one rule in a scratch copy of the source tree; the runner runs the seeded sweep
// (`chorus sim --seeds N --json`) against it and reports which breaks the sweep caught, as a table on
// stdout and as JSON (--out). It exits non-zero when the unmutated tree fails the sweep, when a patch
// does not apply exactly once, or when a break of a safety rule is not caught.
//
// Why a script of our own and not StrykerJS: Stryker mutates operators everywhere it can (hundreds of
// mutants in node.ts, most equivalent or about logging and bounds), and its mocha runner would judge
// them by the unit tests; the question here is a different one — does the *sweep*, not a unit test,
// catch the break of each named rule the issue lists? Named find/replace patches answer exactly that,
// read as a list of rules, fail loudly when a refactor moves the code, need no new dependency (Stryker
// would add a runner, a TypeScript checker plugin and their transitive packages), and run the real CLI
// in a copy of the tree, so nothing in the working checkout is ever modified.

import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { MUTATIONS, type Mutation } from './mutations.ts';
import { applyMutation, patchProblem, removeScratch, scratchCopy } from './scratch.ts';

interface Options {
  seeds: number;
  startSeed: number;
  only: string | null;
  out: string;
  json: boolean;
  /** Break the rules in a copy of this git revision instead of the working tree. */
  rev: string | undefined;
  /** Also run the redundant mutations (no run can catch them; skipped by default to save minutes). */
  redundant: boolean;
}

export interface MutantResult {
  id: string;
  kind: Mutation['kind'];
  rule: string;
  /** CAUGHT by the sweep, SURVIVED it, or the patch did not apply exactly once (PATCH_MISMATCH). */
  status: 'CAUGHT' | 'SURVIVED' | 'PATCH_MISMATCH' | 'ERROR' | 'SKIPPED';
  /** The sweep that caught it: `3 members` or `5 members`. */
  caughtBy: string | null;
  firstFailingSeed: number | null;
  /** The first violated invariant (or 'NOT_LINEARIZABLE'). */
  invariant: string | null;
  replay: string | null;
  seconds: number;
  detail?: string;
}

const parseArgs = (argv: readonly string[]): Options => {
  const options: Options = {
    seeds: 300,
    startSeed: 1,
    only: null,
    out: join(tmpdir(), 'chorus-mutation-report.json'),
    json: false,
    rev: undefined,
    redundant: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const value = argv[i + 1];
    switch (argv[i]) {
      case '--seeds':
        options.seeds = Number(value);
        i++;
        break;
      case '--start-seed':
        options.startSeed = Number(value);
        i++;
        break;
      case '--only':
        options.only = value;
        i++;
        break;
      case '--out':
        options.out = resolve(value);
        i++;
        break;
      case '--json':
        options.json = true;
        break;
      case '--redundant':
        options.redundant = true;
        break;
      case '--rev':
        options.rev = value;
        i++;
        break;
      default:
        throw new Error(
          `unknown argument ${argv[i]}: use --seeds N, --start-seed S, --only ID, --rev GIT-REV, --redundant, --out FILE, --json`,
        );
    }
  }
  if (!Number.isInteger(options.seeds) || options.seeds < 1)
    throw new Error('--seeds must be a whole number ≥ 1');
  return options;
};

interface SweepOutcome {
  failed: boolean;
  firstFailingSeed: number | null;
  invariant: string | null;
  replay: string | null;
  error?: string;
}

/** The sweep in chunks of CHUNK seeds, stopping at the first chunk that fails (a caught mutant is quick). */
const CHUNK = 25;

const sweep = (scratch: string, options: Options, members: 3 | 5): SweepOutcome => {
  const end = options.startSeed + options.seeds;
  let outcome: SweepOutcome = { failed: false, firstFailingSeed: null, invariant: null, replay: null };
  for (let start = options.startSeed; start < end && !outcome.failed; start += CHUNK) {
    outcome = sweepChunk(scratch, start, Math.min(CHUNK, end - start), members);
  }
  return outcome;
};

const sweepChunk = (scratch: string, startSeed: number, seeds: number, members: 3 | 5): SweepOutcome => {
  const args = ['--import', 'tsx', 'runtime/cli.ts', 'sim', '--json'];
  args.push('--seeds', String(seeds), '--start-seed', String(startSeed), '--members', String(members));
  const run = spawnSync(process.execPath, args, {
    cwd: scratch,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  const line = run.stdout.trim().split('\n').pop() ?? '';
  try {
    const report = JSON.parse(line) as {
      violations: number;
      linearizable: boolean;
      firstFailingSeed: number | null;
      replay: string | null;
      failures: { violations: { invariant: string }[]; linearizable: boolean }[];
    };
    const first = report.failures[0];
    return {
      failed: report.violations > 0 || !report.linearizable,
      firstFailingSeed: report.firstFailingSeed,
      invariant: first
        ? (first.violations[0]?.invariant ?? (first.linearizable ? null : 'NOT_LINEARIZABLE'))
        : null,
      replay: report.replay,
    };
  } catch {
    const error = `${run.stderr}`.trim().split('\n').slice(-3).join(' | ') || `exit ${run.status}`;
    return { failed: true, firstFailingSeed: null, invariant: null, replay: null, error };
  }
};

const runMutant = (
  scratch: string,
  mutation: Mutation,
  options: Options,
  /** The unmutated tree's sweep of this many members (run once, when first asked). */
  baseline: (members: 3 | 5) => SweepOutcome,
): MutantResult => {
  const started = performance.now();
  const result: MutantResult = {
    id: mutation.id,
    kind: mutation.kind,
    rule: mutation.rule,
    status: 'SURVIVED',
    caughtBy: null,
    firstFailingSeed: null,
    invariant: null,
    replay: null,
    seconds: 0,
  };
  const problem = patchProblem(mutation, scratch);
  if (problem !== null) {
    result.status = 'PATCH_MISMATCH';
    result.detail = problem;
    return result;
  }
  if (mutation.kind === 'redundant' && !options.redundant && options.only === null) {
    result.status = 'SKIPPED';
    result.detail = 'redundant: not run (--redundant runs it)';
    return result;
  }
  const undo = applyMutation(scratch, mutation);
  let undone = false;
  try {
    for (const members of [3, 5] as const) {
      const outcome = sweep(scratch, options, members);
      if (outcome.error !== undefined) {
        result.status = 'ERROR';
        result.detail = outcome.error;
        break;
      }
      if (outcome.failed) {
        // The unmutated tree's sweep of this size, with the patch taken out first: run with the patch
        // in place, a mutant caught only at 5 members was reported as a failing baseline.
        undo();
        undone = true;
        const sound = baseline(members);
        if (sound.failed) {
          result.status = 'ERROR';
          result.detail = `the unmutated tree fails the ${members}-member sweep too (seed ${sound.firstFailingSeed}: ${sound.invariant ?? sound.error})`;
          break;
        }
        result.status = 'CAUGHT';
        result.caughtBy = `${members} members`;
        result.firstFailingSeed = outcome.firstFailingSeed;
        result.invariant = outcome.invariant;
        result.replay = outcome.replay;
        break;
      }
    }
  } finally {
    if (!undone) undo();
  }
  result.seconds = Math.round((performance.now() - started) / 100) / 10;
  return result;
};

/** The command that replays a caught mutant's first failing seed (baseline included). */
const replayOf = (result: MutantResult, options: Options): string | null =>
  result.firstFailingSeed === null
    ? null
    : `npm run mutate -- --only ${result.id} --seeds 1 --start-seed ${result.firstFailingSeed}` +
      (options.rev === undefined ? '' : ` --rev ${options.rev}`);

const table = (results: readonly MutantResult[], options: Options): string => {
  const rows = results.map((r) => [
    r.id,
    r.kind,
    r.status,
    r.invariant ?? r.detail ?? '-',
    r.firstFailingSeed === null ? '-' : `${r.firstFailingSeed} (${r.caughtBy})`,
    `${r.seconds}`,
  ]);
  const head = ['mutation', 'kind', 'status', 'caught by', 'seed', 's'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  const caught = results.filter((r) => r.status === 'CAUGHT').length;
  const safety = results.filter((r) => r.kind === 'safety');
  const safetyCaught = safety.filter((r) => r.status === 'CAUGHT').length;
  const source = options.rev === undefined ? 'the working tree' : `git revision ${options.rev}`;
  return [
    `chorus sim --seeds ${options.seeds} --start-seed ${options.startSeed} on ${source} (3 members; 5 if 3 did not catch it)`,
    line(head),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map(line),
    `${caught}/${results.length} caught; safety: ${safetyCaught}/${safety.length} caught`,
    '',
    'rules:',
    ...results.map((r) => `  ${r.id}: ${r.rule}`),
    '',
    'replay a caught mutant:',
    ...results.flatMap((r) => {
      const replay = replayOf(r, options);
      return replay === null ? [] : [`  ${replay}`];
    }),
  ].join('\n');
};

const main = (): number => {
  const options = parseArgs(process.argv.slice(2));
  const only = options.only?.split(',') ?? null;
  const chosen = MUTATIONS.filter((m) => only === null || only.includes(m.id));
  if (chosen.length === 0) throw new Error(`no mutation named ${options.only}`);
  const scratch = scratchCopy(options.rev);
  try {
    const baselines = new Map<3 | 5, SweepOutcome>();
    const baseline = (members: 3 | 5): SweepOutcome => {
      let outcome = baselines.get(members);
      if (outcome === undefined) {
        outcome = sweep(scratch, options, members);
        baselines.set(members, outcome);
      }
      return outcome;
    };
    if (baseline(3).failed) {
      process.stderr.write(`the unmutated tree fails the sweep: ${JSON.stringify(baseline(3))}\n`);
      return 1;
    }
    const results: MutantResult[] = [];
    for (const mutation of chosen) {
      const result = runMutant(scratch, mutation, options, baseline);
      results.push(result);
      if (!options.json) {
        const what = result.invariant ?? result.detail;
        const at =
          result.firstFailingSeed === null ? '' : ` at seed ${result.firstFailingSeed} (${result.caughtBy})`;
        process.stderr.write(
          `${result.id}: ${result.status}${what ? ` — ${what}` : ''}${at} (${result.seconds} s)\n`,
        );
      }
    }
    writeFileSync(
      options.out,
      `${JSON.stringify({ seeds: options.seeds, startSeed: options.startSeed, results }, null, 2)}\n`,
    );
    process.stdout.write(
      options.json ? `${JSON.stringify(results)}\n` : `${table(results, options)}\nJSON: ${options.out}\n`,
    );
    const bad = results.filter(
      (r) =>
        r.status === 'PATCH_MISMATCH' ||
        r.status === 'ERROR' ||
        (r.kind === 'safety' && r.status !== 'CAUGHT'),
    );
    return bad.length === 0 ? 0 : 1;
  } finally {
    removeScratch(scratch);
  }
};

process.exitCode = main();
