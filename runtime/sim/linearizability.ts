// A linearizability checker for histories the simulator records: Wing & Gong's search with Lowe's
// memoisation, the approach Knossos and Porcupine take.
//
// A history is a set of operations, each with the time its client invoked it and the time the reply
// arrived. It is linearizable when every operation can be given one instant inside its interval such
// that running the operations one by one at those instants, against a sequential model, produces
// exactly the outputs the clients saw. Intervals are closed: A precedes B only when A.ret < B.call.
//
// How the search works:
// - P-compositionality: linearizability is local, so a key-value history is split by key and each key
//   (an independent register) is checked on its own. Small searches instead of one huge one.
// - The history becomes a doubly linked list of call and return events in time order. Walking it from
//   the front, every call met before the first return is a candidate to linearize next; a return met
//   means "that operation must already have been linearized", so this branch is a dead end.
// - Linearizing an operation unlinks its call and return (dancing links, O(1)); backtracking relinks
//   them in reverse order. A stack holds the operations linearized so far and the model state before
//   each one.
// - Memoisation: a configuration is (the set of linearized operations, the model state). Two paths
//   reaching the same configuration have the same future, so each configuration is explored once. The
//   set is a bitset with an incrementally maintained Zobrist hash; the cache compares bitsets exactly
//   on a hash hit, so a hash collision costs time, never correctness.
// - Unknown outcomes (the client timed out or crashed: `ret === null`) may take effect at any point
//   after their call, or never (Jepsen's `:info`). They have no return event, so no branch is ever
//   forced to place them, and the search succeeds once every completed operation is placed; any
//   unknown operation left over is deemed never to have taken effect. Linearizing an unknown
//   operation that does not change the state is skipped: leaving it out is always at least as good.
// - Observers (reads, failed cas) that fit the current state are placed at once, never branched on:
//   moving a read earlier, to a point where it already fits, can never hurt. On read-heavy register
//   histories this cuts the search by an order of magnitude.
// - The search has a time budget and reports `timedOut` rather than running forever: deciding
//   linearizability is NP-complete, and a pathological history (many concurrent unknown writes) can
//   make any exact checker exponential.
//
// This module is part of the simulator (runtime/), so it may read the clock for its budget; it
// imports only the shared seeded generator from machines/.
// The search itself is in linearizability-search.ts; the key-value model the simulator records is in
// kv-history.ts.

import { performance } from 'node:perf_hooks';
import { search } from './linearizability-search.ts';

// ---------------------------------------------------------------------------------------------------
// Generic checker
// ---------------------------------------------------------------------------------------------------

/** One operation of a history. `ret === null` means the outcome is unknown (then `output` is null). */
export interface Operation<Input, Output> {
  clientId: number;
  input: Input;
  /** When the client invoked the operation. */
  call: number;
  /** When the reply arrived; null when it never did (timed out, crashed client). */
  ret: number | null;
  /** What the client saw; null exactly when `ret` is null. */
  output: Output | null;
}

/** A sequential specification of the object the history ran against. */
export interface Model<State, Input, Output> {
  /** The state before any operation. */
  init(): State;
  /**
   * Apply `input` to `state`. Returns the next state when the operation could have produced `output`
   * from `state`, or undefined when it could not. `output === null` means the outcome is unknown:
   * return the state the operation would leave if it took effect now (never undefined).
   * Must be pure: states are shared between branches of the search.
   */
  step(state: State, input: Input, output: Output | null): State | undefined;
  /** State equality; defaults to `Object.is`, right for primitive states. */
  equal?(a: State, b: State): boolean;
  /** A 32-bit hash consistent with `equal`; defaults to one for primitive states. */
  hash?(state: State): number;
  /**
   * Optional hint: true when the operation, with this output, changes no state whatever the state is
   * (a read; a conditional write that reports it did not happen). The search places such operations
   * as soon as they fit instead of branching on them, which makes read-heavy histories much cheaper.
   * Only say true when it holds for every state: a wrong hint can make the checker reject a
   * linearizable history.
   */
  isObserver?(input: Input, output: Output | null): boolean;
  /** How to print an operation in an explanation. */
  describeOperation?(input: Input, output: Output | null): string;
  /** How to print a state in an explanation. */
  describeState?(state: State): string;
}

export interface CheckOptions {
  /** Give up after this many milliseconds and report `timedOut: true`. Default 10 000. */
  timeoutMs?: number;
}

export interface CheckResult {
  /**
   * True when a linearization was found. False either when none exists or when the budget ran out
   * first: check `timedOut` to tell an undecided history from a violation.
   */
  linearizable: boolean;
  /** Set when the time budget ran out before the search could decide. */
  timedOut?: boolean;
  /** For a history that is not linearizable (or undecided): what the search got stuck on. */
  explanation?: string;
  /**
   * For a linearizable history: the order found, as indices into the history. Completed operations
   * all appear; an unknown-outcome operation appears only if it had to take effect.
   */
  linearization?: number[];
}

export const DEFAULT_TIMEOUT_MS = 10_000;

/** Check that `history` is linearizable with respect to `model` (one object, no partitioning). */
export function checkHistory<State, Input, Output>(
  model: Model<State, Input, Output>,
  history: readonly Operation<Input, Output>[],
  options: CheckOptions = {},
): CheckResult {
  const deadline = performance.now() + validTimeout(options.timeoutMs);
  history.forEach((op, index) => {
    validateTimes(op, index);
  });
  return searchObject(model, history, deadline);
}

export const validTimeout = (timeoutMs: number | undefined): number => {
  if (timeoutMs === undefined) return DEFAULT_TIMEOUT_MS;
  if (!(typeof timeoutMs === 'number' && timeoutMs >= 0)) {
    throw new RangeError(
      `linearizability: timeoutMs must be a number of milliseconds >= 0, got ${String(timeoutMs)}; ` +
        'omit it for the default of 10 000',
    );
  }
  return timeoutMs;
};

export const validateTimes = (op: Operation<unknown, unknown>, index: number): void => {
  const where = `history[${index}]`;
  if (!Number.isFinite(op.call)) {
    throw new RangeError(`linearizability: ${where}.call must be a finite time, got ${String(op.call)}`);
  }
  if (op.ret === null) {
    if (op.output !== null) {
      throw new TypeError(
        `linearizability: ${where} has ret null (unknown outcome) but an output; ` +
          'record output: null for an operation whose reply never arrived',
      );
    }
    return;
  }
  if (!Number.isFinite(op.ret)) {
    throw new RangeError(
      `linearizability: ${where}.ret must be a finite time or null (unknown outcome), got ${String(op.ret)}`,
    );
  }
  if (op.ret < op.call) {
    throw new RangeError(
      `linearizability: ${where} returns (ret ${op.ret}) before it was called (call ${op.call}); ` +
        'record the invocation and reply times from the same clock',
    );
  }
  if (op.output === null) {
    throw new TypeError(
      `linearizability: ${where} has a return time but output null; ` +
        'record what the client received, or set ret: null if the reply never arrived',
    );
  }
};

/** Check one object's history and, when it fails, explain where. */
export function searchObject<State, Input, Output>(
  model: Model<State, Input, Output>,
  ops: readonly Operation<Input, Output>[],
  deadline: number,
  label = 'the history',
  indexOf: (index: number) => number = (index) => index,
): CheckResult {
  const started = performance.now();
  const outcome = search(model, ops, deadline);
  if (outcome.kind === 'linearizable') return { linearizable: true, linearization: outcome.order };
  if (outcome.kind === 'timedOut') {
    return {
      linearizable: false,
      timedOut: true,
      explanation:
        `${label}: undecided — the time budget ran out after ${outcome.steps} search steps over ` +
        `${ops.length} operations (${ops.filter((op) => op.ret === null).length} with unknown outcome). ` +
        'Raise timeoutMs, or shorten the history / reduce concurrent unknown-outcome writes.',
    };
  }
  // The explanation reruns the search; give it as long again as the verdict took (and at least 100 ms).
  const explainBudgetMs = Math.max(100, 2 * (performance.now() - started));
  return { linearizable: false, explanation: explainViolation(model, ops, label, indexOf, explainBudgetMs) };
}

/**
 * Rerun a failed search (it takes the same path, so this costs about as much again) tracking the longest linearizable prefix, then describe where it gets stuck: the
 * first completed operation that cannot be placed, and the candidates that were tried before it.
 */
function explainViolation<State, Input, Output>(
  model: Model<State, Input, Output>,
  ops: readonly Operation<Input, Output>[],
  label: string,
  indexOf: (index: number) => number,
  budgetMs: number,
): string {
  let prefix: number[] = [];
  let prefixState = model.init();
  // Should the rerun run out of time, the deepest prefix it reached is still a true (if shorter) one.
  search(model, ops, performance.now() + budgetMs, (deeper, state) => {
    prefix = deeper;
    prefixState = state;
  });
  const describe = (index: number): string => describeOperation(model, ops[index], indexOf(index));
  const describeState = model.describeState ?? ((state: State) => JSON.stringify(state) ?? String(state));
  const placed = new Set(prefix);
  const completedLeft = ops.map((_, i) => i).filter((i) => !placed.has(i) && ops[i].ret !== null);
  // The operation the longest prefix is stuck on: the earliest reply among those not placed.
  const stuck = completedLeft.reduce((best, i) =>
    (ops[i].ret as number) < (ops[best].ret as number) ? i : best,
  );
  const stuckRet = ops[stuck].ret as number;
  const candidates = ops
    .map((_, i) => i)
    .filter((i) => !placed.has(i) && ops[i].call <= stuckRet && i !== stuck);
  const lines = [
    `${label} is not linearizable.`,
    `The longest linearizable prefix places ${prefix.length} of ${ops.length} operations` +
      (prefix.length === 0 ? '' : `, ending${prefix.length > 5 ? ' (last 5)' : ''}:`),
    ...prefix.slice(-5).map((i) => `    ${describe(i)}`),
    `leaving the state ${describeState(prefixState)}. From there no order places`,
    `    ${describe(stuck)}`,
    'before its reply arrived' +
      (candidates.length === 0
        ? '.'
        : `, whichever of these concurrent operations go first${candidates.length > 8 ? ' (first 8)' : ''}:`),
    ...candidates.slice(0, 8).map((i) => `    ${describe(i)}`),
  ];
  return lines.join('\n');
}

const describeOperation = <State, Input, Output>(
  model: Model<State, Input, Output>,
  op: Operation<Input, Output>,
  index: number,
): string => {
  const what = model.describeOperation
    ? model.describeOperation(op.input, op.output)
    : `${JSON.stringify(op.input)} -> ${op.ret === null ? 'unknown' : JSON.stringify(op.output)}`;
  const when = op.ret === null ? `called ${op.call}, no reply` : `called ${op.call}, returned ${op.ret}`;
  return `history[${index}] client ${op.clientId}: ${what} [${when}]`;
};
