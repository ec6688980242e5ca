// What a model path is made of, and how it reads when printed. A path is a list of steps: an event sent to
// the machine, or time passing on the simulated clock (`wait(30_000)`: "30 s pass"), which fires the
// delayed transitions (`after`) that fall due.

import type { EventObject, StateValue } from 'xstate';

/** The type of a step in which time passes; also the key for it in an expected-transition table. */
export const WAIT = 'testkit.wait';

export interface Wait {
  readonly type: typeof WAIT;
  /** Milliseconds of simulated time. */
  readonly ms: number;
}

/** A step of a path: an event for the machine, or a wait. */
export type Step<E extends EventObject> = E | Wait;

/** A step in which `ms` milliseconds of simulated time pass. */
export const wait = (ms: number): Wait => {
  if (!Number.isSafeInteger(ms) || ms < 0)
    throw new RangeError(`wait(ms): ms must be a whole number ≥ 0, not ${ms}`);
  return { type: WAIT, ms };
};

export const isWait = (step: EventObject): step is Wait => step.type === WAIT;

const duration = (ms: number): string =>
  ms >= 1000 && ms % 1000 === 0 ? `${ms / 1000} s` : ms >= 1000 ? `${(ms / 1000).toFixed(3)} s` : `${ms} ms`;

/** A step as a person reads it: `WITHDRAW {"amount":50}`, `30 s pass`. */
export const stepLabel = (step: EventObject): string => {
  if (isWait(step)) return `${duration(step.ms)} pass`;
  const { type, ...fields } = step;
  return Object.keys(fields).length === 0 ? type : `${type} ${JSON.stringify(fields)}`;
};

/** A state value as one string: `OPEN`, `WAITING.RETRY`, `A.X,B.Y` for parallel regions, `(root)` for none. */
export const stateName = (value: StateValue): string =>
  typeof value === 'string'
    ? value
    : Object.keys(value).length === 0
      ? '(root)'
      : Object.entries(value)
          .map(([key, child]) => (child === undefined ? key : `${key}.${stateName(child)}`))
          .join(',');

/** Every active state path of a value: `{ A: 'B' }` → `A`, `A.B`. */
export const activePaths = (value: StateValue, prefix = ''): string[] => {
  if (typeof value === 'string') return [`${prefix}${value}`];
  const paths: string[] = [];
  for (const [key, child] of Object.entries(value)) {
    paths.push(`${prefix}${key}`);
    if (child !== undefined) paths.push(...activePaths(child, `${prefix}${key}.`));
  }
  return paths;
};
