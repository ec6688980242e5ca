import { performance } from 'node:perf_hooks';
import { expect } from 'chai';
import fc from 'fast-check';
import { Random } from '../../machines/random.ts';
import {
  checkKvHistory,
  type HistoryOperation,
  type KvInput,
  type KvOutput,
} from '../../runtime/sim/kv-history.ts';
import { checkHistory, type Model } from '../../runtime/sim/linearizability.ts';
import { checkProperty } from '../support/property.ts';

// ---------------------------------------------------------------------------------------------------
// Building histories by hand
// ---------------------------------------------------------------------------------------------------

const get = (
  clientId: number,
  key: string,
  call: number,
  ret: number,
  value: string | null,
): HistoryOperation => ({
  clientId,
  input: { op: 'get', key },
  call,
  ret,
  output: { value },
});

const put = (clientId: number, key: string, value: string, call: number, ret: number): HistoryOperation => ({
  clientId,
  input: { op: 'put', key, value },
  call,
  ret,
  output: { ok: true },
});

const cas = (
  clientId: number,
  key: string,
  expected: string | null,
  value: string,
  call: number,
  ret: number,
  ok: boolean,
): HistoryOperation => ({ clientId, input: { op: 'cas', key, expected, value }, call, ret, output: { ok } });

/** The same operation, but its reply never arrived (timed out or crashed client). */
const unknown = (op: HistoryOperation): HistoryOperation => ({ ...op, ret: null, output: null });

// ---------------------------------------------------------------------------------------------------
// Histories from a real register: a random concurrent schedule where each operation takes effect
// atomically at a random instant inside its interval, so every one of them is linearizable.
// ---------------------------------------------------------------------------------------------------

interface PlannedOp {
  kind: 'get' | 'put' | 'cas';
  key: number;
  value: number;
  expected: number | null;
  /** Idle time before the call. */
  gap: number;
  duration: number;
  /** Where in its interval the operation takes effect, in thousandths. */
  point: number;
  /** ok: the reply arrives; unknown-*: it never does, and the effect happens (maybe late) or never. */
  fate: 'ok' | 'unknown-applied' | 'unknown-lost';
}

const plannedOp: fc.Arbitrary<PlannedOp> = fc.record({
  kind: fc.constantFrom('get', 'put', 'cas'),
  key: fc.integer({ min: 0, max: 2 }),
  value: fc.integer({ min: 0, max: 3 }), // few values, so the same value is written again (ABA)
  expected: fc.option(fc.integer({ min: 0, max: 3 }), { nil: null }),
  gap: fc.integer({ min: 0, max: 4 }),
  duration: fc.integer({ min: 0, max: 12 }),
  point: fc.integer({ min: 0, max: 1000 }),
  fate: fc.constantFrom('ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'unknown-applied', 'unknown-lost'),
});

const schedule = fc.array(fc.array(plannedOp, { maxLength: 25 }), { minLength: 1, maxLength: 8 });

/** Run the clients' plans against an in-memory key-value register and record what they saw. */
const runAgainstRegister = (clients: readonly (readonly PlannedOp[])[]): HistoryOperation[] => {
  const history: HistoryOperation[] = [];
  const effects: { at: number; seq: number; op: HistoryOperation; replied: boolean }[] = [];
  clients.forEach((plan, clientId) => {
    let now = 0;
    for (const p of plan) {
      const key = `k${p.key}`;
      const value = `v${p.value}`;
      const input: KvInput =
        p.kind === 'get'
          ? { op: 'get', key }
          : p.kind === 'put'
            ? { op: 'put', key, value }
            : { op: 'cas', key, expected: p.expected === null ? null : `v${p.expected}`, value };
      const call = now + p.gap;
      const ret = call + p.duration;
      now = ret; // the client waits for the reply, or gives up at that time
      const replied = p.fate === 'ok';
      const op: HistoryOperation = { clientId, input, call, ret: replied ? ret : null, output: null };
      history.push(op);
      if (p.fate === 'unknown-lost') continue;
      // An unknown outcome may take effect well after the client gave up (a delayed message).
      const span = replied ? p.duration : p.duration + 30;
      effects.push({ at: call + (p.point * span) / 1000, seq: effects.length, op, replied });
    }
  });
  effects.sort((a, b) => a.at - b.at || a.seq - b.seq);
  const register = new Map<string, string | null>();
  for (const { op, replied } of effects) {
    const { input } = op;
    const current = register.get(input.key) ?? null;
    let output: KvOutput;
    if (input.op === 'get') output = { value: current };
    else if (input.op === 'put') {
      register.set(input.key, input.value);
      output = { ok: true };
    } else {
      const swaps = current === input.expected;
      if (swaps) register.set(input.key, input.value);
      output = { ok: swaps };
    }
    if (replied) op.output = output;
  }
  return history;
};

/** The register as a generic model over the recorded strings (no interning, no pre-checks). */
const stringRegister: Model<string | null, KvInput, KvOutput> = {
  init: () => null,
  step(state, input, output) {
    if (input.op === 'get')
      return output === null || ('value' in output && output.value === state) ? state : undefined;
    if (input.op === 'put') return input.value;
    const swaps = state === input.expected;
    if (output === null) return swaps ? input.value : state;
    return 'ok' in output && output.ok === swaps ? (swaps ? input.value : state) : undefined;
  },
};

const byKey = (history: readonly HistoryOperation[]): Map<string, HistoryOperation[]> => {
  const groups = new Map<string, HistoryOperation[]>();
  for (const op of history) groups.set(op.input.key, [...(groups.get(op.input.key) ?? []), op]);
  return groups;
};

/** Independently confirm a witness: real-time order respected, every output reproduced. */
const assertValidLinearization = (ops: readonly HistoryOperation[], order: readonly number[]): void => {
  const placed = new Set(order);
  expect(placed.size, 'no operation placed twice').to.equal(order.length);
  ops.forEach((op, i) => {
    if (op.ret !== null) expect(placed.has(i), `completed operation #${i} is placed`).to.equal(true);
  });
  for (let a = 0; a < order.length; a++) {
    for (let b = a + 1; b < order.length; b++) {
      const later = ops[order[b]];
      const earlier = ops[order[a]];
      expect(
        later.ret !== null && later.ret < earlier.call,
        `#${order[b]} finished before #${order[a]} began`,
      ).to.equal(false);
    }
  }
  let value: string | null = null;
  for (const i of order) {
    const { input, output } = ops[i];
    if (input.op === 'get') {
      if (output !== null) expect(output, `#${i} reads the current value`).to.deep.equal({ value });
    } else if (input.op === 'put') value = input.value;
    else {
      const swaps = value === input.expected;
      if (output !== null) expect(output, `#${i} swaps exactly when it should`).to.deep.equal({ ok: swaps });
      if (swaps) value = input.value;
    }
  }
};

// ---------------------------------------------------------------------------------------------------

describe('linearizability checker', () => {
  describe('known-good histories are linearizable', () => {
    it('accepts an empty history and a purely sequential one', () => {
      expect(checkKvHistory([])).to.deep.equal({ linearizable: true });
      const history = [
        get(1, 'x', 0, 1, null),
        put(1, 'x', 'a', 2, 3),
        get(2, 'x', 4, 5, 'a'),
        put(2, 'x', 'b', 6, 7),
        get(1, 'x', 8, 9, 'b'),
      ];
      expect(checkKvHistory(history)).to.deep.equal({ linearizable: true });
    });

    it('accepts overlapping writes and reads when some order explains every output', () => {
      const history = [
        put(1, 'x', 'a', 0, 10),
        put(2, 'x', 'b', 0, 10),
        get(3, 'x', 2, 4, 'a'), // a took effect first ...
        get(4, 'x', 5, 6, 'b'), // ... then b
        get(3, 'x', 11, 12, 'b'),
      ];
      expect(checkKvHistory(history).linearizable).to.equal(true);
    });

    it('accepts a read during a write seeing the old value, then a later one seeing the new', () => {
      const history = [put(1, 'x', '1', 0, 10), get(2, 'x', 1, 2, null), get(2, 'x', 3, 4, '1')];
      expect(checkKvHistory(history).linearizable).to.equal(true);
    });

    it('treats intervals as closed: an operation returning at t overlaps one called at t', () => {
      const history = [put(1, 'x', 'a', 0, 5), get(2, 'x', 5, 6, null)];
      expect(checkKvHistory(history).linearizable).to.equal(true);
    });

    it('accepts an unknown-outcome write that did take effect', () => {
      const history = [unknown(put(1, 'x', 'a', 0, 1)), get(2, 'x', 5, 6, 'a')];
      expect(checkKvHistory(history).linearizable).to.equal(true);
    });

    it('accepts an unknown-outcome write that never took effect', () => {
      const history = [unknown(put(1, 'x', 'a', 0, 1)), get(2, 'x', 5, 6, null), get(2, 'x', 100, 101, null)];
      expect(checkKvHistory(history).linearizable).to.equal(true);
    });

    it('accepts an unknown-outcome write that took effect long after its client gave up', () => {
      const history = [
        unknown(put(1, 'x', 'a', 0, 1)),
        put(1, 'x', 'b', 2, 3),
        get(2, 'x', 5, 6, 'b'),
        get(2, 'x', 50, 51, 'a'),
      ];
      expect(checkKvHistory(history).linearizable).to.equal(true);
    });

    it('accepts cas successes and failures consistent with the register', () => {
      const history = [
        cas(1, 'x', null, 'a', 0, 1, true),
        cas(2, 'x', null, 'z', 2, 3, false),
        cas(1, 'x', 'a', 'b', 4, 5, true),
        cas(2, 'x', 'a', 'c', 6, 7, false),
        get(3, 'x', 8, 9, 'b'),
        unknown(cas(3, 'x', 'b', 'd', 10, 11, true)),
        get(1, 'x', 20, 21, 'd'),
      ];
      expect(checkKvHistory(history).linearizable).to.equal(true);
    });

    it('checks keys independently (P-compositionality)', () => {
      const history = [
        put(1, 'x', 'a', 0, 10),
        put(2, 'y', 'a', 0, 10),
        get(3, 'y', 11, 12, 'a'),
        get(3, 'x', 13, 14, 'a'),
        get(4, 'z', 15, 16, null),
      ];
      expect(checkKvHistory(history).linearizable).to.equal(true);
    });

    it('returns a valid witness order from the generic checker', () => {
      const history = [
        put(1, 'x', 'a', 0, 10),
        get(2, 'x', 1, 3, null),
        put(3, 'x', 'b', 2, 4),
        get(2, 'x', 5, 6, 'a'),
      ];
      const result = checkHistory(stringRegister, history);
      expect(result.linearizable).to.equal(true);
      // The only order: get null, put b, put a, get a.
      expect(result.linearization).to.deep.equal([1, 2, 0, 3]);
      assertValidLinearization(history, result.linearization!);
    });

    it('works with any model given to checkHistory (a counter with increments and reads)', () => {
      type CounterInput = { op: 'inc' } | { op: 'read' };
      const counter: Model<number, CounterInput, number> = {
        init: () => 0,
        step: (state, input, output) =>
          input.op === 'inc' ? state + 1 : output === null || output === state ? state : undefined,
      };
      const inc = (call: number, ret: number) => ({
        clientId: 1,
        input: { op: 'inc' } as const,
        call,
        ret,
        output: 0,
      });
      const read = (call: number, ret: number, output: number) => ({
        clientId: 2,
        input: { op: 'read' } as const,
        call,
        ret,
        output,
      });
      expect(
        checkHistory(counter, [inc(0, 5), inc(0, 5), read(1, 2, 1), read(6, 7, 2)]).linearizable,
      ).to.equal(true);
      expect(checkHistory(counter, [inc(0, 5), inc(0, 5), read(6, 7, 1)]).linearizable).to.equal(false);
    });
  });

  describe('known-bad histories are rejected, naming the key', () => {
    it('rejects a stale read after a completed write (an acknowledged write lost)', () => {
      const history = [put(1, 'other', 'q', 0, 1), put(1, 'x', 'a', 0, 1), get(2, 'x', 2, 3, null)];
      const result = checkKvHistory(history);
      expect(result.linearizable).to.equal(false);
      expect(result.failingKey).to.equal('x');
      expect(result.timedOut).to.equal(undefined);
      expect(result.explanation).to.include('key "x"').and.include('get("x") -> null');
    });

    it('rejects a lost write — the earlier of two acknowledged writes is what survives', () => {
      const history = [put(1, 'x', 'a', 0, 1), put(2, 'x', 'b', 2, 3), get(3, 'x', 4, 5, 'a')];
      const result = checkKvHistory(history);
      expect(result).to.include({ linearizable: false, failingKey: 'x' });
      expect(result.explanation).to.include('longest linearizable prefix places 2 of 3');
    });

    it('rejects two readers seeing two concurrent writes in opposite orders', () => {
      const history = [
        put(1, 'x', 'a', 0, 100),
        put(2, 'x', 'b', 0, 100),
        get(3, 'x', 10, 20, 'a'),
        get(3, 'x', 30, 40, 'b'),
        get(4, 'x', 10, 20, 'b'),
        get(4, 'x', 30, 40, 'a'),
      ];
      expect(checkKvHistory(history)).to.include({ linearizable: false, failingKey: 'x' });
      expect(checkHistory(stringRegister, history).linearizable).to.equal(false);
    });

    it('rejects a new-then-old read inversion during a write', () => {
      const history = [put(1, 'x', '1', 0, 10), get(2, 'x', 1, 2, '1'), get(2, 'x', 3, 4, null)];
      expect(checkKvHistory(history)).to.include({ linearizable: false, failingKey: 'x' });
    });

    it('rejects a cas that succeeded against a value that was never there', () => {
      const history = [put(1, 'x', 'a', 0, 1), cas(2, 'x', 'ghost', 'b', 2, 3, true)];
      const result = checkKvHistory(history);
      expect(result).to.include({ linearizable: false, failingKey: 'x' });
      expect(result.explanation).to.include('"ghost"');
      // The search alone (no shortcut for never-written values) reaches the same verdict.
      expect(checkHistory(stringRegister, history).linearizable).to.equal(false);
    });

    it('rejects a cas that succeeded against a value that was there, but not at that time', () => {
      const history = [put(1, 'x', 'a', 0, 1), put(1, 'x', 'b', 2, 3), cas(2, 'x', 'a', 'c', 4, 5, true)];
      expect(checkKvHistory(history)).to.include({ linearizable: false, failingKey: 'x' });
    });

    it('rejects a cas that failed although nothing else could have changed the value', () => {
      const history = [put(1, 'x', 'a', 0, 1), cas(2, 'x', 'a', 'b', 2, 3, false)];
      expect(checkKvHistory(history)).to.include({ linearizable: false, failingKey: 'x' });
    });

    it('an unknown-outcome write takes effect at most once', () => {
      const history = [
        unknown(put(1, 'x', 'a', 0, 1)),
        put(2, 'x', 'b', 2, 3),
        get(3, 'x', 5, 6, 'a'),
        get(3, 'x', 7, 8, 'b'),
        get(3, 'x', 9, 10, 'a'),
      ];
      expect(checkKvHistory(history)).to.include({ linearizable: false, failingKey: 'x' });
    });

    it('an unknown-outcome write cannot take effect before it was called', () => {
      const history = [get(1, 'x', 0, 5, 'a'), unknown(put(2, 'x', 'a', 10, 11))];
      expect(checkKvHistory(history)).to.include({ linearizable: false, failingKey: 'x' });
    });

    it('an unknown-outcome cas takes effect only where its expected value held', () => {
      const history = [
        put(1, 'x', 'a', 0, 1),
        unknown(cas(2, 'x', 'z', 'b', 2, 3, true)),
        get(3, 'x', 10, 11, 'b'),
      ];
      expect(checkKvHistory(history)).to.include({ linearizable: false, failingKey: 'x' });
      expect(checkHistory(stringRegister, history).linearizable).to.equal(false);
    });

    it('rejects a client retry applied twice (the value comes back after being overwritten)', () => {
      const history = [
        put(1, 'x', 'a', 0, 1),
        put(2, 'x', 'b', 2, 3),
        get(3, 'x', 4, 5, 'b'),
        get(3, 'x', 6, 7, 'a'), // the duplicate of put a landed again
      ];
      expect(checkKvHistory(history)).to.include({ linearizable: false, failingKey: 'x' });
    });

    it('reports the first failing key in sorted order, with the operation that could not be placed', () => {
      const history = [
        put(1, 'b', 'x', 0, 1),
        get(2, 'b', 2, 3, null),
        put(1, 'a', 'y', 0, 1),
        put(1, 'a', 'z', 2, 3),
        get(2, 'a', 4, 5, 'y'),
      ];
      const result = checkKvHistory(history);
      expect(result.failingKey).to.equal('a');
      expect(result.explanation)
        .to.include('no order places')
        .and.include('get("a") -> "y"')
        .and.include('leaving the state "z"');
    });
  });

  describe('histories run against a real register (property)', () => {
    it('any random concurrent schedule, unknown outcomes included, is linearizable', () => {
      checkProperty(
        fc.property(schedule, (clients) => {
          const history = runAgainstRegister(clients);
          const result = checkKvHistory(history);
          expect(result, result.explanation).to.deep.equal({ linearizable: true });
          for (const ops of byKey(history).values()) {
            const generic = checkHistory(stringRegister, ops);
            expect(generic.linearizable, generic.explanation).to.equal(true);
            assertValidLinearization(ops, generic.linearization!);
          }
        }),
        { numRuns: 150 },
      );
    });

    it('rejects any such history once one read is corrupted to a value never written', () => {
      checkProperty(
        fc.property(schedule, fc.nat(), (clients, pick) => {
          const history = runAgainstRegister(clients);
          const reads = history.filter((op) => op.input.op === 'get' && op.ret !== null);
          fc.pre(reads.length > 0);
          const victim = reads[pick % reads.length];
          victim.output = { value: 'never-written' };
          const result = checkKvHistory(history);
          expect(result).to.include({ linearizable: false, failingKey: victim.input.key });
          expect(result.timedOut).to.equal(undefined);
          // And the search itself, without the never-written shortcut, rejects it too.
          const ops = byKey(history).get(victim.input.key)!;
          expect(checkHistory(stringRegister, ops).linearizable).to.equal(false);
        }),
        { numRuns: 150 },
      );
    });

    it('the pruned key-value search agrees with the plain search when reads are corrupted to written values', () => {
      let rejected = 0;
      checkProperty(
        fc.property(
          schedule,
          fc.array(fc.tuple(fc.nat(), fc.option(fc.integer({ min: 0, max: 3 }))), { maxLength: 3 }),
          (clients, corruptions) => {
            const history = runAgainstRegister(clients);
            const reads = history.filter((op) => op.input.op === 'get' && op.ret !== null);
            for (const [pick, value] of corruptions) {
              if (reads.length > 0)
                reads[pick % reads.length].output = { value: value === null ? null : `v${value}` };
            }
            const plain = [...byKey(history).values()].every(
              (ops) => checkHistory(stringRegister, ops).linearizable,
            );
            const result = checkKvHistory(history);
            expect(result.linearizable, result.explanation).to.equal(plain);
            if (!plain) rejected++;
          },
        ),
        { numRuns: 200 },
      );
      expect(rejected, 'some corrupted histories are not linearizable').to.be.greaterThan(10);
    });

    it('decides a 3000-operation history (10 clients, 5 keys, some unknown outcomes) within budget', () => {
      const random = new Random(42);
      const clients = Array.from({ length: 10 }, () =>
        Array.from(
          { length: 300 },
          (): PlannedOp => ({
            kind: random.pick(['get', 'get', 'put', 'cas'] as const),
            key: random.int(0, 4),
            value: random.int(0, 9),
            expected: random.chance(0.2) ? null : random.int(0, 9),
            gap: random.int(0, 3),
            duration: random.int(1, 10),
            point: random.int(0, 1000),
            fate: random.chance(0.01) ? random.pick(['unknown-applied', 'unknown-lost'] as const) : 'ok',
          }),
        ),
      );
      const history = runAgainstRegister(clients);
      expect(history).to.have.length(3000);
      expect(checkKvHistory(history, { timeoutMs: 5000 })).to.deep.equal({ linearizable: true });
      // A write acknowledged after everything else, then a read of an older value that was written
      // earlier: only an exhaustive search over that key's ~600 operations can rule it out.
      const end = Math.max(...history.map((op) => op.ret ?? op.call)) + 100;
      const stale = [put(20, 'k0', 'final', end, end + 1), get(21, 'k0', end + 2, end + 3, 'v3')];
      const result = checkKvHistory([...history, ...stale], { timeoutMs: 5000 });
      expect(result).to.include({ linearizable: false, failingKey: 'k0' });
      expect(result.timedOut).to.equal(undefined);
    });
  });

  describe('time budget', () => {
    it('reports timedOut quickly on a pathological history of many concurrent unknown writes', () => {
      // 40 writes with unknown outcome all in flight, then reads that walk through them in order and
      // finally read the first value again (impossible: each write takes effect at most once). Proving
      // that means trying exponentially many subsets of the writes.
      const writers = Array.from({ length: 40 }, (_, i) => unknown(put(i, 'x', `w${i}`, 0, 1)));
      const reads = writers.map((_, i) => get(100, 'x', 10 + 2 * i, 11 + 2 * i, `w${i}`));
      const history = [...writers, ...reads, get(100, 'x', 1000, 1001, 'w0')];
      const started = performance.now();
      const result = checkKvHistory(history, { timeoutMs: 100 });
      const elapsed = performance.now() - started;
      expect(result).to.include({ linearizable: false, timedOut: true, failingKey: 'x' });
      expect(result.explanation).to.include('time budget');
      expect(elapsed).to.be.below(1500);
    });
  });

  describe('malformed histories are refused with the fix', () => {
    it('names an operation that returns before it was called', () => {
      expect(() => checkKvHistory([get(1, 'x', 5, 4, null)])).to.throw(
        RangeError,
        /history\[0\].*before it was called/,
      );
    });

    it('names an unknown-outcome operation that carries an output', () => {
      const op = { ...put(1, 'x', 'a', 0, 1), ret: null };
      expect(() => checkKvHistory([op])).to.throw(TypeError, /history\[0\].*output: null/);
    });

    it('names a get whose output is not a value', () => {
      const op = { ...get(1, 'x', 0, 1, null), output: { ok: true } };
      expect(() => checkKvHistory([put(1, 'x', 'a', 0, 1), op])).to.throw(TypeError, /history\[1\] is a get/);
    });

    it('refuses a negative time budget', () => {
      expect(() => checkKvHistory([], { timeoutMs: -1 })).to.throw(RangeError, /timeoutMs/);
    });
  });
});
