// The linearizability search over one object's history (see linearizability.ts for the method): call
// and return events in a dancing-links list, a stack of linearized operations, and a memo of
// (linearized set, model state) configurations keyed by an incremental Zobrist hash.

import { performance } from 'node:perf_hooks';
import { Random } from '../../machines/random.ts';
import type { Model, Operation } from './linearizability.ts';

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

export type SearchOutcome =
  | { kind: 'linearizable'; order: number[] }
  | { kind: 'violation' }
  | { kind: 'timedOut'; steps: number };

/**
 * The search over one object. When `onDeeper` is given it is called with the linearized prefix (op
 * indices) and the state after it every time the search reaches a new greatest number of linearized operations: that is how an
 * explanation finds the longest linearizable prefix without slowing down the ordinary run.
 */
export function search<State, Input, Output>(
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
