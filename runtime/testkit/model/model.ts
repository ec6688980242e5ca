// A model of a machine: the machine (built with `setup()`), the events to try, and the oracle that says
// what each step must do. From it: paths (shortest, bounded simple, random walks), each driven through a
// live actor on a simulated clock and judged step by step; and a coverage report of what they reached.
//
//   const model = createModel(accountMachine, {
//     input: { actorId: 'alice' },
//     events: [{ type: 'DEPOSIT', amount: 50 }, { type: 'FREEZE', forMs: 30_000 }, ...],
//     table: { OPEN: { FREEZE: 'FROZEN' }, FROZEN: { [WAIT]: 'OPEN' }, CLOSED: {} },
//     properties: { 'balance never negative': ({ to }) => to.context.balance >= 0 },
//   });
//   for (const path of model.shortestPaths()) model.check(path.steps);

import fc from 'fast-check';
import type { AnyMachineSnapshot, AnyStateMachine, EventFromLogic, InputFrom, SnapshotFrom } from 'xstate';
import { type CoverageReport, CoverageTracker, formatCoverage } from './coverage.ts';
import { DeterminismGuard } from './determinism.ts';
import { drive } from './drive.ts';
import { ModelPathError } from './errors.ts';
import type { Oracle, StepRecord } from './oracle.ts';
import { tableRows } from './oracle.ts';
import {
  type Exploration,
  edgePaths,
  type ModelPath,
  type SimplePathBounds,
  shortestPaths,
  simplePaths,
  walk,
  walkChoices,
} from './paths.ts';
import { propertySeed } from './property.ts';
import type { Step } from './steps.ts';
import { defaultSerialize, serializeTimed, type TimedSnapshot } from './timed-logic.ts';

export interface ModelOptions<M extends AnyStateMachine> extends Oracle<SnapshotFrom<M>, EventFromLogic<M>> {
  /** A name for reports (default: the machine's id). */
  readonly name?: string;
  /** The actor's input. */
  readonly input?: InputFrom<M>;
  /** Steps to try in every state: events, and `wait(ms)` steps (a wait to the next timer is added). */
  readonly events:
    | readonly Step<EventFromLogic<M>>[]
    | ((snapshot: SnapshotFrom<M>) => readonly Step<EventFromLogic<M>>[]);
  /** What makes two snapshots one vertex of the graph (default: state value, whole context, status). */
  readonly serializeState?: (snapshot: SnapshotFrom<M>) => string;
  /** Do not explore past a snapshot for which this holds. */
  readonly stopWhen?: (snapshot: SnapshotFrom<M>) => boolean;
  /** Most vertices explored (default 5,000); more is an error that says how to bound the model. */
  readonly limit?: number;
}

export interface WalkOptions {
  /** Walks to run (default 100). */
  readonly runs?: number;
  /** Longest walk, in steps (default 20). */
  readonly maxLength?: number;
  /** A fixed seed (default: FC_SEED, else a fresh one; a failure names the seed to replay it). */
  readonly seed?: number;
}

export class MachineModel<M extends AnyStateMachine> {
  readonly name: string;
  private readonly guard = new DeterminismGuard();
  private readonly live: AnyStateMachine;
  private readonly tracker: CoverageTracker;
  private readonly exploration: Exploration<EventFromLogic<M>>;

  constructor(
    readonly machine: M,
    private readonly options: ModelOptions<M>,
  ) {
    this.name = options.name ?? machine.id;
    this.live = this.guard.instrument(machine);
    this.tracker = new CoverageTracker(this.live, tableRows(options as Oracle<never, never>));
    const serializeMachine = (options.serializeState ?? defaultSerialize) as (
      s: AnyMachineSnapshot,
    ) => string;
    const stopWhen = options.stopWhen;
    this.exploration = {
      // The instrumented machine, each transition under the determinism check: a machine that reads the
      // clock is named while its paths are generated, not reported as a graph too big to explore.
      machine: this.live,
      stepper: (where, body) => this.guard.run(`while exploring the model, ${where}`, body),
      input: options.input,
      events: options.events as Exploration<EventFromLogic<M>>['events'],
      serialize: serializeTimed(serializeMachine),
      stopWhen: stopWhen
        ? (snapshot: TimedSnapshot) => stopWhen(snapshot.machine as SnapshotFrom<M>)
        : undefined,
      limit: options.limit ?? 5000,
    };
  }

  /** One shortest path to every vertex of the model (paths that prefix another left out). */
  shortestPaths(): ModelPath<EventFromLogic<M>>[] {
    return this.guard.watch(() => shortestPaths(this.exploration));
  }

  /** Every edge of the model once: the shortest path to its vertex, then its step. */
  edgePaths(): ModelPath<EventFromLogic<M>>[] {
    return this.guard.watch(() => edgePaths(this.exploration));
  }

  /** Maximal simple paths (no vertex twice), within the bounds (default: 8 steps, 200 paths). */
  simplePaths(bounds?: SimplePathBounds): ModelPath<EventFromLogic<M>>[] {
    return this.guard.watch(() => simplePaths(this.exploration, bounds));
  }

  /** Drive a live actor along the steps, judging each one; throws ModelPathError at the first wrong step. */
  check(steps: readonly Step<EventFromLogic<M>>[]): StepRecord<SnapshotFrom<M>, EventFromLogic<M>>[] {
    const parts = {
      title: `model '${this.name}'`,
      machine: this.live,
      input: this.options.input,
      oracle: this.options as Oracle<AnyMachineSnapshot, EventFromLogic<M>>,
      guard: this.guard,
      coverage: this.tracker,
    };
    return this.guard.watch(() => drive(parts, steps)) as never;
  }

  /** Random walks whose choices fast-check draws; a failure is shrunk to the shortest path that fails. */
  checkRandomWalks(options: WalkOptions = {}): void {
    const seed = options.seed ?? propertySeed();
    const property = fc.property(walkChoices(options.maxLength ?? 20), (choices) => {
      this.check(this.guard.watch(() => walk(this.exploration, choices)));
    });
    const result = fc.check(property, { numRuns: options.runs ?? 100, seed });
    if (!result.failed) return;
    const choices = result.counterexample?.[0] ?? [];
    const replay = `replay: FC_SEED=${seed} (or checkRandomWalks({ seed: ${seed} }))`;
    try {
      this.check(this.guard.watch(() => walk(this.exploration, choices)));
    } catch (error) {
      if (error instanceof ModelPathError) {
        const Failure = error.constructor as typeof ModelPathError; // a NondeterminismError stays one
        throw new Failure(
          `random walk ${result.numRuns} of ${options.runs ?? 100} failed, shrunk ${result.numShrinks} times; ${replay}\n${error.message}`,
          error.steps,
          error.failedAt,
        );
      }
      throw error;
    }
    throw new Error(`a random walk failed; ${replay}\n${String(result.errorInstance ?? 'no error')}`);
  }

  /** What the paths driven so far reached, and what they never did. */
  coverage(): CoverageReport {
    return this.tracker.report();
  }

  /** The coverage report as text. */
  formatCoverage(): string {
    return `model '${this.name}'\n${formatCoverage(this.coverage())}`;
  }
}

export const createModel = <M extends AnyStateMachine>(
  machine: M,
  options: ModelOptions<M>,
): MachineModel<M> => new MachineModel(machine, options);
