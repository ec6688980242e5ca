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

import { performance } from 'node:perf_hooks';
import { Random } from '../../machines/random.ts';

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

const validTimeout = (timeoutMs: number | undefined): number => {
  if (timeoutMs === undefined) return DEFAULT_TIMEOUT_MS;
  if (!(typeof timeoutMs === 'number' && timeoutMs >= 0)) {
    throw new RangeError(
      `linearizability: timeoutMs must be a number of milliseconds >= 0, got ${String(timeoutMs)}; ` +
        'omit it for the default of 10 000',
    );
  }
  return timeoutMs;
};

const validateTimes = (op: Operation<unknown, unknown>, index: number): void => {
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

/** Hash of a primitive state (string, number, boolean, null, undefined). */
const defaultHash = (state: unknown): number => {
  if (typeof state === 'number') return Number.isInteger(state) ? state | 0 : hashString(String(state));
  if (typeof state === 'string') return hashString(state);
  if (state === null) return 0x6e756c6c;
  if (state === undefined) return 0x756e6466;
  if (typeof state === 'boolean') return state ? 1 : 2;
  throw new TypeError(
    'linearizability: the model state is not a primitive; give the model hash() and equal() functions',
  );
};

/** FNV-1a over UTF-16 code units. */
const hashString = (text: string): number => {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h | 0;
};

// Zobrist keys: one random 32-bit word per operation slot, XORed into the hash of the linearized set.
// Seeded, so the search (and its cache layout) is the same on every run.
let zobristKeys = new Int32Array(0);
const zobrist = (count: number): Int32Array => {
  if (zobristKeys.length < count) {
    const random = new Random(0x11ea7);
    const keys = new Int32Array(Math.max(count, zobristKeys.length * 2, 1024));
    for (let i = 0; i < keys.length; i++) keys[i] = random.uint32() | 0;
    zobristKeys = keys;
  }
  return zobristKeys;
};

interface CacheEntry<State> {
  bits: Uint32Array;
  state: State;
}

const sameBits = (a: Uint32Array, b: Uint32Array): boolean => {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
};

const END = -1;
const HEAD = 0;
/** How many search steps between two looks at the clock. */
const CLOCK_EVERY = 1024;

type SearchOutcome =
  | { kind: 'linearizable'; order: number[] }
  | { kind: 'violation' }
  | { kind: 'timedOut'; steps: number };

/**
 * The search over one object. When `onDeeper` is given it is called with the linearized prefix (op
 * indices) and the state after it every time the search reaches a new greatest number of linearized operations: that is how an
 * explanation finds the longest linearizable prefix without slowing down the ordinary run.
 */
function search<State, Input, Output>(
  model: Model<State, Input, Output>,
  ops: readonly Operation<Input, Output>[],
  deadline: number,
  onDeeper?: (prefix: number[], state: State) => void,
): SearchOutcome {
  const n = ops.length;
  const equal = model.equal ?? Object.is;
  const hash = model.hash ?? defaultHash;

  // Events in time order; at equal times calls come first (closed intervals overlap at an instant),
  // then by operation index so the order is deterministic.
  const events: { op: number; time: number; isCall: boolean }[] = [];
  let completed = 0;
  for (let i = 0; i < n; i++) {
    const op = ops[i];
    events.push({ op: i, time: op.call, isCall: true });
    if (op.ret !== null) {
      events.push({ op: i, time: op.ret, isCall: false });
      completed++;
    }
  }
  if (completed === 0) return { kind: 'linearizable', order: [] };
  events.sort((a, b) => a.time - b.time || Number(b.isCall) - Number(a.isCall) || a.op - b.op);

  // The event list: node 0 is the head sentinel, node k + 1 is events[k].
  const size = events.length + 1;
  const next = new Int32Array(size);
  const prev = new Int32Array(size);
  const nodeOp = new Int32Array(size);
  const isCall = new Uint8Array(size);
  const match = new Int32Array(size).fill(END); // a call's return node, END for an unknown outcome
  const returnNode = new Int32Array(n).fill(END);
  for (let k = events.length - 1; k >= 0; k--) {
    const node = k + 1;
    const event = events[k];
    nodeOp[node] = event.op;
    if (event.isCall) {
      isCall[node] = 1;
      match[node] = returnNode[event.op];
    } else {
      returnNode[event.op] = node;
    }
  }
  for (let node = 0; node < size; node++) {
    next[node] = node + 1 < size ? node + 1 : END;
    prev[node] = node - 1;
  }

  const unlink = (node: number): void => {
    next[prev[node]] = next[node];
    if (next[node] !== END) prev[next[node]] = prev[node];
  };
  const relink = (node: number): void => {
    next[prev[node]] = node;
    if (next[node] !== END) prev[next[node]] = node;
  };
  // Lift a call and its return out of the list; unlift puts them back (reverse order matters).
  const lift = (call: number): void => {
    unlink(call);
    if (match[call] !== END) unlink(match[call]);
  };
  const unlift = (call: number): void => {
    if (match[call] !== END) relink(match[call]);
    relink(call);
  };

  const keys = zobrist(n);
  const bits = new Uint32Array((n + 31) >>> 5);
  let setHash = 0;
  const cache = new Map<number, CacheEntry<State>[]>();
  /** Record (bits, state) as visited; false when it already was. */
  const visit = (state: State): boolean => {
    const key = (setHash ^ Math.imul(hash(state), 0x9e3779b1)) & 0x3fffffff;
    const bucket = cache.get(key);
    if (bucket === undefined) {
      cache.set(key, [{ bits: bits.slice(), state }]);
      return true;
    }
    for (const entry of bucket) if (equal(entry.state, state) && sameBits(entry.bits, bits)) return false;
    bucket.push({ bits: bits.slice(), state });
    return true;
  };
  const toggle = (op: number): void => {
    bits[op >>> 5] ^= 1 << (op & 31);
    setHash ^= keys[op];
  };

  // Observers (reads, failed conditional writes: operations that change no state, whatever the state)
  // get special treatment. A completed observer that is a candidate and fits the current state can be
  // placed right away without loss: any linearization from here places it later at a point where the
  // state matches, and moving it to the front changes no other output and breaks no real-time order
  // (being a candidate, nothing unplaced returned before its call). So observers are placed first and
  // never branched on: a "forced" placement that fails means the configuration before it fails too.
  const observer = new Uint8Array(n);
  if (model.isObserver !== undefined) {
    for (let i = 0; i < n; i++) observer[i] = model.isObserver(ops[i].input, ops[i].output) ? 1 : 0;
  }

  const stackNode = new Int32Array(n);
  const stackForced = new Uint8Array(n);
  const stackState: State[] = new Array(n);
  let depth = 0;
  let deepest = 0;
  let remaining = completed;
  let state = model.init();
  let steps = 0;
  let cursor = next[HEAD];
  // FORCED: looking for an observer that fits; BRANCH: trying each state-changing candidate in turn.
  let forcedPhase = true;

  /** Undo placements until one that has alternatives left; false when none is left at all. */
  const backtrack = (): boolean => {
    for (;;) {
      if (depth === 0) return false;
      depth--;
      const node = stackNode[depth];
      state = stackState[depth];
      toggle(nodeOp[node]);
      unlift(node);
      if (match[node] !== END) remaining++;
      if (stackForced[depth] === 0) {
        cursor = next[node];
        forcedPhase = false;
        return true;
      }
    }
  };

  for (;;) {
    if (++steps % CLOCK_EVERY === 0 && performance.now() > deadline) return { kind: 'timedOut', steps };

    if (cursor === END || isCall[cursor] === 0) {
      // The end of the candidates: a return of an operation not yet placed, which must come before
      // everything after it.
      if (forcedPhase) {
        // No observer fits: now branch over the candidates that change the state.
        forcedPhase = false;
        cursor = next[HEAD];
        continue;
      }
      // Every candidate tried: this configuration is a dead end. Undo the latest choice.
      if (!backtrack()) return { kind: 'violation' };
      continue;
    }

    const op = nodeOp[cursor];
    const pending = match[cursor] === END;
    // Observers are placed in the forced phase only, other operations in the branch phase only; an
    // observer with an unknown outcome constrains nothing and is never placed.
    if (observer[op] === 1 ? !forcedPhase || pending : forcedPhase) {
      cursor = next[cursor];
      continue;
    }
    const operation = ops[op];
    const after = model.step(state, operation.input, operation.output);
    // An unknown outcome that changes nothing is never worth placing (leaving it out is as good).
    if (after === undefined || (pending && equal(after, state))) {
      cursor = next[cursor];
      continue;
    }
    toggle(op);
    if (!visit(after)) {
      // Explored before, and it failed.
      toggle(op);
      if (forcedPhase) {
        // The forced placement is as good as any: this configuration fails as well.
        if (!backtrack()) return { kind: 'violation' };
      } else {
        cursor = next[cursor];
      }
      continue;
    }
    stackNode[depth] = cursor;
    stackForced[depth] = forcedPhase ? 1 : 0;
    stackState[depth] = state;
    depth++;
    state = after;
    lift(cursor);
    if (!pending && --remaining === 0) {
      const order = Array.from(stackNode.subarray(0, depth), (node) => nodeOp[node]);
      return { kind: 'linearizable', order };
    }
    if (onDeeper !== undefined && depth > deepest) {
      deepest = depth;
      onDeeper(
        Array.from(stackNode.subarray(0, depth), (node) => nodeOp[node]),
        state,
      );
    }
    cursor = next[HEAD];
    forcedPhase = true;
  }
}

/** Check one object's history and, when it fails, explain where. */
function searchObject<State, Input, Output>(
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

// ---------------------------------------------------------------------------------------------------
// Key-value store (what the simulator records)
// ---------------------------------------------------------------------------------------------------

export type KvInput =
  | { op: 'get'; key: string }
  | { op: 'put'; key: string; value: string }
  | { op: 'cas'; key: string; expected: string | null; value: string };
/** get -> { value }; put -> { ok: true }; cas -> { ok } (whether it swapped). */
export type KvOutput = { value: string | null } | { ok: boolean };

export interface HistoryOperation {
  clientId: number;
  input: KvInput;
  /** Time the client invoked it. */
  call: number;
  /** Time the reply arrived; null = unknown outcome (timed out / crashed client). */
  ret: number | null;
  /** Null when ret is null. */
  output: KvOutput | null;
}

export interface KvCheckResult {
  /** False for a violation, and also when the budget ran out (then `timedOut` is true). */
  linearizable: boolean;
  /** The key whose history is not linearizable (or could not be decided in time). */
  failingKey?: string;
  timedOut?: boolean;
  explanation?: string;
}

// A key's register state is a value id: 0 is null (never written), 1.. the distinct values written to
// that key. Interning values up front makes states small integers: equality is ===, hashing is free.
const GET = 0;
const PUT = 1;
const CAS = 2;

interface RegisterInput {
  kind: typeof GET | typeof PUT | typeof CAS;
  /** put/cas: id of the value written. */
  value: number;
  /** cas: id of the value expected. */
  expected: number;
  /** The operation as recorded, and its index in the whole history, for explanations. */
  source: HistoryOperation;
  index: number;
}

/** get: id of the value read; cas (and a failed put): whether it took effect. */
type RegisterOutput = number | boolean;

/** The sequential specification of one key: a register starting at null, with get, put and cas. */
const registerModel = (values: readonly (string | null)[]): Model<number, RegisterInput, RegisterOutput> => ({
  init: () => 0,
  isObserver: (input, output) => input.kind === GET || (input.kind === CAS && output === false),
  step(state, input, output) {
    switch (input.kind) {
      case GET:
        return output === null || output === state ? state : undefined;
      case PUT:
        return output === false ? state : input.value;
      case CAS:
        if (output === null) return state === input.expected ? input.value : state;
        if (output === true) return state === input.expected ? input.value : undefined;
        return state !== input.expected ? state : undefined;
    }
  },
  describeOperation: (input) => describeKvOperation(input.source),
  describeState: (state) => JSON.stringify(values[state]),
});

const describeKvOperation = (op: HistoryOperation): string => {
  const { input, output } = op;
  const call =
    input.op === 'get'
      ? `get(${JSON.stringify(input.key)})`
      : input.op === 'put'
        ? `put(${JSON.stringify(input.key)}, ${JSON.stringify(input.value)})`
        : `cas(${JSON.stringify(input.key)}, ${JSON.stringify(input.expected)} -> ${JSON.stringify(input.value)})`;
  if (output === null) return `${call} -> unknown`;
  return `${call} -> ${'value' in output ? JSON.stringify(output.value) : output.ok ? 'ok' : 'failed'}`;
};

const validateKvOperation = (op: HistoryOperation, index: number): void => {
  const where = `history[${index}]`;
  const input = op?.input;
  if (input === null || typeof input !== 'object' || typeof input.key !== 'string') {
    throw new TypeError(
      `linearizability: ${where}.input must be { op, key: string, ... }, got ${JSON.stringify(input)}`,
    );
  }
  if (input.op !== 'get' && input.op !== 'put' && input.op !== 'cas') {
    throw new TypeError(
      `linearizability: ${where}.input.op must be 'get', 'put' or 'cas', got ${JSON.stringify((input as { op: unknown }).op)}`,
    );
  }
  if (input.op !== 'get' && typeof input.value !== 'string') {
    throw new TypeError(`linearizability: ${where}.input.value must be a string for ${input.op}`);
  }
  if (input.op === 'cas' && input.expected !== null && typeof input.expected !== 'string') {
    throw new TypeError(`linearizability: ${where}.input.expected must be a string or null for cas`);
  }
  validateTimes(op, index);
  const output = op.output;
  if (output === null) return;
  if (input.op === 'get') {
    if (
      typeof output !== 'object' ||
      !('value' in output) ||
      (output.value !== null && typeof output.value !== 'string')
    ) {
      throw new TypeError(
        `linearizability: ${where} is a get, so its output must be { value: string | null }, got ${JSON.stringify(output)}`,
      );
    }
  } else if (typeof output !== 'object' || !('ok' in output) || typeof output.ok !== 'boolean') {
    throw new TypeError(
      `linearizability: ${where} is a ${input.op}, so its output must be { ok: boolean }, got ${JSON.stringify(output)}`,
    );
  }
};

/** One key's history, translated to register operations over interned values. */
interface KeyHistory {
  key: string;
  ops: Operation<RegisterInput, RegisterOutput>[];
  values: (string | null)[];
  /** A completed operation no state of this register could ever produce, if there is one. */
  impossible?: string;
}

const splitByKey = (history: readonly HistoryOperation[]): KeyHistory[] => {
  const byKey = new Map<string, number[]>();
  history.forEach((op, index) => {
    const list = byKey.get(op.input.key);
    if (list === undefined) byKey.set(op.input.key, [index]);
    else list.push(index);
  });
  const keys = [...byKey.keys()].sort();
  return keys.map((key) => {
    const recorded = byKey.get(key)!;
    const values: (string | null)[] = [null];
    const ids = new Map<string | null, number>([[null, 0]]);
    const written = new Set<string | null>([null]);
    const intern = (value: string | null): number => {
      let id = ids.get(value);
      if (id === undefined) {
        id = values.length;
        values.push(value);
        ids.set(value, id);
      }
      return id;
    };
    for (const index of recorded) {
      const { input } = history[index];
      if (input.op !== 'get') written.add(input.value);
    }

    const ops: Operation<RegisterInput, RegisterOutput>[] = [];
    let impossible: string | undefined;
    for (const index of recorded) {
      const op = history[index];
      const { input, output } = op;
      // Operations that constrain nothing: a get whose reply never came, a put that reports it did not
      // happen. Dropping them keeps the search small.
      if (input.op === 'get' && output === null) continue;
      if (input.op === 'put' && output !== null && 'ok' in output && !output.ok) continue;

      let registerOutput: RegisterOutput | null = null;
      if (output !== null) registerOutput = 'value' in output ? intern(output.value) : output.ok;
      if (impossible === undefined && output !== null) {
        // Fast, clear verdicts for the commonest corruptions: observing a value nobody wrote.
        if ('value' in output && !written.has(output.value)) {
          impossible = `read ${JSON.stringify(output.value)}, a value no operation on this key ever wrote`;
        } else if (input.op === 'cas' && 'ok' in output && output.ok && !written.has(input.expected)) {
          impossible = `succeeded against ${JSON.stringify(input.expected)}, a value no operation on this key ever wrote`;
        }
        if (impossible !== undefined)
          impossible = `history[${index}] client ${op.clientId}: ${describeKvOperation(op)} ${impossible}`;
      }
      ops.push({
        clientId: op.clientId,
        input: {
          kind: input.op === 'get' ? GET : input.op === 'put' ? PUT : CAS,
          value: input.op === 'get' ? 0 : intern(input.value),
          expected: input.op === 'cas' ? intern(input.expected) : 0,
          source: op,
          index,
        },
        call: op.call,
        ret: op.ret,
        output: registerOutput,
      });
    }
    return { key, ops, values, impossible };
  });
};

/**
 * Check a key-value history: each key is a register starting at null. Keys are checked one at a time
 * in sorted order under one shared time budget; the first key that fails (or cannot be decided) is
 * reported. Throws a TypeError/RangeError naming the operation when the history is malformed.
 */
export function checkKvHistory(
  history: readonly HistoryOperation[],
  options: CheckOptions = {},
): KvCheckResult {
  const deadline = performance.now() + validTimeout(options.timeoutMs);
  history.forEach(validateKvOperation);
  for (const { key, ops, values, impossible } of splitByKey(history)) {
    const label = `key ${JSON.stringify(key)}`;
    if (impossible !== undefined) {
      return {
        linearizable: false,
        failingKey: key,
        explanation: `${label} is not linearizable: ${impossible}.`,
      };
    }
    const result = searchObject(registerModel(values), ops, deadline, label, (i) => ops[i].input.index);
    if (!result.linearizable) {
      return {
        linearizable: false,
        failingKey: key,
        ...(result.timedOut ? { timedOut: true } : {}),
        explanation: result.explanation,
      };
    }
  }
  return { linearizable: true };
}
