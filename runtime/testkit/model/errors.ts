// How a model test fails: ModelPathError names the path (its steps, the failing one marked); a
// NondeterminismError is one whose step read the clock or randomness, or went asynchronous.

import type { EventObject } from 'xstate';

export class ModelPathError extends Error {
  override readonly name: string = 'ModelPathError';
  constructor(
    message: string,
    /** The path that failed, to replay with `model.check(steps)`. */
    readonly steps: readonly EventObject[] = [],
    /** The failing step's index, from 0 (-1: the actor failed to start). */
    readonly failedAt = -1,
  ) {
    super(message);
  }
}

export class NondeterminismError extends ModelPathError {
  override readonly name: string = 'NondeterminismError';
}
