// The key-value history the simulator and the nemesis record, and its check: each key is a register
// (get, put, compare-and-set) checked on its own with the generic checker of linearizability.ts.

import { performance } from 'node:perf_hooks';
import {
  type CheckOptions,
  type Model,
  type Operation,
  searchObject,
  validateTimes,
  validTimeout,
} from './linearizability.ts';

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
