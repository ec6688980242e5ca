// Drive a live actor along a path: a fresh actor on XState's SimulatedClock, each step either sent to it
// or turned into simulated time passing, every step run under the determinism check and judged by the
// oracle. Coverage is recorded from the actor's own inspection events. A failing step throws a
// ModelPathError that prints the whole path as a numbered list, the failing step marked.

import {
  type AnyMachineSnapshot,
  type AnyStateMachine,
  createActor,
  type EventObject,
  type InspectionEvent,
  SimulatedClock,
} from 'xstate';
import type { CoverageTracker } from './coverage.ts';
import type { DeterminismGuard } from './determinism.ts';
import { ModelPathError, NondeterminismError } from './errors.ts';
import { judge, type Oracle, type StepRecord } from './oracle.ts';
import { isWait, type Step, stateName, stepLabel } from './steps.ts';

export interface DriveParts<E extends EventObject> {
  readonly title: string;
  /** The machine as instrumented by the determinism guard. */
  readonly machine: AnyStateMachine;
  readonly input: unknown;
  readonly oracle: Oracle<AnyMachineSnapshot, E>;
  readonly guard: DeterminismGuard;
  readonly coverage: CoverageTracker;
}

const listing = (
  steps: readonly EventObject[],
  records: readonly StepRecord[],
  failedAt: number,
  initial: string,
): string => {
  const lines = [`    start in ${initial}`];
  steps.forEach((step, index) => {
    const record = records[index];
    const states = record ? `   ${stateName(record.from.value)} → ${stateName(record.to.value)}` : '';
    const mark = index === failedAt ? '✗' : ' ';
    const notRun = index > failedAt && failedAt >= 0 ? '   (not run)' : '';
    lines.push(`  ${mark}${String(index + 1).padStart(2)}. ${stepLabel(step)}${states}${notRun}`);
  });
  return lines.join('\n');
};

/** Drive one path; returns what each step did, or throws ModelPathError at the first wrong step. */
export const drive = <E extends EventObject>(
  parts: DriveParts<E>,
  steps: readonly Step<E>[],
): StepRecord[] => {
  const clock = new SimulatedClock();
  const emitted: EventObject[] = [];
  const fired: EventObject[] = [];
  let actorRef: { getSnapshot(): AnyMachineSnapshot } | undefined;
  const inspect = (event: InspectionEvent) => {
    if (!actorRef || event.actorRef !== actorRef) return;
    parts.coverage.inspect(event, actorRef.getSnapshot());
    if (event.type === '@xstate.event' && event.sourceRef === actorRef) fired.push(event.event);
  };
  const actor = createActor(parts.machine, { clock, input: parts.input as never, inspect });
  actorRef = actor;
  actor.on('*', (event: EventObject) => {
    emitted.push(event);
  });
  const records: StepRecord[] = [];
  let initial = '(not started)';
  const fail = (index: number, why: string, Failure = ModelPathError): never => {
    actor.stop();
    throw new Failure(
      `${parts.title}: step ${index + 1} of ${steps.length} went wrong: ${why}\n${listing(steps, records, index, initial)}`,
      steps,
      index,
    );
  };
  const failed = (snapshot: AnyMachineSnapshot): string | undefined =>
    snapshot.status === 'error'
      ? `the actor failed: ${String((snapshot.error as Error)?.message ?? snapshot.error)}`
      : undefined;
  try {
    parts.guard.run('while starting', () => actor.start());
  } catch (error) {
    fail(
      -1,
      (error as Error).message,
      error instanceof NondeterminismError ? NondeterminismError : ModelPathError,
    );
  }
  const started = actor.getSnapshot();
  initial = stateName(started.value);
  const startError = failed(started);
  if (startError) fail(-1, startError);
  parts.coverage.reachedState(started);
  steps.forEach((step, index) => {
    const from = actor.getSnapshot();
    if (from.status !== 'active') fail(index, `the actor is ${from.status} and takes no more steps`);
    emitted.length = 0;
    fired.length = 0;
    const where = `in ${stateName(from.value)} on ${stepLabel(step)}`;
    try {
      parts.guard.run(where, () => (isWait(step) ? clock.increment(step.ms) : actor.send(step)));
    } catch (error) {
      fail(
        index,
        (error as Error).message,
        error instanceof NondeterminismError ? NondeterminismError : ModelPathError,
      );
    }
    const to = actor.getSnapshot();
    const record: StepRecord = {
      index,
      from,
      step,
      to,
      emitted: [...emitted],
      fired: [...fired],
      time: clock.now(),
    };
    records.push(record);
    const error = failed(to);
    if (error) fail(index, error);
    parts.coverage.reachedState(to);
    const why = judge(parts.oracle, record as never, (row) => parts.coverage.reachedRow(row));
    if (why !== undefined) fail(index, why);
  });
  actor.stop();
  return records;
};
