// The user's oracle: what each step should do, written independently of the machine. Two kinds, usable
// together:
//   - an expected-transition table: state → step → next state. A step a state does not list must leave
//     the machine in that state (so an unexpected transition is caught, not only a missing one);
//   - properties over one step: (from, step, to, the events the actor emitted) → true, or false / a throw.

import type { AnyMachineSnapshot, EventObject } from 'xstate';
import { isWait, type Step, stateName, WAIT } from './steps.ts';

/** One step as the live actor took it. */
export interface StepRecord<
  S extends AnyMachineSnapshot = AnyMachineSnapshot,
  E extends EventObject = EventObject,
> {
  /** The step's position in the path, from 0. */
  readonly index: number;
  readonly from: S;
  readonly step: Step<E>;
  readonly to: S;
  /** Events the actor emitted during the step (replies, messages to other actors). */
  readonly emitted: readonly EventObject[];
  /** Delayed events (`after`, delayed `raise`) that fell due and were delivered during the step. */
  readonly fired: readonly EventObject[];
  /** Simulated time at the end of the step, ms since the actor started. */
  readonly time: number;
}

/** A property of every step: false or a thrown error fails the path. */
export type StepProperty<
  S extends AnyMachineSnapshot = AnyMachineSnapshot,
  E extends EventObject = EventObject,
> = (record: StepRecord<S, E>) => boolean | undefined;

export interface Oracle<
  S extends AnyMachineSnapshot = AnyMachineSnapshot,
  E extends EventObject = EventObject,
> {
  /** Expected transitions: `{ OPEN: { FREEZE: 'FROZEN' }, FROZEN: { [WAIT]: 'OPEN' } }`. */
  readonly table?: Readonly<Record<string, Readonly<Record<string, string>>>>;
  /** The table's name for a snapshot's state (default: its state value, e.g. `OPEN` or `A.B`). */
  readonly stateKey?: (snapshot: S) => string;
  /**
   * The table's name for a step (default: the event's type; `WAIT` for time passing in which a timer
   * fired; a wait in which nothing fell due has no name, so it must leave the state as it was). Return
   * undefined to keep the default, e.g. to split one event by a guard's condition:
   * `({ step, from }) => step.type === 'CLOSE' && from.context.balance > 0 ? 'CLOSE (not empty)' : undefined`.
   */
  readonly stepKey?: (record: StepRecord<S, E>) => string | undefined;
  /** Named properties over each step. */
  readonly properties?: Readonly<Record<string, StepProperty<S, E>>>;
}

/** The step name of a wait in which no timer fell due: no table lists it, so the state must stay. */
const NOTHING_DUE = 'testkit.nothing-due';

/** The table's rows as `STATE --STEP-->`, for coverage. */
export const tableRows = (oracle: Oracle<never, never>): string[] =>
  Object.entries(oracle.table ?? {}).flatMap(([state, row]) =>
    Object.keys(row).map((step) => rowName(state, step)),
  );

export const rowName = (state: string, step: string): string =>
  `${state} --${step === WAIT ? 'wait' : step}-->`;

/** What the oracle says about one step: undefined if it holds, else why not. */
export const judge = <S extends AnyMachineSnapshot, E extends EventObject>(
  oracle: Oracle<S, E>,
  record: StepRecord<S, E>,
  onRow: (row: string) => void,
): string | undefined => {
  const stateKey = oracle.stateKey ?? ((snapshot: S) => stateName(snapshot.value));
  const step = record.step;
  const byDefault = !isWait(step) ? step.type : record.fired.length > 0 ? WAIT : NOTHING_DUE;
  if (oracle.table) {
    const from = stateKey(record.from);
    const row = oracle.table[from];
    if (row === undefined) return `state ${from} is not in the expected-transition table`;
    const key = oracle.stepKey?.(record) ?? byDefault;
    const listed = row[key];
    if (listed !== undefined) onRow(rowName(from, key));
    const expected = listed ?? from;
    const to = stateKey(record.to);
    if (to !== expected) {
      const why =
        listed === undefined ? ' (the table does not list this step, so the state must not change)' : '';
      return `expected ${from} → ${expected}, the actor went ${from} → ${to}${why}`;
    }
  }
  for (const [name, property] of Object.entries(oracle.properties ?? {})) {
    let holds: boolean | undefined;
    try {
      holds = property(record);
    } catch (error) {
      return `property '${name}' failed: ${error instanceof Error ? error.message : String(error)}`;
    }
    if (holds === false) return `property '${name}' does not hold`;
  }
  return undefined;
};
