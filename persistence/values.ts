// The numbers the store accepts for terms, indexes and member ids. A term is bounded one below
// Number.MAX_SAFE_INTEGER so that the next election's term (term + 1) is still an exact integer: a store
// that accepted MAX_SAFE_INTEGER would hand the consensus module a term it cannot increment.

/** The highest term the store records. */
export const MAX_TERM = Number.MAX_SAFE_INTEGER - 1;

/** A safe integer >= 0 (an index, an id, a count). */
export const isSafeNonNegative = (value: unknown): value is number =>
  typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;

/** A term: a safe integer from 0 to MAX_TERM. */
export const isTerm = (value: unknown): value is number => isSafeNonNegative(value) && value <= MAX_TERM;

/** Why `value` is not a term, naming `what` it is; undefined when it is one. */
export const termProblem = (what: string, value: unknown): string | undefined => {
  if (!isSafeNonNegative(value)) return `${what} ${String(value)} must be a safe integer >= 0`;
  if (value > MAX_TERM)
    return `${what} ${value} is above ${MAX_TERM}: the next election's term would not be an exact integer`;
  return undefined;
};
